"""A recipe dir as pytest sees it: one collector, one item per tier, in lifecycle order.

Why custom items rather than generated test functions: the tiers of a recipe share one
``Run`` (its checkouts, apps and teardown) whose life is exactly the collector's — pytest
calls ``RecipeDir.setup()`` before the first tier and ``teardown()`` after the last, also
after ``-x``, a failure or Ctrl-C — and tiers need no fixtures. One collector per recipe is
one ``--dist loadscope`` scope, so a recipe's tiers stay in order on one worker.
"""

from __future__ import annotations

import logging
import signal
import threading
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from harness import lifecycle, manifest, meta
from harness.errors import CcciError, InfraError, MetaError, RecipeError
from harness.results import TierResult
from harness.settings import SETTINGS_KEY

log = logging.getLogger(__name__)

# Tiers this harness implements, in lifecycle order; lint follows them as its own item.
IMPLEMENTED = ("install", "upgrade", "backup", "restore")


class RecipeDir(pytest.Directory):
    """``recipes/<name>/``: the tiers of one recipe."""

    run: lifecycle.Run | None = None
    custom_failures: list[str]
    custom_skips: list[str]

    @property
    def recipe(self) -> str:
        return self.path.name

    def collect(self) -> Iterator[pytest.Item]:
        try:
            self.meta = meta.load(self.path)
            self.ops = meta.load_ops(self.path)
        except MetaError as exc:
            raise self.CollectError(str(exc)) from None
        for tier in IMPLEMENTED:
            if tier in self.meta.TIERS:
                yield TierItem.from_parent(self, name=tier, tier=tier)
        if "custom" in self.meta.TIERS:
            for path in meta.custom_test_files(self.path):
                yield pytest.Module.from_parent(self, path=path)  # type: ignore[misc]
        yield TierItem.from_parent(self, name="lint", tier="lint")

    def setup(self) -> None:
        settings = self.config.stash[SETTINGS_KEY]
        self.custom_failures, self.custom_skips = [], []
        _terminate_like_interrupt()
        self.run = lifecycle.Run(
            recipe=self.recipe,
            recipe_dir=self.path,
            meta=self.meta,
            catalogue=settings.catalogue,
            ref=settings.ref,
            runs_root=settings.runs_dir,
            deadline=settings.run_deadline,
            ops=self.ops,
        )
        # One block at the start of the run, past output capture (as pytest's live logs do).
        reporter = self.config.pluginmanager.get_plugin("terminalreporter")
        capture = self.config.pluginmanager.get_plugin("capturemanager")
        if reporter is not None and capture is not None:
            with capture.global_and_fixture_disabled():
                reporter.write_line("")
                reporter.write_line(manifest.render(self.recipe, self.run.manifest))

    def teardown(self) -> None:
        if self.run is not None:
            run, self.run = self.run, None
            run.close()


def _terminate_like_interrupt() -> None:
    """SIGTERM (a CI runner stopping a job) takes the path of Ctrl-C: through teardown."""

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    if threading.current_thread() is threading.main_thread() and (
        signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
    ):
        signal.signal(signal.SIGTERM, interrupt)


class LintFailure(RecipeError):
    """The recipe fails lint rules of error severity."""


def _reason(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}".splitlines()[0]


class TierItem(pytest.Item):
    """``recipes/<name>::<tier>``."""

    def __init__(self, *, tier: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.tier = tier
        self.add_marker(pytest.mark.e2e)

    @property
    def recipe_dir(self) -> RecipeDir:
        assert isinstance(self.parent, RecipeDir)
        return self.parent

    def _later_tiers(self) -> list[str]:
        selected = [tier_of(i) for i in self.session.items if recipe_dir_of(i) is self.parent]
        return selected[selected.index(self.tier) + 1 :]

    def runtest(self) -> None:
        recipe_dir = self.recipe_dir
        run = recipe_dir.run
        assert run is not None
        self.user_properties.append(("ccci_run_dir", str(run.dir)))
        expect_fail = recipe_dir.meta.EXPECT_FAIL
        results = run.results
        for earlier, outcome in run.outcomes.items():
            if outcome in ("fail", "xfail") and self.tier != "lint":  # lint needs no app
                run.outcomes[self.tier] = "skip"
                how = "as designed" if outcome == "xfail" else ""
                reason = f"{earlier} failed {how}".strip() + f": {self.tier} cannot run"
                results.end_tier(self.tier, TierResult("unver", reason))
                pytest.skip(reason)
        results.start_tier(self.tier)
        try:
            self._run_tier(run)
        except lifecycle.Unverifiable as exc:
            run.outcomes[self.tier] = "unver"
            status = "skip" if exc.structural else "unver"
            results.end_tier(self.tier, TierResult(status, str(exc)))
            if not exc.structural:  # loud: a rung we could not verify is never silent
                warnings.warn(
                    pytest.PytestWarning(f"{self.nodeid} unverified: {exc}"), stacklevel=1
                )
            pytest.skip(f"{'n/a' if exc.structural else 'unverified'}: {exc}")
        except RecipeError as exc:
            results.end_tier(self.tier, TierResult("fail", _reason(exc), failure_class="recipe"))
            if expect_fail == self.tier:
                run.outcomes[self.tier] = "xfail"
                pytest.xfail(f"designed failure: {type(exc).__name__}: {exc}")
            run.outcomes[self.tier] = "fail"
            raise
        except BaseException as exc:
            # The platform or the harness failed, or the run was interrupted: never a
            # verdict on the recipe, so the rung stays unverified, loudly.
            run.outcomes[self.tier] = "fail"
            attempts = 2 if getattr(exc, "ccci_retried", False) else 1
            results.end_tier(
                self.tier,
                TierResult("unver", _reason(exc), failure_class="infra", attempts=attempts),
            )
            raise
        run.outcomes[self.tier] = "pass"
        results.end_tier(self.tier, TierResult("pass"))
        if expect_fail == self.tier:
            pytest.fail(
                f"canary {recipe_dir.recipe} was designed to fail at {self.tier}, but passed"
            )

    def _run_tier(self, run: lifecycle.Run) -> None:
        """Run the tier; an infra failure (engine, network, harness) gets one more try."""
        for attempt in (1, 2):
            try:
                self._once(run)
                return
            except InfraError as exc:
                if attempt == 2:
                    exc.ccci_retried = True  # type: ignore[attr-defined]
                    raise
                log.warning("%s: infra failure, retrying once: %s", self.nodeid, exc)

    def _once(self, run: lifecycle.Run) -> None:
        with run.tracer.span(self.tier):
            if self.tier == "lint":
                verdict = run.lint()
                if verdict["status"] == "fail":
                    raise LintFailure(f"lint errors: {', '.join(verdict['errors'])}")
                return
            # Backup, restore and custom use the upgraded app, or the install app when no
            # upgrade happens (it may turn out impossible): install keeps its app for them
            # and upgrade releases it once its own app takes over. An app no later tier
            # needs goes as soon as its tier ends.
            later = set(self._later_tiers())
            keep = bool({"backup", "restore", "custom"} & later)
            if self.tier == "install":
                lifecycle.install(run, keep=keep, upgrade_next="upgrade" in later)
            elif self.tier == "upgrade":
                lifecycle.upgrade(run, keep=keep)
            elif self.tier == "backup":
                lifecycle.backup_tier(run)
            else:
                lifecycle.restore_tier(run)

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> Any:
        if isinstance(excinfo.value, CcciError):
            return f"{type(excinfo.value).__name__}: {excinfo.value}"
        return super().repr_failure(excinfo, style=style)

    def reportinfo(self) -> tuple[Path, int | None, str]:
        return self.path, None, f"{self.recipe_dir.recipe}::{self.tier}"


def recipe_dir_of(item: pytest.Item) -> RecipeDir | None:
    return item.getparent(RecipeDir)


def tier_of(item: pytest.Item) -> str:
    """The tier an item belongs to: its own, or ``custom`` for a recipe's custom test."""
    return item.tier if isinstance(item, TierItem) else "custom"


def record_custom(item: pytest.Item, report: pytest.TestReport) -> None:
    """Fold a custom test's outcome into the run's ``custom`` tier; on failure, attach the
    app's service logs to the report."""
    recipe_dir = recipe_dir_of(item)
    if recipe_dir is None or isinstance(item, TierItem) or recipe_dir.run is None:
        return
    run = recipe_dir.run
    results = run.results
    if report.when == "setup" and "custom" not in run.outcomes:
        run.outcomes["custom"] = "pass"
        results.start_tier("custom")
    if report.failed:
        run.outcomes["custom"] = "fail"
        recipe_dir.custom_failures.append(f"{item.name}: {report.when} failed")
        if run.live_app is not None:
            report.sections.append(("cc-ci: app logs", run.app_logs(run.live_app)))
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
            status, reason = "fail", "; ".join(recipe_dir.custom_failures)
        elif recipe_dir.custom_skips and len(recipe_dir.custom_skips) >= len(custom):
            status, reason = "unver", recipe_dir.custom_skips[0]
        else:
            status, reason = "pass", ""
        cls = "recipe" if status == "fail" else None
        results.end_tier("custom", TierResult(status, reason, failure_class=cls))
