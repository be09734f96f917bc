"""The tiers' decisions, fast: real runs (real git checkouts, plans, deploy files, results)
on the in-memory swarm of tests/fake_swarm.py — which app later tiers use, what an infra
error does mid-tier, what ``unver`` means after a base failure, restore ordering, skip and
n/a, the level, teardown. The real-swarm e2e tests stay the proof; these say why."""

from __future__ import annotations

import contextlib
import json
import os
import tarfile
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from harness.deadline import poll
from harness.errors import ConvergeError, EngineError, PlanError
from harness.lifecycle import tiers, waits
from harness.lifecycle.deps import DependencyError
from harness.lifecycle.labels import RUN_LABEL
from harness.lifecycle.platform import Platform
from harness.lifecycle.run import Run
from harness.lifecycle.tiers import Blocked, Unverifiable, run_tier
from harness.recipe import customization
from tests.conftest import Workspace
from tests.fake_swarm import FakeSwarm

pytestmark = pytest.mark.timeout(20)

ALL = ("install", "upgrade", "backup", "restore", "lint")

APP = """\
version: "3.8"
services:
  app:
    image: @IMAGE@
    healthcheck:
      test: ["CMD", "true"]
    volumes:
      - data:/data
    deploy:
      labels:
        - "coop-cloud.${STACK_NAME}.version=@VERSION@"
@LABELS@volumes:
  data:
"""
BACKED_UP = '        - "backupbot.backup=true"\n'
HOOKED = BACKED_UP + '        - "backupbot.restore.post-hook=reload"\n'


def compose(image: str = "cc-ci/busybox:bookworm", labels: str = BACKED_UP) -> str:
    return APP.replace("@IMAGE@", image).replace("@LABELS@", labels)


def _memory_dir(prefix: str) -> Iterator[Path]:
    """A directory in memory where there is one: results.json, trace.json and op_state.json
    are replaced as a run goes, and a rename over a file on disk waits for its data."""
    shm = Path("/dev/shm")
    with tempfile.TemporaryDirectory(prefix=prefix, dir=shm if shm.is_dir() else None) as d:
        yield Path(d)


@pytest.fixture(scope="module")
def memory() -> Iterator[Path]:
    yield from _memory_dir("cc-ci-test-tiers-")


@pytest.fixture
def tmp_dir(memory: Path, request: pytest.FixtureRequest) -> Path:
    path = memory / str(request.node.name)[:60]
    path.mkdir()
    return path


@pytest.fixture(scope="module")
def catalogue(memory: Path) -> Path:
    """Recipe repos: two releases of each (the candidate is the later) — a recipe whose
    older release crash-loops, one with restore hooks, one that crash-loops — and a
    dependency: one release, no backup labels."""
    (memory / "workspace").mkdir()
    workspace = Workspace(memory / "workspace")
    two = [("1.0.0+1", compose()), ("1.1.0+1", compose())]
    workspace.recipe("demo", two)
    workspace.recipe("badbase", [("1.0.0+1", compose("cc-ci/crash")), ("1.1.0+1", compose())])
    workspace.recipe("hooked", [(t, compose(labels=HOOKED)) for t, _ in two])
    workspace.recipe("crash", [(t, compose("cc-ci/crash")) for t, _ in two])
    workspace.recipe("provider", [("1.0.0+1", compose(labels=""))])
    return workspace.catalogue


@pytest.fixture(autouse=True, scope="module")
def _no_sleeping() -> Iterator[None]:
    """In memory there is nothing to wait for: a wait checks again at once."""

    def at_once(check: Any, deadline: Any, **options: Any) -> Any:
        return poll(check, deadline, **{**options, "wake": lambda seconds: None})

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(waits, "poll", at_once)
        yield


def fake_swarm(root: Path) -> FakeSwarm:
    fake = FakeSwarm(root)
    fake.failing.add("cc-ci/crash")  # the image of a recipe that crash-loops
    return fake


@pytest.fixture
def swarm(tmp_dir: Path) -> FakeSwarm:
    return fake_swarm(tmp_dir)


MakeRun = Callable[..., Run]


@contextlib.contextmanager
def runs(root: Path, catalogue: Path, swarm: FakeSwarm) -> Iterator[MakeRun]:
    """Make runs of recipe dirs under ``root`` on ``swarm``; closed at the end."""
    made: list[Run] = []

    def make(
        name: str = "demo",
        meta: str = "",
        tier_list: tuple[str, ...] = ALL,
        upgrade_from: str | None = None,
        platform: Platform | None = None,
    ) -> Run:
        provider = root / "recipes" / "provider"  # the recipe dir of DEPS = ("provider",)
        provider.mkdir(parents=True, exist_ok=True)
        (provider / "recipe_meta.py").write_text("")
        (provider / "ops.py").write_text('def provide(ctx):\n    return {"client_id": "cc-ci"}\n')
        recipe_dir = root / "recipes" / name
        recipe_dir.mkdir(parents=True, exist_ok=True)
        (recipe_dir / "recipe_meta.py").write_text(meta)
        run = Run(
            customization.read(recipe_dir),
            catalogue=str(catalogue),
            ref=None,
            runs_root=root / "runs",
            platform=platform or Platform("remote", ipvs=True, domain="ci.test"),
            tiers=tier_list,
            upgrade_from=upgrade_from,
            swarm=swarm,
        )
        made.append(run)
        return run

    yield make
    for run in made:
        if run.results.finished is None:
            run.close()


@pytest.fixture
def make_run(tmp_dir: Path, catalogue: Path, swarm: FakeSwarm) -> Iterator[MakeRun]:
    with runs(tmp_dir, catalogue, swarm) as make:
        yield make


@dataclass
class Played:
    """A run whose tiers were played, on its own swarm, shared by the tests that read it."""

    run: Run
    swarm: FakeSwarm
    statuses: dict[str, str]


def _played(
    memory: Path, catalogue: Path, name: str, tier_list: tuple[str, ...]
) -> Iterator[Played]:
    root = memory / f"played-{name}"
    root.mkdir()
    swarm = fake_swarm(root)
    with runs(root, catalogue, swarm) as make:
        run = make(name=name, tier_list=tier_list)
        yield Played(run, swarm, play(run, *tier_list))


@pytest.fixture(scope="module")
def ladder(memory: Path, catalogue: Path) -> Iterator[Played]:
    """Every tier of demo."""
    yield from _played(memory, catalogue, "demo", ALL)


@pytest.fixture(scope="module")
def badbase(memory: Path, catalogue: Path) -> Iterator[Played]:
    """Every tier of a recipe whose base release crash-loops."""
    yield from _played(memory, catalogue, "badbase", ALL)


@pytest.fixture(scope="module")
def hooked(memory: Path, catalogue: Path) -> Iterator[Played]:
    """Install, backup and restore of a recipe with a restore post-hook."""
    yield from _played(memory, catalogue, "hooked", ("install", "backup", "restore"))


def play(run: Run, *names: str) -> dict[str, str]:
    """Run tiers as the items do, each outcome recorded; their statuses."""
    for tier in names:
        with contextlib.suppress(Exception):
            run_tier(run, tier)
    return {t: r.status for t, r in run.results.tiers.items()}


def services_of(swarm: FakeSwarm) -> set[str]:
    return {name.split("_")[0] for name in swarm.services}


# -- which app later tiers use ---------------------------------------------------------


def test_install_keeps_its_app_for_the_later_tiers(make_run: MakeRun) -> None:
    run = make_run(tier_list=("install", "backup", "lint"))
    app = tiers.install(run)
    assert run.live_app is app
    assert app.role == "install"


def test_install_removes_its_app_when_no_later_tier_needs_one(
    make_run: MakeRun, swarm: FakeSwarm
) -> None:
    run = make_run(tier_list=("install", "lint"))
    app = tiers.install(run)
    assert run.live_app is None
    assert not [s for s in swarm.services if s.startswith(app.name)]


def test_install_starts_the_upgrade_base_meanwhile(make_run: MakeRun, swarm: FakeSwarm) -> None:
    run = make_run()
    app = tiers.install(run)
    assert run.early_base is not None
    base, early = run.early_base
    assert base == "1.0.0+1"
    assert swarm.deploys == [app.name, early.name]  # the base deployed before install awaits


def test_the_upgrade_takes_the_early_base_and_later_tiers_the_upgraded_app(
    ladder: Played,
) -> None:
    run = ladder.run
    installed, _, fresh = (run.apps.get(name) for name in run.stacks)
    assert [name.split("_")[0][-2:] for name in run.stacks] == ["i0", "u1", "r2"]  # one base
    assert run.live_app is not None
    assert run.live_app.name == run.stacks[1] == run.op_state["backup"]["app"]
    assert installed is None  # released once the upgrade passed
    assert fresh is None  # released once the restore passed
    assert run.op_state["upgrade"]["base"] == "1.0.0+1"
    assert run.live_app.tree.sha == run.fetch().sha


def test_upgrade_from_chooses_the_base(make_run: MakeRun) -> None:
    run = make_run(name="demo", upgrade_from="1.1.0+1", tier_list=("upgrade", "lint"))
    tiers.upgrade(run)
    assert run.results.refs["base_tags"] == ["1.1.0+1"]


def test_an_upgrade_without_an_earlier_release_is_structurally_skipped(
    make_run: MakeRun,
) -> None:
    run = make_run(name="provider")
    assert play(run, "install", "upgrade")["upgrade"] == "skip"
    assert "no release before the candidate" in run.results.tiers["upgrade"].reason


# -- a base that does not install ------------------------------------------------------


def test_a_base_that_does_not_install_leaves_the_upgrade_unverified_not_failed(
    badbase: Played,
) -> None:
    assert (badbase.statuses["install"], badbase.statuses["upgrade"]) == ("pass", "unver")
    result = badbase.run.results.tiers["upgrade"]
    assert "base release 1.0.0+1 does not install" in result.reason
    assert result.failure_class is None  # neither the recipe's failure nor infra


def test_after_a_base_failure_the_later_tiers_run_on_the_install_app(badbase: Played) -> None:
    run = badbase.run
    assert run.live_app is not None
    assert run.live_app.role == "install"
    assert badbase.statuses["backup"] == "pass"
    assert run.op_state["backup"]["app"] == run.stacks[0]


def test_after_a_base_failure_the_level_stops_below_upgrade(badbase: Played) -> None:
    document = badbase.run.results.document()
    assert document["level"] == 1
    assert document["rungs"]["backup_restore"]["status"] == "pass"


# -- infra and recipe failures ---------------------------------------------------------


def test_an_infra_error_mid_tier_is_retried_once(make_run: MakeRun, swarm: FakeSwarm) -> None:
    run = make_run(tier_list=("install", "lint"))
    swarm.faults["deploy"] = 1
    assert play(run, "install") == {"install": "pass"}
    assert len(swarm.deploys) == 1  # the second attempt's deploy


def test_an_infra_error_twice_is_unverified_infra_never_the_recipes(
    make_run: MakeRun, swarm: FakeSwarm
) -> None:
    run = make_run(tier_list=("install", "lint"))
    swarm.faults["deploy"] = 2
    with pytest.raises(EngineError):
        run_tier(run, "install")
    result = run.results.tiers["install"]
    assert (result.status, result.failure_class, result.attempts) == ("unver", "infra", 2)


def test_the_engine_must_answer_before_the_retry(make_run: MakeRun, swarm: FakeSwarm) -> None:
    run = make_run(tier_list=("install", "lint"))
    swarm.faults.update(deploy=1, ping=2)
    assert play(run, "install") == {"install": "pass"}
    assert swarm.faults["ping"] == 0  # asked until it answered


def test_a_recipe_failure_is_the_recipes_and_not_retried(
    make_run: MakeRun, swarm: FakeSwarm
) -> None:
    run = make_run(name="crash", tier_list=("install", "lint"))
    with pytest.raises(ConvergeError, match="crash-looping"):
        run_tier(run, "install")
    result = run.results.tiers["install"]
    assert (result.status, result.failure_class, result.attempts) == ("fail", "recipe", 1)
    assert len([d for d in swarm.deploys if d.startswith("crash")]) == 1


def test_a_failed_tier_blocks_the_later_ones_but_not_lint(make_run: MakeRun) -> None:
    run = make_run(name="crash", tier_list=("install", "upgrade", "backup", "lint"))
    play(run, "install")
    with pytest.raises(Blocked, match="install failed: upgrade cannot run"):
        run_tier(run, "upgrade")
    statuses = play(run, "backup", "lint")
    assert (statuses["upgrade"], statuses["backup"]) == ("unver", "unver")
    assert run.results.tiers["lint"].reason != "install failed: lint cannot run"
    assert run.results.lint is not None  # lint ran


def test_a_designed_failure_says_so_in_the_blocked_tiers(make_run: MakeRun) -> None:
    run = make_run(name="crash", meta='EXPECT_FAIL = "install"\n', tier_list=("install", "upgrade"))
    play(run, "install", "upgrade")
    assert run.results.tiers["upgrade"].reason == "install failed as designed: upgrade cannot run"
    assert run.results.document()["expected_level"] == 0  # designed: install counts failed


def test_an_infra_failure_blocks_the_later_tiers_too(make_run: MakeRun, swarm: FakeSwarm) -> None:
    run = make_run(tier_list=("install", "upgrade"))
    swarm.faults["deploy"] = 2
    statuses = play(run, "install", "upgrade")
    assert statuses == {"install": "unver", "upgrade": "unver"}
    assert run.results.tiers["upgrade"].reason == "install failed: upgrade cannot run"


# -- backup, restore: skip, n/a, ordering ----------------------------------------------


def test_no_backup_labels_is_unverified_a_coverage_gap(make_run: MakeRun) -> None:
    run = make_run(name="provider", tier_list=("install", "backup", "lint"))
    assert play(run, "install", "backup")["backup"] == "unver"
    assert "not backup-capable" in run.results.tiers["backup"].reason


def test_no_backup_labels_declared_na_is_skipped(make_run: MakeRun) -> None:
    meta = 'EXPECTED_NA = {"backup_restore": "stateless"}\n'
    run = make_run(name="provider", meta=meta, tier_list=("install", "backup", "lint"))
    assert play(run, "install", "backup")["backup"] == "skip"
    assert run.results.document()["rungs"]["backup_restore"]["status"] == "skip"


def test_backup_capable_without_labels_is_the_recipes_failure(make_run: MakeRun) -> None:
    run = make_run(name="provider", meta="BACKUP_CAPABLE = True\n", tier_list=("install", "backup"))
    tiers.install(run)
    with pytest.raises(PlanError, match=r"no service has backupbot\.backup=true"):
        tiers.back_up(run)


def test_backup_without_a_live_app_is_unverified(make_run: MakeRun) -> None:
    run = make_run(tier_list=("backup", "lint"))
    with pytest.raises(Unverifiable, match="no live app"):
        tiers.back_up(run)


def test_backup_captures_the_seeded_data(ladder: Played) -> None:
    run = ladder.run
    [(_, found)] = run.backups
    with tarfile.open(found.path) as tar:
        marker = tar.extractfile("data/.ccci-marker")
        assert marker is not None
        assert marker.read().decode() == f"{run.id}:backup"
    assert run.op_state["backup"]["archives"][0]["sha256"] == found.sha256


def test_restore_without_a_backup_is_unverified(make_run: MakeRun) -> None:
    run = make_run(tier_list=("install", "restore", "lint"))
    assert play(run, "install", "restore")["restore"] == "unver"


def test_a_cold_restore_fills_the_fresh_apps_volumes_before_it_starts(ladder: Played) -> None:
    run, swarm = ladder.run, ladder.swarm
    assert ladder.statuses["restore"] == "pass"
    fresh = run.op_state["restore"]["fresh_app"]
    volume = f"{fresh}_data"
    assert swarm.events.index(f"volume {volume}") < swarm.events.index(f"deploy {fresh}")
    first_restore = next(e for e in swarm.events if e.startswith("helper") and "restore" in e)
    assert first_restore == f"helper {volume} restore"  # into the fresh app, before its start
    assert swarm.events.index(first_restore) < swarm.events.index(f"deploy {fresh}")
    assert (swarm.volumes / volume / ".ccci-marker").read_text() == f"{run.id}:backup"
    assert not [s for s in swarm.services if s.startswith(fresh)]  # released after


def test_a_restore_with_hooks_restores_the_fresh_app_once_it_runs(hooked: Played) -> None:
    run, swarm = hooked.run, hooked.swarm
    assert hooked.statuses["restore"] == "pass"
    app, fresh = run.op_state["restore"]["app"], run.op_state["restore"]["fresh_app"]
    restored = [e for e in swarm.events if e.startswith("helper") and "restore" in e]
    assert restored == [f"helper {app}_data restore", f"helper {fresh}_data restore"]
    started = swarm.events.index(f"deploy {fresh}")
    assert swarm.events.index(restored[1]) > started  # its hooks need its running container
    hooks = [name.rsplit("_", 1)[0] for name, argv in swarm.execs if argv[-1] == "reload"]
    assert hooks == [app, fresh]  # the running app's post-hook first, then the fresh one's
    assert f"{app}_app" in swarm.restarts  # what reads the restored data restarted


def test_the_restore_changes_the_data_after_the_backup_and_brings_it_back(
    ladder: Played,
) -> None:
    run, swarm = ladder.run, ladder.swarm
    changed = [h for h in swarm.helpers if "changed-after-backup" in h]
    assert len(changed) == 1
    assert swarm.helpers.index(changed[0]) < swarm.helpers.index(
        next(h for h in swarm.helpers if "ccci-restore" in h)
    )
    live = run.live_app
    assert live is not None
    assert (swarm.volumes / f"{live.name}_data" / ".ccci-marker").read_text() == (
        f"{run.id}:backup"
    )


# -- the level, what is recorded, teardown ---------------------------------------------


def test_every_tier_passing_reaches_the_level_below_custom(ladder: Played) -> None:
    statuses = ladder.statuses
    assert {t: s for t, s in statuses.items() if t != "lint"} == dict.fromkeys(ALL[:-1], "pass")
    document = ladder.run.results.document()
    assert document["level"] == 3  # custom did not run: unver stops the ladder there
    assert document["rungs"]["custom"]["status"] == "unver"


def test_what_an_app_reports_reaches_results(make_run: MakeRun) -> None:
    run = make_run(tier_list=("install", "lint"), platform=Platform("remote", ipvs=False))
    app = tiers.install(run)
    assert run.results.stamps[app.name]["version"] == "1.1.0+1"
    assert "all services: endpoint_mode dnsrr (no IPVS for VIPs)" in run.overlays
    saved = json.loads((run.dir / "results.json").read_text())
    assert saved["platform"]["overlays"] == run.overlays


def test_closing_a_run_removes_every_app_and_resource(make_run: MakeRun, swarm: FakeSwarm) -> None:
    run = make_run(tier_list=("install", "upgrade", "backup"))
    play(run, "install", "upgrade")
    assert len(swarm.services) == 1  # the live app: the upgraded one
    assert swarm.labelled(f"{RUN_LABEL}={run.id}")
    run.close()
    assert swarm.services == {}
    assert swarm.labelled(f"{RUN_LABEL}={run.id}") == []
    assert run.results.finished is not None


def test_a_run_writes_nothing_into_the_process_environment(make_run: MakeRun) -> None:
    before = dict(os.environ)
    run = make_run(meta='DEPS = ("provider",)\n', tier_list=("install", "backup", "lint"))
    assert play(run, "install", "backup") == {"install": "pass", "backup": "pass"}
    run.close()
    assert dict(os.environ) == before


# -- DEPS ------------------------------------------------------------------------------


def test_deps_are_provided_first_reach_the_hooks_and_close_with_the_run(
    make_run: MakeRun, swarm: FakeSwarm
) -> None:
    run = make_run(meta='DEPS = ("provider",)\n', tier_list=("install", "lint"))
    app = tiers.install(run)
    [dependency] = run.dependencies
    assert swarm.deploys[0].startswith("provider")
    entry = app.ctx("install").deps["provider"]
    assert entry["client_id"] == "cc-ci"
    assert entry["url"].startswith("https://provider-")
    assert app.deploy_file is not None
    deployed = yaml.safe_load(app.deploy_file.read_text())
    assert dependency.live_app is not None
    joined = deployed["networks"]["ccci_dependency_0"]["name"]
    assert joined == f"{dependency.live_app.name}_default"
    assert json.loads((run.dir / "deps.json").read_text())["provider"]["client_id"] == "cc-ci"
    run.close()  # the dependency's own run is closed with the recipe's
    assert swarm.labelled(f"{RUN_LABEL}={dependency.id}") == []
    assert dependency.results.finished is not None


def test_a_dependency_that_fails_is_infra_and_leaves_nothing(
    make_run: MakeRun, swarm: FakeSwarm
) -> None:
    run = make_run(meta='DEPS = ("provider",)\n', tier_list=("install", "lint"))
    swarm.failing.add("cc-ci/busybox:bookworm")
    with pytest.raises(DependencyError, match="dependency provider: ConvergeError"):
        run_tier(run, "install")
    result = run.results.tiers["install"]
    assert (result.status, result.failure_class, result.attempts) == ("unver", "infra", 2)
    assert run.dependencies == []
    assert not [s for s in swarm.services if s.startswith("provider")]
