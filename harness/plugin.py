"""The pytest11 entry point of cc-ci: hooks only, heavy imports inside them.

Registering the plugin costs nothing: no Docker, no git, no browser is touched until a
recipe dir (a directory holding recipe_meta.py) is collected.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from harness import settings


def pytest_addoption(parser: pytest.Parser) -> None:
    settings.add_options(parser)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "e2e: deploys real stacks on the local swarm (slow)")
    config.stash[settings.SETTINGS_KEY] = settings.resolve(config)


def pytest_report_header(config: pytest.Config) -> str:
    host = os.environ.get("DOCKER_HOST")
    chosen = config.stash[settings.SETTINGS_KEY]
    return (
        f"cc-ci platform: {'remote swarm at ' + host if host else 'local'}; "
        f"catalogue: {chosen.catalogue}"
    )


SWEPT_KEY = pytest.StashKey[dict[str, int]]()


def _names_recipes(config: pytest.Config) -> bool:
    """Whether the session's arguments are (or hold) recipe dirs."""
    for arg in config.args:
        path = Path(config.invocation_params.dir, arg.split("::")[0])
        if (path / "recipe_meta.py").is_file() or any(path.glob("*/recipe_meta.py")):
            return True
    return False


def pytest_sessionstart(session: pytest.Session) -> None:
    config = session.config
    if hasattr(config, "workerinput") or not _names_recipes(config):
        return  # xdist workers leave it to their controller; non-recipe sessions stay inert
    from harness import janitor

    age = config.stash[settings.SETTINGS_KEY].janitor_age
    config.stash[SWEPT_KEY] = janitor.sweep_dead_runs(min_age=age)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    swept = terminalreporter.config.stash.get(SWEPT_KEY, {})
    if swept:
        runs = ", ".join(f"{run} ({n} resources)" for run, n in swept.items())
        terminalreporter.write_line(f"cc-ci janitor: removed leftovers of dead runs: {runs}")


@pytest.hookimpl(tryfirst=True)
def pytest_collect_directory(path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    if not (path / "recipe_meta.py").is_file():
        return None
    from harness.collect import RecipeDir

    return RecipeDir.from_parent(parent, path=path)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    from harness.collect import TierItem  # cheap: collection already imported it, if used

    tiers = config.stash[settings.SETTINGS_KEY].tiers
    deselected = [i for i in items if isinstance(i, TierItem) and i.tier not in tiers]
    if deselected:
        config.hook.pytest_deselected(items=deselected)
        items[:] = [i for i in items if i not in deselected]
