"""Following one pipeline to its end: found by its commit (or its number), waited for
while it does not exist yet, shown as its status and running steps change."""

from __future__ import annotations

import time
from collections.abc import Callable

from harness.ci.api import FAILURE, RUNNING, SUCCESS, Api, CannotWatch, Pipeline

__all__ = ["EXIT", "follow", "matches"]

EXIT = {SUCCESS: 0, FAILURE: 1}  # anything that ends the watch otherwise: 2
_EVERY = 2.0  # seconds between looks at a pipeline that has not ended


def matches(pipeline: Pipeline, commit: str) -> bool:
    """The pipeline ran ``commit`` (a full id, or a prefix of 7 or more)."""
    return len(commit) >= 7 and pipeline.commit.startswith(commit.lower())


def follow(
    api: Api,
    repo: str,
    deadline: float,
    show: Callable[[str], None],
    *,
    commit: str = "",
    number: int | None = None,
    every: float = _EVERY,
    sleep: Callable[[float], None] = time.sleep,
    stop: Callable[[], bool] = lambda: False,
) -> Pipeline | None:
    """The pipeline of ``commit`` (its newest) or ``number`` in ``repo``, once it ended;
    ``None`` once ``stop()`` says so. ``CannotWatch`` when the deadline (monotonic) passes
    first."""
    handle = api.repo(repo, deadline)
    told = ""
    while True:
        if number is None:
            found = [p for p in api.pipelines(handle, deadline) if matches(p, commit)]
            if found:
                number = max(p.number for p in found)
        if number is not None:
            pipeline = api.pipeline(handle, number, deadline)
            state = f"pipeline #{pipeline.number}: {pipeline.status}"
            if pipeline.steps:
                state += f" ({', '.join(pipeline.steps)})"
            if pipeline.outcome != RUNNING:
                show(f"{state} {pipeline.url}")
                return pipeline
        else:
            state = f"no pipeline of {commit[:12]} yet"
        if state != told:
            show(state)
            told = state
        if time.monotonic() + every > deadline:
            raise CannotWatch(f"{api.engine}: {repo}: deadline passed; last seen: {state}")
        if stop():
            return None
        sleep(every)
