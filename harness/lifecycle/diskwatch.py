"""The disk a run fills: its containers' writable layers and its volumes, watched.

A recipe under test can write without end (a log file, a database, ``dd``): memory, CPU
and pids are bounded by limits, the disk is not, and a full disk takes the CI host with
it. So while a run lives, a thread measures what its resources hold every ``INTERVAL``
seconds; past the run's bound (``RESOURCES["disk"]``, default ``deploy.DEFAULT_DISK``) it stops
the run through its deadline — every wait then fails at once, naming the bound and what
holds the most — and teardown removes the rest, as after any failure.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from harness.deadline import Deadline
from harness.errors import CcciError, ConvergeError

__all__ = ["INTERVAL", "DiskWatch"]

log = logging.getLogger(__name__)

INTERVAL = 5.0


def _gib(n: int) -> str:
    return f"{n / 1024**3:.2f} GiB" if n >= 1024**3 else f"{n / 1024**2:.0f} MiB"


class DiskWatch:
    """Measures the disk of the resources labelled ``label`` until ``close`` (``measure``:
    the seam's ``disk_use``); past ``bound`` bytes, stops ``deadline`` with the reason."""

    def __init__(
        self,
        label: str,
        bound: int,
        deadline: Deadline,
        measure: Callable[[str], dict[str, int]],
    ) -> None:
        self.label, self.bound, self.deadline = label, bound, deadline
        self.measure = measure
        self.peak = 0  # the most the run held at once, for results
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._watch, name=f"disk {label}", daemon=True)
        self._thread.start()

    def sample(self) -> None:
        """One measurement; past the bound, the run is stopped."""
        used = self.measure(self.label)
        total = sum(used.values())
        self.peak = max(self.peak, total)
        if total > self.bound and self.deadline.stopped is None:
            most, held = max(used.items(), key=lambda item: item[1])
            why = ConvergeError(
                f"disk: the run's containers and volumes hold {_gib(total)}, past its bound of"
                f" {_gib(self.bound)} (most: {most}, {_gib(held)}); the run is stopped"
                ' (RESOURCES = {"disk": ...} in recipe_meta.py raises the bound)'
            )
            log.error("%s", why)
            self.deadline.stop(why)

    def _watch(self) -> None:
        while not self._closed.wait(INTERVAL):
            try:
                self.sample()
            except CcciError as exc:  # the engine busy or gone a moment: the next sample
                log.debug("disk watch: %s", exc)

    def close(self) -> None:
        self._closed.set()
        self._thread.join(timeout=INTERVAL * 2)
