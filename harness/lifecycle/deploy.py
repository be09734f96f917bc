"""The native deployer's own part of `abra app deploy`: secrets and the deploy file.

The deploy file (``deploy_config``, ``render_deploy_file``) is the merged config of the plan
— the recipe is never edited — plus:
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

Secrets are generated before the deploy, one per external secret of the plan, honouring
the ``length``/``charset``/``generate=false`` modifiers of .env.sample; a secret that
must not be generated takes its value from ``CCCI_SECRET_<RECIPE>_<KEY>`` in cc-ci's
environment (the variable names the recipe, so one recipe never receives a value meant for
another). Values never reach a log: only names do, and each value is registered with the
redactor as it is made, for the logs the app itself writes.
"""

from __future__ import annotations

import copy
import logging
import math
import os
import re
import secrets as random
import string
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

import yaml

from harness import redact
from harness.errors import MetaError, PlanError
from harness.lifecycle.labels import RUN_LABEL, run_labels
from harness.lifecycle.platform import Platform
from harness.recipe.plan import Plan, SecretPlan

if TYPE_CHECKING:
    from harness.lifecycle.context import Swarm

__all__ = [
    "DEFAULT_LIMITS",
    "Stamp",
    "create_secrets",
    "deploy_config",
    "disk_bound",
    "limits",
    "memory_bytes",
    "render_deploy_file",
    "secret_value",
    "secret_variable",
]

log = logging.getLogger(__name__)

CHARSETS = {
    "alnum": string.ascii_letters + string.digits,
    "hex": "0123456789abcdef",
    "alpha": string.ascii_letters,
    "digits": string.digits,
    "ascii": string.ascii_letters + string.digits + string.punctuation,
}


def secret_variable(recipe: str, key: str) -> str:
    """The variable that gives the value of a ``generate=false`` secret: ``recipe`` is the
    recipe's identity (``kinto``, ``db_password`` -> ``CCCI_SECRET_KINTO_DB_PASSWORD``)."""
    return f"{redact.SECRET_ENV_PREFIX}{recipe}_{key}".upper().replace("-", "_")


def secret_value(secret: SecretPlan, recipe: str, environ: Mapping[str, str] = os.environ) -> str:
    """A new value for ``secret`` of ``recipe``: generated, or the operator's."""
    if not secret.generate:
        variable = secret_variable(recipe, secret.key)
        given = environ.get(variable)
        if given is None:
            unscoped = f"{redact.SECRET_ENV_PREFIX}{secret.key.upper()}"
            ignored = (
                f"; {unscoped} is set but not taken: it names no recipe"
                if unscoped in environ
                else ""
            )
            raise PlanError(
                f"secret not generated: {secret.key} (generate=false; "
                f"give its value as {variable}{ignored})"
            )
        return given
    alphabet = CHARSETS.get(secret.charset)
    if alphabet is None:
        raise PlanError(f"secret {secret.key}: unknown charset={secret.charset}")
    return "".join(random.choice(alphabet) for _ in range(secret.length))


def create_secrets(swarm: Swarm, plan: Plan, run_id: str, recipe: str) -> dict[str, str]:
    """Create the plan's secrets that do not exist yet; return ``{key: value}`` of new ones.
    ``recipe`` names the recipe as the operator does (its recipe dir, the repo a job is
    for), never as the recipe under test calls itself: a pull request that writes
    ``TYPE=kinto`` in its .env.sample gets no ``CCCI_SECRET_KINTO_*``."""
    existing = {r.name for r in swarm.labelled(f"{RUN_LABEL}={run_id}", ("secret",))}
    created = {}
    for secret in plan.secrets:
        if secret.name in existing:
            continue
        value = secret_value(secret, recipe)
        if not redact.register(value):
            log.warning(
                "secret %s is shorter than %d characters: not masked in cc-ci's output",
                secret.name,
                redact.MIN_LENGTH,
            )
        swarm.create_secret(secret.name, value, run_labels(run_id))
        created[secret.key] = value
        log.info("created secret %s", secret.name)
    return created


def _escape_dollars(value: Any) -> Any:
    """Re-escape ``$``: the merged config is interpolated already, and deploy does it again."""
    if isinstance(value, str):
        return value.replace("$", "$$")
    if isinstance(value, dict):
        return {k: _escape_dollars(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_escape_dollars(v) for v in value]
    return value


class _QuotingDumper(yaml.SafeDumper):
    """Quotes every string: Docker's YAML 1.2 parser reads ``2905e9`` (a run id, a sha8) as a
    number, where PyYAML, following YAML 1.1, writes it bare."""


_QuotingDumper.add_representer(
    str, lambda dumper, value: dumper.represent_scalar("tag:yaml.org,2002:str", value, style='"')
)


def render_deploy_file(config: dict[str, Any]) -> str:
    """The YAML `docker stack deploy` reads back as ``config``, string for string."""
    return yaml.dump(_escape_dollars(config), Dumper=_QuotingDumper, sort_keys=False)


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
    """A limit as a number to compare: memory in bytes, CPUs, pids. What is not one, and
    what asks for nothing or less (``cpus: 0``, ``pids: -1``: no limit at all to swarm),
    is more than any cap."""
    try:
        amount = memory_bytes(str(value)) if name == "memory" else float(value)
    except (AttributeError, ValueError, OverflowError):
        return math.inf  # not a number cc-ci reads: lowered to the cap, never trusted
    return amount if amount > 0 and math.isfinite(amount) else math.inf


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
