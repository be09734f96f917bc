"""The one seam to Docker: the only code of cc-ci that imports ``docker`` or runs the CLI.

Everything else speaks in the harness's own types — a ``Stack`` that knows its name and
finds its services by their short name (``app``, ``db``), ``Service`` snapshots with their
tasks, labelled ``Resource``s — and sees Docker's failures only as the error tree of
``harness.errors``, translated here once (``engine.translated``, ``cli.docker``): the
engine's own failures (a server error, a lost connection, a timeout) are ``EngineError``
or ``PlatformError`` — infra, retried once, never the recipe's fault — while what the
engine refuses of the recipe (its stack config, an image it names) is the recipe's.

    engine.py     the client, and the translation of SDK and connection errors
    cli.py        the docker CLI where the SDK has no equivalent: stack deploy, stack config
    stacks.py     Stack and Service: deploy, services and tasks, exec, logs, restart
    events.py     the engine's event stream as a wake-up for waits
    resources.py  labelled resources: list, remove, secrets, volumes, images, nodes, disk use
    helper.py     a short-lived helper container on an app's volumes

The module itself is the implementation of the lifecycle's ``Swarm`` protocol
(``harness.lifecycle.context``): ``stack(name)`` and ``wakeup(since, stacks)`` beside the
functions below.
"""

from collections.abc import Collection
from datetime import datetime

from harness.swarm.cli import stack_config
from harness.swarm.engine import ping, timestamp
from harness.swarm.events import Wakeup
from harness.swarm.helper import HelperResult, run_helper
from harness.swarm.resources import (
    KINDS,
    PULL_POLICIES,
    Resource,
    create_secret,
    create_volume,
    disk_use,
    ensure_images,
    labelled,
    ready_nodes,
    remove_labelled,
)
from harness.swarm.stacks import NAMESPACE_LABEL, ExecResult, Service, Stack


def stack(name: str) -> Stack:
    """The stack ``name`` (it need not exist yet)."""
    return Stack(name)


def wakeup(since: datetime, stacks: Collection[str]) -> Wakeup:
    """A wake-up on the engine's events of ``stacks`` since ``since``."""
    return Wakeup(since, stacks)


__all__ = [
    "KINDS",
    "NAMESPACE_LABEL",
    "PULL_POLICIES",
    "ExecResult",
    "HelperResult",
    "Resource",
    "Service",
    "Stack",
    "Wakeup",
    "create_secret",
    "create_volume",
    "disk_use",
    "ensure_images",
    "labelled",
    "ping",
    "ready_nodes",
    "remove_labelled",
    "run_helper",
    "stack",
    "stack_config",
    "timestamp",
    "wakeup",
]
