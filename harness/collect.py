"""A recipe dir as pytest sees it: one collector, one item per tier, in lifecycle order.

Why custom items rather than generated test functions: the tiers of a recipe share one
``Run`` (its checkouts, apps and teardown) whose life is exactly the collector's — pytest
calls ``RecipeDir.setup()`` before the first tier and ``teardown()`` after the last, also
after ``-x``, a failure or Ctrl-C — and tiers need no fixtures. One collector per recipe is
one ``--dist loadscope`` scope, so a recipe's tiers stay in order on one worker.

A tier's status lives in the run's ``Results`` only; a later tier asks it whether an
earlier one failed. What a tier's outcome is (blocked, retried, pass, skip, unver, fail) is
decided by ``tiers.run_tier``; an item only says it as pytest does (skip, xfail, a failure).
"""

from __future__ import annotations

import logging
import signal
import sys
import threading
import warnings
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from harness import settings
from harness.errors import CcciError, MetaError, RecipeError
from harness.lifecycle.run import Run
from harness.lifecycle.tiers import RUNNERS, Blocked, Unverifiable, run_tier
from harness.recipe import customization, manifest
from harness.recipe.meta_keys import TIERS
from harness.reports import progress
from harness.reports.results import TierResult

__all__ = ["CustomTests", "RecipeDir", "TierItem", "deselect_tiers", "record_custom"]

log = logging.getLogger(__name__)

# Tiers run as items of their own, in lifecycle order (custom is the recipe's own tests,
# each an item); lint follows them.
LIFECYCLE = tuple(t for t in TIERS if t in RUNNERS)


class RecipeDir(pytest.Directory):
    """``recipes/<name>/``: the tiers of one recipe."""

    run: Run | None = None
    custom_failures: list[str]
    custom_skips: list[str]

    def collect(self) -> Iterator[pytest.Item | pytest.Collector]:
        try:
            self.customization = customization.read(self.path)
        except MetaError as exc:
            raise self.CollectError(str(exc)) from None
        for tier in LIFECYCLE:
            if tier in self.customization.meta.TIERS:
                yield TierItem.from_parent(self, name=tier, tier=tier)
        for path in self.customization.custom_tests:
            yield CustomTests.from_parent(self, path=path)
        yield TierItem.from_parent(self, name="lint", tier="lint")

    def setup(self) -> None:
        chosen = settings.of(self.config)
        self.custom_failures, self.custom_skips = [], []
        _terminate_like_interrupt()
        selected = [tier_of(i) for i in self.session.items if recipe_dir_of(i) is self]
        self.run = Run(
            self.customization,
            catalogue=chosen.catalogue,
            ref=chosen.ref,
            runs_root=chosen.runs_dir,
            deadline=chosen.run_deadline,
            upgrade_from=chosen.upgrade_from,
            pull=chosen.pull,
            tiers=tuple(dict.fromkeys(selected)),
        )
        self.run.capture_logs()

    def teardown(self) -> None:
        if self.run is not None:
            run, self.run = self.run, None
            run.close()


class _ProgressLine:
    """The step of the tier in progress, on the terminal: on a TTY after pytest's progress
    on the same line, rewritten in place and erased before pytest writes again; otherwise
    a plain line per step (CI logs). Written past pytest's capture, straight to the
    terminal, so that pytest's own bookkeeping of the line stays true."""

    def __init__(self, item: TierItem) -> None:
        plugins = item.config.pluginmanager
        self.reporter = plugins.get_plugin("terminalreporter")
        self.capture = plugins.get_plugin("capturemanager")
        self.recipe, self.tier = item.recipe_dir.customization.recipe, item.tier
        self.shown, self.last = "", ""

    def __call__(self, text: str) -> None:
        if self.reporter is None or self.capture is None or text == self.last:
            return
        self.last = text
        said = self.tier if text == self.tier else f"{self.tier}: {text}"
        with self.capture.global_and_fixture_disabled():
            if not self.reporter.isatty:
                self.reporter.write_line(f"cc-ci: {self.recipe} {said}")
                return
            writer = self.reporter._tw
            room = max(writer.fullwidth - writer.width_of_current_line - 1, 0)
            new = f" [{said}]"[:room]
            pad = max(len(self.shown) - len(new), 0)
            self._write("\b" * len(self.shown) + new + " " * pad + "\b" * pad)
            self.shown = new

    def clear(self) -> None:
        if self.shown and self.capture is not None:
            with self.capture.global_and_fixture_disabled():
                n = len(self.shown)
                self._write("\b" * n + " " * n + "\b" * n)
            self.shown = ""

    @staticmethod
    def _write(text: str) -> None:
        sys.stdout.write(text)
        sys.stdout.flush()


def show_customizations(session: pytest.Session) -> None:
    """Each recipe dir's customization block, once, before any progress line."""
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    dirs = {id(d): d for d in map(recipe_dir_of, session.items) if d is not None}
    if reporter is None or not dirs:
        return
    for recipe_dir in dirs.values():
        reporter.write_line(
            manifest.render(
                recipe_dir.customization.recipe, manifest.build(recipe_dir.customization)
            )
        )


class CustomTests(pytest.Module):
    """A custom test file of a recipe dir, imported under a name of its own whatever the
    session's ``--import-mode``: two recipe dirs' ``functional/test_app.py`` never collide."""

    def _getobj(self) -> ModuleType:
        # pytest's own importer, in its importlib mode (a unique module name from the path,
        # assertion rewriting kept); private API, pinned by tests/e2e.
        from _pytest.pathlib import ImportMode, import_path

        try:
            return import_path(
                self.path,
                mode=ImportMode.importlib,
                root=self.config.rootpath,
                consider_namespace_packages=False,
            )
        except Exception as exc:
            raise self.CollectError(f"{self.path}: {type(exc).__name__}: {exc}") from exc


def _terminate_like_interrupt() -> None:
    """SIGTERM (a CI runner stopping a job) takes the path of Ctrl-C: through teardown."""

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    if threading.current_thread() is threading.main_thread() and (
        signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
    ):
        signal.signal(signal.SIGTERM, interrupt)


class TierItem(pytest.Item):
    """``recipes/<name>::<tier>``."""

    def __init__(self, *, tier: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.tier = tier

    @property
    def recipe_dir(self) -> RecipeDir:
        assert isinstance(self.parent, RecipeDir)
        return self.parent

    def runtest(self) -> None:
        shown = _ProgressLine(self)
        try:
            with progress.showing(shown):
                self._runtest()
        finally:
            shown.clear()

    def _runtest(self) -> None:
        run = self.recipe_dir.run
        assert run is not None
        self.user_properties.append(("ccci_run_dir", str(run.dir)))
        try:
            run_tier(run, self.tier, item=self.nodeid)
        except Blocked as exc:
            pytest.skip(str(exc))
        except Unverifiable as exc:
            if not exc.structural:  # loud: a rung we could not verify is never silent
                warnings.warn(
                    pytest.PytestWarning(f"{self.nodeid} unverified: {exc}"), stacklevel=1
                )
            pytest.skip(f"{'n/a' if exc.structural else 'unverified'}: {exc}")
        except RecipeError as exc:
            if self.tier == run.meta.EXPECT_FAIL:
                pytest.xfail(f"designed failure: {type(exc).__name__}: {exc}")
            raise
        if self.tier == run.meta.EXPECT_FAIL:
            pytest.fail(
                f"canary {self.recipe_dir.customization.recipe} was designed to fail at"
                f" {self.tier}, but passed"
            )

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> Any:
        if isinstance(excinfo.value, CcciError):
            return f"{type(excinfo.value).__name__}: {excinfo.value}"
        return super().repr_failure(excinfo, style=style)

    def reportinfo(self) -> tuple[Path, int | None, str]:
        return self.path, None, f"{self.recipe_dir.customization.recipe}::{self.tier}"


def recipe_dir_of(item: pytest.Item) -> RecipeDir | None:
    return item.getparent(RecipeDir)


def tier_of(item: pytest.Item) -> str:
    """The tier an item belongs to: its own, or ``custom`` for a recipe's custom test."""
    return item.tier if isinstance(item, TierItem) else "custom"


def deselect_tiers(config: pytest.Config, items: list[pytest.Item]) -> None:
    """``--tiers``: deselect the lifecycle tiers (and custom tests) not asked for."""
    tiers = settings.of(config).tiers
    deselected = [
        i
        for i in items
        if recipe_dir_of(i) is not None and tier_of(i) in TIERS and tier_of(i) not in tiers
    ]
    if deselected:
        config.hook.pytest_deselected(items=deselected)
        items[:] = [i for i in items if i not in deselected]


def record_custom(item: pytest.Item, report: pytest.TestReport) -> None:
    """Fold a custom test's outcome into the run's ``custom`` tier; on failure, attach the
    app's service logs to the report."""
    recipe_dir = recipe_dir_of(item)
    if recipe_dir is None or isinstance(item, TierItem) or recipe_dir.run is None:
        return
    run = recipe_dir.run
    results = run.results
    if report.when == "setup" and "custom" not in results.tiers:
        results.start_tier("custom")
    if report.failed:
        recipe_dir.custom_failures.append(f"{item.name}: {report.when} failed")
        if run.live_app is not None:
            report.sections.append(("cc-ci: app logs", run.live_app.logs()))
    elif report.skipped and report.when in ("setup", "call"):
        recipe_dir.custom_skips.append(
            str(report.longrepr[-1]) if isinstance(report.longrepr, tuple) else "skipped"
        )
    if report.when != "teardown":
        return
    custom = [
        i for i in item.session.items if recipe_dir_of(i) is recipe_dir and tier_of(i) == "custom"
    ]
    if item is custom[-1]:
        if recipe_dir.custom_failures:
            reason = "; ".join(recipe_dir.custom_failures)
            result = TierResult("fail", reason, failure_class="recipe")
        elif recipe_dir.custom_skips and len(recipe_dir.custom_skips) >= len(custom):
            result = TierResult("unver", recipe_dir.custom_skips[0])
        else:
            result = TierResult("pass")
        results.end_tier("custom", result)
