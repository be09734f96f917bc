"""The engine's events wake a wait only for the stacks it waits on: with runs side by side,
another run's containers starting and dying must not re-check this one. Real engine, real
containers (labelled as ``docker stack deploy`` labels a task's), no stack needed."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from harness.lifecycle.labels import RUN_LABEL
from harness.swarm import NAMESPACE_LABEL, Wakeup, engine
from harness.swarm.helper import HELPER_IMAGE

pytestmark = pytest.mark.e2e


@pytest.fixture
def started() -> Iterator[list[str]]:
    """The containers a test started (by ``_start``): all removed at the end."""
    made: list[str] = []
    yield made
    for cid in made:
        engine.client().containers.get(cid).remove(force=True)


def _start(made: list[str], stack: str) -> None:
    container = engine.client().containers.run(
        HELPER_IMAGE,
        ["true"],
        detach=True,
        network_mode="none",
        labels={NAMESPACE_LABEL: stack, RUN_LABEL: "events-test"},
    )
    made.append(container.id)


def _woken(wakeup: Wakeup, seconds: float) -> bool:
    started = time.monotonic()
    wakeup.wait(seconds)
    return time.monotonic() - started < seconds * 0.8


def _stacks() -> tuple[str, str]:
    """Names of this test's own (the engine replays events from the last whole second)."""
    tag = uuid.uuid4().hex[:6]
    return f"ccci-{tag}-mine_localhost", f"ccci-{tag}-other_localhost"


def test_another_stacks_containers_do_not_wake_the_wait(started: list[str]) -> None:
    mine, other = _stacks()
    with Wakeup(datetime.now(UTC), [mine]) as wakeup:
        time.sleep(0.3)  # the stream is subscribed
        _start(started, other)
        assert not _woken(wakeup, 3.0)
        _start(started, mine)
        assert _woken(wakeup, 10.0)


def test_a_service_event_wakes_only_its_stacks_wait() -> None:
    services = engine.client().services
    mine, other = _stacks()
    made = []
    try:
        with Wakeup(datetime.now(UTC), [mine]) as wakeup:
            time.sleep(0.3)
            for stack, expected in ((other, False), (mine, True)):
                made.append(
                    services.create(
                        HELPER_IMAGE,
                        ["sleep", "30"],
                        name=f"{stack}_app",
                        labels={RUN_LABEL: "events-test"},
                        networks=[],
                    )
                )
                assert _woken(wakeup, 3.0 if not expected else 10.0) is expected, stack
    finally:
        for service in made:
            service.remove()
