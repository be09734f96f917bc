"""The deploy policy: what a recipe under test may ask of the CI host's swarm.

A recipe under test — above all a pull request's — is untrusted code. Its resolved plan
(after ``docker stack config``: every compose file and variable in) is checked before
anything is created; a rule it breaks refuses the deploy, with one line naming the rule,
the service and the offending value, unless the recipe dir allows that rule explicitly
(``ALLOW = {"docker.sock": "the proxy reads container labels"}`` in recipe_meta.py).
What was allowed is recorded in results.json and the manifest, for a reviewer to see.

Pure: a merged config in, violations out.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, Literal, get_args

from harness.errors import PlanError

__all__ = [
    "RULES",
    "PolicyError",
    "RuleId",
    "Violation",
    "check",
    "enforce",
    "escapes",
    "inside",
    "refuse_escaping_symlinks",
]

RuleId = Literal[
    "docker.sock",
    "host-root",
    "bind-mount",
    "privileged",
    "host-network",
    "host-pid",
    "host-ipc",
    "host-userns",
    "cap_add",
    "devices",
    "security_opt",
    "sysctls",
    "low-port",
    "outside-file",
]

# Why each rule exists: the reason a refusal gives.
RULES: Mapping[str, str] = {
    "docker.sock": "the Docker socket is the whole host",
    "host-root": "mounting / hands the container the host's files",
    "bind-mount": "a host bind mount reads or writes the CI host's files",
    "privileged": "a privileged container is root on the host",
    "host-network": "network_mode: host shares the host's network stack",
    "host-pid": "pid: host sees and signals the host's processes",
    "host-ipc": "ipc: host shares the host's shared memory",
    "host-userns": "userns_mode: host turns off user-namespace remapping",
    "cap_add": "added capabilities widen what root in the container can do to the host",
    "devices": "a device hands the container the host's hardware",
    "security_opt": "it turns off the confinement (AppArmor, seccomp, SELinux) of the container",
    "sysctls": "sysctls tune the kernel the CI host runs",
    "low-port": "a port below 1024 on the host is a privileged port of the CI host",
    "outside-file": "a file from outside the recipe's checkout reads the CI host's files",
}
assert set(RULES) == set(get_args(RuleId))

_SOCKETS = ("/var/run/docker.sock", "/run/docker.sock")
_UNCONFINED = re.compile(
    r"^(apparmor|seccomp|systempaths)[:=]unconfined$|^label[:=]disable$"
    r"|^no-new-privileges[:=]false$",
    re.IGNORECASE,
)


class PolicyError(PlanError):
    """The deploy policy refuses what the recipe asks (and its recipe dir does not allow)."""


@dataclass(frozen=True)
class Violation:
    rule: str
    service: str
    value: str

    def line(self) -> str:
        return f"policy {self.rule}: service {self.service}: {self.value} ({RULES[self.rule]})"


def _binds(service: Mapping[str, Any], volumes: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
    """(rule, value) of each host path a service mounts, the merged config's long syntax
    (``docker stack config`` turns ``/host:/ctr`` into ``type: bind``) and named volumes
    whose driver options bind a host directory."""
    for mount in service.get("volumes") or ():
        if not isinstance(mount, Mapping):
            continue
        source, target = str(mount.get("source") or ""), mount.get("target", "")
        if mount.get("type") == "bind":
            value = f"{source}:{target}"
            path = PurePosixPath(source)
            if str(path) in _SOCKETS or path.name == "docker.sock":
                yield "docker.sock", value
            elif str(path) == "/":
                yield "host-root", value
            else:
                yield "bind-mount", value
        elif mount.get("type") == "volume" and source in volumes:
            options = (volumes[source] or {}).get("driver_opts") or {}
            if "bind" in str(options.get("o", "")).split(",") or options.get("device"):
                yield "bind-mount", f"volume {source} binds {options.get('device', '?')}:{target}"


def check(
    config: Mapping[str, Any], *, stack: str, domain: str, publishes_ports: bool
) -> list[Violation]:
    """Everything the merged ``config`` of the app ``stack`` (served at ``domain``) asks
    that the policy refuses. ``publishes_ports``: whether the platform publishes the
    recipe's ports (the local one without IPVS drops them)."""
    found: list[Violation] = []
    volumes = config.get("volumes") or {}
    for name, service in (config.get("services") or {}).items():

        def refuse(rule: str, value: Any, name: str = name) -> None:
            found.append(Violation(rule, name, str(value)))

        for rule, value in _binds(service, volumes):
            refuse(rule, value)
        if service.get("privileged"):
            refuse("privileged", "privileged: true")
        for key, rule in (
            ("network_mode", "host-network"),
            ("pid", "host-pid"),
            ("ipc", "host-ipc"),
            ("userns_mode", "host-userns"),
        ):
            if str(service.get(key, "")) == "host":
                refuse(rule, f"{key}: host")
        for cap in service.get("cap_add") or ():
            refuse("cap_add", f"cap_add: {cap}")
        for device in service.get("devices") or ():
            refuse("devices", f"devices: {device}")
        for option in service.get("security_opt") or ():
            if _UNCONFINED.match(str(option)):
                refuse("security_opt", f"security_opt: {option}")
        for key, value in (service.get("sysctls") or {}).items():
            refuse("sysctls", f"sysctls: {key}={value}")
        if publishes_ports:
            for port in service.get("ports") or ():
                published = port.get("published") if isinstance(port, Mapping) else None
                if published is not None and 0 < int(published) < 1024:
                    refuse("low-port", f"ports: {published}:{port.get('target')}")
    return found


def escapes(
    checkout: Path, config: Mapping[str, Any], documents: Mapping[str, Any]
) -> list[Violation]:
    """Files the recipe makes the deploy read from outside its checkout, through a path or
    a symlink: config and secret files of the merged ``config``, and the ``env_file``s of
    the compose ``documents`` as written (the merged config has already inlined them)."""
    root = checkout.resolve()
    found = []

    def outside(kind: str, owner: str, path: str | Path) -> None:
        full = (checkout / path).resolve()
        if not full.is_relative_to(root):
            found.append(Violation("outside-file", owner, f"{kind} {path} -> {full}"))

    for section in ("configs", "secrets"):
        for key, spec in (config.get(section) or {}).items():
            if (spec or {}).get("file"):
                outside(section[:-1], key, spec["file"])
    for data in documents.values():
        for service, spec in (data.get("services") or {}).items():
            env_files = (spec or {}).get("env_file") or ()
            for env_file in [env_files] if isinstance(env_files, str) else env_files:
                outside("env_file", service, env_file)
    return found


def inside(checkout: Path, name: str | Path, what: str) -> Path:
    """``checkout/name``, refused unless it stays inside the checkout (through ``..`` or a
    symlink): read before anything else of it is, so nothing outside is ever read."""
    path = checkout / name
    if not path.resolve().is_relative_to(checkout.resolve()):
        raise PolicyError(
            f"policy outside-file: {what} {name} -> {path.resolve()} ({RULES['outside-file']})"
        )
    return path


def refuse_escaping_symlinks(checkout: Path) -> None:
    """A recipe repo whose symlinks point outside its checkout is refused whole."""
    root = checkout.resolve()
    for link in (p for p in checkout.rglob("*") if p.is_symlink() and ".git" not in p.parts):
        target = link.resolve()
        if not target.is_relative_to(root):
            rel = link.relative_to(checkout)
            raise PolicyError(
                f"policy outside-file: symlink {rel} -> {target} points outside the recipe"
                f" ({RULES['outside-file']})"
            )


def enforce(found: list[Violation], allowed: Mapping[str, str]) -> list[Violation]:
    """Refuse the violations ``allowed`` does not name (PolicyError, one line each, the
    first line the first refusal); return the ones it allows."""
    refused = [v for v in found if v.rule not in allowed]
    if refused:
        lines = [v.line() for v in refused]
        hint = (
            "\nthe recipe dir can allow a rule it needs, with the reason, in recipe_meta.py:"
            f' ALLOW = {{"{refused[0].rule}": "why it needs it"}}'
        )
        raise PolicyError("\n".join(lines) + hint)
    return [v for v in found if v.rule in allowed]
