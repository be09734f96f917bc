"""Convergence — or a fast failure, with the evidence.

A stack has converged when every service runs its desired number of tasks *of the
current spec* (the container spec — image, command, env — the service names; "rollout
status lies" about old tasks) and no update is in flight. A replica deficit made only of
completed tasks is a one-shot that did its job. It has failed — at once, never by waiting
out the timeout — when:
- a service's tasks failed or were rejected ``MAX_FAILURES`` times since the deploy
  (a crash loop) or once for a service that is not restarted;
- an update was rolled back or paused (``rollback_completed`` shows 1/1 with the OLD
  spec: green by replica count, red in truth).

A task without a healthcheck that is "running" may only have started: it counts after
``MIN_UPTIME`` while converging. Convergence is not the end of watching: ``Settled``
holds the app to the same judgement through the rest of its tier, and demands that such
tasks stayed up ``SETTLE_UPTIME``, so an app that dies a few seconds after its first
green still turns red within a few restarts, whatever the timing.

``assess`` is pure — a ``Service`` snapshot in, a verdict out — so it is tested on task
lists recorded from real canaries, without Docker.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.deadline import Deadline
from harness.errors import CcciError, ConvergeError, PlatformError
from harness.lifecycle.waits import Wait, wait_for
from harness.reports import progress
from harness.swarm import Service, timestamp

if TYPE_CHECKING:
    from harness.lifecycle.context import Swarm, SwarmStack

__all__ = ["Assessment", "Converged", "assess", "converge", "failure_check", "settle"]

log = logging.getLogger(__name__)

MAX_FAILURES = 3
HOST_MEMORY_FLOOR = 0.05  # below this share of memory available, an OOM kill is the host's
MIN_UPTIME = 1.0  # seconds a task without a healthcheck must run to count as running
SETTLE_UPTIME = 5.0  # ... and must have kept running when its tier ends
TICK = 0.5  # seconds between checks when no event wakes the wait earlier
_FAILED = ("failed", "rejected")
_BAD_UPDATES = ("rollback_started", "rollback_completed", "rollback_paused", "paused")


@dataclass(frozen=True)
class Assessment:
    done: bool
    state: str  # "2/2 running", "1/1 complete (one-shot)", "0/1 running (starting)"
    failure: str | None = None  # why the service has failed, when it has
    last_failed: dict[str, Any] | None = None  # the task that failed last, when one did


@dataclass(frozen=True)
class Converged:
    seconds: float
    services: dict[str, str]  # service -> its state


def assess(
    service: Service,
    since: datetime,
    nodes: int,
    *,
    min_uptime: float = MIN_UPTIME,
    now: datetime | None = None,
    restarted: bool = False,
) -> Assessment:
    """Whether ``service`` converged, judged from one snapshot of it and its tasks. A
    service cc-ci ``restarted`` (a forced update to the same spec) counts only tasks made
    since, and does not wait out the update's monitor period: no spec can roll back, and
    a task that fails later is still seen (by settle)."""
    now = now or datetime.now(UTC)
    spec = service.spec
    container = spec["TaskTemplate"]["ContainerSpec"]
    mode = spec.get("Mode", {})
    desired = mode["Replicated"].get("Replicas", 1) if "Replicated" in mode else nodes
    restart = spec["TaskTemplate"].get("RestartPolicy", {}).get("Condition", "any")
    update = service.update_status
    if update.get("State") in _BAD_UPDATES and timestamp(update.get("StartedAt", "")) >= since:
        return Assessment(
            False, update["State"], f"update {update['State']}: {update.get('Message', '')}"
        )
    # A task of the current spec carries the service's container spec (image, command,
    # env, labels); comparing images alone would take an old task of a same-image update.
    # Running and completed tasks count whenever they started (a redeploy leaves unchanged
    # services alone); failures count only since this deploy.
    current = [t for t in service.tasks if t["Spec"]["ContainerSpec"] == container]
    if restarted:
        current = [t for t in current if timestamp(t["CreatedAt"]) >= since]
    checked = bool((container.get("Healthcheck") or {}).get("Test"))
    running = [
        t
        for t in current
        if t["Status"]["State"] == "running"
        and (checked or (now - timestamp(t["Status"]["Timestamp"])).total_seconds() >= min_uptime)
    ]
    complete = [t for t in current if t["Status"]["State"] == "complete"]
    failed = [
        t for t in current if t["Status"]["State"] in _FAILED and timestamp(t["CreatedAt"]) >= since
    ]
    stale = [
        t
        for t in service.tasks
        if t["DesiredState"] == "running" and t["Spec"]["ContainerSpec"] != container
    ]
    if failed and (len(failed) >= MAX_FAILURES or restart == "none"):
        last_failed = max(failed, key=lambda t: t["Status"]["Timestamp"])
        last = last_failed["Status"]
        why = last.get("Err") or last.get("Message") or last["State"]
        if "ContainerStatus" in last and last["ContainerStatus"].get("ExitCode"):
            why += f" (exit code {last['ContainerStatus']['ExitCode']})"
        kind = "crash-looping" if len(failed) > 1 else "failing"
        return Assessment(
            False,
            "failed",
            f"is {kind}: {len(failed)} task(s) failed since the deploy: {why}",
            last_failed,
        )
    updating = update.get("State") == "updating" and not restarted
    if len(running) >= desired and not stale and not updating:
        return Assessment(True, f"{len(running)}/{desired} running")
    if complete and len(running) + len(complete) >= desired and not stale and not updating:
        return Assessment(True, f"{len(complete)}/{desired} complete (one-shot)")
    pending = [t["Status"].get("Err") or t["Status"]["State"] for t in current[-1:]]
    detail = f" ({pending[0]})" if pending else ""
    return Assessment(
        False, f"{len(running)}/{desired} running{detail}" + (", updating" if updating else "")
    )


class Convergence(Wait):
    """Every service of ``stacks`` converged; a failed one raises at once, with its logs."""

    def __init__(
        self,
        swarm: Swarm,
        stacks: Sequence[SwarmStack],
        since: datetime,
        *,
        min_uptime: float = MIN_UPTIME,
        restarted: frozenset[str] = frozenset(),
    ) -> None:
        self.stacks, self.since, self.min_uptime = stacks, since, min_uptime
        self.swarm, self.restarted = swarm, restarted
        self.nodes = swarm.ready_nodes()
        self.states: dict[str, str] = {}
        self.waiting: list[tuple[SwarmStack, str]] = []  # (stack, service) not there yet

    def check(self) -> tuple[bool, str]:
        self.states, self.waiting = {}, []
        for stack in self.stacks:
            services = stack.services()
            if not services:
                raise ConvergeError(f"stack {stack.name} has no services")
            for service in services:
                verdict = assess(
                    service,
                    self.since,
                    self.nodes,
                    min_uptime=self.min_uptime,
                    restarted=service.name in self.restarted,
                )
                if verdict.failure:
                    failure = _out_of_memory(stack, service, verdict) or verdict.failure
                    raise ConvergeError(
                        f"service {service.name} {failure}\n"
                        f"last log lines of {service.name}:\n{stack.evidence(service.short)}"
                    )
                self.states[service.name] = verdict.state
                if not verdict.done:
                    self.waiting.append((stack, service.short))
        ready = len(self.states) - len(self.waiting)
        progress.step(f"converging {ready}/{len(self.states)} services")
        return not self.waiting, "; ".join(f"{n}: {s}" for n, s in self.states.items())

    def timed_out(self, window: float, state: str) -> CcciError:
        evidence = "\n".join(
            f"last log lines of {stack.service_name(short)}:\n{stack.evidence(short)}"
            for stack, short in self.waiting
        )
        return ConvergeError(
            f"{', '.join(s.name for s in self.stacks)} did not converge within {window:.0f}s:"
            f" {state}\n{evidence}"
        )


def _out_of_memory(stack: SwarmStack, service: Service, verdict: Assessment) -> str | None:
    """ "was killed: out of memory at 1 GiB" when the OOM killer ended the last failed task:
    the recipe's, at its limit; the platform's (infra) when the host itself ran out."""
    task = verdict.last_failed
    code = ((task or {}).get("Status", {}).get("ContainerStatus") or {}).get("ExitCode")
    if task is None or code != 137 or not stack.oom_killed(task):
        return None
    if _host_memory_left() < HOST_MEMORY_FLOOR:
        raise PlatformError(
            f"service {service.name} was killed by the OOM killer while the host was out of"
            " memory: the platform's failure, not the recipe's"
        )
    limit = ((service.spec["TaskTemplate"].get("Resources") or {}).get("Limits") or {}).get(
        "MemoryBytes"
    )
    at = f" at {limit / 2**20:.0f} MiB" if limit else ""
    return f"was killed: out of memory{at} (raise it with RESOURCES = {{'memory': ...}})"


def _host_memory_left() -> float:
    """The share of this host's memory still available (1.0 where it cannot be read)."""
    try:
        info = dict(line.split(":", 1) for line in Path("/proc/meminfo").read_text().splitlines())
        return int(info["MemAvailable"].split()[0]) / int(info["MemTotal"].split()[0])
    except (OSError, KeyError, ValueError):
        return 1.0


class Settled(Convergence):
    """Converged, and tasks without a healthcheck have kept running ``SETTLE_UPTIME``."""

    def __init__(
        self,
        swarm: Swarm,
        stacks: Sequence[SwarmStack],
        since: datetime,
        restarted: frozenset[str] = frozenset(),
    ) -> None:
        super().__init__(swarm, stacks, since, min_uptime=SETTLE_UPTIME, restarted=restarted)


def _await(wait: Convergence, window: float, deadline: Deadline | None) -> Converged:
    with wait.swarm.wakeup(wait.since, [s.name for s in wait.stacks]) as events:
        state_started = datetime.now(UTC)
        wait_for(wait, window, deadline, wake=events.wait, first=TICK, most=TICK)
    seconds = (datetime.now(UTC) - state_started).total_seconds()
    return Converged(seconds, dict(wait.states))


def converge(
    swarm: Swarm,
    stacks: Sequence[SwarmStack],
    since: datetime,
    window: float,
    deadline: Deadline | None = None,
    restarted: frozenset[str] = frozenset(),
) -> Converged:
    """Block until every stack converged, woken by the engine's events; ``restarted``
    services (full names) converge on their tasks made since ``since``."""
    done = _await(Convergence(swarm, stacks, since, restarted=restarted), window, deadline)
    log.info("%s converged in %.1fs", ", ".join(s.name for s in stacks), done.seconds)
    return done


def settle(
    swarm: Swarm,
    stacks: Sequence[SwarmStack],
    since: datetime,
    window: float,
    deadline: Deadline | None = None,
    restarted: frozenset[str] = frozenset(),
) -> Converged:
    """Block until every stack has stayed converged: what a tier asks before it passes
    (``restarted`` as for ``converge``)."""
    return _await(Settled(swarm, stacks, since, restarted), window, deadline)


def failure_check(swarm: Swarm, stack: SwarmStack, since: datetime) -> Callable[[], object]:
    """What a probe calls between its attempts: it raises ConvergeError if a service of
    ``stack`` failed since ``since`` (crash loop, rollback)."""
    return Convergence(swarm, [stack], since).check
