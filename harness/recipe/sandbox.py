"""Running a recipe dir's Python — recipe_meta.py, ops.py, hooks — bounded in time and
output, so a file that spins, sleeps or prints megabytes fails with a ``MetaError`` naming
it within seconds instead of hanging the runner.

The time bound is a real-time interval timer (``SIGALRM``) in the main thread, where pytest
collects and runs items; one already armed (pytest-timeout's) is put back as it was, less
the time spent. The output bound replaces ``sys.stdout`` and ``sys.stderr`` for the call.
"""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any, TextIO

from harness.errors import MetaError

__all__ = ["LOAD_WINDOW", "OUTPUT_CAP", "bounded"]

LOAD_WINDOW = 10.0  # seconds loading a recipe_meta.py or ops.py may take
OUTPUT_CAP = 64 * 1024  # characters recipe code may print per call


class _Overtime(BaseException):
    """Raised into recipe code when its time is up (a BaseException: ``except Exception``
    in the recipe cannot swallow it)."""


class _Overflow(BaseException):
    """Raised into recipe code when it printed too much."""


class _CappedStream:
    def __init__(self, real: TextIO, budget: list[int]) -> None:
        self._real, self._budget = real, budget

    def write(self, text: str) -> int:
        self._budget[0] -= len(text)
        if self._budget[0] < 0:
            raise _Overflow
        return self._real.write(text)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)


@contextlib.contextmanager
def bounded(what: str, seconds: float, cap: int = OUTPUT_CAP) -> Iterator[None]:
    """Run the block — recipe code — for at most ``seconds`` and ``cap`` characters of
    output; past either, ``MetaError`` naming ``what``."""
    if seconds <= 0:  # e.g. what was left of a run's deadline: none
        raise MetaError(f"{what}: no time left to run it")
    budget = [cap]
    stdout, stderr = sys.stdout, sys.stderr
    timed = threading.current_thread() is threading.main_thread()
    if timed:
        before_handler = signal.getsignal(signal.SIGALRM)
        before_delay, before_interval = signal.getitimer(signal.ITIMER_REAL)
        started = time.monotonic()

        def overtime(signum: int, frame: object) -> None:
            raise _Overtime

        signal.signal(signal.SIGALRM, overtime)
        # Re-fires every second: recipe code that swallows one is interrupted again.
        signal.setitimer(signal.ITIMER_REAL, seconds, 1.0)
    sys.stdout = _CappedStream(stdout, budget)
    sys.stderr = _CappedStream(stderr, budget)
    try:
        yield
    except _Overtime:
        raise MetaError(f"{what}: did not finish within {seconds:.0f}s") from None
    except _Overflow:
        raise MetaError(f"{what}: printed more than {cap // 1024} KiB") from None
    finally:
        sys.stdout, sys.stderr = stdout, stderr
        if timed:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, before_handler)
            if before_delay:
                left = max(before_delay - (time.monotonic() - started), 0.001)
                signal.setitimer(signal.ITIMER_REAL, left, before_interval)
