"""``cc-ci watch`` and the CI engine clients against fakes of Woodpecker and Drone that
follow their documented APIs (tests/fake_ci.py): late pipelines, flaky list endpoints,
failures, refusals, deadlines — and the token never in what is printed."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from harness.ci.api import CannotWatch, Drone, Woodpecker, connect
from harness.ci.watch import follow
from harness.cli import main
from harness.deadline import Deadline
from tests.fake_ci import TOKEN, FakeDrone, FakeEngine, FakeWoodpecker, after

SHA = "3f2a9c1d" + "0" * 32
Engine = tuple[str, FakeEngine]  # the engine's name and its fake, running
ENGINES = {"woodpecker": (FakeWoodpecker, Woodpecker), "drone": (FakeDrone, Drone)}


@pytest.fixture(params=sorted(ENGINES))
def engine(request: pytest.FixtureRequest) -> Iterator[Engine]:
    fake: FakeEngine = ENGINES[request.param][0](after(1.0, 0)).start()
    fake.add_repo("coop-cloud/radicale", {"main": SHA})
    yield request.param, fake
    fake.stop()


def _watch(
    monkeypatch: pytest.MonkeyPatch,
    engine_name: str,
    fake: FakeEngine,
    *args: str,
    token: str = TOKEN,
) -> int:
    monkeypatch.setenv("CCCI_CI_ENGINE", engine_name)
    monkeypatch.setenv("CCCI_CI_URL", fake.url)
    monkeypatch.setenv("CCCI_CI_TOKEN", token)
    return main(["watch", "--repo", "coop-cloud/radicale", "--commit", SHA, *args])


def test_a_late_pipeline_behind_flaky_answers_is_followed_to_success(
    engine: Engine, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    name, fake = engine
    fake.agent = after(10.0, 0)
    fake.push("coop-cloud/radicale", "main", SHA, appear_after=2.0)
    listing = "/pipelines" if name == "woodpecker" else "/builds"

    def flaky_once_listed() -> None:  # the list answers, then it fails every way it does
        while not any(path.endswith(listing) for _, path, _ in fake.requests):
            time.sleep(0.05)
        for kind, times in (("empty", 2), ("502", 2), ("204", 1)):
            fake.fail(kind, times, on=listing)

    threading.Thread(target=flaky_once_listed, daemon=True).start()
    started = time.monotonic()
    assert _watch(monkeypatch, name, fake, "--deadline", "60") == 0
    out = capsys.readouterr()
    assert time.monotonic() - started >= 2.0  # it waited for the pipeline to exist
    assert "no pipeline of 3f2a9c1d0000 yet" in out.out
    assert "pipeline #1: running (testme)" in out.out
    assert "pipeline #1: success" in out.out
    statuses = [code for _, path, code in fake.requests if path.endswith(listing)]
    assert statuses[1:6] == [200, 200, 502, 502, 204]  # the faults were met, and outlived
    assert TOKEN not in out.out + out.err


def test_a_failed_pipeline_exits_1(
    engine: Engine, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    name, fake = engine
    fake.agent = after(0.5, 3)
    fake.push("coop-cloud/radicale", "main", SHA)
    assert _watch(monkeypatch, name, fake) == 1
    assert "pipeline #1: failure" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("args", "token", "cause"),
    [
        ((), "not-the-token", "HTTP 401"),
        (("--repo", "coop-cloud/nope"), TOKEN, "not found"),
        (("--deadline", "3"), TOKEN, "deadline passed; last seen: no pipeline"),
    ],
)
def test_what_cannot_be_watched_exits_2_with_one_line(
    engine: Engine,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    args: tuple[str, ...],
    token: str,
    cause: str,
) -> None:
    name, fake = engine
    assert _watch(monkeypatch, name, fake, *args, token=token) == 2
    err = capsys.readouterr().err.strip()
    assert cause in err
    assert len(err.splitlines()) == 1
    assert token not in err


def test_an_engine_that_keeps_failing_ends_at_the_deadline(engine: Engine) -> None:
    name, fake = engine
    fake.fail("502", 1000)
    api = connect(name, fake.url, TOKEN)
    with pytest.raises(CannotWatch, match="still HTTP 502 at the deadline"):
        follow(api, "coop-cloud/radicale", Deadline(3), print, commit=SHA)


def test_a_trigger_whose_answer_is_lost_makes_one_pipeline_found_by_its_marker(
    engine: Engine,
) -> None:
    name, fake = engine
    api = connect(name, fake.url, TOKEN)
    handle = api.repo("coop-cloud/radicale", Deadline(10))
    fake.fail("lost")
    assert api.start(handle, "main", {"CCCI_JOB": "svc:7"}) is None  # outcome unknown
    found = [
        p for p in api.pipelines(handle, Deadline(10)) if p.variables.get("CCCI_JOB") == "svc:7"
    ]
    assert [p.number for p in found] == [1]
    assert len(fake.runs["coop-cloud/radicale"]) == 1
    assert [r.variables for r in fake.runs["coop-cloud/radicale"]] == [{"CCCI_JOB": "svc:7"}]


def test_bad_settings_are_refused_by_name() -> None:
    with pytest.raises(CannotWatch, match="not one of woodpecker, drone"):
        connect("jenkins", "http://127.0.0.1:1", TOKEN)
    with pytest.raises(CannotWatch, match="CCCI_CI_TOKEN"):
        connect("drone", "http://127.0.0.1:1", "")


@pytest.mark.parametrize(
    ("url", "repo"),
    [
        ("https://git.coopcloud.tech/coop-cloud/radicale.git", "coop-cloud/radicale"),
        ("git@git.coopcloud.tech:coop-cloud/radicale.git", "coop-cloud/radicale"),
        ("ssh://git@git.coopcloud.tech:2222/coop-cloud/radicale", "coop-cloud/radicale"),
        ("https://git.coopcloud.tech/coop-cloud/radicale/\n", "coop-cloud/radicale"),
    ],
)
def test_the_repo_is_read_from_the_git_remote(url: str, repo: str) -> None:
    from harness.cli import _remote_repo

    assert _remote_repo(url) == repo


def test_a_remote_without_owner_and_name_is_refused() -> None:
    from harness.cli import _remote_repo
    from harness.errors import CcciError

    with pytest.raises(CcciError, match="names no OWNER/NAME"):
        _remote_repo("radicale")
