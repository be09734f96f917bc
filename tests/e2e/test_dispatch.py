"""``cc-ci serve --dispatch``: a `!testme` job handed to a CI engine as a pipeline, for
real — the fake forge and a fake Woodpecker / Drone (documented APIs, tests/fake_ci.py)
over real HTTP, whose agent runs the pipeline file of docs/ci/ as the local / exec backend
does: `cc-ci job`, a real run on the local swarm, results in the runs dir it shares with
the service. The trigger's answer is lost and the service is stopped mid-pipeline: one
pipeline all the same, adopted after the restart, and one verdict on the PR."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import Workspace
from tests.e2e.test_serve import Service, _final, _nothing_left, forge, project  # noqa: F401
from tests.fake_ci import TOKEN as CI_TOKEN
from tests.fake_ci import FakeDrone, FakeEngine, FakeWoodpecker, ShellAgent
from tests.fake_gitea import FakeGitea, Repo

pytestmark = pytest.mark.e2e

DOCS = Path(__file__).resolve().parents[2] / "docs" / "ci"
FAKES = {"woodpecker": FakeWoodpecker, "drone": FakeDrone}
PRIVATE = ("CCCI_CI_TOKEN", "CCCI_FORGE_TOKEN", "CCCI_WEBHOOK_SECRET")


@pytest.fixture(params=sorted(FAKES))
def ci(request: pytest.FixtureRequest, workspace: Workspace) -> Iterator[tuple[str, FakeEngine]]:
    env = {k: v for k, v in os.environ.items() if k not in PRIVATE}
    env["PATH"] = f"{Path(sys.executable).parent}:{env.get('PATH', '')}"  # cc-ci, as installed
    env["CCCI_STATE_DIR"] = str(workspace.root / "agent-state")
    agent = ShellAgent(DOCS / f"{request.param}.yml", workspace.root, env)
    fake = FAKES[request.param](agent).start()
    fake.add_repo("coop-cloud/cc-ci", {"main": "c" * 40})
    yield request.param, fake
    fake.stop()


def test_a_dispatched_job_runs_as_one_pipeline_through_a_lost_answer_and_a_restart(
    workspace: Workspace,
    forge: FakeGitea,  # noqa: F811
    project: tuple[Repo, Repo],  # noqa: F811
    ci: tuple[str, FakeEngine],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    engine, fake = ci
    repo, _ = project
    sha = repo.pulls[1]["head"]["sha"]
    monkeypatch.setenv("CCCI_CI_TOKEN", CI_TOKEN)
    dispatch = ("--dispatch", engine, "--ci-url", fake.url, "--ci-repo", "coop-cloud/cc-ci")
    service = Service(workspace, forge, *dispatch).start()
    runs = fake.runs["coop-cloud/cc-ci"]
    try:
        fake.fail("lost")  # the first thing the service starts: the trigger, done, unanswered
        answer = forge.user_comments(repo, 1, "maintainer", "!testme")
        assert answer is not None
        assert answer.status_code == 202
        deadline = time.monotonic() + 60
        while not (runs and runs[0].status == "running"):
            assert time.monotonic() < deadline, service.log.read_text()
            time.sleep(0.2)
        service.stop()  # mid-pipeline: the pipeline goes on without the service
        listing = "/pipelines" if engine == "woodpecker" else "/builds"
        fake.fail("empty", 2, on=listing)
        fake.fail("502", 2, on=listing)
        service.start()
        final = _final(forge, sha, "cc-ci", 300, service)
    finally:
        service.stop()
    assert len(runs) == 1, [r.variables for r in runs]  # no retry, no restart made a second
    [run] = runs
    assert run.event == ("manual" if engine == "woodpecker" else "custom")
    assert run.variables["CCCI_SHA"] == sha
    assert run.variables["CCCI_RECIPE"] == "webapp"
    assert run.variables["CCCI_JOB"].endswith(":1")
    assert isinstance(fake.agent, ShellAgent)
    assert run.exit_code == 0, fake.agent.outputs
    assert final["status"] == "success", (final, service.log.read_text())
    assert final["description"].startswith("level 2/5"), final
    replies = [c for c in forge.comments_on(repo, 1) if c["user"]["login"] == "cc-ci-bot"]
    assert len(replies) == 1, replies
    assert "level 2/5" in replies[0]["body"]
    assert "| upgrade | ✅ pass |" in replies[0]["body"]
    # The agent's run saw none of the service's secrets.
    seen = (workspace.root / "run-env.txt").read_text()
    assert CI_TOKEN not in seen
    assert "CCCI_FORGE_TOKEN" not in seen
    assert f"pipeline #{run.number}" in (workspace.root / "state/jobs/1/output.log").read_text()
    _nothing_left(workspace)
