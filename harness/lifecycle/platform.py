"""Where apps run, and the per-run compose file that fits the recipe to it.

The recipe is never edited. What cc-ci deploys is the merged config of the plan plus:
- the run's label on every service, container, volume, network and config (secrets are
  created by cc-ci with it), so teardown and the janitor find everything by label;
- the deploy stamps abra puts on the app service (chaos, chaos-version, recipe);
- on every service, limits and reservations within the caps (``limits``: the defaults,
  raised by RESOURCES), and json-file logs within LOG_BOUND;
- on the local platform, which has no Traefik and no shared ``proxy`` network: external
  networks become networks of the stack, and the web service publishes its port in host
  mode on a free port, reached at 127.0.0.1 (swarm binds it on every address; the port's
  firewall rule, ``janitor.loopback_only``, drops what does not come from this host;
  stop-first updates, so the port is free);
- where the kernel has no IPVS (swarm VIPs and the ingress mesh do not route): dnsrr
  endpoints, and the recipe's own published ports are dropped.
Each of these is recorded as an overlay line in the run's results.
"""

from __future__ import annotations

import copy
import functools
import re
import secrets
import socket
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from harness.config import FACES, resolve
from harness.errors import MetaError, PlatformError
from harness.fetch import CACHE_DIR
from harness.files import read_or_make
from harness.recipe.plan import Plan

if TYPE_CHECKING:
    import httpx

__all__ = [
    "HOST_LABEL",
    "RUN_LABEL",
    "Platform",
    "Stamp",
    "app_client",
    "deploy_config",
    "detect",
    "host_id",
    "run_labels",
]

RUN_LABEL = "cc-ci.run"
HOST_LABEL = "cc-ci.host"  # which cc-ci host's leases say whether the run lives


@functools.cache
def host_id() -> str:
    """This host's id: made once, kept beside the leases (whoever sees this id sees the
    leases of its runs; a janitor elsewhere sees neither, and leaves those runs alone)."""
    return read_or_make(
        CACHE_DIR / "host-id", lambda: f"{socket.gethostname()[:24]}-{secrets.token_hex(4)}"
    )


def run_labels(run_id: str) -> dict[str, str]:
    """The labels every resource of a run carries."""
    return {RUN_LABEL: run_id, HOST_LABEL: host_id()}


@dataclass(frozen=True)
class Platform:
    name: str  # "local" or "remote"
    ipvs: bool  # can swarm route VIPs and the ingress mesh?
    domain: str = "localhost"  # apps are <name>.<domain>: on a remote swarm, its proxy's
    proxy: str | None = None  # where a remote swarm's proxy answers (default: DNS of the domain)

    def base_url(self, domain: str, host_port: int | None) -> str:
        """Where an app answers: its host-mode port on the local platform, else its domain
        at the proxy (Traefik routes by the ``Host`` header, and by SNI)."""
        if host_port is not None:
            return f"http://127.0.0.1:{host_port}"
        return f"https://{domain}"


def detect() -> Platform:
    """The local engine unless DOCKER_HOST or a Docker context names another. A remote one
    serves apps under ``CCCI_DOMAIN`` (a wildcard its proxy answers), dialled at
    ``CCCI_PROXY`` when that is set (else the domain's DNS). IPVS as this kernel has it
    locally, as production swarms have it remotely; ``CCCI_IPVS=yes|no`` says otherwise."""
    from harness.swarm.engine import where

    knobs = resolve(FACES["platform"])
    said = (knobs["ipvs"].value or "").lower()
    if said not in ("", "yes", "no"):
        raise PlatformError(f"{knobs['ipvs'].source}={said!r}: say yes or no")
    if not where().startswith("unix://"):
        domain = (knobs["domain"].value or "").strip(".").lower()
        if not re.fullmatch(
            r"[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)+", domain
        ):
            raise PlatformError(
                f"the engine at {where()} is remote: set CCCI_DOMAIN to the wildcard domain"
                " its proxy serves apps under (e.g. ci.example.org)"
            )
        proxy = knobs["proxy"].value or None
        return Platform("remote", ipvs=said != "no", domain=domain, proxy=proxy)
    ipvs = Path("/proc/net/ip_vs").exists() or Path("/sys/module/ip_vs").exists()
    return Platform("local", ipvs=ipvs if not said else said == "yes")


def app_client(base_url: str, domain: str, proxy: str | None, **options: Any) -> httpx.Client:
    """An HTTP client (``httpx.Client``) for an app at ``base_url``: every request carries
    ``Host: domain``; with a ``proxy`` address, connections go there, with SNI ``domain``
    (what a wildcard DNS record pointing at the proxy would give). Test apps get no
    certificate (a remote proxy serves its default one), so TLS is not verified: the app's
    answer is what is checked."""
    import httpx

    headers = {"Host": domain, **options.pop("headers", {})}
    if proxy is None:
        return httpx.Client(base_url=base_url, headers=headers, verify=False, **options)

    class Sni(httpx.HTTPTransport):
        def handle_request(self, request: httpx.Request) -> httpx.Response:
            request.extensions["sni_hostname"] = domain
            return super().handle_request(request)

    scheme = base_url.split("://", 1)[0]
    return httpx.Client(
        base_url=f"{scheme}://{proxy}", headers=headers, transport=Sni(verify=False), **options
    )


@dataclass(frozen=True)
class Stamp:
    """What the deployed labels must say about the deployed commit."""

    chaos: bool
    chaos_version: str  # <sha8> or <sha8>+U for a dirty tree

    def labels(self, stack: str, recipe: str) -> dict[str, str]:
        return {
            f"coop-cloud.{stack}.chaos": str(self.chaos).lower(),
            f"coop-cloud.{stack}.chaos-version": self.chaos_version,
            f"coop-cloud.{stack}.recipe": recipe,
        }


# The most a service may use, and reserve: its limits where the recipe sets none, and the
# cap of what it sets (asking for less is fine). Sized for a 2-core / 24 GiB machine running
# several runs at once; RESOURCES in recipe_meta.py (the operator's) raises them.
DEFAULT_LIMITS: Mapping[str, str] = MappingProxyType({"memory": "1G", "cpus": "1", "pids": "1024"})
_LIMIT_FORMS = {
    "memory": re.compile(r"^\d+(\.\d+)?[bkmg]?$", re.IGNORECASE),
    "cpus": re.compile(r"^\d+(\.\d+)?$"),
    "pids": re.compile(r"^\d+$"),
}


def limits(resources: Mapping[str, str]) -> dict[str, str]:
    """The default limits (and caps) of each service, raised by a recipe dir's RESOURCES;
    a malformed value is named."""
    chosen = {**DEFAULT_LIMITS, **{k: v for k, v in resources.items() if k != "disk"}}
    for name, value in chosen.items():
        if not _LIMIT_FORMS[name].match(str(value)):
            raise MetaError(
                f"RESOURCES[{name!r}] = {value!r} is not a {name} limit"
                f" (e.g. {DEFAULT_LIMITS[name]!r})"
            )
    return chosen


DEFAULT_DISK = "5G"


def disk_bound(resources: Mapping[str, str]) -> int:
    """The bytes a run's containers and volumes may hold: ``RESOURCES["disk"]``, else
    ``DEFAULT_DISK``; a malformed value is named."""
    value = str(resources.get("disk", DEFAULT_DISK))
    if not _LIMIT_FORMS["memory"].match(value):
        raise MetaError(f"RESOURCES['disk'] = {value!r} is not a size (e.g. {DEFAULT_DISK!r})")
    return memory_bytes(value)


def memory_bytes(text: str) -> int:
    """``1G``, ``512m``, ``104857600`` as bytes."""
    number, unit = re.match(r"^([\d.]+)([bkmg]?)$", text.lower()).groups()  # type: ignore[union-attr]
    return int(float(number) * 1024 ** "bkmg".index(unit or "b"))


def _amount(name: str, value: Any) -> float:
    """A limit as a number to compare: memory in bytes, CPUs, pids."""
    return memory_bytes(str(value)) if name == "memory" else float(value)


def _bound(services: Mapping[str, Any], caps: Mapping[str, str], overlays: list[str]) -> bool:
    """Each service's limits and reservations within ``caps``: a limit the recipe sets none
    of is the cap, one above it (or a reservation above it) is lowered to it, each lowering
    an overlay line. Whether anything was written."""
    unset, lowered = [], []
    for svc, spec in services.items():
        resources = spec.setdefault("deploy", {}).setdefault("resources", {})
        for kind in ("limits", "reservations"):
            asked = resources.setdefault(kind, {}) if kind == "limits" else resources.get(kind)
            for name, cap in caps.items() if asked is not None else ():
                value = int(cap) if name == "pids" else str(cap)
                if name not in asked:
                    if kind == "limits":
                        asked[name] = value
                        unset.append(svc)
                elif _amount(name, asked[name]) > _amount(name, cap):
                    lowered.append(
                        f"service {svc}: {kind[:-1]} {name} {asked[name]} lowered to {cap}"
                        " (the cap; RESOURCES in the recipe dir raises it)"
                    )
                    asked[name] = value
    if unset:
        overlays.append(
            "services "
            + ", ".join(dict.fromkeys(unset))
            + ": limits "
            + ", ".join(f"{k} {v}" for k, v in caps.items())
            + " where the recipe sets none"
        )
    overlays += lowered
    return bool(unset or lowered)


# Every container's json-file log at most: a size of each file, a number of files (what a
# recipe sets below either is kept).
LOG_BOUND: Mapping[str, str] = MappingProxyType({"max-size": "10m", "max-file": "3"})


def _bound_logs(services: Mapping[str, Any], overlays: list[str]) -> None:
    """Every service logs to json-file within LOG_BOUND, no other option kept (another
    driver is there only because the recipe dir allowed the policy's ``logging`` rule: it
    is left as it is)."""
    for spec in services.values():
        logging = spec.get("logging") or {}
        if logging.get("driver") not in (None, "json-file"):
            continue
        asked = logging.get("options") or {}
        options = {}
        for name, cap in LOG_BOUND.items():
            value = str(asked.get(name, cap)).lower()
            fits = re.fullmatch(r"[1-9]\d*[kmg]?", value) and memory_bytes(value) <= memory_bytes(
                cap
            )
            options[name] = value if fits else cap
        spec["logging"] = {"driver": "json-file", "options": options}
    overlays.append(
        "all services: json-file logs of at most "
        + ", ".join(f"{k} {v}" for k, v in LOG_BOUND.items())
    )


def deploy_config(
    plan: Plan,
    platform: Platform,
    run_id: str,
    stamp: Stamp,
    host_port: int | None,
    resources: Mapping[str, str] = DEFAULT_LIMITS,
    attach: Sequence[str] = (),
) -> tuple[dict[str, Any], list[str]]:
    """The config to deploy for ``plan`` and the overlay lines applied to it."""
    config = copy.deepcopy(plan.config)
    overlays: list[str] = []
    services: dict[str, Any] = config.get("services") or {}
    if _bound(services, resources, overlays):
        config["version"] = "3.9"  # the first compose version with a pids limit
    _bound_logs(services, overlays)
    label = run_labels(run_id)
    for svc, spec in services.items():
        deploy = spec.setdefault("deploy", {})
        deploy["labels"] = {**(deploy.get("labels") or {}), **label}
        spec["labels"] = {**(spec.get("labels") or {}), **label}
        if svc == plan.stamp_service:
            deploy["labels"].update(stamp.labels(plan.stack, plan.recipe))
    for section in ("volumes", "configs"):
        for key, spec in (config.get(section) or {}).items():
            spec = spec or {}
            spec["labels"] = {**(spec.get("labels") or {}), **label}
            config[section][key] = spec
    # Services without `networks:` join the stack's implicit default network: label it too.
    networks = config.setdefault("networks", {})
    if any("networks" not in spec for spec in services.values()):
        networks.setdefault("default", {})
    for key, spec in list(networks.items()):
        spec = spec or {}
        if platform.name == "local" and spec.get("external"):
            spec = {}
            overlays.append(f"network {key}: created by the stack (no shared proxy network here)")
        spec["labels"] = {**(spec.get("labels") or {}), **label}
        config["networks"][key] = spec
    for n, name in enumerate(attach):  # the dependencies' networks, as they are
        key = f"ccci_dependency_{n}"
        networks[key] = {"external": True, "name": name}
        for spec in services.values():
            joined = spec.setdefault("networks", ["default"])
            if isinstance(joined, list):
                joined.append(key)
            else:
                joined[key] = None
        overlays.append(f"all services: join dependency network {name}")
    if not platform.ipvs:
        for svc, spec in services.items():
            spec["deploy"]["endpoint_mode"] = "dnsrr"
            if spec.pop("ports", None):
                overlays.append(f"service {svc}: published ports dropped (no ingress mesh)")
        overlays.append("all services: endpoint_mode dnsrr (no IPVS for VIPs)")
    if platform.name == "local" and plan.web and host_port:
        svc, port = plan.web
        spec = services[svc]
        spec["ports"] = [
            {"target": port, "published": host_port, "protocol": "tcp", "mode": "host"}
        ]
        for policy in ("update_config", "rollback_config"):
            spec["deploy"].setdefault(policy, {})["order"] = "stop-first"
        overlays.append(
            f"service {svc}: port {port} published in host mode on 127.0.0.1:{host_port}"
            ", stop-first updates"
        )
    return config, overlays
