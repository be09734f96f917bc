"""Remove everything a run created, found by its label, and prove nothing is left.

Test apps are disposable: containers are removed with force rather than waiting out their
stop grace period, then networks, volumes, secrets and configs go. ``leftovers()`` is the
zero-leak check every run ends with.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from typing import Any

from harness import engine
from harness.errors import TeardownError
from harness.platform import RUN_LABEL

__all__ = ["KINDS", "leftovers", "remove_run", "remove_stack"]

log = logging.getLogger(__name__)

KINDS = ("service", "container", "network", "volume", "secret", "config")


def _collections(client: Any) -> dict[str, Any]:
    return {
        "service": client.services,
        "container": client.containers,
        "network": client.networks,
        "volume": client.volumes,
        "secret": client.secrets,
        "config": client.configs,
    }


def _list(collection: Any, kind: str, label: str) -> list[Any]:
    extra = {"all": True} if kind == "container" else {}
    return list(collection.list(filters={"label": label}, **extra))


def _name(obj: Any) -> str:
    return str(getattr(obj, "name", None) or obj.id)


def remove_stack(stack: str) -> None:
    """Remove one app now (its services and containers); its data goes with the run."""
    _remove(f"com.docker.stack.namespace={stack}", kinds=("service", "container"))


def _labels(run_id: str, stacks: Iterable[str]) -> list[str]:
    # The run label is on everything cc-ci creates; the stack namespace catches anything a
    # stack made on its own, so a label missed somewhere can never turn into a leak.
    return [f"{RUN_LABEL}={run_id}", *(f"com.docker.stack.namespace={s}" for s in stacks)]


def remove_run(run_id: str, stacks: Iterable[str] = (), timeout: float = 60) -> list[str]:
    """Remove every resource of the run (its label, its stacks); return what was removed."""
    removed = []
    for label in _labels(run_id, stacks):
        removed += _remove(label, KINDS, timeout)
    return removed


def _remove(label: str, kinds: tuple[str, ...], timeout: float = 60) -> list[str]:
    import docker

    collections = _collections(engine.client())
    removed: list[str] = []
    deadline = time.monotonic() + timeout
    while True:
        remaining = 0
        for kind in kinds:
            for obj in _list(collections[kind], kind, label):
                remaining += 1
                try:
                    if kind == "container":
                        obj.remove(force=True, v=False)
                    elif kind == "volume":
                        obj.remove(force=True)
                    else:
                        obj.remove()
                    removed.append(f"{kind} {_name(obj)}")
                except docker.errors.NotFound:
                    pass
                except docker.errors.APIError as exc:
                    # In use a moment longer (a network with a detaching endpoint, a volume
                    # of a container being removed): the next pass gets it.
                    log.debug("not yet removable: %s %s: %s", kind, _name(obj), exc)
        if remaining == 0:
            return removed
        if time.monotonic() > deadline:
            return removed
        time.sleep(0.2)


def leftovers(run_id: str, stacks: Iterable[str] = ()) -> dict[str, list[str]]:
    """Resources of the run still there, by kind (empty: no leak)."""
    collections = _collections(engine.client())
    found: dict[str, list[str]] = {}
    for label in _labels(run_id, stacks):
        for kind in KINDS:
            for name in (_name(o) for o in _list(collections[kind], kind, label)):
                if name not in found.setdefault(kind, []):
                    found[kind].append(name)
    return {kind: names for kind, names in found.items() if names}


def assert_no_leftovers(run_id: str, stacks: Iterable[str] = ()) -> None:
    left = leftovers(run_id, stacks)
    if left:
        listed = "; ".join(f"{kind}: {', '.join(names)}" for kind, names in left.items())
        raise TeardownError(f"run {run_id} leaked resources: {listed}")
