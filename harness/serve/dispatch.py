"""A ``!testme`` job handed to a CI engine's agents (``cc-ci serve --dispatch``) instead
of running here: one pipeline per job, followed to its end, its results read from the runs
dir the agents share with the service.

A job's pipeline carries the job's marker (``CCCI_JOB=<service id>:<job id>``) among its
variables, and its number is kept in the job's dir once known. A trigger is never retried:
when its answer is lost, the pipeline is looked for by its marker; a restarted service
adopts the pipeline it had started. So no retry or restart makes a second pipeline.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.ci.api import RUNNING, Api, CannotWatch
from harness.ci.watch import follow
from harness.deadline import Deadline, poll
from harness.files import read_or_make, write_atomic
from harness.redact import redact
from harness.reports.results import Record
from harness.serve.runner import LISTED_ENV, Outcome, Runner, outcome_of, reporter

__all__ = ["Dispatcher", "job_variables", "service_id"]

_FIND = 60.0  # seconds to look for a pipeline whose trigger answer was lost
_QUEUE = 1800.0  # seconds a pipeline may wait for a free agent, on top of the run deadline


def service_id(state_dir: Path) -> str:
    """This service's id (made once, kept in its state dir): the first half of markers."""
    return read_or_make(state_dir / "service-id", lambda: secrets.token_hex(8))


def job_variables(
    recipe: str,
    repo_url: str,
    sha: str,
    heads: list[tuple[str, str]],
    ref: str,
    tiers: tuple[str, ...] | None,
    upgrade_from: str | None,
    listed: bool,
) -> dict[str, str]:
    """What ``cc-ci job`` reads of a job (the rest is the dispatcher's); ``listed``: the
    operator listed the job's repo (its recipe dir and secrets apply)."""
    return {
        "CCCI_RECIPE": recipe,
        "CCCI_REPO_URL": repo_url,
        "CCCI_SHA": sha,
        "CCCI_HEADS": "\n".join(f"{url} {head}" for url, head in heads),
        "CCCI_REF": ref,
        "CCCI_TIERS": ",".join(tiers or ()),
        "CCCI_UPGRADE_FROM": upgrade_from or "",
        LISTED_ENV: "yes" if listed else "no",
    }


@dataclass
class Dispatcher:
    api: Api
    ci_repo: str  # the repo whose pipeline file runs jobs (docs/ci/)
    branch: str
    runner: Runner  # the service's own: its state dir, the runs dir (shared with the
    # agents, at the same path), the run deadline and janitor age the agents get

    def variables(self, job_id: int, job: Mapping[str, str]) -> dict[str, str]:
        return {
            "CCCI_JOB": f"{service_id(self.runner.state_dir)}:{job_id}",
            "CCCI_JOB_ID": str(job_id),
            "CCCI_RUNS_DIR": str(self.runner.runs_dir),
            "CCCI_RUN_DEADLINE": str(self.runner.run_deadline),
            "CCCI_JANITOR_AGE": str(self.runner.janitor_age),
            **job,
        }

    def run(
        self,
        job_id: int,
        job: Mapping[str, str],
        progress: Callable[[Record], None],
        stop: Callable[[], bool],
    ) -> Outcome:
        """Start (or adopt) the job's pipeline and follow it to its end; ``job`` is what
        ``cc-ci job`` reads (CCCI_RECIPE, CCCI_SHA, …)."""
        job_dir = self.runner.state_dir / "jobs" / str(job_id)
        job_dir.mkdir(parents=True, exist_ok=True)
        output, runs = job_dir / "output.log", self.runner.runs_dir / f"job-{job_id}"
        deadline = Deadline(self.runner.run_deadline + _QUEUE, what=f"job {job_id}'s pipeline")
        report = reporter(runs, progress)

        def show(line: str) -> None:
            with output.open("a") as out:
                out.write(f"{redact(line)}\n")
            report()

        try:
            number = self._pipeline(job_id, job, job_dir / "pipeline", deadline, show)
            if number is None:
                return Outcome("error", "infra: the CI engine did not confirm the pipeline", None)
            ended = follow(self.api, self.ci_repo, deadline, show, number=number, stop=stop)
        except CannotWatch as exc:
            show(f"cc-ci: {exc}")
            return Outcome("error", f"infra: {exc}"[:300], None)
        if ended is None:  # the service stops; the pipeline goes on, and is adopted later
            return Outcome("error", "infra: the service stopped", None, stopped=True)
        outcome = outcome_of(runs, output, "")
        if outcome.run_dir is None and ended.outcome != RUNNING:
            why = f"pipeline #{ended.number} ended {ended.status} without results ({ended.url})"
            return Outcome("error", f"infra: {why}", None)
        return outcome

    def _pipeline(
        self,
        job_id: int,
        job: Mapping[str, str],
        saved: Path,
        deadline: Deadline,
        show: Callable[[str], None],
    ) -> int | None:
        """The number of the job's pipeline: the one it has, else a new one."""
        if saved.is_file():
            return int(saved.read_text())
        handle = self.api.repo(self.ci_repo, deadline)
        variables = self.variables(job_id, job)
        number = self._find(handle, variables["CCCI_JOB"], deadline, 0.0)
        if number is None:
            started = self.api.start(handle, self.branch, variables)
            if started is not None:
                number = started.number
            else:  # the answer was lost: the pipeline may exist all the same
                show("the trigger's answer was lost; looking for the pipeline by its marker")
                number = self._find(handle, variables["CCCI_JOB"], deadline, _FIND)
        if number is not None:
            write_atomic(saved, f"{number}\n")
            show(f"pipeline #{number} of job {job_id}")
        return number

    def _find(self, handle: Any, marker: str, deadline: Deadline, seconds: float) -> int | None:
        """The number of the pipeline carrying ``marker``, looked for ``seconds`` (at least
        once, never past ``deadline``)."""

        def found() -> tuple[bool, int | None]:
            pipelines = self.api.pipelines(handle, deadline)
            mine = [p.number for p in pipelines if p.variables.get("CCCI_JOB") == marker]
            return bool(mine), min(mine, default=None)

        return poll(found, Deadline(min(seconds, deadline.left())), first=2.0, most=2.0)[1]
