"""The deploy plan of an app: what `docker stack deploy` will be asked to create.

``resolve`` reads and interpolates the compose files for the CLI; the caller has them
merged by ``docker stack config --skip-interpolation`` — the very loader ``docker stack
deploy`` uses (``harness.lifecycle.planning`` asks the swarm seam) — and ``make_plan``
plans from both, so the plan cannot disagree with the deploy. On top of the merged config
cc-ci finds what that loader lets through silently: bad YAML named by file and line,
unset variables, secrets used but not defined or without a version, config files that do
not exist, services without an image.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.errors import PlanError
from harness.recipe import compose, policy
from harness.recipe.appenv import EnvFile, utf8_text
from harness.recipe.policy import Violation

__all__ = ["Plan", "Resolved", "SecretPlan", "compose_files", "make_plan", "resolve"]

_VAR = re.compile(r"\$(?:\{([A-Za-z_][A-Za-z0-9_]*)([^}]*)\}|([A-Za-z_][A-Za-z0-9_]*))")
MAX_SECRET_BYTES = 500 * 1024  # swarm's own bound on a secret's data
_PORT_LABEL = re.compile(r"^traefik\.http\.services\.[^.]+\.loadbalancer\.server\.port$")


@dataclass(frozen=True)
class SecretPlan:
    key: str  # the compose key, e.g. db_password
    name: str  # the swarm secret, e.g. <stack>_db_password_v1
    version_var: str  # SECRET_DB_PASSWORD_VERSION
    length: int = 32
    charset: str = "alnum"
    generate: bool = True


@dataclass(frozen=True)
class Plan:
    recipe: str
    stack: str
    domain: str
    compose_files: tuple[str, ...]
    config: dict[str, Any]  # the merged compose from `docker stack config`
    images: dict[str, str]  # service -> image
    secrets: tuple[SecretPlan, ...]
    configs: dict[str, str]  # compose key -> swarm config name
    volumes: tuple[str, ...]
    web: tuple[str, int] | None  # (service, container port) that serves HTTP
    backup: dict[str, dict[str, str]]  # service -> its backupbot.* labels
    version_label: str | None  # coop-cloud.<stack>.version, on the app service or another
    version_service: str | None  # the service that carries it (app first)
    timeout: int | None  # coop-cloud.<stack>.timeout
    warnings: tuple[str, ...] = field(default=())
    policy: tuple[Violation, ...] = field(default=())  # what the deploy policy refuses

    @property
    def stamp_service(self) -> str:
        """Where abra's deploy stamps go: the app service, else the version label's."""
        if "app" in self.images or not self.images:
            return "app"
        return self.version_service or next(iter(self.images))

    def describe(self) -> str:
        """The plan as a maintainer reads it."""
        lines = [
            f"recipe {self.recipe}: stack {self.stack}, domain {self.domain}",
            f"compose files: {', '.join(self.compose_files)}",
            "version label: "
            + (
                f"{self.version_label} (on service {self.version_service})"
                if self.version_service
                else f"(none: no service has coop-cloud.{self.stack}.version;"
                f" looked at {', '.join(self.images) or 'no service'})"
            ),
            "services:",
            *(f"  {svc}: {img}" for svc, img in self.images.items()),
            "secrets:",
            *(
                f"  {s.key}: {s.name} (${s.version_var}, "
                + (f"length={s.length} charset={s.charset})" if s.generate else "generate=false)")
                for s in self.secrets
            ),
            "configs:",
            *(f"  {key}: {name}" for key, name in self.configs.items()),
            f"volumes: {', '.join(self.volumes) or '(none)'}",
            "web: " + (f"service {self.web[0]}, port {self.web[1]}" if self.web else "(none)"),
            "backup labels:",
            *(
                f"  {svc}: {k}={v}"
                for svc, labels in self.backup.items()
                for k, v in labels.items()
            ),
        ]
        lines += [f"warning: {w}" for w in self.warnings]
        lines.append(
            "deploy policy: "
            + ("nothing to refuse" if not self.policy else "refuses, unless ALLOW names the rule:")
        )
        lines += [f"  {v.line()}" for v in self.policy]
        return "\n".join(lines)


def compose_files(env: Mapping[str, str]) -> tuple[str, ...]:
    """The compose files of an app's env (``COMPOSE_FILE``, else compose.yml)."""
    return tuple(f for f in env.get("COMPOSE_FILE", "compose.yml").split(":") if f)


def make_plan(
    recipe: str,
    checkout: Path,
    env: Mapping[str, str],
    sample: EnvFile,
    resolved: Resolved,
    config: dict[str, Any],
    *,
    publishes_ports: bool = True,
) -> Plan:
    """Plan the deploy of ``checkout`` with ``env`` from its ``resolved`` compose files and
    ``config``, what ``docker stack config`` merged of them; every defect raises one
    PlanError. ``publishes_ports``: whether the platform publishes the recipe's own ports
    (for the deploy policy's low-port rule)."""
    stack, domain = env["STACK_NAME"], env["DOMAIN"]
    problems: list[str] = []
    warnings = [
        f"variable {var} is not set ({', '.join(where)}); it becomes blank"
        for var, where in resolved.unset.items()
    ]
    services: dict[str, Any] = config.get("services") or {}
    images = {svc: spec.get("image") or "" for svc, spec in services.items()}
    problems += [f"service {svc} has no image" for svc, image in images.items() if not image]
    secrets = _secrets(config, resolved.documents, sample, env, problems)
    configs = _configs(config, checkout, problems, warnings)
    problems += _too_long(stack, services, secrets, configs)
    if problems:
        raise PlanError("\n".join(problems))
    labels = {svc: (spec.get("deploy") or {}).get("labels") or {} for svc, spec in services.items()}
    app_labels = labels.get("app", {})
    timeout = app_labels.get(f"coop-cloud.{stack}.timeout")
    version_key = f"coop-cloud.{stack}.version"
    carriers = sorted((svc != "app", svc) for svc, lbl in labels.items() if version_key in lbl)
    carrier = carriers[0][1] if carriers else None
    return Plan(
        recipe=recipe,
        stack=stack,
        domain=domain,
        compose_files=resolved.files,
        config=config,
        images=images,
        secrets=secrets,
        configs=configs,
        volumes=tuple(config.get("volumes") or ()),
        web=_web_service(labels, warnings),
        backup={
            svc: {k: v for k, v in lbl.items() if k.startswith("backupbot.")}
            for svc, lbl in labels.items()
            if any(k.startswith("backupbot.") for k in lbl)
        },
        version_label=labels[carrier].get(version_key) if carrier else None,
        version_service=carrier,
        policy=tuple(
            policy.check(config, stack=stack, domain=domain, publishes_ports=publishes_ports)
            + list(resolved.outside)
        ),
        timeout=int(timeout) if timeout and str(timeout).isdigit() else None,
        warnings=tuple(warnings),
    )


@dataclass(frozen=True)
class Resolved:
    """The compose files of an app, read and resolved by cc-ci for the CLI to merge."""

    files: tuple[str, ...]  # as COMPOSE_FILE names them, in order
    documents: dict[str, Any]  # each file as written (scalars as text)
    texts: tuple[tuple[str, str], ...]  # (file, interpolated text, paths absolute)
    unset: dict[str, list[str]]  # variables used but set nowhere -> the files using them
    outside: tuple[Violation, ...]  # files the recipe names from outside its checkout


def resolve(
    checkout: Path, files: Sequence[str], env: Mapping[str, str], allowed: Collection[str] = ()
) -> Resolved:
    """Read ``files`` of ``checkout`` (each inside it, at most ``MAX_COMPOSE_BYTES``),
    interpolate them with ``env`` as the CLI would, inline their ``env_file``s, resolve bare
    ``environment`` keys from ``env`` and make their paths absolute: what
    ``docker stack config --skip-interpolation`` merges without reading a host file or an
    environment variable. A file from outside the checkout is named (``outside``), and
    never read unless ``allowed`` holds ``outside-file``."""
    documents: dict[str, Any] = {}
    texts: list[tuple[str, str]] = []
    unset: dict[str, list[str]] = {}
    outside: list[Violation] = []
    workdir = (checkout / files[0]).parent if files else checkout
    for name in files:
        path = policy.inside(checkout, name, "compose file")
        if not path.is_file():
            raise PlanError(f"COMPOSE_FILE names {name}, which does not exist in the recipe")
        size = path.stat().st_size
        if size > compose.MAX_COMPOSE_BYTES:
            raise PlanError(
                f"{name}: {size} bytes, over the {compose.MAX_COMPOSE_BYTES >> 20} MiB"
                " a compose file may have"
            )
        documents[name] = compose.load(utf8_text(path), name)
        done = compose.interpolate(documents[name], env, name)
        for var, where in done.unset.items():
            unset.setdefault(var, []).extend(w for w in where if w not in unset[var])
        document = _absolute_paths(done.document, workdir, name)
        outside += policy.escapes(checkout, document, {name: document})
        read_outside = "outside-file" in allowed
        texts.append(
            (name, compose.dump(_inline_environment(document, env, checkout, read_outside)))
        )
    return Resolved(tuple(files), documents, tuple(texts), unset, tuple(outside))


def _absolute(workdir: Path, path: str) -> str:
    """``path`` as the CLI's loader makes it absolute (``~`` is the operator's home)."""
    if path.startswith("~"):
        return str(Path(path).expanduser())
    return str((workdir / path).absolute()) if not path.startswith("/") else path


def _absolute_paths(document: Any, workdir: Path, name: str) -> Any:
    """``document`` with the relative paths of its files (configs, secrets, env files) and
    binds made absolute, as the CLI's loader makes them."""
    if not isinstance(document, dict):
        raise PlanError(f"{name}: not a compose file (a mapping at the top)")
    for section in ("configs", "secrets"):
        for spec in (document.get(section) or {}).values():
            if isinstance(spec, dict) and isinstance(spec.get("file"), str):
                spec["file"] = _absolute(workdir, spec["file"])
    for spec in (document.get("services") or {}).values():
        if not isinstance(spec, dict):
            continue
        env_files = spec.get("env_file")
        if env_files:
            listed = [env_files] if isinstance(env_files, str) else env_files
            spec["env_file"] = [_absolute(workdir, str(f)) for f in listed]
        for number, mount in enumerate(spec.get("volumes") or ()):
            if isinstance(mount, str):
                source, sep, rest = mount.partition(":")
                if sep and source.startswith((".", "~")):
                    spec["volumes"][number] = f"{_absolute(workdir, source)}:{rest}"
            elif (
                isinstance(mount, dict)
                and mount.get("type") == "bind"
                and isinstance(mount.get("source"), str)
            ):
                mount["source"] = _absolute(workdir, mount["source"])
    return document


def _inline_environment(
    document: dict[str, Any], env: Mapping[str, str], checkout: Path, read_outside: bool
) -> dict[str, Any]:
    """``document`` with nothing left for the CLI to read from the host or from its own
    environment: each service's ``env_file``s inlined into its ``environment`` (which wins),
    bare keys taken from ``env`` (an unset one dropped: the CLI would take it from its own
    environment at deploy, and nothing of cc-ci's is the app's). An env file
    from outside ``checkout`` is read only when ``read_outside``."""
    root = checkout.resolve()
    for service, spec in (document.get("services") or {}).items():
        if not isinstance(spec, dict):
            continue
        environment: dict[str, Any] = {}
        for env_file in spec.pop("env_file", None) or ():
            path = Path(env_file)
            if not policy.stays_inside(path, root) and not read_outside:
                continue  # the policy names it; never read
            shown = path.relative_to(checkout) if path.is_relative_to(checkout) else path.name
            try:
                text = path.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                raise PlanError(
                    f"service {service}: env_file {shown}: {type(exc).__name__}"
                ) from None
            environment.update(compose.env_file_lines(text, str(shown)))
        given = spec.get("environment") or {}
        if isinstance(given, list):
            given = {
                k: (v if sep else None) for k, sep, v in (str(i).partition("=") for i in given)
            }
        environment.update(given)
        if environment or "environment" in spec:
            spec["environment"] = {
                key: (env[key] if compose.is_null(value) else value)
                for key, value in environment.items()
                if not compose.is_null(value) or key in env
            }
    return document


def _used(config: Mapping[str, Any], section: str) -> dict[str, list[str]]:
    """Which services use each secret or config: ``{key: [service, ...]}``."""
    used: dict[str, list[str]] = {}
    for svc, spec in (config.get("services") or {}).items():
        for ref in spec.get(section) or ():
            used.setdefault(ref["source"] if isinstance(ref, dict) else ref, []).append(svc)
    return used


def _secrets(
    config: Mapping[str, Any],
    documents: Mapping[str, Any],
    sample: EnvFile,
    env: Mapping[str, str],
    problems: list[str],
) -> tuple[SecretPlan, ...]:
    defined: dict[str, Any] = config.get("secrets") or {}
    problems += [
        f"service {', '.join(svcs)} uses secret {key}, which is not defined"
        for key, svcs in _used(config, "secrets").items()
        if key not in defined
    ]
    planned = []
    for key, spec in defined.items():
        if not spec.get("external"):
            continue
        name = spec.get("name") or key
        var = _name_variable(documents, "secrets", key) or f"SECRET_{key.upper()}_VERSION"
        if not env.get(var):
            hint = "" if var.endswith("_VERSION") else f" (the convention is {var}_VERSION)"
            problems.append(f"secret {key}: its name {name!r} needs ${var}, which is not set{hint}")
            continue
        mods = sample.modifiers.get(var, {})
        length = int(mods["length"]) if mods.get("length", "").isdigit() else 32
        if "length" in mods and not mods["length"].isdigit():
            problems.append(f"{var}: length={mods['length']!r} is not a number")
        if length > MAX_SECRET_BYTES:
            problems.append(
                f"{var}: length={length} is over the {MAX_SECRET_BYTES // 1024} KiB swarm allows"
            )
            continue
        planned.append(
            SecretPlan(
                key=key,
                name=name,
                version_var=var,
                length=length,
                charset=mods.get("charset", "alnum"),
                generate=mods.get("generate", "true").lower() != "false",
            )
        )
    return tuple(planned)


def _name_variable(documents: Mapping[str, Any], section: str, key: str) -> str | None:
    """The variable in the raw ``name:`` of ``section.key`` that carries its version."""
    for data in documents.values():
        name = ((data.get(section) or {}).get(key) or {}).get("name")
        if isinstance(name, str):
            found = [m[1] or m[3] for m in _VAR.finditer(name) if (m[1] or m[3]) != "STACK_NAME"]
            if found:
                return str(found[-1])
    return None


def _configs(
    config: Mapping[str, Any], checkout: Path, problems: list[str], warnings: list[str]
) -> dict[str, str]:
    defined: dict[str, Any] = config.get("configs") or {}
    used = _used(config, "configs")
    problems += [
        f"service {', '.join(svcs)} uses config {key}, which is not defined"
        for key, svcs in used.items()
        if key not in defined
    ]
    configs = {}
    for key, spec in defined.items():
        name = spec.get("name") or key
        if key not in used:
            warnings.append(f"config {key} is defined but no service uses it")
        if name.endswith("_"):
            problems.append(f"config {key}: its name {name!r} lacks a version (set it in abra.sh)")
        file = checkout / spec["file"] if spec.get("file") else None
        # A file from outside the checkout is the policy's to name: never even looked at.
        if file and policy.stays_inside(file, checkout.resolve()) and not file.is_file():
            rel = file.resolve().relative_to(checkout.resolve())
            problems.append(f"config {key}: file {rel} does not exist in the recipe")
        configs[key] = name
    return configs


# Swarm's limits: a service name is a DNS label (63), secret and config names 64.
_NAME_LIMITS = {"service": 63, "secret": 64, "config": 64}


def _too_long(
    stack: str,
    services: Mapping[str, Any],
    secrets: tuple[SecretPlan, ...],
    configs: Mapping[str, str],
) -> list[str]:
    names = [("service", f"{stack}_{svc}") for svc in services]
    names += [("secret", s.name) for s in secrets] + [("config", n) for n in configs.values()]
    return [
        f"{kind} name {name} is {len(name)} characters, over swarm's {_NAME_LIMITS[kind]}"
        f" (the stack {stack} takes {len(stack) + 1}: shorten the {kind}'s own part)"
        for kind, name in names
        if len(name) > _NAME_LIMITS[kind]
    ]


def _web_service(
    labels: Mapping[str, Mapping[str, str]], warnings: list[str]
) -> tuple[str, int] | None:
    candidates = []
    for svc, lbl in labels.items():
        if str(lbl.get("traefik.enable", "")).lower() != "true":
            continue
        for key, value in lbl.items():
            if _PORT_LABEL.match(key):
                if str(value).isdigit():
                    candidates.append((svc, int(value)))
                else:
                    warnings.append(f"service {svc}: traefik port {value!r} is not a number")
    candidates.sort(key=lambda c: c[0] != "app")
    return candidates[0] if candidates else None
