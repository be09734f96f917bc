"""The bundled demo recipes, as `pytest recipes/<name>` runs them: real apps, canaries."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from harness.config import DEFAULT_CATALOGUE
from harness.lifecycle import teardown
from tests.conftest import Session, Workspace

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
DEMOS = ("radicale", "kinto", "crashloop", "badupgrade", "badbackup", "idp", "jupyterhub")


@pytest.fixture(scope="module")
def demo_session(tmp_path_factory: pytest.TempPathFactory) -> Session:
    workspace = Workspace(tmp_path_factory.mktemp("demo"))
    done = subprocess.run(
        workspace.argv(*(f"recipes/{d}" for d in DEMOS), catalogue=DEFAULT_CATALOGUE),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=1200,
    )
    return Session(done.returncode, done.stdout + done.stderr, workspace.runs_dir)


@pytest.mark.parametrize(
    ("recipe", "tiers"),
    [
        # PyPI 3.1.9 -> 3.2.3, config v1 -> v2; collections backed up as files
        ("radicale", ("PASSED", "PASSED", "PASSED", "PASSED")),
        # kinto 26.4 -> 26.5 on PostgreSQL; pg_dump by pre-hook, reloaded by post-hook
        ("kinto", ("PASSED", "PASSED", "PASSED", "PASSED")),
        ("crashloop", ("XFAIL", "SKIPPED", "SKIPPED", "SKIPPED")),  # designed: install
        ("badupgrade", ("PASSED", "XFAIL", "SKIPPED", "SKIPPED")),  # designed: upgrade
        ("badbackup", ("PASSED", "SKIPPED", "XFAIL", "SKIPPED")),  # designed: backup
        # JupyterHub 5.4 -> 5.5, users from the idp dependency over OpenID Connect
        ("jupyterhub", ("PASSED", "PASSED", "PASSED", "PASSED")),
    ],
)
def test_each_demo_reaches_its_designed_outcome(
    demo_session: Session, recipe: str, tiers: tuple[str, ...]
) -> None:
    outcomes = demo_session.outcomes
    for tier, expected in zip(("install", "upgrade", "backup", "restore"), tiers, strict=True):
        assert outcomes.get(f"recipes/{recipe}::{tier}") == expected, (tier, demo_session.output)


def test_the_session_is_green_because_canaries_failed_as_designed(demo_session: Session) -> None:
    assert demo_session.returncode == 0, demo_session.output


def test_canary_failures_carry_the_service_log_line(demo_session: Session) -> None:
    out = demo_session.output
    assert "crash-looping" in out
    assert "crashloop: cannot open /etc/crashloop/settings.ini: No such file or directory" in out
    assert "update rollback_" in out
    assert "badupgrade: data format 1 is not supported (expected 2): refusing to start" in out
    assert "captured only empty files at data/dump.sql: data/dump.sql (0 bytes)" in out


def test_every_demo_run_left_nothing(demo_session: Session) -> None:
    assert len(demo_session.run_ids()) == len(DEMOS)
    demo_session.assert_nothing_left()


SCHEMA = json.loads((ROOT / "docs" / "results.schema.json").read_text())


@pytest.mark.parametrize(
    ("recipe", "level"),
    [
        ("radicale", 5),
        ("kinto", 5),
        ("crashloop", 0),
        ("badupgrade", 1),
        ("badbackup", 1),
        ("idp", 5),  # install and lint; the rest declared n/a
        ("jupyterhub", 5),
    ],
)
def test_results_json_validates_and_says_how_far_each_got(
    demo_session: Session, recipe: str, level: int
) -> None:
    (doc,) = [d for d in demo_session.results() if d["recipe"] == recipe]
    jsonschema.validate(doc, SCHEMA)
    assert doc["level"] == doc["expected_level"] == level
    assert doc["lint"]["status"] == "pass"
    assert doc["finished"] is not None
    assert doc["refs"]["candidate_sha"]
    assert doc["platform"]["overlays"]
    (run_dir,) = demo_session.runs_dir.glob(f"{recipe}-*")
    trace = json.loads((run_dir / "trace.json").read_text())
    install = trace["children"][0]
    assert install["name"] == "install"
    steps = [(c["name"], c["context"].get("app", "")) for c in install["children"]]
    mine = [name for name, app in steps if "i0_" in app or name == "fetch"]
    assert mine[:7] == ["fetch", "plan", "policy", "secrets", "pull", "deploy", "converge"], steps
    if recipe not in ("badbackup", "crashloop", "idp"):  # those have no earlier release
        # the upgrade's base is deployed while the install converges
        assert any(name == "deploy" and "u1_" in app for name, app in steps), steps
    assert trace["status"] == "finished"
    assert (run_dir / "harness.log").read_text().count("INFO") > 3


def test_jupyterhub_logs_a_user_in_through_its_identity_provider(demo_session: Session) -> None:
    """The idp dependency is provided first (a run of its own, in the run's deps/), the
    Playwright test logs in through the provider's own login page, and both runs leave
    nothing behind."""
    login = (
        "recipes/jupyterhub/playwright/test_login.py"
        "::test_a_user_logs_in_through_the_identity_provider"
    )
    assert demo_session.outcomes.get(login) == "PASSED", demo_session.output
    (run_dir,) = demo_session.runs_dir.glob("jupyterhub-*")
    (dep_dir,) = (run_dir / "deps").glob("idp-*")
    entry = json.loads((run_dir / "deps.json").read_text())["idp"]
    assert entry["internal_url"].startswith("http://idp-")
    assert teardown.leftovers(dep_dir.name.rsplit("-", 1)[1]) == {}


@pytest.mark.parametrize("recipe", ["radicale", "kinto"])
def test_trace_has_a_span_for_every_step(demo_session: Session, recipe: str) -> None:
    (run_dir,) = demo_session.runs_dir.glob(f"{recipe}-*")
    trace = json.loads((run_dir / "trace.json").read_text())

    def names(span: dict[str, Any]) -> set[str]:
        return {span["name"]}.union(*(names(c) for c in span["children"]))

    steps = {
        "fetch",
        "plan",
        "secrets",
        "pull",
        "deploy",
        "converge",
        "stamp",
        "probe",
        "screenshot",
    }
    steps |= {"policy", "seed", "verify", "settle", "backup", "restore", "teardown"}
    assert steps <= names(trace), steps - names(trace)


def test_summary_table_and_manifest_are_printed(demo_session: Session) -> None:
    assert "cc-ci summary (level/expected; ! = below expected)" in demo_session.output
    assert "cc-ci customization of kinto:" in demo_session.output
    assert "hooks: READY_PROBE, SEED_DATA, VERIFY_DATA" in demo_session.output


@pytest.mark.parametrize("recipe", ["radicale", "kinto"])
def test_screenshot_is_a_real_render(demo_session: Session, recipe: str) -> None:
    (doc,) = [d for d in demo_session.results() if d["recipe"] == recipe]
    assert doc["artifacts"]["screenshot"] == "screenshot.png"
    (run_dir,) = demo_session.runs_dir.glob(f"{recipe}-*")
    png = (run_dir / "screenshot.png").read_bytes()
    assert png.startswith(b"\x89PNG")
    assert len(png) > 10_000  # measured: blank 1280x800 page 4.7 kB; these renders 15-28 kB
