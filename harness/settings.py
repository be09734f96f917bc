"""cc-ci's options: one help text per option and its ini twin, resolved once, frozen.

Precedence: command line, then environment (``CCCI_<NAME>``), then ini, then default.
Resolved on first use (``of(config)``): a session that names no recipe dir never does,
and imports nothing else of cc-ci.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pytest

__all__ = ["OPTIONS", "Settings", "add_options", "ini_values", "of"]


def _default_catalogue() -> str:
    from harness.fetch import DEFAULT_CATALOGUE

    return DEFAULT_CATALOGUE


# name -> help; each is --<name> on the command line, ccci_<name> in ini, CCCI_<NAME> in env.
OPTIONS = {
    "catalogue": "where recipes are fetched from: a URL prefix or a directory of recipe repos"
    " (default: the demo catalogue built by scripts/setup)",
    "ref": "the candidate: a tag, branch, commit or pull/<n> (default: the default branch)",
    "tiers": "comma-separated tiers to run: install, upgrade, backup, restore, custom"
    " (default: every one the recipe dir's TIERS names)",
    "upgrade-from": "the release tag the upgrade tier starts from (default: the recipe dir's"
    " UPGRADE_FROM, else the release before the candidate)",
    "pull": "when images are pulled: missing (default), always (but images built here), never",
    "runs-dir": "where run dirs are written (default: runs/ beside the ini file, else in"
    " the working directory)",
    "run-deadline": "seconds a recipe's run may take, every wait included (default: 3600)",
    "janitor-age": "seconds after which resources of dead runs are swept (default: 60)",
}


@dataclass(frozen=True)
class Settings:
    catalogue: str
    ref: str | None
    tiers: tuple[str, ...]
    runs_dir: Path
    upgrade_from: str | None = None
    pull: str = "missing"
    run_deadline: float = 3600.0
    janitor_age: float = 60.0


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


def _value(config: pytest.Config, name: str) -> tuple[str | None, str]:
    """The raw value of option ``name`` and where it came from."""
    key = name.replace("-", "_")
    given = config.getoption(f"ccci_{key}")
    if given:
        return str(given), f"--{name}"
    env = os.environ.get(f"CCCI_{key.upper()}")
    if env:
        return env, f"CCCI_{key.upper()}"
    ini = config.getini(f"ccci_{key}")
    return (str(ini), f"ini ccci_{key}") if ini else (None, "default")


def resolve(config: pytest.Config) -> Settings:
    from harness.recipe.meta_keys import TIERS
    from harness.swarm import PULL_POLICIES

    catalogue, _ = _value(config, "catalogue")
    ref, _ = _value(config, "ref")
    tiers_raw, source = _value(config, "tiers")
    tiers = tuple(t.strip() for t in (tiers_raw or ",".join(TIERS)).split(",") if t.strip())
    unknown = [t for t in tiers if t not in TIERS]
    if unknown:
        raise pytest.UsageError(
            f"{source}: unknown tier(s) {', '.join(unknown)}; tiers are {', '.join(TIERS)}"
        )
    runs_dir, _ = _value(config, "runs-dir")
    upgrade_from, _ = _value(config, "upgrade-from")
    pull, source = _value(config, "pull")
    if pull is not None and pull not in PULL_POLICIES:
        raise pytest.UsageError(
            f"{source}: {pull!r} is not a pull policy ({', '.join(PULL_POLICIES)})"
        )
    return Settings(
        catalogue=catalogue or _default_catalogue(),
        ref=ref,
        tiers=tiers,
        runs_dir=Path(runs_dir) if runs_dir else _default_runs_dir(config),
        upgrade_from=upgrade_from,
        pull=pull or "missing",
        run_deadline=_seconds(config, "run-deadline", 3600.0),
        janitor_age=_seconds(config, "janitor-age", 60.0),
    )


def _default_runs_dir(config: pytest.Config) -> Path:
    """``runs/`` beside the ini file pytest read, else in the working directory — never
    under pytest's guessed rootdir, which counts option values (``--catalogue ~/cat``) as
    paths and can land in their common ancestor."""
    base = config.inipath.parent if config.inipath else config.invocation_params.dir
    return Path(base) / "runs"


def _seconds(config: pytest.Config, name: str, default: float) -> float:
    raw, source = _value(config, name)
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if value < 0:
        raise pytest.UsageError(f"{source}: {raw!r} is not a number of seconds")
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
