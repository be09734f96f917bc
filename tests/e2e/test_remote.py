"""The remote platform for real: a demo recipe's whole life on a second Docker engine in a
network namespace of the test's own (TLS over TCP on the namespace's address, its own data
root), its apps reached only through that engine's proxy — health, probes, the screenshot,
backups — at their domains (SNI and Host the app's domain, dialled at the proxy's address).
Zero leak on both engines; the janitor leaves alone what another host's run holds."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.lifecycle.labels import HOST_LABEL, RUN_LABEL
from tests.conftest import WEB_APP, Workspace
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
    from harness.lifecycle.labels import host_id
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


def test_a_docker_context_is_the_engine_for_the_sdk_and_the_cli_alike(
    remote: RemoteEngine, tmp_path: Path
) -> None:
    """``DOCKER_CONTEXT`` names the remote engine (TLS material in the context): the SDK
    side of cc-ci and the docker CLI it runs must both talk to it, and the platform is
    remote."""
    config = tmp_path / "docker-config"  # a CLI config of the test's own
    config.mkdir()
    (config / "config.json").write_text("{}\n")  # docker-py looks for contexts beside it
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("DOCKER_")},
        "DOCKER_CONFIG": str(config),
    }
    certs = remote.certs
    tls = ",".join(f"{k}={certs / f'{k}.pem'}" for k in ("ca", "cert", "key"))
    endpoint = f"host={remote.host},{tls}"
    subprocess.run(
        ["docker", "context", "create", "ccci-remote", "--docker", endpoint],
        env=env,
        check=True,
        capture_output=True,
    )
    probe = (
        "from harness.lifecycle.platform import detect\n"
        "from harness.swarm.engine import client, where\n"
        "print(where(), detect().name, client().info()['Swarm']['NodeAddr'])\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe],
        env={**env, "DOCKER_CONTEXT": "ccci-remote", "CCCI_DOMAIN": DOMAIN},
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    seen = done.stdout.split()
    assert seen == [remote.host, "remote", remote.address]
    cli = subprocess.run(
        ["docker", "info", "-f", "{{ .Swarm.NodeAddr }}"],
        env={**env, "DOCKER_CONTEXT": "ccci-remote"},
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    assert cli == remote.address


def test_a_failing_health_path_fails_install_through_the_proxy(
    remote: RemoteEngine, workspace: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    from harness.errors import ProbeError
    from harness.lifecycle import tiers
    from harness.lifecycle.platform import Platform
    from harness.lifecycle.run import Run
    from harness.recipe import customization
    from harness.swarm import engine

    routed = WEB_APP.replace(
        '        - "traefik.enable=true"\n',
        '        - "traefik.enable=true"\n'
        '        - "traefik.http.routers.${STACK_NAME}.rule=Host(`${DOMAIN}`)"\n',
    )
    recipe_dir = workspace.recipe("gone", [("1.0.0+1", routed)], meta='HEALTH_PATH = "/gone"\n')
    for name, value in remote.env.items():
        monkeypatch.setenv(name, value)
    engine.client.cache_clear()
    engine._context.cache_clear()
    run = Run(
        customization.read(recipe_dir),
        catalogue=str(workspace.catalogue),
        ref=None,
        runs_root=workspace.runs_dir,
        deadline=30,  # the probe window is cut to what is left of it
        platform=Platform("remote", ipvs=False, domain=DOMAIN, proxy=remote.address),
        tiers=("install",),
    )
    try:
        with pytest.raises(
            ProbeError, match=rf"GET https://gone-\w+\.{re.escape(DOMAIN)}/gone .*answered 404"
        ):
            tiers.install(run)
        assert remote.labelled(f"{RUN_LABEL}={run.id}")  # deployed there, not here
        assert _local_labelled(run.id) == ""
    finally:
        run.close()
        engine.client.cache_clear()
        engine._context.cache_clear()
    assert f'-{run.id}i0.{DOMAIN} 404 "GET /gone' in remote.access_log()  # the app's own 404
    assert remote.labelled(f"{RUN_LABEL}={run.id}") == []
