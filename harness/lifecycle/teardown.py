"""Remove everything a run created, found by its label, and prove nothing is left.

Test apps are disposable: containers are removed with force rather than waiting out their
stop grace period, then networks, volumes, secrets and configs go — a ``Teardown`` wait
repeats removal passes until nothing is left. ``leftovers()`` is the zero-leak check every
run ends with.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence

from harness.errors import CcciError, TeardownError
from harness.lifecycle.context import ENGINE, Swarm
from harness.lifecycle.labels import RUN_LABEL
from harness.lifecycle.waits import Wait, wait_for
from harness.swarm import KINDS, NAMESPACE_LABEL

__all__ = ["assert_no_leftovers", "leftovers", "remove_run", "remove_stack"]

log = logging.getLogger(__name__)

REMOVAL_WINDOW = 60.0


class Teardown(Wait):
    """Nothing carrying any of ``labels`` is left (removing it, pass by pass)."""

    def __init__(self, swarm: Swarm, labels: Sequence[str], kinds: Sequence[str] = KINDS) -> None:
        self.swarm, self.labels, self.kinds = swarm, labels, kinds
        self.removed: list[str] = []

    def check(self) -> tuple[bool, str]:
        found = 0
        for label in self.labels:
            gone, seen = self.swarm.remove_labelled(label, self.kinds)
            self.removed += gone
            found += seen
        return found == 0, f"{found} resource(s) still there"

    def timed_out(self, window: float, state: str) -> CcciError:
        return TeardownError(f"teardown of {', '.join(self.labels)}: after {window:.0f}s, {state}")


def _labels(run_id: str, stacks: Iterable[str]) -> list[str]:
    # The run label is on everything cc-ci creates; the stack namespace catches anything a
    # stack made on its own, so a label missed somewhere can never turn into a leak.
    return [f"{RUN_LABEL}={run_id}", *(f"{NAMESPACE_LABEL}={s}" for s in stacks)]


def remove_stack(swarm: Swarm, stack: str) -> None:
    """Remove one app now (its services and containers); its data goes with the run."""
    removal = Teardown(swarm, [f"{NAMESPACE_LABEL}={stack}"], ("service", "container"))
    wait_for(removal, REMOVAL_WINDOW)


def remove_run(run_id: str, stacks: Iterable[str] = (), swarm: Swarm = ENGINE) -> list[str]:
    """Remove every resource of the run (its label, its stacks); return what was removed.
    What is still in use after the window stays for ``assert_no_leftovers`` to name."""
    teardown = Teardown(swarm, _labels(run_id, stacks))
    try:
        wait_for(teardown, REMOVAL_WINDOW)
    except TeardownError as exc:
        log.warning("%s", exc)
    return teardown.removed


def leftovers(
    run_id: str, stacks: Iterable[str] = (), swarm: Swarm = ENGINE
) -> dict[str, list[str]]:
    """Resources of the run still there, by kind (empty: no leak)."""
    found: dict[str, list[str]] = {}
    for label in _labels(run_id, stacks):
        for resource in swarm.labelled(label):
            names = found.setdefault(resource.kind, [])
            if resource.name not in names:
                names.append(resource.name)
    return found


def assert_no_leftovers(run_id: str, stacks: Iterable[str] = (), swarm: Swarm = ENGINE) -> None:
    left = leftovers(run_id, stacks, swarm)
    if left:
        listed = "; ".join(f"{kind}: {', '.join(names)}" for kind, names in left.items())
        raise TeardownError(f"run {run_id} leaked resources: {listed}")
