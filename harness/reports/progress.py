"""What a run is doing now, for whoever shows it: the steps of the tier in progress.

The lifecycle says ``step(name)`` as it goes (every trace span does, convergence says how
many services are up); ``showing(sink)`` routes that to the terminal for a while. Nothing
is shown when nobody listens (xdist workers, the library used on its own).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator

__all__ = ["WORDS", "showing", "step"]

# Trace span names as a person reads them.
WORDS = {
    "fetch": "fetching the recipe",
    "plan": "planning",
    "policy": "checking the deploy policy",
    "secrets": "creating secrets",
    "deploy": "deploying",
    "converge": "converging",
    "stamp": "checking the deployed labels",
    "probe": "probing health",
    "screenshot": "taking the screenshot",
    "settle": "watching it stay up",
    "seed": "seeding data",
    "verify": "verifying data",
    "backup": "backing up",
    "restore": "restoring",
    "pull": "pulling images",
    "build": "building images",
    "teardown": "tearing down",
}

_sink: Callable[[str], None] | None = None
_saying = threading.Lock()  # parallel pulls say their progress from several threads


def step(text: str) -> None:
    """Say what the run does now (a span name or a sentence)."""
    sink = _sink
    if sink is not None:
        with _saying:
            sink(WORDS.get(text, text))


@contextlib.contextmanager
def showing(sink: Callable[[str], None]) -> Iterator[None]:
    global _sink
    before, _sink = _sink, sink
    try:
        yield
    finally:
        _sink = before
