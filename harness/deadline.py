"""Time: the one deadline type, and the one way to wait for something until it.

``Deadline`` is what is left of a budget (a run's, a CLI call's, a pipeline's): every wait
is cut to it, and a run can be stopped before its time (``stop``: every wait then raises
why). ``poll`` calls a check until it says done or the deadline passes, backing off from
``first`` to ``most`` seconds between calls (and at most ``tries`` times, where a retry
counts its attempts) — the one retry/poll loop of cc-ci, for the engine's convergence, a
forge's answers, a CI engine's pipelines and a job's process alike.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

from harness.errors import CcciError, ConvergeError

__all__ = ["Deadline", "poll"]

S = TypeVar("S")


class Deadline:
    """What is left of ``seconds`` from now; ``stop`` ends it early, from any thread."""

    def __init__(self, seconds: float, *, what: str = "the run") -> None:
        self.seconds = seconds
        self.what = what
        self._ends = time.monotonic() + seconds
        self.stopped: CcciError | None = None

    def left(self) -> float:
        return 0.0 if self.stopped is not None else self._ends - time.monotonic()

    def passed(self) -> bool:
        return self.left() <= 0

    def stop(self, why: CcciError) -> None:
        """End it now: every wait raises ``why``."""
        self.stopped = why

    def check(self) -> None:
        """Raise why it was stopped, if it was."""
        if self.stopped is not None:
            raise type(self.stopped)(str(self.stopped))

    def bound(self, window: float) -> float:
        """``window`` cut to what is left; raise when nothing is."""
        self.check()
        left = self.left()
        if left <= 0:
            raise ConvergeError(f"{self.what} passed its deadline of {self.seconds:.0f}s")
        return min(window, left)


def poll(
    check: Callable[[], tuple[bool, S]],
    deadline: Deadline,
    *,
    first: float = 0.1,
    most: float = 1.0,
    wake: Callable[[float], None] = time.sleep,
    tries: int | None = None,
) -> tuple[bool, S]:
    """Call ``check`` until it says done or ``deadline`` passes (or it was called ``tries``
    times); ``(done, its last state)``. Between calls, ``wake`` waits ``first`` seconds,
    doubling up to ``most`` (never past the deadline); a stopped deadline raises why."""
    delay = first
    called = 0
    while True:
        done, state = check()
        called += 1
        if done:
            return True, state
        if tries is not None and called >= tries:
            return False, state
        deadline.check()
        left = deadline.left()
        if left <= 0:
            return False, state
        wake(min(delay, left))
        delay = min(delay * 2, most)
