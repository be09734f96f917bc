"""The remote platform for real: a demo recipe's whole life on a second Docker engine in a
network namespace of the test's own (TLS over TCP on the namespace's address, its own data
root), its apps reached only through that engine's proxy — health, probes, the screenshot,
backups — at their domains (SNI and Host the app's domain, dialled at the proxy's address).
Zero leak on both engines; the janitor leaves alone what another host's run holds."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.lifecycle.platform import HOST_LABEL, RUN_LABEL
from tests.remote_engine import RemoteEngine, ensure_proxy_image

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
DOMAIN = "apps.remote.test"
IMAGES = ["cc-ci-demo/radicale:3.1.9", "cc-ci-demo/radicale:3.2.3", "cc-ci/busybox:bookworm"]


@pytest.fixture(scope="module")
def remote(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RemoteEngine]:
    ensure_proxy_image()
    engine = RemoteEngine(tmp_path_factory.mktemp("remote"), subnet=77)
    try:
        yield engine.start(IMAGES)
    finally:
        engine.stop()


def _local_labelled(run_id: str) -> str:
    kinds = ("service ls", "volume ls", "network ls", "secret ls", "config ls", "ps -a")
    env = {k: v for k, v in os.environ.items() if not k.startswith("DOCKER_")}
    return "".join(
        subprocess.run(
            ["docker", *kind.split(), "-q", "--filter", f"label={RUN_LABEL}={run_id}"],
            capture_output=True,
            text=True,
            check=True,
            env=env,
        ).stdout
        for kind in kinds
    )


def test_a_demo_recipe_reaches_its_level_on_a_remote_swarm_through_its_proxy(
    remote: RemoteEngine, tmp_path: Path
) -> None:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("DOCKER_")},
        **remote.env,
        "CCCI_DOMAIN": DOMAIN,
        "CCCI_PROXY": remote.address,
        "CCCI_IPVS": "no",  # the namespace shares this kernel, which has no IPVS
    }
    runs = tmp_path / "runs"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "no:cacheprovider",
            "-q",
            "recipes/radicale",
            "--runs-dir",
            str(runs),
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    [results_file] = runs.glob("radicale-*/results.json")
    results = json.loads(results_file.read_text())
    assert results["level"] == 5, results["tiers"]
    assert results["platform"]["name"] == "remote"
    run_id = results["run_id"]
    # Every app was reached at its domain through the proxy, and only there.
    trace = (results_file.parent / "trace.json").read_text()
    assert f".{DOMAIN}/" in trace
    log = remote.access_log()
    for role in ("i0", "u1", "r2"):
        assert f"-{run_id}{role}.{DOMAIN} 200" in log, log[-2000:]
    assert (results_file.parent / "screenshot.png").stat().st_size > 5000
    # Zero leak, on both engines.
    assert remote.labelled(f"{RUN_LABEL}={run_id}") == []
    assert _local_labelled(run_id) == ""


def test_the_janitor_leaves_another_hosts_runs_alone_and_sweeps_its_own(
    remote: RemoteEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    from harness.lifecycle import janitor
    from harness.lifecycle.platform import host_id
    from harness.swarm import engine

    volumes = remote.client.volumes
    theirs = volumes.create(
        "ccci-foreign", labels={RUN_LABEL: "foreign1", HOST_LABEL: "elsewhere-1"}
    )
    ours = volumes.create("ccci-own-dead", labels={RUN_LABEL: "owndead1", HOST_LABEL: host_id()})
    for name, value in remote.env.items():
        monkeypatch.setenv(name, value)
    engine.client.cache_clear()
    engine._context.cache_clear()
    try:
        swept = janitor.sweep_dead_runs(min_age=0)
    finally:
        engine.client.cache_clear()
        engine._context.cache_clear()
    assert "owndead1" in swept  # its lease is free here: dead
    assert "foreign1" not in swept  # a lease this host cannot see: not dead to it
    assert [v.name for v in volumes.list(filters={"label": f"{RUN_LABEL}=foreign1"})] == [
        theirs.name
    ]
    assert volumes.list(filters={"label": f"{RUN_LABEL}=owndead1"}) == []
    theirs.remove()
    del ours
