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
IMPLEMENTED = ("install", "upgrade")


class RecipeDir(pytest.Directory):
    """``recipes/<name>/``: the tiers of one recipe."""

    run: lifecycle.Run | None = None

    @property
    def recipe(self) -> str:
        return self.path.name

    def collect(self) -> Iterator[pytest.Item]:
        try:
            self.meta = meta.load(self.path)
        except MetaError as exc:
            raise self.CollectError(str(exc)) from None
        for tier in IMPLEMENTED:
            if tier in self.meta.TIERS:
                yield TierItem.from_parent(self, name=tier, tier=tier)
        yield TierItem.from_parent(self, name="lint", tier="lint")

    def setup(self) -> None:
        settings = self.config.stash[SETTINGS_KEY]
        _terminate_like_interrupt()
        self.run = lifecycle.Run(
            recipe=self.recipe,
            recipe_dir=self.path,
            meta=self.meta,
            catalogue=settings.catalogue,
            ref=settings.ref,
            runs_root=settings.runs_dir,
            deadline=settings.run_deadline,
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
        selected = [i.name for i in self.session.items if i.parent is self.parent]
        return selected[selected.index(self.name) + 1 :]

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
            # upgrade runs; an app no later tier needs goes as soon as its tier ends.
            later = self._later_tiers()
            users = {"backup", "restore", "custom"} & set(later)
            keep = bool(users) and (self.tier == "upgrade" or "upgrade" not in later)
            if self.tier == "install":
                lifecycle.install(run, keep=keep)
            else:
                lifecycle.upgrade(run, keep=keep)

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> Any:
        if isinstance(excinfo.value, CcciError):
            return f"{type(excinfo.value).__name__}: {excinfo.value}"
        return super().repr_failure(excinfo, style=style)

    def reportinfo(self) -> tuple[Path, int | None, str]:
        return self.path, None, f"{self.recipe_dir.recipe}::{self.tier}"
