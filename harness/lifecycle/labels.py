"""The labels every resource of a run carries: the run's id (teardown and the janitor find
everything by it) and the cc-ci host whose leases say whether the run lives.
"""

from __future__ import annotations

import functools
import secrets
import socket

from harness.fetch import CACHE_DIR
from harness.files import read_or_make

__all__ = ["HOST_LABEL", "RUN_LABEL", "host_id", "run_labels"]

RUN_LABEL = "cc-ci.run"
HOST_LABEL = "cc-ci.host"  # which cc-ci host's leases say whether the run lives


@functools.cache
def host_id() -> str:
    """This host's id: made once, kept beside the leases (whoever sees this id sees the
    leases of its runs; a janitor elsewhere sees neither, and leaves those runs alone)."""
    return read_or_make(
        CACHE_DIR / "host-id", lambda: f"{socket.gethostname()[:24]}-{secrets.token_hex(4)}"
    )


def run_labels(run_id: str) -> dict[str, str]:
    """The labels every resource of a run carries."""
    return {RUN_LABEL: run_id, HOST_LABEL: host_id()}
