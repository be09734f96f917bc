"""A recipe under test is untrusted: what it asks of the swarm goes through the deploy
policy, what it runs is bounded, what its recipe dir executes cannot hang collection."""

from __future__ import annotations

import json
import subprocess

import pytest

from tests.conftest import WEB_APP, Workspace

pytestmark = pytest.mark.e2e


def _with_volumes(*mounts: str) -> str:
    lines = "".join(f"      - {m}\n" for m in mounts)
    return WEB_APP.replace(
        "    networks: [proxy]\n", f"    networks: [proxy]\n    volumes:\n{lines}"
    )


def test_a_docker_socket_mount_is_refused_before_anything_is_created(
    workspace: Workspace,
) -> None:
    workspace.recipe(
        "hostile", [("1.0.0+1", _with_volumes("/:/host", "/var/run/docker.sock:/docker.sock"))]
    )
    session = workspace.pytest("recipes/hostile", "--tiers", "install")
    assert session.tier_outcomes == {"recipes/hostile::install": "FAILED"}, session.output
    assert "PolicyError: policy host-root: service app: /:/host" in session.output
    assert "policy docker.sock: service app: /var/run/docker.sock:/docker.sock" in session.output
    (doc,) = session.results()
    assert doc["tiers"]["install"]["failure_class"] == "recipe"
    (run_dir,) = workspace.runs_dir.iterdir()
    trace = json.loads((run_dir / "trace.json").read_text())
    steps = {c["name"] for t in trace["children"] for c in t["children"]}
    assert "policy" in steps
    assert not steps & {"secrets", "deploy"}  # nothing reached the swarm
    assert not list(run_dir.glob("deploy-*.yml"))
    session.assert_nothing_left()


def test_what_a_recipe_dir_allows_deploys_and_is_recorded(workspace: Workspace) -> None:
    workspace.recipe(
        "allowed",
        [("1.0.0+1", _with_volumes("/etc/hostname:/host-hostname:ro"))],
        meta='ALLOW = {"bind-mount": "reads the host name, as the real recipe does"}\n',
    )
    session = workspace.pytest("recipes/allowed", "--tiers", "install")
    assert session.tier_outcomes == {"recipes/allowed::install": "PASSED"}, session.output
    (doc,) = session.results()
    assert doc["policy"] == {
        "allowed": {"bind-mount": "reads the host name, as the real recipe does"},
        "used": [
            "policy bind-mount: service app: /etc/hostname:/host-hostname"
            " (a host bind mount reads or writes the CI host's files)"
        ],
    }
    assert doc["customization"]["meta_non_default"]["ALLOW"] == {
        "bind-mount": "reads the host name, as the real recipe does"
    }
    session.assert_nothing_left()


def test_every_service_runs_with_limits_and_an_oom_kill_is_named(workspace: Workspace) -> None:
    # Holds 64 MiB in a shell variable: killed by the OOM killer at the 32 MiB limit.
    hungry = WEB_APP.replace(
        "mkdir -p /www && echo ok >/www/index.html && exec httpd -f -p 8080 -h /www",
        "x=$$(head -c 67108864 /dev/zero | tr '\\0' a); sleep 600",
    )
    workspace.recipe("hungry", [("1.0.0+1", hungry)], meta='RESOURCES = {"memory": "32M"}\n')
    session = workspace.pytest("recipes/hungry", "--tiers", "install")
    assert session.tier_outcomes == {"recipes/hungry::install": "FAILED"}, session.output
    assert "was killed: out of memory at 32 MiB" in session.output
    (run_dir,) = workspace.runs_dir.iterdir()
    (deployed,) = run_dir.glob("deploy-*.yml")
    assert '"pids": 1024' in deployed.read_text() or "pids: 1024" in deployed.read_text()
    session.assert_nothing_left()


def test_a_spinning_recipe_meta_fails_collection_of_its_dir_only(workspace: Workspace) -> None:
    workspace.recipe("spins", [("1.0.0+1", WEB_APP)], meta="while True:\n    pass\n")
    workspace.recipe("fine", [("1.0.0+1", WEB_APP)])
    listed = subprocess.run(
        [
            *workspace.argv(
                "recipes/spins", "recipes/fine", "--co", "-qq", "--continue-on-collection-errors"
            )
        ],
        cwd=workspace.root,
        capture_output=True,
        text=True,
        timeout=120,
    )
    out = listed.stdout + listed.stderr
    assert "recipe_meta.py: did not finish within 10s" in out, out
    assert "recipes/fine::install" in out
    assert "recipes/spins::install" not in out


def test_limits_reach_the_running_containers(workspace: Workspace) -> None:
    workspace.recipe("bounded", [("1.0.0+1", WEB_APP)])
    recipe_dir = workspace.root / "recipes" / "bounded"
    (recipe_dir / "functional").mkdir()
    (recipe_dir / "functional" / "test_limits.py").write_text(
        "def test_limits(app):\n"
        "    read = 'cat /sys/fs/cgroup/pids/pids.max || cat /sys/fs/cgroup/pids.max'\n"
        "    assert app.exec('app', ['sh', '-c', read]).stdout.strip() == '1024'\n"
    )
    session = workspace.pytest("recipes/bounded", "--tiers", "install,custom")
    outcome = session.outcomes["recipes/bounded/functional/test_limits.py::test_limits"]
    assert outcome == "PASSED", session.output
    session.assert_nothing_left()
