"""The engine's event stream as a wake-up signal: waits re-check when something happened
to the stacks they wait on (a container started, died or changed health; a service
updated), not on a blind timer."""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Collection
from datetime import datetime
from typing import Any

from harness.swarm.engine import client, translated
from harness.swarm.stacks import NAMESPACE_LABEL

__all__ = ["Wakeup"]

# What can change a verdict: a task's container starting, ending or changing health, a
# service changing. Not the exec_* events every healthcheck probe of every container on the
# engine makes: woken by those, concurrent runs re-checked each other's noise all the time.
WAKING = {
    "container": ["create", "start", "die", "kill", "oom", "stop", "destroy", "health_status"],
    "service": ["create", "update", "remove"],
}


def concerns(event: dict[str, Any], stacks: Collection[str]) -> bool:
    """Whether an event is of a container or a service of one of ``stacks``: the engine's
    own filters cannot say so for both kinds at once (a label filter drops service events,
    which carry only the service's name)."""
    attributes = (event.get("Actor") or {}).get("Attributes") or {}
    if event.get("Type") == "service":
        name = str(attributes.get("name", ""))
        return any(name.startswith(f"{stack}_") for stack in stacks)
    return attributes.get(NAMESPACE_LABEL) in stacks


class Wakeup:
    """``wait(timeout)`` returns as soon as an event of ``stacks`` arrives, or after
    ``timeout``. Other runs' events do not wake it: with runs side by side, each re-checked
    every other's containers starting and dying."""

    def __init__(self, since: datetime, stacks: Collection[str]) -> None:
        self.stacks = frozenset(stacks)
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
                if concerns(event, self.stacks):
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
