"""Wait for a deployed stack to converge — or fail fast, with the evidence.

A stack has converged when every service runs its desired number of tasks *of the
current spec* (the container spec — image, command, env — the service names; "rollout
status lies" about old tasks) and no update is in flight. A replica deficit made only of
completed tasks is a one-shot that did its job. It has failed — at once, never by waiting
out the timeout — when:
- a service's tasks failed or were rejected ``MAX_FAILURES`` times since the deploy
  (a crash loop) or once for a service that is not restarted;
- an update was rolled back or paused (``rollback_completed`` shows 1/1 with the OLD
  spec: green by replica count, red in truth).
The message names the service, the task error and the service's last log lines.

The loop re-assesses on every Docker event of the engine (container start/die/health,
service update) and at least every ``TICK`` seconds, so it reacts as events happen
without hammering the API.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from harness import engine
from harness.errors import ConvergeError

__all__ = ["Converged", "assert_not_failing", "service_logs", "wait_converged"]

log = logging.getLogger(__name__)

MAX_FAILURES = 3
MIN_UPTIME = 1.0  # seconds a task without a healthcheck must run to count as running
TICK = 0.5
LOG_LINES = 10
_FAILED = ("failed", "rejected")
_BAD_UPDATES = ("rollback_started", "rollback_completed", "rollback_paused", "paused")


@dataclass(frozen=True)
class Converged:
    stack: str
    seconds: float
    services: dict[str, str]  # service -> "2/2 running" or "1/1 complete"


def _timestamp(text: str) -> datetime:
    # Docker gives nanoseconds; Python takes microseconds.
    head, _, frac = text.rstrip("Z").partition(".")
    return datetime.fromisoformat(f"{head}.{(frac + '000000')[:6]}+00:00")


def service_logs(service: Any, lines: int = LOG_LINES) -> str:
    try:
        raw = b"".join(service.logs(stdout=True, stderr=True, tail=lines, timestamps=False))
    except Exception as exc:  # logs are evidence, never the failure itself
        return f"(logs unavailable: {exc})"
    text = raw.decode(errors="replace").strip()
    return text or "(no log output)"


def _assess(service: Any, since: datetime, nodes: int) -> tuple[bool, str]:
    """(converged, state) of one service; raises ConvergeError when it has failed."""
    spec = service.attrs["Spec"]
    name = spec["Name"]
    container = spec["TaskTemplate"]["ContainerSpec"]
    mode = spec.get("Mode", {})
    desired = mode["Replicated"].get("Replicas", 1) if "Replicated" in mode else nodes
    restart = spec["TaskTemplate"].get("RestartPolicy", {}).get("Condition", "any")
    update = service.attrs.get("UpdateStatus") or {}
    if update.get("State") in _BAD_UPDATES and _timestamp(update.get("StartedAt", "")) >= since:
        raise ConvergeError(
            f"service {name}: update {update['State']}: {update.get('Message', '')}\n"
            f"last log lines of {name}:\n{service_logs(service)}"
        )
    every_task = service.tasks()
    # A task of the current spec carries the service's container spec (image, command,
    # env, labels); comparing images alone would take an old task of a same-image update.
    # Running and completed tasks count whenever they started (a redeploy leaves unchanged
    # services alone); failures count only since this deploy.
    current = [t for t in every_task if t["Spec"]["ContainerSpec"] == container]
    # Without a healthcheck, "running" only means the process started: a crash-looping one
    # is running for a moment each time. Such a task counts once it stayed up MIN_UPTIME.
    checked = bool((container.get("Healthcheck") or {}).get("Test"))
    now = datetime.now(UTC)
    running = [
        t
        for t in current
        if t["Status"]["State"] == "running"
        and (checked or (now - _timestamp(t["Status"]["Timestamp"])).total_seconds() >= MIN_UPTIME)
    ]
    complete = [t for t in current if t["Status"]["State"] == "complete"]
    failed = [
        t
        for t in current
        if t["Status"]["State"] in _FAILED and _timestamp(t["CreatedAt"]) >= since
    ]
    stale = [
        t
        for t in every_task
        if t["DesiredState"] == "running" and t["Spec"]["ContainerSpec"] != container
    ]
    if failed and (len(failed) >= MAX_FAILURES or restart == "none"):
        last = max(failed, key=lambda t: t["Status"]["Timestamp"])["Status"]
        why = last.get("Err") or last.get("Message") or last["State"]
        if "ContainerStatus" in last and last["ContainerStatus"].get("ExitCode"):
            why += f" (exit code {last['ContainerStatus']['ExitCode']})"
        kind = "crash-looping" if len(failed) > 1 else "failing"
        raise ConvergeError(
            f"service {name} is {kind}: {len(failed)} task(s) failed since the deploy: {why}\n"
            f"last log lines of {name}:\n{service_logs(service)}"
        )
    updating = update.get("State") == "updating"
    if len(running) >= desired and not stale and not updating:
        return True, f"{len(running)}/{desired} running"
    if complete and len(running) + len(complete) >= desired and not stale and not updating:
        return True, f"{len(complete)}/{desired} complete (one-shot)"
    pending = [t["Status"].get("Err") or t["Status"]["State"] for t in current[-1:]]
    detail = f" ({pending[0]})" if pending else ""
    return False, f"{len(running)}/{desired} running{detail}" + (", updating" if updating else "")


def assert_not_failing(stack: str, since: datetime) -> None:
    """Raise ConvergeError if a service of ``stack`` failed since ``since`` (crash loop,
    rollback); used while probing a converged app, whose process may die a moment later."""
    client = engine.client()
    for service in client.services.list(filters={"label": f"com.docker.stack.namespace={stack}"}):
        _assess(service, since, nodes=1)


def wait_converged(stack: str, timeout: float, since: datetime | None = None) -> Converged:
    """Block until ``stack`` converged; ``since`` is when its deploy started (default: now)."""
    client = engine.client()
    since = since or datetime.now(UTC)
    started = time.monotonic()
    deadline = started + timeout
    wake: queue.Queue[object] = queue.Queue()
    events = client.events(
        decode=True, since=int(since.timestamp()), filters={"type": ["container", "service"]}
    )

    def pump() -> None:
        try:
            for event in events:
                wake.put(event)
        except Exception:  # the stream is closed when we are done
            return

    threading.Thread(target=pump, name=f"events-{stack}", daemon=True).start()
    nodes = sum(1 for n in client.nodes.list() if n.attrs["Status"]["State"] == "ready")
    try:
        while True:
            services = client.services.list(
                filters={"label": f"com.docker.stack.namespace={stack}"}
            )
            if not services:
                raise ConvergeError(f"stack {stack} has no services")
            states = {s.attrs["Spec"]["Name"]: _assess(s, since, nodes) for s in services}
            if all(done for done, _ in states.values()):
                seconds = time.monotonic() - started
                log.info("%s converged in %.1fs", stack, seconds)
                return Converged(stack, seconds, {n: s for n, (_, s) in states.items()})
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                waiting = "; ".join(f"{n}: {s}" for n, (done, s) in states.items() if not done)
                slow = [s for s in services if not states[s.attrs["Spec"]["Name"]][0]]
                evidence = "\n".join(
                    f"last log lines of {s.attrs['Spec']['Name']}:\n{service_logs(s)}" for s in slow
                )
                raise ConvergeError(
                    f"stack {stack} did not converge within {timeout:.0f}s: {waiting}\n{evidence}"
                )
            try:
                wake.get(timeout=min(TICK, remaining))
                while not wake.empty():  # one assessment per burst of events
                    wake.get_nowait()
            except queue.Empty:
                pass
    finally:
        events.close()
