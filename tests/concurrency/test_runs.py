"""Many runs on one swarm, and runs that always clean up: real processes, real swarm."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path

import jsonschema
import pytest

from harness.lifecycle import janitor, teardown
from tests.conftest import SLOW_APP, WEB_APP, Session, Workspace

pytestmark = pytest.mark.e2e

SCHEMA = json.loads(
    (Path(__file__).resolve().parents[2] / "docs" / "results.schema.json").read_text()
)


def test_two_runs_of_the_same_recipe_at_once(workspace: Workspace) -> None:
    workspace.recipe(
        "web", [("1.0.0+1", WEB_APP), ("1.1.0+1", WEB_APP.replace("echo ok", "echo v2"))]
    )
    runs = [workspace.start("recipes/web") for _ in range(2)]
    outputs = [run.communicate(timeout=300)[0] for run in runs]
    for run, output in zip(runs, outputs, strict=True):
        assert run.returncode == 0, output
        assert "3 passed" in output, output  # install, upgrade, lint
    session = Session(0, "\n".join(outputs), workspace.runs_dir)
    assert len(session.run_ids()) == 2
    session.assert_nothing_left()


def test_xdist_keeps_each_recipes_tiers_in_order_on_one_worker(workspace: Workspace) -> None:
    for name in ("alpha", "beta"):
        recipe_dir = workspace.recipe(
            name, [("1.0.0+1", WEB_APP), ("1.1.0+1", WEB_APP.replace("echo ok", "echo v2"))]
        )
        (recipe_dir / "functional").mkdir()
        (recipe_dir / "functional" / "test_live.py").write_text(
            "def test_the_live_app_answers(app):\n    assert app.get('/').text == 'v2\\n'\n"
        )
    session = workspace.pytest("-n", "2", "--dist", "loadscope", "recipes/alpha", "recipes/beta")
    assert session.returncode == 0, session.output
    workers: dict[str, list[str]] = {}
    for line in session.output.splitlines():
        # "[gw0] [ 25%] PASSED recipes/alpha::install"
        if "PASSED recipes/" in line and line.startswith("[gw"):
            recipe = "/".join(line.split("PASSED ")[1].split("::")[0].split("/")[:2])
            workers.setdefault(recipe, []).append(line[:5])
    assert set(workers) == {"recipes/alpha", "recipes/beta"}, session.output
    for recipe, seen in workers.items():
        assert len(seen) == 4, (recipe, session.output)  # install, upgrade, the custom test, lint
        assert len(set(seen)) == 1, f"{recipe} ran on {seen}"
    session.assert_nothing_left()


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_interrupted_mid_deploy_leaves_nothing(workspace: Workspace, signum: int) -> None:
    workspace.recipe("slow", [("1.0.0+1", SLOW_APP)])
    inner = workspace.start("recipes/slow", "--tiers", "install")
    workspace.wait_deployed(inner)
    inner.send_signal(signum)
    output, _ = inner.communicate(timeout=120)
    assert inner.returncode == 2, output  # interrupted, through teardown
    assert "KeyboardInterrupt" in output
    Session(inner.returncode, output, workspace.runs_dir).assert_nothing_left()


def test_a_killed_run_is_swept_by_the_next_session(workspace: Workspace) -> None:
    workspace.recipe("slow", [("1.0.0+1", SLOW_APP)])
    workspace.recipe("web", [("1.0.0+1", WEB_APP)])
    killed = workspace.start("recipes/slow", "--tiers", "install")
    run_id = workspace.wait_deployed(killed)
    assert janitor.is_alive(run_id)
    killed.kill()  # SIGKILL: no teardown at all
    killed.wait()
    assert not janitor.is_alive(run_id)
    assert teardown.leftovers(run_id), "a SIGKILLed run should have left its resources"
    # A live run of another session is never touched; this one is dead.
    nxt = workspace.pytest("recipes/web", "--tiers", "install", "--janitor-age", "0")
    assert nxt.returncode == 0, nxt.output
    assert f"cc-ci janitor: removed leftovers of dead runs: {run_id} (" in nxt.output
    deadline = time.monotonic() + 30
    while teardown.leftovers(run_id):
        assert time.monotonic() < deadline, teardown.leftovers(run_id)
        time.sleep(0.5)


def test_live_runs_of_another_session_are_never_swept(workspace: Workspace) -> None:
    workspace.recipe("slow", [("1.0.0+1", SLOW_APP)])
    workspace.recipe("web", [("1.0.0+1", WEB_APP)])
    live = workspace.start("recipes/slow", "--tiers", "install")
    try:
        run_id = workspace.wait_deployed(live)
        other = workspace.pytest("recipes/web", "--tiers", "install", "--janitor-age", "0")
        assert other.returncode == 0, other.output
        assert run_id not in other.output
        assert teardown.leftovers(run_id), "the live run's resources were swept"
    finally:
        live.send_signal(signal.SIGINT)
        live.communicate(timeout=120)
    assert teardown.leftovers(run_id) == {}


# 1.0.0 writes data format 1; 1.1.0 starts at once on an empty volume but takes minutes to
# migrate format-1 data: install passes quickly and the upgrade is caught in the middle.
MIGRATING = (
    WEB_APP.replace(
        "      - mkdir -p /www && echo ok >/www/index.html && exec httpd -f -p 8080 -h /www\n",
        "      - |\n"
        "        [ -f /www/format ] || echo @FORMAT@ >/www/format\n"
        '        [ "$$(cat /www/format)" = @FORMAT@ ] || sleep 600\n'
        "        echo ok >/www/index.html\n"
        "        exec httpd -f -p 8080 -h /www\n"
        '    volumes: ["www:/www"]\n',
    )
    + "volumes:\n  www:\n"
)


def test_sigkill_mid_upgrade_leaves_valid_partial_results(workspace: Workspace) -> None:
    workspace.recipe(
        "migrating",
        [
            ("1.0.0+1", MIGRATING.replace("@FORMAT@", "1")),
            ("1.1.0+1", MIGRATING.replace("@FORMAT@", "2")),
        ],
    )
    inner = workspace.start("recipes/migrating")
    session = Session(0, "", workspace.runs_dir)
    deadline = time.monotonic() + 120
    while True:  # until the upgrade tier is under way, past its base deploy
        assert time.monotonic() < deadline, "the upgrade never started"
        assert inner.poll() is None, inner.communicate()[0]
        docs = session.results()
        upgrade = docs[0]["tiers"].get("upgrade") if docs else None
        if upgrade and len(list(workspace.runs_dir.glob("*/deploy-*u*-2.yml"))) == 1:
            break
        time.sleep(0.2)
    inner.kill()
    inner.communicate()
    (doc,) = session.results()
    try:
        jsonschema.validate(doc, SCHEMA)
        assert doc["tiers"]["install"]["status"] == "pass"
        assert doc["tiers"]["upgrade"]["status"] == "unver"
        assert doc["tiers"]["upgrade"]["reason"].startswith("interrupted")
        assert doc["finished"] is None
        assert doc["level"] == 1
    finally:
        teardown.remove_run(doc["run_id"])  # what the next session's janitor would do
    assert teardown.leftovers(doc["run_id"]) == {}


def test_the_janitor_frees_the_claims_and_leases_of_dead_runs(tmp_path: Path) -> None:
    import os

    leases, ports = tmp_path / "leases", tmp_path / "ports"
    dead = janitor.Lease("dead01", leases).acquire()
    janitor.reserve_port("dead01", ports)
    dead._lock.release()  # as a SIGKILL would: the kernel drops the flock, the files stay
    live = janitor.Lease("live01", leases).acquire()
    janitor.reserve_port("live01", ports)
    janitor.Lease("young1", leases).acquire()._lock.release()  # dead too, but just now
    long_ago = time.time() - 3600
    for path in [*leases.iterdir(), *ports.iterdir()]:
        if "young1" not in path.name and (not path.name.isdigit() or "dead01" in path.read_text()):
            os.utime(path, (long_ago, long_ago))
    janitor.sweep_dead_runs(min_age=60, leases=leases, ports=ports)
    owners = sorted(p.read_text() for p in ports.iterdir() if p.name.isdigit())
    assert owners == ["live01"]
    assert sorted(p.stem for p in leases.glob("*.lock")) == ["live01", "young1"]
    janitor.release_ports("live01", ports)  # and its firewall rules
    live.release()
