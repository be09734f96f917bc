"""Waiting, one way: small strategy objects on the one poll of ``harness.deadline``.

A ``Wait`` says how to look (``check``: done or not, and the state in words; it raises
to fail at once, as a crash loop does) and what it means to run out of time
(``timed_out``). ``wait_for`` repeats the check — backing off, or woken early by the
engine's events — until it is done or its window, cut to what is left of the run's
``Deadline``, has passed. The run deadline bounds every wait of the run.

    Convergence   (converge.py) every service of the stacks runs its current spec
    Settled       (converge.py) ... and keeps running: no crash since the deploy
    HttpHealth    HEALTH_PATH answers one of HEALTH_OK, on every platform
    HookProbe     a recipe's check hook (READY_PROBE) passes
    EngineAnswers the Docker engine answers again (before an infra failure is retried)
    Teardown      (teardown.py) nothing labelled with the run is left
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from harness.deadline import Deadline, poll
from harness.errors import CcciError, ConvergeError, PlatformError, ProbeError

if TYPE_CHECKING:
    from harness.lifecycle.context import Swarm

__all__ = ["EngineAnswers", "HookProbe", "HttpHealth", "Wait", "wait_for"]


class Wait:
    """A strategy: how to look, and what running out of time means."""

    def check(self) -> tuple[bool, str]:
        raise NotImplementedError

    def timed_out(self, window: float, state: str) -> CcciError:
        return ConvergeError(f"{type(self).__name__} not reached within {window:.0f}s: {state}")


def wait_for(
    wait: Wait,
    window: float,
    deadline: Deadline | None = None,
    *,
    wake: Callable[[float], None] = time.sleep,
    first: float = 0.1,
    most: float = 1.0,
) -> str:
    """Check until ``wait`` is done (its state) or ``window`` seconds passed (raise)."""
    window = deadline.bound(window) if deadline is not None else window
    within = Deadline(window)
    done, state = poll(lambda: _checked(wait, deadline), within, first=first, most=most, wake=wake)
    if not done:
        raise wait.timed_out(window, state)
    return state


def _checked(wait: Wait, deadline: Deadline | None) -> tuple[bool, str]:
    """One check of ``wait``, the run's stop obeyed first."""
    if deadline is not None:
        deadline.check()
    return wait.check()


class HttpHealth(Wait):
    """``GET base_url + path`` with ``Host: host`` (dialled at ``proxy``, when set) answers
    one of ``ok``; ``watch`` runs before each try (a crash of the app ends the wait at once,
    red, instead of at the window's end)."""

    def __init__(
        self,
        base_url: str,
        path: str,
        host: str,
        proxy: str | None,
        ok: tuple[int, ...],
        watch: Callable[[], Any],
    ) -> None:
        self.base_url, self.path, self.host, self.proxy = base_url, path, host, proxy
        self.ok, self.watch = ok, watch

    @property
    def url(self) -> str:
        return f"{self.base_url}{self.path}"

    def check(self) -> tuple[bool, str]:
        import httpx

        from harness.lifecycle.platform import app_client

        self.watch()
        try:
            with app_client(self.base_url, self.host, self.proxy, timeout=5.0) as http:
                status = http.get(self.path)
        except httpx.HTTPError as exc:
            return False, f"{type(exc).__name__}: {exc}"
        return status.status_code in self.ok, str(status.status_code)

    def timed_out(self, window: float, state: str) -> CcciError:
        return ProbeError(
            f"health: GET {self.url} (Host: {self.host}) answered {state} for {window:.0f}s,"
            f" expected one of {', '.join(map(str, self.ok))}"
        )


class HookProbe(Wait):
    """A recipe's check hook (raise or return False: not yet) passes."""

    def __init__(
        self, name: str, attempt: Callable[[], tuple[bool, str]], watch: Callable[[], Any]
    ) -> None:
        self.name, self.attempt, self.watch = name, attempt, watch

    def check(self) -> tuple[bool, str]:
        self.watch()
        return self.attempt()

    def timed_out(self, window: float, state: str) -> CcciError:
        return ProbeError(f"{self.name} did not pass within {window:.0f}s: {state}")


class EngineAnswers(Wait):
    """The Docker engine answers again."""

    def __init__(self, swarm: Swarm) -> None:
        self.swarm = swarm

    def check(self) -> tuple[bool, str]:
        try:
            self.swarm.ping()
        except CcciError as exc:
            return False, str(exc)
        return True, "answering"

    def timed_out(self, window: float, state: str) -> CcciError:
        return PlatformError(f"the Docker engine did not answer within {window:.0f}s: {state}")
