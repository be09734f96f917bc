"""Where apps run, and the per-run compose file that fits the recipe to it.

The recipe is never edited. What cc-ci deploys is the merged config of the plan plus:
- the run's label on every service, container, volume, network and config (secrets are
  created by cc-ci with it), so teardown and the janitor find everything by label;
- the deploy stamps abra puts on the app service (chaos, chaos-version, recipe);
- on the local platform, which has no Traefik and no shared ``proxy`` network: external
  networks become networks of the stack, and the web service publishes its port in host
  mode on a free port, reached at 127.0.0.1 (stop-first updates, so the port is free);
- where the kernel has no IPVS (swarm VIPs and the ingress mesh do not route): dnsrr
  endpoints, and the recipe's own published ports are dropped.
Each of these is recorded as an overlay line in the run's results.
"""

from __future__ import annotations

import copy
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

from harness.errors import MetaError
from harness.recipe.plan import Plan

__all__ = ["RUN_LABEL", "Platform", "Stamp", "deploy_config", "detect"]

RUN_LABEL = "cc-ci.run"


@dataclass(frozen=True)
class Platform:
    name: str  # "local" or "remote"
    ipvs: bool  # can swarm route VIPs and the ingress mesh?
    proxy: str | None = None  # where a remote swarm's proxy answers (default: the app's domain)

    def base_url(self, domain: str, host_port: int | None) -> str:
        """Where an app answers: its host-mode port on the local platform, else the proxy
        (Traefik routes by the ``Host`` header every request carries)."""
        if host_port is not None:
            return f"http://127.0.0.1:{host_port}"
        return self.proxy or f"https://{domain}"


def detect() -> Platform:
    """The local engine unless DOCKER_HOST names another; IPVS as this kernel has it."""
    if os.environ.get("DOCKER_HOST", "").startswith(("tcp://", "ssh://")):
        return Platform("remote", ipvs=True)  # production swarms run a full kernel
    ipvs = Path("/proc/net/ip_vs").exists() or Path("/sys/module/ip_vs").exists()
    return Platform("local", ipvs=ipvs)


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


# What a service may use when its recipe sets no limit: sized for a 2-core / 24 GiB machine
# running several runs at once (RESOURCES in recipe_meta.py raises them).
DEFAULT_LIMITS: Mapping[str, str] = MappingProxyType({"memory": "1G", "cpus": "1", "pids": "1024"})
_LIMIT_FORMS = {
    "memory": re.compile(r"^\d+(\.\d+)?[bkmg]?$", re.IGNORECASE),
    "cpus": re.compile(r"^\d+(\.\d+)?$"),
    "pids": re.compile(r"^\d+$"),
}


def limits(resources: Mapping[str, str]) -> dict[str, str]:
    """The default limits, raised by a recipe dir's RESOURCES; a malformed value is named."""
    chosen = {**DEFAULT_LIMITS, **resources}
    for name, value in chosen.items():
        if not _LIMIT_FORMS[name].match(str(value)):
            raise MetaError(
                f"RESOURCES[{name!r}] = {value!r} is not a {name} limit"
                f" (e.g. {DEFAULT_LIMITS[name]!r})"
            )
    return chosen


def memory_bytes(text: str) -> int:
    """``1G``, ``512m``, ``104857600`` as bytes."""
    number, unit = re.match(r"^([\d.]+)([bkmg]?)$", text.lower()).groups()  # type: ignore[union-attr]
    return int(float(number) * 1024 ** "bkmg".index(unit or "b"))


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
    bounded = []
    for svc, spec in (config.get("services") or {}).items():
        set_limits = spec.setdefault("deploy", {}).setdefault("resources", {})
        set_limits = set_limits.setdefault("limits", {})
        for name, value in resources.items():
            if name not in set_limits:
                set_limits[name] = int(value) if name == "pids" else str(value)
                bounded.append(svc)
    if bounded:
        config["version"] = "3.9"  # the first compose version with a pids limit
        overlays.append(
            "services "
            + ", ".join(dict.fromkeys(bounded))
            + ": limits "
            + ", ".join(f"{k} {v}" for k, v in resources.items())
            + " where the recipe sets none"
        )
    label = {RUN_LABEL: run_id}
    services: dict[str, Any] = config.get("services") or {}
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
