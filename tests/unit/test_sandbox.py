"""A recipe dir's Python cannot hang or flood the runner: loading and hooks are bounded."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from harness.errors import MetaError
from harness.lifecycle.hooks import verdict
from harness.recipe import meta, sandbox


@pytest.fixture(autouse=True)
def short_window(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sandbox, "LOAD_WINDOW", 1.0)


@pytest.mark.parametrize(
    ("body", "why"),
    [
        ("while True:\n    pass\n", "did not finish within 1s"),
        ("import time\ntime.sleep(600)\n", "did not finish within 1s"),
        ("while True:\n    try:\n        pass\n    except Exception:\n        pass\n", "within 1s"),
        ("print('x' * 10_000_000)\n", "printed more than 64 KiB"),
    ],
    ids=["spins", "sleeps", "swallows-exceptions", "floods"],
)
@pytest.mark.parametrize("file", ["recipe_meta.py", "ops.py"])
def test_a_hostile_file_fails_within_seconds_naming_itself(
    tmp_path: Path, body: str, why: str, file: str
) -> None:
    (tmp_path / file).write_text(body)
    started = time.monotonic()
    with pytest.raises(MetaError, match=f"{tmp_path / file}: .*{why}"):
        meta.load(tmp_path) if file == "recipe_meta.py" else meta.load_ops(tmp_path)
    assert time.monotonic() - started < 5


def test_a_well_behaved_file_still_prints_and_loads(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "recipe_meta.py").write_text("print('loading')\nHEALTH_PATH = '/h'\n")
    assert meta.load(tmp_path).HEALTH_PATH == "/h"
    assert capsys.readouterr().out == "loading\n"


def test_a_hook_is_bounded_by_the_time_it_is_given(tmp_path: Path) -> None:
    (tmp_path / "recipe_meta.py").write_text(
        "import time\ndef READY_PROBE(ctx):\n    time.sleep(600)\n"
    )
    hook = meta.load(tmp_path).READY_PROBE
    assert hook is not None
    started = time.monotonic()
    passed, why = verdict(hook, None, seconds=1)
    assert not passed
    assert "READY_PROBE: did not finish within 1s" in why
    assert time.monotonic() - started < 5


def test_an_outer_alarm_survives_a_bounded_call() -> None:
    import signal

    fired = []
    signal.signal(signal.SIGALRM, lambda *_: fired.append(True))
    try:
        signal.setitimer(signal.ITIMER_REAL, 1.5)
        with sandbox.bounded("quick", 10):
            pass
        assert 0 < signal.getitimer(signal.ITIMER_REAL)[0] <= 1.5
        time.sleep(2)
        assert fired == [True]
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, signal.SIG_DFL)


def test_a_hook_with_no_time_left_does_not_run_unbounded() -> None:
    ran = []
    with (
        pytest.raises(MetaError, match="late: no time left to run it"),
        sandbox.bounded("late", -3),
    ):
        ran.append(True)
    assert ran == []
