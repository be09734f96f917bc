"""A recipe's compose files as the docker CLI's loader reads them, with cc-ci doing the
interpolation: the app's env is data here, never the environment of a process.

``docker stack config`` and ``docker stack deploy`` interpolate ``${VAR}`` from their own
process environment. Handing them a recipe's env that way would let ``.env.sample`` set
``PATH`` (or ``LD_PRELOAD``) of a process cc-ci starts. So cc-ci interpolates the files
itself, exactly as the CLI does (``cli/compose/template`` and ``cli/compose/loader`` of
docker/cli): ``$VAR``, ``${VAR}``, ``${VAR:-default}`` (unset or empty), ``${VAR-default}``
(unset), ``${VAR:?message}`` / ``${VAR?message}`` (required), ``$$`` for a literal ``$``;
defaults are not themselves interpolated; an unset variable becomes blank; a value that
changed is cast where the CLI casts it (ports, replicas, ``external``, …). It also does
what the loader would otherwise take from the process environment or the host: it inlines
each service's ``env_file`` (read as ``docker`` reads env files: ``KEY=value`` verbatim, a
bare ``KEY`` from the app's env) and resolves bare ``environment`` keys from the app's env.
The files are then merged by the CLI itself, ``docker stack config --skip-interpolation``.

Each scalar keeps the style it was written in (plain or quoted), so the CLI's YAML parser
types the written-back files as it would have typed the originals.

Pure: text in, documents and text out; the caller reads files and runs the CLI.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml

from harness.errors import PlanError

__all__ = [
    "MAX_COMPOSE_BYTES",
    "MAX_VALUES",
    "Interpolated",
    "Plain",
    "dump",
    "env_file_lines",
    "interpolate",
    "is_null",
    "load",
]

MAX_COMPOSE_BYTES = 4 * 1024 * 1024  # a recipe's compose file is kilobytes; past this, refused
MAX_VALUES = (
    100_000  # values in one file, aliases counted each time they are used (a real one: hundreds)
)

# docker/cli cli/compose/template: the delimiter, then an escape, a name, a braced
# substitution, or nothing valid; names are matched without regard to case.
_SUBST = r"[_a-z][_a-z0-9]*(?::?[-?][^}]*)?"
_PATTERN = re.compile(
    rf"\$(?i:(?P<escaped>\$)|(?P<named>{_SUBST})|{{(?P<braced>{_SUBST})}}|(?P<invalid>))"
)


_NULL = "tag:yaml.org,2002:null"
_RESOLVER = yaml.resolver.Resolver()


def _implicit(text: str) -> str:
    """The tag YAML (1.1, as PyYAML reads it) gives ``text`` written plain."""
    tag: str = _RESOLVER.resolve(yaml.ScalarNode, text, (True, False))  # type: ignore[no-untyped-call]
    return tag


class Plain(str):
    """A scalar written plain (unquoted): its type is the YAML parser's to infer."""

    __slots__ = ()


def is_null(value: Any) -> bool:
    """Whether a value of a loaded document is YAML's null (``key:``, ``~``, ``null``)."""
    return value is None or (isinstance(value, Plain) and _implicit(value) == _NULL)


# -- reading and writing --------------------------------------------------------------


class _Loader(yaml.SafeLoader):
    """Scalars as their text (``Plain`` when unquoted), within a budget of nodes and time."""

    budget: int
    ends: float

    def compose_node(self, parent: Any, index: Any) -> Any:
        self.budget -= 1
        if self.budget < 0:
            raise PlanError(f"more than {MAX_VALUES} values")
        if time.monotonic() > self.ends:
            raise PlanError("took too long to read")
        return super().compose_node(parent, index)

    def construct_scalar(self, node: Any) -> Any:
        text = super().construct_scalar(node)
        plain = node.style is None and _implicit(text) == node.tag
        return Plain(text) if plain else text  # not quoted, nor tagged ``!!str``


def _scalar(loader: _Loader, node: yaml.ScalarNode) -> Any:
    return loader.construct_scalar(node)


for _tag in (
    "tag:yaml.org,2002:null",
    "tag:yaml.org,2002:bool",
    "tag:yaml.org,2002:int",
    "tag:yaml.org,2002:float",
    "tag:yaml.org,2002:timestamp",
    "tag:yaml.org,2002:str",
):
    _Loader.add_constructor(_tag, _scalar)


def load(text: str, name: str, *, seconds: float = 30.0) -> Any:
    """The document of compose file ``name`` as written (scalars as text); bad YAML, too
    many values (an alias bomb) or a read past ``seconds`` is one PlanError naming it.
    (The caller bounds the text: ``MAX_COMPOSE_BYTES``.)"""
    loader = _Loader(text)
    loader.budget, loader.ends = MAX_VALUES, time.monotonic() + seconds
    try:
        return loader.get_single_data() or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{name}:{mark.line + 1}" if mark else name
        raise PlanError(f"{where}: bad YAML: {getattr(exc, 'problem', exc)}") from exc
    except PlanError as exc:
        raise PlanError(f"{name}: {exc}") from None
    finally:
        loader.dispose()


class _Dumper(yaml.SafeDumper):
    """Plain scalars plain (their text, for the reader to type), every other string quoted."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def _plain(dumper: _Dumper, value: Plain) -> yaml.ScalarNode:
    return dumper.represent_scalar(_implicit(value), str(value))


def _quoted(dumper: _Dumper, value: str) -> yaml.ScalarNode:
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style='"')


_Dumper.add_representer(Plain, _plain)
_Dumper.add_representer(str, _quoted)


def dump(document: Any) -> str:
    """``document`` as YAML the CLI reads back value for value."""
    return yaml.dump(document, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=1 << 20)


# -- interpolation --------------------------------------------------------------------


def substitute(template: str, env: Mapping[str, str], where: str) -> tuple[str, set[str]]:
    """``template`` with its variables from ``env``, and the names it used that ``env``
    lacks (blank, as the CLI makes them); a malformed or required-but-missing variable is
    a PlanError naming ``where``."""
    unset: set[str] = set()

    def one(match: re.Match[str]) -> str:
        if match["escaped"]:
            return "$"
        body = match["named"] or match["braced"]
        if not body:
            raise PlanError(
                f"invalid interpolation format for {where}: {template!r}; you may need to"
                " escape any $ with another $"
            )
        for sep in (":-", "-", ":?", "?"):
            if sep in body:
                name, rest = body.split(sep, 1)
                break
        else:
            name, sep, rest = body, "", ""
        value = env.get(name)
        if sep == ":-":
            return value if value else rest
        if sep == "-":
            return rest if value is None else value
        if sep in (":?", "?") and (value is None or (sep == ":?" and not value)):
            raise PlanError(f"{where}: required variable {name} is missing a value: {rest}")
        if value is None and not sep:
            unset.add(name)
        return value or ""

    return _PATTERN.sub(one, template), unset


def _to_int(text: str) -> Any:
    return int(text)


def _to_float(text: str) -> Any:
    return float(text)


def _to_bool(text: str) -> Any:
    lowered = text.lower()
    if lowered in ("y", "yes", "true", "on"):
        return True
    if lowered in ("n", "no", "false", "off"):
        return False
    raise ValueError(f"invalid boolean: {text}")


# docker/cli cli/compose/loader/interpolate.go: where a value that interpolation changed
# is cast from a string ("*" any key, "[]" any list item).
_CASTS: tuple[tuple[str, Callable[[str], Any]], ...] = tuple(
    (pattern, cast)
    for cast, patterns in (
        (
            _to_int,
            (
                "services.*.configs.[].mode",
                "services.*.secrets.[].mode",
                "services.*.healthcheck.retries",
                "services.*.deploy.replicas",
                "services.*.deploy.update_config.parallelism",
                "services.*.deploy.rollback_config.parallelism",
                "services.*.deploy.restart_policy.max_attempts",
                "services.*.deploy.placement.max_replicas_per_node",
                "services.*.ports.[].target",
                "services.*.ports.[].published",
                "services.*.ulimits.*",
                "services.*.ulimits.*.hard",
                "services.*.ulimits.*.soft",
            ),
        ),
        (
            _to_float,
            (
                "services.*.deploy.update_config.max_failure_ratio",
                "services.*.deploy.rollback_config.max_failure_ratio",
            ),
        ),
        (
            _to_bool,
            (
                "services.*.healthcheck.disable",
                "services.*.privileged",
                "services.*.read_only",
                "services.*.stdin_open",
                "services.*.tty",
                "services.*.volumes.[].read_only",
                "services.*.volumes.[].volume.nocopy",
                "networks.*.external",
                "networks.*.internal",
                "networks.*.attachable",
                "volumes.*.external",
                "secrets.*.external",
                "configs.*.external",
            ),
        ),
    )
    for pattern in patterns
)


def _cast_for(path: tuple[str, ...]) -> Callable[[str], Any] | None:
    for pattern, cast in _CASTS:
        parts = pattern.split(".")
        if len(parts) == len(path) and all(p in ("*", k) for p, k in zip(parts, path, strict=True)):
            return cast
    return None


@dataclass
class Interpolated:
    document: Any
    unset: dict[str, list[str]] = field(default_factory=dict)  # variable -> files using it


def interpolate(document: Any, env: Mapping[str, str], name: str) -> Interpolated:
    """``document`` (of compose file ``name``) interpolated with ``env`` as the CLI does."""
    result = Interpolated(None)
    budget = [MAX_VALUES]

    def walk(node: Any, path: tuple[str, ...]) -> Any:
        budget[0] -= 1
        if budget[0] < 0:
            raise PlanError(f"{name}: more than {MAX_VALUES} values (YAML aliases?)")
        if isinstance(node, dict):
            return {key: walk(value, (*path, str(key))) for key, value in node.items()}
        if isinstance(node, list):
            return [walk(value, (*path, "[]")) for value in node]
        if not isinstance(node, str) or "$" not in node:
            return node
        where = ".".join(path)
        value, unset = substitute(node, env, where)
        for var in unset:
            files = result.unset.setdefault(var, [])
            if name not in files:
                files.append(name)
        if value == node:
            return node
        cast = _cast_for(path)
        if cast is None:
            return str(value)  # a string now, quoted when written back
        try:
            return cast(value)
        except ValueError as exc:
            raise PlanError(f"{name}: {where}: {value!r} failed to cast to expected type") from exc

    result.document = walk(document, ())
    return result


# -- what the loader would read from the host ---------------------------------------------


def env_file_lines(text: str, name: str) -> Iterator[tuple[str, str | None]]:
    """``(KEY, value)`` of an env file as ``docker`` reads it (``opts.ParseEnvFile``): one
    ``KEY=value`` a line, the value verbatim; ``#`` lines and blank lines skipped; a bare
    ``KEY`` gives ``(KEY, None)``, for the caller to look up. A malformed line is named by
    file and number, never quoted (the file may hold secrets)."""
    for number, raw in enumerate(text.lstrip("\ufeff").splitlines(), 1):
        line = raw.lstrip()
        if not line or line.startswith("#"):
            continue
        key, has_value, value = line.partition("=")
        key = key.lstrip()
        if not key or any(c.isspace() for c in key):
            raise PlanError(f"env_file {name}:{number}: not a KEY=value line")
        yield key, value if has_value else None
