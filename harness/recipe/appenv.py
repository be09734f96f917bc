"""An app's env, as abra builds it: `.env.sample`, the app's identity, abra.sh's exports.

``.env.sample`` lines are ``KEY=value`` (quotes and ``export`` allowed, ``#`` comments);
a trailing comment on a ``SECRET_*_VERSION`` line carries modifiers such as
``# length=32 charset=hex generate=false``. ``abra.sh`` is read, not executed: like abra,
cc-ci takes its ``export NAME=value`` lines (config versions) — a recipe under test is
untrusted code, and its functions are abra's business.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from harness.errors import PlanError
from harness.recipe.policy import inside

__all__ = ["EnvFile", "abra_exports", "app_env", "expand", "parse_env"]

_LINE = re.compile(r"^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*)$")
_REF = re.compile(r"\$(?:\{([A-Za-z_][A-Za-z0-9_]*)\}|([A-Za-z_][A-Za-z0-9_]*))")


@dataclass(frozen=True)
class EnvFile:
    values: dict[str, str]
    modifiers: dict[str, dict[str, str]] = field(default_factory=dict)


def parse_env(text: str) -> EnvFile:
    values: dict[str, str] = {}
    modifiers: dict[str, dict[str, str]] = {}
    for raw in text.splitlines():
        match = _LINE.match(raw)
        if not match or raw.lstrip().startswith("#"):
            continue
        name, rest = match[1], match[2].strip()
        comment = ""
        if rest[:1] in ("'", '"') and rest.count(rest[0]) >= 2:
            end = rest.index(rest[0], 1)
            value, comment = rest[1:end], rest[end + 1 :]
        else:
            value, _, comment = (rest + " ").partition(" #")
            value = value.strip()
        values[name] = value
        pairs = dict(
            token.split("=", 1) for token in comment.strip().lstrip("#").split() if "=" in token
        )
        if pairs:
            modifiers[name] = pairs
    return EnvFile(values, modifiers)


def abra_exports(path: Path) -> dict[str, str]:
    """The ``export NAME=value`` lines of an abra.sh (missing file: none)."""
    if not path.is_file():
        return {}
    text = path.read_text(errors="replace")
    exports = (line for line in text.splitlines() if line.lstrip().startswith("export "))
    return parse_env("\n".join(exports)).values


def expand(value: str, env: Mapping[str, str]) -> str:
    """``$NAME`` / ``${NAME}`` in ``value`` from ``env`` (e.g. ``$COMPOSE_FILE:compose.x.yml``)."""
    return _REF.sub(lambda m: env.get(m[1] or m[2], ""), value)


def app_env(
    recipe: str, checkout: Path, domain: str, stack: str, extra: Mapping[str, str]
) -> tuple[dict[str, str], EnvFile]:
    """The env an app is deployed with, and the parsed .env.sample (for its modifiers)."""
    sample_path = inside(checkout, ".env.sample", "env file")
    if not sample_path.is_file():
        raise PlanError(
            f"{recipe}: no .env.sample in the recipe (abra builds every app's env from it)"
        )
    sample = parse_env(_text(sample_path))
    env = {"TYPE": recipe, **sample.values}
    env.update(TYPE=recipe, DOMAIN=domain, STACK_NAME=stack, LETS_ENCRYPT_ENV="")
    env.setdefault("COMPOSE_FILE", "compose.yml")
    for name, value in extra.items():
        env[name] = expand(value, env)
    env.update(abra_exports(inside(checkout, "abra.sh", "abra.sh")))
    return env, sample


def _text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        bad = exc.object[exc.start : exc.start + 4]
        raise PlanError(f"{path.name}: not UTF-8 text at byte {exc.start}: {bad!r}") from exc
