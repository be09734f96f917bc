"""The pytest11 entry point of cc-ci: hooks only, heavy imports inside them.

Registering the plugin costs nothing: no Docker, no git, no browser is touched until a
recipe dir (a directory holding recipe_meta.py) is collected.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import pytest

from harness import settings


def pytest_addoption(parser: pytest.Parser) -> None:
    settings.add_options(parser)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "e2e: deploys real stacks on the local swarm (slow)")
    config.stash[settings.SETTINGS_KEY] = settings.resolve(config)
    if not config.pluginmanager.has_plugin("harness.fixtures"):
        config.pluginmanager.import_plugin("harness.fixtures")
    if not any(isinstance(p, RunDirs) for p in config.pluginmanager.get_plugins()):
        config.pluginmanager.register(RunDirs(), "cc-ci-run-dirs")


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
    from harness.errors import CcciError

    age = config.stash[settings.SETTINGS_KEY].janitor_age
    try:
        config.stash[SWEPT_KEY] = janitor.sweep_dead_runs(min_age=age)
    except CcciError as exc:
        raise pytest.UsageError(f"cc-ci: {exc}") from None


class RunDirs:
    """Collects the run dirs the session's tier items report (from xdist workers too)."""

    def __init__(self) -> None:
        self.dirs: list[str] = []

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        for name, value in report.user_properties:
            if name == "ccci_run_dir" and value not in self.dirs:
                self.dirs.append(str(value))

    def documents(self) -> list[tuple[Path, dict[str, Any]]]:
        from harness.results import load

        found = []
        for run_dir in self.dirs:
            try:
                found.append((Path(run_dir), load(Path(run_dir))))
            except (OSError, ValueError):
                continue
        return found


def pytest_sessionfinish(session: pytest.Session) -> None:
    browser = sys.modules.get("harness.browser")  # started only if a screenshot or page was
    if browser is not None:
        browser.close()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    plugins = terminalreporter.config.pluginmanager.get_plugins()
    runs = next((p for p in plugins if isinstance(p, RunDirs)), None)
    documents = runs.documents() if runs is not None else []
    if documents:
        from harness.results import summary_table

        terminalreporter.write_sep("=", "cc-ci summary (level/expected; ! = below expected)")
        terminalreporter.write_line(summary_table(documents))
    swept = terminalreporter.config.stash.get(SWEPT_KEY, {})
    if swept:
        dead = ", ".join(f"{run} ({n} resources)" for run, n in swept.items())
        terminalreporter.write_line(f"cc-ci janitor: removed leftovers of dead runs: {dead}")


@pytest.hookimpl(tryfirst=True)
def pytest_collect_directory(path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    if not (path / "recipe_meta.py").is_file():
        return None
    from harness.collect import RecipeDir

    return RecipeDir.from_parent(parent, path=path)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    collect = sys.modules.get("harness.collect")  # loaded once a recipe dir was collected
    if collect is not None:
        collect.record_custom(item, report)
    return report


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    from harness.collect import recipe_dir_of, tier_of  # cheap: collection imported it
    from harness.meta import TIERS

    tiers = config.stash[settings.SETTINGS_KEY].tiers
    deselected = [
        i
        for i in items
        if recipe_dir_of(i) is not None and tier_of(i) in TIERS and tier_of(i) not in tiers
    ]
    if deselected:
        config.hook.pytest_deselected(items=deselected)
        items[:] = [i for i in items if i not in deselected]
