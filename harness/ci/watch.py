"""Following one pipeline to its end: found by its commit (or its number), waited for
while it does not exist yet, shown as its status and running steps change."""

from __future__ import annotations

import time
from collections.abc import Callable

from harness.ci.api import FAILURE, RUNNING, SUCCESS, Api, CannotWatch, Pipeline
from harness.deadline import Deadline, poll

__all__ = ["EXIT", "follow", "matches"]

EXIT = {SUCCESS: 0, FAILURE: 1}  # anything that ends the watch otherwise: 2
_EVERY = 2.0  # seconds between looks at a pipeline that has not ended


def matches(pipeline: Pipeline, commit: str) -> bool:
    """The pipeline ran ``commit`` (a full id, or a prefix of 7 or more)."""
    return len(commit) >= 7 and pipeline.commit.startswith(commit.lower())


def follow(
    api: Api,
    repo: str,
    deadline: Deadline,
    show: Callable[[str], None],
    *,
    commit: str = "",
    number: int | None = None,
    every: float = _EVERY,
    sleep: Callable[[float], None] = time.sleep,
    stop: Callable[[], bool] = lambda: False,
) -> Pipeline | None:
    """The pipeline of ``commit`` (its newest) or ``number`` in ``repo``, once it ended;
    ``None`` once ``stop()`` says so. ``CannotWatch`` when ``deadline`` passes first."""
    handle = api.repo(repo, deadline)
    told = ""
    found = number

    def ended() -> tuple[bool, tuple[str, Pipeline | None]]:
        nonlocal found, told
        if found is None:
            mine = [p for p in api.pipelines(handle, deadline) if matches(p, commit)]
            found = max((p.number for p in mine), default=None)
        if found is None:
            state = f"no pipeline of {commit[:12]} yet"
        else:
            pipeline = api.pipeline(handle, found, deadline)
            state = f"pipeline #{pipeline.number}: {pipeline.status}"
            if pipeline.steps:
                state += f" ({', '.join(pipeline.steps)})"
            if pipeline.outcome != RUNNING:
                show(f"{state} {pipeline.url}")
                return True, (state, pipeline)
        if state != told:
            show(state)
            told = state
        return stop(), (state, None)

    done, (state, pipeline) = poll(ended, deadline, first=every, most=every, wake=sleep)
    if not done:
        raise CannotWatch(f"{api.engine}: {repo}: deadline passed; last seen: {state}")
    return pipeline
