"""cc-ci's options: one help text per option and its ini twin, resolved once, frozen.

Precedence: command line, then environment (``CCCI_<NAME>``), then ini, then default —
resolved by ``harness.config``, the one place every setting of cc-ci is read.
Resolved on first use (``of(config)``): a session that names no recipe dir never does,
and imports nothing else of cc-ci.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from harness.config import (
    DEFAULT_JANITOR_AGE,
    DEFAULT_RUN_DEADLINE,
    FACES,
    SETTINGS,
    Value,
)
from harness.config import resolve as resolve_settings

__all__ = ["OPTIONS", "Settings", "add_options", "ini_values", "of"]


# name -> help of each option of a recipe's run: --<name>, ccci_<name> in ini, CCCI_<NAME>.
OPTIONS = {name: SETTINGS[name].help for name in FACES["run"]}


@dataclass(frozen=True)
class Settings:
    catalogue: str
    ref: str | None
    tiers: tuple[str, ...]
    runs_dir: Path
    upgrade_from: str | None = None
    pull: str = "missing"
    run_deadline: float = DEFAULT_RUN_DEADLINE
    janitor_age: float = DEFAULT_JANITOR_AGE


_SETTINGS = pytest.StashKey[Settings]()


def of(config: pytest.Config) -> Settings:
    """The session's settings, resolved once."""
    if _SETTINGS not in config.stash:
        config.stash[_SETTINGS] = resolve(config)
    return config.stash[_SETTINGS]


def add_options(parser: pytest.Parser) -> None:
    group = parser.getgroup("cc-ci", "Co-op Cloud recipe lifecycle")
    for name, help_text in OPTIONS.items():
        group.addoption(f"--{name}", dest=f"ccci_{name.replace('-', '_')}", help=help_text)
        parser.addini(f"ccci_{name.replace('-', '_')}", help_text)


def _values(config: pytest.Config) -> dict[str, Value]:
    """The session's options, each with where it came from (``harness.config``)."""
    keys = {name: f"ccci_{name.replace('-', '_')}" for name in FACES["run"]}
    flags = {name: config.getoption(key) for name, key in keys.items()}
    ini = {key: str(config.getini(key) or "") for key in keys.values()}
    return resolve_settings(FACES["run"], flags, ini)


def resolve(config: pytest.Config) -> Settings:
    from harness.recipe.meta_keys import TIERS
    from harness.swarm import PULL_POLICIES

    values = _values(config)
    tiers_raw = values["tiers"]
    tiers = tuple(t.strip() for t in (tiers_raw.value or ",".join(TIERS)).split(",") if t.strip())
    unknown = [t for t in tiers if t not in TIERS]
    if unknown:
        raise pytest.UsageError(
            f"{tiers_raw.source}: unknown tier(s) {', '.join(unknown)};"
            f" tiers are {', '.join(TIERS)}"
        )
    pull = values["pull"]
    if pull.value is not None and pull.value not in PULL_POLICIES:
        raise pytest.UsageError(
            f"{pull.source}: {pull.value!r} is not a pull policy ({', '.join(PULL_POLICIES)})"
        )
    runs_dir = values["runs-dir"].value
    return Settings(
        catalogue=str(values["catalogue"].value),
        ref=values["ref"].value,
        tiers=tiers,
        runs_dir=Path(runs_dir) if runs_dir else _default_runs_dir(config),
        upgrade_from=values["upgrade-from"].value,
        pull=pull.value or "missing",
        run_deadline=_seconds(values["run-deadline"]),
        janitor_age=_seconds(values["janitor-age"]),
    )


def _default_runs_dir(config: pytest.Config) -> Path:
    """``runs/`` beside the ini file pytest read, else in the working directory — never
    under pytest's guessed rootdir, which counts option values (``--catalogue ~/cat``) as
    paths and can land in their common ancestor."""
    base = config.inipath.parent if config.inipath else config.invocation_params.dir
    return Path(base) / "runs"


def _seconds(found: Value) -> float:
    try:
        value = float(found.value or "")
    except ValueError:
        value = -1.0
    if value < 0:
        raise pytest.UsageError(f"{found.source}: {found.value!r} is not a number of seconds")
    return value


def ini_values(root: Path) -> dict[str, str]:
    """The ``ccci_*`` keys of the ini file pytest would read in ``root`` (``pytest.ini``,
    ``.pytest.ini``, ``pyproject.toml``'s ``[tool.pytest.ini_options]``, ``tox.ini``'s
    ``[pytest]``, ``setup.cfg``'s ``[tool:pytest]``: the first that has a pytest section),
    for the commands that are not a pytest session (``cc-ci serve``)."""
    import tomllib

    import iniconfig

    for name, section in (
        ("pytest.ini", "pytest"),
        (".pytest.ini", "pytest"),
        ("pyproject.toml", None),
        ("tox.ini", "pytest"),
        ("setup.cfg", "tool:pytest"),
    ):
        path = root / name
        if not path.is_file():
            continue
        if section is None:
            table = tomllib.loads(path.read_text()).get("tool", {}).get("pytest", {})
            if "ini_options" not in table:
                continue
            found = {k: str(v) for k, v in table["ini_options"].items()}
        else:
            ini = iniconfig.IniConfig(str(path))
            if section not in ini:
                continue
            found = dict(ini[section].items())
        return {k: v for k, v in found.items() if k.startswith("ccci_")}
    return {}
