"""The pytest11 entry point of cc-ci: hooks only, everything else imported inside them.

Registering the plugin costs nothing: a session that names no recipe dir (a directory
holding recipe_meta.py) imports nothing else of cc-ci and touches no Docker, git or
browser. The run dirs a session made are gathered on the controller only (xdist workers
send their reports there), under a ``StashKey``, as junitxml gathers its cases.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from harness import settings

if TYPE_CHECKING:
    from harness.reports.results import Record

RUN_DIRS = pytest.StashKey["RunDirs"]()
SWEPT = pytest.StashKey[dict[str, int]]()


class RunDirs:
    """The run dirs the session's tier items reported (from xdist workers too)."""

    def __init__(self) -> None:
        self.dirs: list[str] = []

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        for name, value in report.user_properties:
            if name == "ccci_run_dir" and value not in self.dirs:
                self.dirs.append(str(value))

    def documents(self) -> list[tuple[Path, Record]]:
        from harness.reports.results import read

        found = []
        for run_dir in self.dirs:
            try:
                found.append((Path(run_dir), read(Path(run_dir))))
            except (OSError, ValueError):
                continue
        return found


def pytest_addoption(parser: pytest.Parser) -> None:
    settings.add_options(parser)


def pytest_configure(config: pytest.Config) -> None:
    if not hasattr(config, "workerinput"):  # the controller, or a session without xdist
        config.stash[RUN_DIRS] = RunDirs()
        config.pluginmanager.register(config.stash[RUN_DIRS], "cc-ci-run-dirs")
    if _names_recipes(config):  # the workers too: they make the secrets and the logs
        from harness import redact

        redact.install_log_filter()


def _names_recipes(config: pytest.Config) -> bool:
    """Whether the session's arguments are (or hold) recipe dirs."""
    for arg in config.args:
        path = Path(config.invocation_params.dir, arg.split("::")[0])
        if (path / "recipe_meta.py").is_file() or any(path.glob("*/recipe_meta.py")):
            return True
    return False


def pytest_report_header(config: pytest.Config) -> str | None:
    if not _names_recipes(config):
        return None
    from harness.errors import CcciError
    from harness.swarm.engine import LOCAL, where

    try:  # the engine the SDK will use: DOCKER_HOST, else the Docker context in effect
        host = where()
    except CcciError as exc:
        host = f"(unreadable: {exc})"
    return (
        f"cc-ci platform: {'local' if host == LOCAL else 'remote swarm at ' + host}; "
        f"catalogue: {settings.of(config).catalogue}"
    )


def pytest_sessionstart(session: pytest.Session) -> None:
    config = session.config
    if hasattr(config, "workerinput") or not _names_recipes(config):
        return  # xdist workers leave it to their controller; non-recipe sessions stay inert
    from harness.errors import CcciError
    from harness.lifecycle import janitor

    try:
        config.stash[SWEPT] = janitor.sweep_dead_runs(min_age=settings.of(config).janitor_age)
    except CcciError as exc:
        raise pytest.UsageError(f"cc-ci: {exc}") from None


@pytest.hookimpl(tryfirst=True)
def pytest_collect_directory(path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    if not (path / "recipe_meta.py").is_file():
        return None
    config = parent.config
    if not config.pluginmanager.has_plugin("harness.fixtures"):
        config.pluginmanager.import_plugin("harness.fixtures")
    from harness.collect import RecipeDir

    return RecipeDir.from_parent(parent, path=path)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    collect = sys.modules.get("harness.collect")  # imported once a recipe dir was collected
    if collect is not None:
        collect.deselect_tiers(config, items)


def pytest_collection_finish(session: pytest.Session) -> None:
    collect = sys.modules.get("harness.collect")
    if collect is not None:
        collect.show_customizations(session)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    collect = sys.modules.get("harness.collect")
    if collect is not None:
        collect.record_custom(item, report)
        _redact_report(report)
    return report


def _redact_report(report: pytest.TestReport) -> None:
    """The report of a recipe's item with every secret value masked, whatever put it
    there (a failure quoting the app's logs, a designed failure's reason, captured output,
    the app logs of a failed custom test): what the terminal, junit XML and the controller
    of xdist workers get."""
    from harness.redact import redact

    longrepr = report.longrepr
    if isinstance(longrepr, tuple):  # a skip: (path, line, reason)
        report.longrepr = (longrepr[0], longrepr[1], redact(longrepr[2]))
    elif longrepr is not None:
        text = report.longreprtext
        if redact(text) != text:
            report.longrepr = redact(text)  # plain text: the rendered traceback, masked
    report.sections = [(title, redact(content)) for title, content in report.sections]
    if hasattr(report, "wasxfail"):
        report.wasxfail = redact(report.wasxfail)


@pytest.hookimpl(tryfirst=True)
def pytest_warning_recorded(warning_message: Any) -> None:
    """A warning (a rung left unverified, quoting why) masked before the terminal's
    warnings summary keeps it."""
    if "harness.collect" in sys.modules:
        from harness.redact import redact

        said = warning_message.message
        text = redact(str(said))
        if text != str(said):
            warning_message.message = type(said)(text) if isinstance(said, Warning) else text


@pytest.hookimpl(tryfirst=True, optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """With xdist, a recipe's tiers and custom tests stay together on one worker, in order,
    whichever of the splitting modes (load, loadscope, loadfile, worksteal) was asked."""
    if config.getvalue("dist") not in ("load", "loadscope", "loadfile", "worksteal"):
        return None
    if not _names_recipes(config):
        return None
    from harness.scheduling import RecipeScopeScheduling

    return RecipeScopeScheduling(config, log)


@pytest.hookimpl(tryfirst=True)
def pytest_keyboard_interrupt(excinfo: pytest.ExceptionInfo[BaseException]) -> None:
    """Ctrl-C can land on an instruction CPython gives no line number (a function's first
    one): pytest's report of the interrupt then fails on that traceback entry, and the
    session ends without its teardown. Such entries are dropped before pytest reports."""
    seen: set[int] = set()
    error: BaseException | None = excinfo.value
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        tb = error.__traceback__
        while tb is not None and tb.tb_next is not None:
            lineno: int | None = tb.tb_next.tb_lineno  # None there, whatever typeshed says
            if lineno is None:
                tb.tb_next = tb.tb_next.tb_next
            else:
                tb = tb.tb_next
        error = error.__cause__ or error.__context__


def pytest_sessionfinish(session: pytest.Session) -> None:
    browser = sys.modules.get("harness.lifecycle.browser")  # started only if it was used
    if browser is not None:
        browser.close()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    config = terminalreporter.config
    run_dirs = config.stash.get(RUN_DIRS, None)
    documents = run_dirs.documents() if run_dirs is not None else []
    if documents:
        from harness.reports.results import summary_table

        terminalreporter.write_sep("=", "cc-ci summary (level/expected; ! = below expected)")
        terminalreporter.write_line(summary_table(documents))
    swept = config.stash.get(SWEPT, {})
    if swept:
        dead = ", ".join(f"{run} ({n} resources)" for run, n in swept.items())
        terminalreporter.write_line(f"cc-ci janitor: removed leftovers of dead runs: {dead}")
