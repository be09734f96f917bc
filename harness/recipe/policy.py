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

import os
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
    "stays_inside",
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
    "port-range",
    "outside-file",
    "volume-name",
    "config-name",
    "secret-name",
    "network-name",
    "network-driver",
    "network-ipam",
    "logging",
    "router-host",
    "router-priority",
    "replicas",
]

# The published ports a platform that publishes them allows: swarm's own dynamic range,
# the ports it assigns a service that leaves `published` out. No system service listens
# there, and it is below the kernel's ephemeral range (32768-60999), where cc-ci's
# host-mode web ports come from.
PORTS = (30000, 32767)
MAX_REPLICAS = 3  # per service; `mode: global` counts as one (a task per node)
MAX_APP_REPLICAS = 20
PROXY_NETWORK = "proxy"  # the platform's shared proxy network every Co-op Cloud recipe joins
# Traefik matches a label's field names without regard to case (only "traefik" must be
# lower-case), so the policy does too.
_ROUTER = re.compile(r"^traefik\.(http|tcp|udp)\.routers\.([^.]+)\.([^.]+)$", re.IGNORECASE)
_LITERAL = re.compile(r"`[^`]*`|\"(?:[^\"\\]|\\.)*\"|'[^']*'")
_MATCHER = re.compile(r"([A-Za-z]+)\s*\(([^()]*)\)")
_HOSTS = ("host", "hostsni", "hostheader")
MAX_PORTS = 10  # published ports of an app
MAX_LINES = 20  # refusal lines shown, the rest counted

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
    "port-range": f"a published port outside {PORTS[0]}-{PORTS[1]} (swarm's own range) can"
    " take a port of the CI host or of another app",
    "outside-file": "a file from outside the recipe's checkout reads the CI host's files",
    "volume-name": "a volume named outside the app's stack, or external, mounts another"
    " app's data read-write",
    "config-name": "a config named outside the app's stack, or external, reads (and on"
    " removal deletes) another stack's config",
    "secret-name": "a secret named outside the app's stack reads another app's secret",
    "network-name": "a network named outside the app's stack, or external (but the proxy"
    " network), joins another app's or the host's network",
    "network-driver": "a network driver other than overlay reaches the host's own networking",
    "network-ipam": "a chosen subnet adds a route to the CI host",
    "logging": "a logging driver other than json-file makes the engine send logs off the host",
    "router-host": "a router for another domain takes that app's traffic on the shared proxy",
    "router-priority": "a router priority outranks the routers of other apps on the shared proxy",
    "replicas": f"more than {MAX_REPLICAS} replicas of a service, or {MAX_APP_REPLICAS} of"
    " an app, take the CI host's memory and CPU",
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
    service: str  # the service, or the volume, config, secret, network or app (``kind``)
    value: str
    kind: str = "service"

    def line(self) -> str:
        return f"policy {self.rule}: {self.kind} {self.service}: {self.value} ({RULES[self.rule]})"


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
        elif mount.get("type") not in ("volume", "tmpfs"):
            yield "bind-mount", f"a {mount.get('type')} mount {source}:{target}"
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
    replicas = 0
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
            for rule, value in _ports(service):
                refuse(rule, value)
        driver = (service.get("logging") or {}).get("driver")
        if driver not in (None, "json-file"):
            refuse("logging", f"logging driver: {driver}")
        deploy = service.get("deploy") or {}
        for key, value in (deploy.get("labels") or {}).items():
            if not (match := _ROUTER.match(key)):
                continue
            router, field = match[2], match[3].lower()
            if not router.lower().startswith(stack.lower()):
                refuse("router-host", f"label {key}: router {router} is not the app's ({stack}…)")
            if field == "priority":
                refuse("router-priority", f"label {key}={value}")
            elif field == "rule" and not _routes_only(str(value), domain):
                refuse("router-host", f"label {key}={value}, the app's domain is {domain}")
            elif field == "service" and "@" in str(value):
                refuse("router-host", f"label {key}={value}: a service of the proxy's own")
        count = 1 if deploy.get("mode") == "global" else int(deploy.get("replicas", 1))
        if count > MAX_REPLICAS:
            refuse("replicas", f"replicas: {count} (at most {MAX_REPLICAS})")
        replicas += count
    if replicas > MAX_APP_REPLICAS:
        found.append(
            Violation(
                "replicas", stack, f"{replicas} replicas in all (at most {MAX_APP_REPLICAS})", "app"
            )
        )
    return found + list(_names(config, stack))


def _ports(service: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
    """(rule, value) of each published port outside the range the platform allows, and of
    a service publishing more than ``MAX_PORTS`` (a range of thousands would hold every
    port swarm assigns)."""
    ports = service.get("ports") or ()
    if len(ports) > MAX_PORTS:
        yield "port-range", f"ports: {len(ports)} published (at most {MAX_PORTS})"
        return
    for port in ports:
        published = port.get("published") if isinstance(port, Mapping) else None
        if published is None:
            continue  # swarm assigns one, from its own range
        value = f"ports: {published}:{port.get('target')}"
        if 0 < int(published) < 1024:
            yield "low-port", value
        elif not PORTS[0] <= int(published) <= PORTS[1]:
            yield "port-range", f"{value} (allowed: {PORTS[0]}-{PORTS[1]})"


def _routes_only(rule: str, domain: str) -> bool:
    """Whether a Traefik router ``rule`` matches requests for ``domain`` only. With its
    quoted arguments set aside (a matcher's name inside a regular expression is text), the
    rule must be matchers joined by ``&&``, ``||`` and parentheses — no negation — whose
    host matchers name only the domain (no host regular expression), and it must match
    nothing once every host matcher is false: no way through it skips the host."""
    arguments: list[str] = []

    def aside(literal: re.Match[str]) -> str:
        arguments.append(literal[0][1:-1])
        return f"@{len(arguments) - 1}"

    bare = _LITERAL.sub(aside, rule)
    tokens: list[str] = []
    for name, args in _MATCHER.findall(bare):
        lowered = name.lower()
        if "regexp" in lowered and "host" in lowered:
            return False
        if lowered in _HOSTS:
            named = [a.strip() for a in args.split(",")]
            if not all(
                n.startswith("@") and arguments[int(n[1:])].lower() == domain.lower() for n in named
            ):
                return False
        tokens.append("host" if lowered in _HOSTS else "other")
    shape = _MATCHER.sub(" M ", bare).replace("&&", " & ").replace("||", " | ")
    words = shape.replace("(", " ( ").replace(")", " ) ").split()
    if any(w not in ("M", "&", "|", "(", ")") for w in words):
        return False  # a negation, or text that is no matcher
    values = iter(tokens)
    expression = [(w if w != "M" else next(values)) for w in words]
    try:
        passes, rest = _without_host(expression)
    except (IndexError, ValueError):
        return False
    return not rest and not passes


def _without_host(words: list[str]) -> tuple[bool, list[str]]:
    """Whether ``words`` (a rule's shape: host, other, &, |, parentheses) is true with
    every host matcher false and every other true; and what is left after it."""

    def term(rest: list[str]) -> tuple[bool, list[str]]:
        if rest[0] == "(":
            value, rest = either(rest[1:])
            if rest[0] != ")":
                raise ValueError("unbalanced")
            return value, rest[1:]
        if rest[0] in ("host", "other"):
            return rest[0] == "other", rest[1:]
        raise ValueError(rest[0])

    def both(rest: list[str]) -> tuple[bool, list[str]]:
        value, rest = term(rest)
        while rest and rest[0] == "&":
            more, rest = term(rest[1:])
            value = value and more
        return value, rest

    def either(rest: list[str]) -> tuple[bool, list[str]]:
        value, rest = both(rest)
        while rest and rest[0] == "|":
            more, rest = both(rest[1:])
            value = value or more
        return value, rest

    return either(words)


def _names(config: Mapping[str, Any], stack: str) -> Iterator[Violation]:
    """Volumes, configs, secrets and networks named outside the stack's namespace, or
    external where that reaches what is not the app's: an external volume or config is
    someone else's; an external secret is the Co-op Cloud norm (cc-ci creates it), so it
    need only be in the namespace; the one external network allowed is the proxy's."""
    rules = {
        "volumes": "volume-name",
        "configs": "config-name",
        "secrets": "secret-name",
        "networks": "network-name",
    }
    for section, rule in rules.items():
        for key, spec in (config.get(section) or {}).items():
            spec = spec or {}
            external = bool(spec.get("external"))
            # An external resource without a name is looked up by its bare key.
            name = spec.get("name") or (key if external else None)
            what = section[:-1]
            if section == "networks":
                if external and name == PROXY_NETWORK:
                    continue
                if spec.get("driver") not in (None, "overlay"):
                    yield Violation("network-driver", key, f"driver: {spec['driver']}", what)
                if spec.get("ipam"):
                    yield Violation("network-ipam", key, f"ipam: {spec['ipam']}", what)
            if external and section != "secrets":
                yield Violation(rule, key, f"external: true (name {name})", what)
            elif name is not None and not str(name).startswith(f"{stack}_"):
                yield Violation(rule, key, f"name: {name}, outside the stack's {stack}_*", what)


def escapes(
    checkout: Path, config: Mapping[str, Any], documents: Mapping[str, Any]
) -> list[Violation]:
    """Files the recipe makes the deploy read from outside its checkout, through a path or
    a symlink: config and secret files of the merged ``config``, and the ``env_file``s of
    the compose ``documents`` as written (the merged config has already inlined them)."""
    root = checkout.resolve()
    found = []

    def outside(kind: str, owner: str, path: str | Path) -> None:
        if not stays_inside(checkout / path, root):
            written = Path(path)
            if written.is_absolute() and written.is_relative_to(checkout):
                written = written.relative_to(checkout)  # made absolute by cc-ci, not written so
            shown = _as_written(checkout / path, root, written)
            found.append(Violation("outside-file", owner, f"{kind} {shown}"))

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
    if not stays_inside(path, checkout.resolve()):
        raise PolicyError(
            f"policy outside-file: {what} {_as_written(path, checkout.resolve(), name)}"
            f" ({RULES['outside-file']})"
        )
    return path


def stays_inside(path: Path, root: Path) -> bool:
    """Whether ``path`` resolves inside ``root``; one that cannot be resolved (a symlink
    loop, a directory cc-ci may not read) does not."""
    try:
        return path.resolve().is_relative_to(root)
    except (OSError, RuntimeError):
        return False


def _as_written(path: str | Path, root: Path, name: str | Path | None = None) -> str:
    """A path as the recipe wrote it — and, for a symlink of the recipe's own, its target
    as the link says it — never as the host resolves it (which would tell the host's
    layout: /proc/self/cwd)."""
    shown = str(name if name is not None else path)
    link = Path(path)
    try:
        own = link.is_symlink() and stays_inside(link.parent, root)
        return f"{shown} -> {os.readlink(link)}" if own else shown
    except OSError:
        return shown


def refuse_escaping_symlinks(checkout: Path) -> None:
    """A recipe repo whose symlinks point outside its checkout is refused whole."""
    root = checkout.resolve()
    for link in (p for p in checkout.rglob("*") if p.is_symlink() and ".git" not in p.parts):
        if not stays_inside(link, root):
            rel = link.relative_to(checkout)
            raise PolicyError(
                f"policy outside-file: symlink {_as_written(link, root, rel)} points outside the"
                f" recipe ({RULES['outside-file']})"
            )


def enforce(found: list[Violation], allowed: Mapping[str, str]) -> list[Violation]:
    """Refuse the violations ``allowed`` does not name (PolicyError, one line each, the
    first line the first refusal); return the ones it allows."""
    refused = [v for v in found if v.rule not in allowed]
    if refused:
        lines = [v.line() for v in refused[:MAX_LINES]]
        if len(refused) > MAX_LINES:
            lines.append(f"… and {len(refused) - MAX_LINES} more refusals")
        hint = (
            "\nthe recipe dir can allow a rule it needs, with the reason, in recipe_meta.py:"
            f' ALLOW = {{"{refused[0].rule}": "why it needs it"}}'
        )
        raise PolicyError("\n".join(lines) + hint)
    return [v for v in found if v.rule in allowed]
