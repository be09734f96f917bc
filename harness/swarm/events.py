"""The engine's event stream as a wake-up signal: waits re-check when something happened
(a container started, died or changed health; a service updated), not on a blind timer."""

from __future__ import annotations

import contextlib
import queue
import threading
from datetime import datetime
from typing import Any

from harness.swarm.engine import client, translated

__all__ = ["Wakeup"]

# What can change a verdict: a task's container starting, ending or changing health, a
# service changing. Not the exec_* events every healthcheck probe of every container on the
# engine makes: woken by those, concurrent runs re-checked each other's noise all the time.
WAKING = {
    "container": ["create", "start", "die", "kill", "oom", "stop", "destroy", "health_status"],
    "service": ["create", "update", "remove"],
}


class Wakeup:
    """``wait(timeout)`` returns as soon as an event arrives, or after ``timeout``."""

    def __init__(self, since: datetime) -> None:
        self._events: queue.Queue[object] = queue.Queue()
        with translated("subscribing to engine events"):
            self._stream: Any = client().events(
                decode=True,
                since=int(since.timestamp()),
                filters={
                    "type": list(WAKING),
                    "event": sorted({*WAKING["container"], *WAKING["service"]}),
                },
            )
        threading.Thread(target=self._pump, name="cc-ci-events", daemon=True).start()

    def _pump(self) -> None:
        try:
            for event in self._stream:
                self._events.put(event)
        except Exception:  # the stream is closed when the wait is over, or the engine went
            self._events.put(None)  # wake the waiter: it re-checks and sees what happened

    def wait(self, timeout: float) -> None:
        try:
            self._events.get(timeout=max(timeout, 0))
            while not self._events.empty():  # one re-check per burst of events
                self._events.get_nowait()
        except queue.Empty:
            pass

    def close(self) -> None:
        # A stream the engine already cut has nothing left to close.
        with contextlib.suppress(Exception):
            self._stream.close()

    def __enter__(self) -> Wakeup:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
