"""A run: one recipe through its tiers, and every resource that is its own.

A ``Run`` owns a run dir, a unique id (every resource it creates carries it as a label), a
lease the kernel releases when the process dies (so the janitor knows it is dead), the
run's deadline (every wait is cut to it), ``results.json``, ``trace.json``, ``harness.log``
and ``op_state.json``. ``close()`` removes everything and asserts that nothing is left.
What the tiers do is in ``tiers.py``; what an app is, in ``app.py``: an app gets the run's
``context`` (frozen) and the run as its ``Recorder``, never the run itself. The run's
DEPS, once the tiers provided them (``deps.py``), are a value of the run
(``use_dependencies``): its apps, their hooks and the custom tests' fixtures read them
from it, never from the process environment.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from harness import fetch
from harness.config import DEFAULT_RUN_DEADLINE
from harness.deadline import Deadline
from harness.errors import CcciError
from harness.fetch import Checkout
from harness.lifecycle import janitor, teardown
from harness.lifecycle.app import App
from harness.lifecycle.backup import Archive, Selection
from harness.lifecycle.context import ENGINE, Deps, RunContext, Swarm
from harness.lifecycle.deploy import disk_bound
from harness.lifecycle.diskwatch import DiskWatch
from harness.lifecycle.labels import RUN_LABEL
from harness.lifecycle.platform import Platform, detect
from harness.recipe import manifest
from harness.recipe.customization import Customization
from harness.recipe.meta_keys import TIERS
from harness.recipe.policy import Violation
from harness.reports.results import Results, write_json
from harness.reports.trace import Tracer

__all__ = ["Run"]

log = logging.getLogger(__name__)

_NEED_AN_APP = frozenset({"backup", "restore", "custom"})


class Run:
    def __init__(
        self,
        customization: Customization,
        *,
        catalogue: str,
        ref: str | None,
        runs_root: Path,
        deadline: float = DEFAULT_RUN_DEADLINE,
        platform: Platform | None = None,
        tiers: Sequence[str] = (*TIERS, "lint"),
        upgrade_from: str | None = None,
        pull: str = "missing",
        swarm: Swarm = ENGINE,
    ) -> None:
        self.customization = customization  # the recipe dir: meta, ops.py, install_steps.sh
        self.name = customization.recipe
        self.meta = customization.meta
        self.catalogue, self.ref = catalogue, ref
        self.upgrade_from = upgrade_from  # the run's choice of base, over UPGRADE_FROM
        self.pull = pull  # the image pull policy: missing, always, never
        self.swarm = swarm  # the seam every app of the run deploys through
        self.dependencies: list[Run] = []  # the runs of the recipe's DEPS, once provided
        self.tiers = tuple(tiers)  # the tiers this run was asked for, in lifecycle order
        self.platform = platform or detect()
        self.deadline = Deadline(deadline)
        self.id = uuid.uuid4().hex[:6]
        bound = disk_bound(self.meta.RESOURCES)
        self.lease = janitor.Lease(self.id).acquire()  # held until close(), or death
        self.disk = DiskWatch(f"{RUN_LABEL}={self.id}", bound, self.deadline, swarm.disk_use)
        stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
        self.dir = runs_root / f"{self.name}-{stamp}-{self.id}"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.apps: dict[str, App] = {}  # live apps, by stack name
        self.stacks: list[str] = []  # every stack the run created
        self.ports: list[int] = []  # the host ports it reserved
        self.overlays: list[str] = []
        self.mirror: Path | None = None
        self.candidate: Checkout | None = None
        self.live_app: App | None = None  # the app later tiers (backup, custom, …) use
        self.early_base: tuple[str, App] | None = None  # upgrade's base, started in install
        self.backups: list[tuple[Selection, Archive]] = []
        self.custom_started = False
        self.manifest = manifest.build(customization)
        self.results = Results(
            path=self.dir / "results.json",
            recipe=self.name,
            run_id=self.id,
            expected_na=dict(self.meta.EXPECTED_NA),
            expect_fail=self.meta.EXPECT_FAIL,
            platform={"name": self.platform.name, "ipvs": self.platform.ipvs, "overlays": []},
            customization=self.manifest,
            artifacts={"trace": "trace.json", "log": "harness.log", "op_state": "op_state.json"},
            policy={"allowed": dict(self.meta.ALLOW), "used": []},
        )
        self.results.save()
        self.op_state: dict[str, dict[str, Any]] = {}
        self.op_state_file = self.dir / "op_state.json"  # what the op_state fixture reads
        write_json(self.op_state_file, self.op_state)
        self.tracer = Tracer(self.dir / "trace.json", f"run {self.name}", run_id=self.id)
        self._log = logging.FileHandler(self.dir / "harness.log")
        self._log.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        self.context = RunContext(
            id=self.id,
            recipe=self.name,
            customization=customization,
            dir=self.dir,
            platform=self.platform,
            deadline=self.deadline,
            tracer=self.tracer,
            pull=pull,
            disk=self.disk,
            swarm=swarm,
        )

    def capture_logs(self) -> None:
        """The package's log records go to this run's trace.json and harness.log, until
        ``close`` (the session's run does this; a dependency's run logs into the recipe's)."""
        package = logging.getLogger("harness")
        package.setLevel(min(package.getEffectiveLevel(), logging.INFO))
        for handler in (self.tracer, self._log):
            package.addHandler(handler)
        log.info("%s", manifest.render(self.name, self.manifest))

    def use_dependencies(self, deps: Deps, runs: Sequence[Run]) -> None:
        """The recipe's DEPS, provided (``deps.provide``): their runs close with this one,
        and every app made from now on gets their entries and networks."""
        self.dependencies = list(runs)
        self.context = replace(self.context, deps=deps)

    def needs_app_after(self, tier: str) -> bool:
        """Whether a tier selected after ``tier`` runs against the live app."""
        later = self.tiers[self.tiers.index(tier) + 1 :] if tier in self.tiers else ()
        return bool(_NEED_AN_APP & set(later))

    def fetch(self) -> Checkout:
        """Mirror the recipe and check out the candidate (once per run)."""
        if self.candidate is None:
            with self.tracer.span("fetch", catalogue=self.catalogue, ref=self.ref) as span:
                self.mirror = fetch.mirror(self.name, self.catalogue)
                self.candidate = fetch.checkout(self.mirror, self.ref, self.dir / "candidate")
                span.context["sha"] = self.candidate.sha
            self.results.refs.update(candidate=self.candidate.ref, candidate_sha=self.candidate.sha)
            log.info("%s: candidate %s at %s", self.name, self.candidate.ref, self.candidate.short)
        return self.candidate

    def new_app(self, role: str, ref: str) -> App:
        """A fresh app with its own checkout at ``ref`` (with the DEPS the run has)."""
        self.fetch()
        assert self.mirror is not None
        number = len(self.stacks)
        tree = fetch.checkout(self.mirror, ref, self.dir / f"app-{role}-{number}")
        port = janitor.reserve_port(self.id) if self.platform.name == "local" else None
        self.ports += [port] if port is not None else []
        app = App.named(self.context, self, role, number, tree, port)
        self.apps[app.name] = app
        self.stacks.append(app.name)
        return app

    def release_app(self, app: App) -> None:
        """Remove an app no later tier needs (its volumes and secrets go at close)."""
        teardown.remove_stack(self.swarm, app.name)
        self.apps.pop(app.name, None)
        if self.live_app is app:
            self.live_app = None

    def record(self, tier: str, **facts: Any) -> None:
        """What a tier did, for the custom tests (``op_state``): base tag, stamps seen,
        the seeded marker, backup archives."""
        self.op_state.setdefault(tier, {}).update(facts)
        write_json(self.op_state_file, self.op_state)

    def record_policy(self, used: Sequence[Violation]) -> None:
        """What the deploys used of what the recipe dir allows, in results.json."""
        lines = self.results.policy["used"]
        lines += [v.line() for v in used if v.line() not in lines]
        self.results.save()

    def add_overlays(self, overlays: Sequence[str]) -> None:
        """Which compatibility overlays this run applied, in results.json."""
        self.overlays += [o for o in overlays if o not in self.overlays]
        self.results.platform["overlays"] = list(self.overlays)
        self.results.save()

    def record_stamps(self, app: str, seen: Mapping[str, str]) -> None:
        """The labels an app's deploy was seen stamped with, in results.json."""
        self.results.stamps[app] = dict(seen)

    def close(self) -> list[str]:
        """Remove everything of the run — its dependencies' runs last: the app was on
        their networks — and assert that nothing is left."""
        removed: list[str] = []
        try:
            with self.tracer.span("teardown", stacks=self.stacks) as span:
                removed += teardown.remove_run(self.id, self.stacks, self.swarm)
                span.context["removed"] = len(removed)
                teardown.assert_no_leftovers(self.id, self.stacks, self.swarm)
        finally:
            left: list[CcciError] = []
            for dependency in reversed(self.dependencies):
                try:
                    removed += dependency.close()
                except CcciError as exc:  # each is closed, whatever another left
                    left.append(exc)
            self._release()
            if left:
                raise left[0]
        log.info("run %s: removed %d resources, nothing left", self.id, len(removed))
        return removed

    def _release(self) -> None:
        """The run's port claims, lease, results, trace and log."""
        if self.ports:  # their claims and firewall rules
            janitor.release_ports(self.id)
        self.disk.close()
        log.info("run %s: its resources held %d bytes of disk at most", self.id, self.disk.peak)
        self.lease.release()
        self.results.finish()
        self.tracer.close_run("finished")
        package = logging.getLogger("harness")
        for handler in (self.tracer, self._log):
            package.removeHandler(handler)
        self._log.close()
