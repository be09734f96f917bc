"""What an app is given of its run: the seam it deploys through, a frozen run context, and
a recorder for what it must report.

``Swarm`` lists what the lifecycle uses of ``harness.swarm`` — stacks (deploy, services
and tasks, exec, logs, restart), labelled resources, secrets, volumes, images, the helper
container, nodes, disk use, the engine's events — and ``harness.swarm`` is its
implementation (``ENGINE``); the fast tests give an in-memory one (``tests/fake_swarm.py``).
``RunContext`` is what an app reads of its run (id, dir, platform, meta, deadline, tracer,
pull policy, DEPS …); a ``Recorder`` is what it writes back (the policy it used, overlays,
the stamps it saw). Nothing here knows ``Run``: an app never holds one.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from types import MappingProxyType
from typing import Any, Protocol

from harness import swarm
from harness.deadline import Deadline
from harness.lifecycle.diskwatch import DiskWatch
from harness.lifecycle.platform import Platform
from harness.recipe.customization import Customization
from harness.recipe.policy import Violation
from harness.reports.trace import Tracer
from harness.swarm import KINDS, ExecResult, HelperResult, Resource, Service

__all__ = ["ENGINE", "Deps", "Events", "Recorder", "RunContext", "Swarm", "SwarmStack"]


class SwarmStack(Protocol):
    """One stack: its services found by their short name (``harness.swarm.Stack``)."""

    @property
    def name(self) -> str: ...
    def service_name(self, short: str) -> str: ...
    def deploy(self, deploy_file: Path) -> None: ...
    def services(self) -> list[Service]: ...
    def service(self, short: str) -> Service | None: ...
    def logs(self, short: str, tail: int = 50) -> str: ...
    def evidence(self, short: str, tail: int = 10) -> str: ...
    def exec(self, short: str, argv: Sequence[str]) -> ExecResult | None: ...
    def oom_killed(self, task: Mapping[str, Any]) -> bool: ...
    def restart(self, shorts: Iterable[str]) -> None: ...


class Events(Protocol):
    """A wake-up on the engine's events of some stacks (``harness.swarm.Wakeup``)."""

    def wait(self, timeout: float) -> None: ...
    def __enter__(self) -> Events: ...
    def __exit__(self, *exc: object) -> None: ...


class Swarm(Protocol):
    """What the lifecycle uses of the seam to Docker; ``harness.swarm`` implements it."""

    def stack(self, name: str) -> SwarmStack: ...
    def wakeup(self, since: datetime, stacks: Collection[str]) -> Events: ...
    def ping(self) -> None: ...
    def ready_nodes(self) -> int: ...
    def labelled(self, label: str, kinds: Sequence[str] = KINDS) -> list[Resource]: ...
    def remove_labelled(
        self, label: str, kinds: Sequence[str] = KINDS
    ) -> tuple[list[str], int]: ...
    def create_secret(self, name: str, value: str, labels: Mapping[str, str]) -> None: ...
    def create_volume(self, name: str, labels: Mapping[str, str]) -> None: ...
    def ensure_images(
        self,
        images: Mapping[str, str],
        policy: str,
        locks: Path,
        *,
        seconds: float,
        say: Callable[[str], None] = ...,
    ) -> None: ...
    def run_helper(
        self,
        script: str,
        volumes: Mapping[str, str],
        labels: Mapping[str, str],
        *,
        upload: bytes | None = None,
        download: str | None = None,
    ) -> HelperResult: ...
    def disk_use(self, label: str) -> dict[str, int]: ...


ENGINE: Swarm = swarm  # the real seam: the module is the implementation


@dataclass(frozen=True)
class Deps:
    """The recipe's DEPS as provided: ``{recipe: entry}`` and the networks its app joins."""

    entries: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    networks: tuple[str, ...] = ()


@dataclass(frozen=True)
class RunContext:
    """What an app reads of its run."""

    id: str
    recipe: str  # the recipe's name
    customization: Customization  # the recipe dir: meta, ops.py, install_steps.sh, overlay
    dir: Path
    platform: Platform
    deadline: Deadline
    tracer: Tracer
    pull: str  # the image pull policy: missing, always, never
    disk: DiskWatch
    swarm: Swarm
    deps: Deps = Deps()

    @property
    def meta(self) -> Any:
        return self.customization.meta


class Recorder(Protocol):
    """What an app reports to its run (``Run`` is one): results.json's policy, overlays and
    stamps."""

    def record_policy(self, used: Sequence[Violation]) -> None: ...
    def add_overlays(self, overlays: Sequence[str]) -> None: ...
    def record_stamps(self, app: str, seen: Mapping[str, str]) -> None: ...
