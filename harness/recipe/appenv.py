"""An app's env, as abra builds it: `.env.sample`, the app's identity, abra.sh's exports.

``.env.sample`` is read as abra reads env files (godotenv): ``KEY=value`` lines, ``export``
allowed, ``#`` comments; single-quoted values are literal; double-quoted values take the
escapes ``\\n`` ``\\r`` ``\\"`` ``\\\\`` and, like unquoted ones, expansion: ``$VAR``,
``${VAR}``, ``${VAR:-default}`` (unset or empty), ``${VAR-default}`` (unset), ``\\$`` for
a literal ``$``. A line sees the lines above it (``COMPOSE_FILE="$COMPOSE_FILE:x.yml"``),
then the app's identity (``DOMAIN``, ``STACK_NAME``, …) — never cc-ci's own environment.
A trailing comment on a ``SECRET_*_VERSION`` line carries modifiers such as
``# length=32 charset=hex generate=false``. ``abra.sh`` is read, not executed: like abra,
cc-ci takes its ``export NAME=value`` lines (config versions) — a recipe under test is
untrusted code, and its functions are abra's business. An export of a variable cc-ci owns
(the app's identity: ``TYPE``, ``RECIPE``, ``DOMAIN``, ``STACK_NAME``, …) is refused by name.

The env is data: it reaches compose interpolation through ``harness.recipe.compose``, and
is never the environment of a process. It is bounded all the same: an env file of more
than ``MAX_LINES`` lines, or a value that expands past ``MAX_VALUE`` bytes, is refused
naming the variable.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from harness.errors import PlanError
from harness.recipe.policy import inside

__all__ = [
    "MAX_LINES",
    "MAX_VALUE",
    "OWNED",
    "EnvFile",
    "abra_exports",
    "app_env",
    "expand",
    "identity",
    "parse_env",
    "utf8_text",
]

MAX_LINES = 1000
MAX_VALUE = 64 * 1024
# The app's identity, which cc-ci sets and a recipe's abra.sh may not.
OWNED = ("TYPE", "RECIPE", "DOMAIN", "STACK_NAME", "LETS_ENCRYPT_ENV")

_LINE = re.compile(r"^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*)$")
_REF = re.compile(
    r"\\\$|\$(?:\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?-)([^}]*))?\}|([A-Za-z_][A-Za-z0-9_]*))"
)
_ESCAPES = {"n": "\n", "r": "\r", '"': '"', "\\": "\\", "$": "\\$"}


@dataclass(frozen=True)
class EnvFile:
    values: dict[str, str]
    modifiers: dict[str, dict[str, str]] = field(default_factory=dict)


def parse_env(
    text: str,
    *,
    pinned: Mapping[str, str] | None = None,
    outer: Mapping[str, str] | None = None,
    name: str = ".env.sample",
) -> EnvFile:
    """The values and modifiers of an env file. ``pinned`` values replace the file's own
    where it sets them (the app's ``DOMAIN``), as an app's env file has them, and the
    lines below see them; ``outer`` is looked up after the file's own values."""
    pinned, outer = pinned or {}, outer or {}
    values: dict[str, str] = {}
    modifiers: dict[str, dict[str, str]] = {}
    lines = text.splitlines()
    if len(lines) > MAX_LINES:
        raise PlanError(f"{name}: {len(lines)} lines, over the {MAX_LINES} an env file may have")
    for number, raw in enumerate(lines, 1):
        match = _LINE.match(raw)
        if not match or raw.lstrip().startswith("#"):
            continue
        key, rest = match[1], match[2].strip()
        scope = {**outer, **values}
        if rest[:1] in ("'", '"'):
            end = _closing(rest)
            if end is None:
                raise PlanError(f"{name}:{number}: {key}: unterminated quoted value")
            value, comment = rest[1:end], rest[end + 1 :]
            if rest[0] == '"':
                value = expand(re.sub(r"\\(.)", lambda m: _ESCAPES.get(m[1], m[0]), value), scope)
        else:
            value, _, comment = (rest + " ").partition(" #")
            value = expand(value.strip(), scope)
        if len(value) > MAX_VALUE:
            raise PlanError(
                f"{name}:{number}: {key} expands to {len(value)} bytes, over the"
                f" {MAX_VALUE // 1024} KiB a value may have"
            )
        values[key] = pinned.get(key, value)
        pairs = dict(
            token.split("=", 1) for token in comment.strip().lstrip("#").split() if "=" in token
        )
        if pairs:
            modifiers[key] = pairs
    return EnvFile(values, modifiers)


def _closing(rest: str) -> int | None:
    """The index of the quote that closes ``rest``'s opening one (not a ``\\``-escaped one)."""
    quote, at = rest[0], 1
    while at < len(rest):
        if rest[at] == "\\" and quote == '"':
            at += 2
            continue
        if rest[at] == quote:
            return at
        at += 1
    return None


def expand(value: str, env: Mapping[str, str]) -> str:
    """``$NAME``, ``${NAME}``, ``${NAME:-default}``, ``${NAME-default}`` in ``value`` from
    ``env`` (e.g. ``$COMPOSE_FILE:compose.x.yml``); ``\\$`` is a literal ``$``."""

    def one(match: re.Match[str]) -> str:
        if match[0] == "\\$":
            return "$"
        name = match[1] or match[4]
        if match[2] == ":-":
            return env.get(name) or expand(match[3], env)
        if match[2] == "-":
            return env[name] if name in env else expand(match[3], env)
        return env.get(name, "")

    return _REF.sub(one, value)


def abra_exports(path: Path) -> dict[str, str]:
    """The ``export NAME=value`` lines of an abra.sh (missing file: none); an export of a
    variable cc-ci owns (``OWNED``) is refused by name."""
    if not path.is_file():
        return {}
    text = path.read_text(errors="replace")
    exports = [line for line in text.splitlines() if line.lstrip().startswith("export ")]
    values = parse_env("\n".join(exports), name="abra.sh").values
    for owned in OWNED:
        if owned in values:
            raise PlanError(
                f"abra.sh: export {owned}: the app's {owned} is cc-ci's to set, never the"
                " recipe's (abra.sh may export config and secret versions)"
            )
    return values


def identity(name: str, checkout: Path) -> tuple[str, str]:
    """The recipe's identity — ``RECIPE=`` or ``TYPE=`` of its .env.sample, else ``name``
    (its directory's) — made fit for swarm names (lowercase letters, digits, ``-``), and
    where it came from, as ``plan`` shows it."""
    values: dict[str, str] = {}
    sample = inside(checkout, ".env.sample", "env file")
    if sample.is_file():
        try:
            values = parse_env(utf8_text(sample)).values
        except PlanError:
            values = {}  # the plan names the defect
    raw, source = next(
        ((values[k], f"{k} in .env.sample") for k in ("RECIPE", "TYPE") if values.get(k)),
        (name, "the directory name"),
    )
    clean = re.sub(r"[^a-z0-9-]+", "-", raw.lower()).strip("-")[:40] or "recipe"
    return clean, source if clean == raw else f"{source} {raw!r}, made fit for swarm names"


def app_env(
    recipe: str, checkout: Path, domain: str, stack: str, extra: Mapping[str, str]
) -> tuple[dict[str, str], EnvFile]:
    """The env an app is deployed with, and the parsed .env.sample (for its modifiers).
    ``recipe`` is the recipe's identity (``identity``): its ``TYPE``."""
    sample_path = inside(checkout, ".env.sample", "env file")
    if not sample_path.is_file():
        raise PlanError(
            f"{recipe}: no .env.sample in the recipe (abra builds every app's env from it)"
        )
    own = {"TYPE": recipe, "DOMAIN": domain, "STACK_NAME": stack, "LETS_ENCRYPT_ENV": ""}
    sample = parse_env(utf8_text(sample_path), pinned=own, outer=own)
    env = {"TYPE": recipe, **sample.values, **own}  # TYPE first, as abra writes it
    env.setdefault("COMPOSE_FILE", "compose.yml")
    for name, value in extra.items():
        env[name] = expand(value, env)
    env.update(abra_exports(inside(checkout, "abra.sh", "abra.sh")))
    return env, sample


def utf8_text(path: Path) -> str:
    """The text of ``path``; not UTF-8 is one PlanError naming the byte."""
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        bad = exc.object[exc.start : exc.start + 4]
        raise PlanError(f"{path.name}: not UTF-8 text at byte {exc.start}: {bad!r}") from exc
