"""One ``!testme`` job on this host: the PR head fetched, ``cc-ci run`` as its own process
tree, the outcome read from its ``results.json``.

The PR head is untrusted code. It runs as any recipe candidate does (the deploy policy
applies), under the operator's recipe dir ``recipes/<repo name>`` only when the operator
listed the repo (``--repo``, or its owner with ``--org``): a fork or another owner's repo of
the same name gets the defaults. The run's process gets an allowlist environment
(``harness.proc``): the service's settings a run reads, the operator's recipe secrets for a
listed repo, never the forge or CI token or the webhook secret. It dies with the service
(``setpriv --pdeathsig``), and carries a marker in its environment by which a restarted
service finds and kills what is left of it before sweeping its stacks.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import re
import signal
import subprocess
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from filelock import FileLock

import harness
from harness.config import DEFAULT_JANITOR_AGE, DEFAULT_RUN_DEADLINE, cache_dir
from harness.deadline import Deadline, poll
from harness.errors import CatalogueError, last_line
from harness.fetch import git
from harness.lifecycle import janitor
from harness.proc import start
from harness.reports.results import Record, read
from harness.serve.command import Command, UsageError, parse
from harness.serve.jobs import Verdict

__all__ = [
    "JOB_ENV",
    "LISTED_ENV",
    "Outcome",
    "Runner",
    "kill_leftovers",
    "outcome_of",
    "reporter",
]

log = logging.getLogger(__name__)

JOB_ENV = "CCCI_SERVE_JOB"  # "<state dir>:<job id>" in every process of a job's run
LISTED_ENV = "CCCI_LISTED"  # a dispatched job's: "yes" when the operator listed its repo
# What a run reads of the service's environment (its own settings come as flags): where
# and how the swarm serves apps, and the pull policy.
RUN_SETTINGS = ("CCCI_DOMAIN", "CCCI_PROXY", "CCCI_IPVS", "CCCI_PULL")
OPERATOR_SECRETS = "CCCI_SECRET_"  # generate=false values, for the operator's recipes only
_POLL = 1.0  # seconds between looks at the run's results.json
_SHA = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")
_STOPPED = "the service stopped"
_GRACE = 60.0  # after the run deadline: SIGINT (teardown), then this long before SIGKILL


@dataclass(frozen=True)
class Outcome:
    verdict: Verdict
    summary: str  # one line: the level, or the cause
    run_dir: Path | None
    stopped: bool = False  # ended by the service's own stop (not an attempt)


@dataclass
class Runner:
    state_dir: Path
    runs_dir: Path
    recipes_dir: Path  # the cc-ci checkout's recipe dirs: recipes/<repo name>
    run_deadline: float
    janitor_age: float

    def fetch(self, name: str, base_url: str, sha: str, heads: list[tuple[str, str]]) -> Path:
        """A catalogue of the service's own, one per base repo, holding recipe ``name``:
        the base repo's branches and tags (the upgrade's releases), and ``sha`` — fetched
        from the first of ``heads`` (clone URL, ref) that has it, as ``refs/ccci/<sha>``.
        What the forge answered reaches git as arguments only once it cannot be read as an
        option."""
        if not _SHA.fullmatch(sha):
            raise CatalogueError(f"{name}: {sha[:80]!r} is not a commit id")
        for url in (base_url, *(u for u, _ in heads)):
            if url.startswith("-"):
                raise CatalogueError(f"{name}: {url[:80]!r} is not a clone URL")
        # One catalogue per base repo, keyed by its clone URL: a fork (or another owner's
        # repo) of the same name never replaces the upstream's tags or branches.
        catalogue = (
            self.state_dir / "catalogue" / hashlib.sha256(base_url.encode()).hexdigest()[:16]
        )
        dest = catalogue / f"{name}.git"
        catalogue.mkdir(parents=True, exist_ok=True)
        with FileLock(f"{dest}.lock"):
            if not dest.is_dir():
                git("init", "--quiet", "--bare", str(dest))
            git(
                "fetch",
                "--quiet",
                "--prune",
                "--force",
                base_url,
                "+refs/heads/*:refs/heads/*",
                "+refs/tags/*:refs/tags/*",
                cwd=dest,
            )
            for url, ref in heads:
                with contextlib.suppress(CatalogueError):
                    git("fetch", "--quiet", url, f"+{ref}:refs/ccci/{sha}", cwd=dest)
                if _has(dest, sha):
                    break
            if not _has(dest, sha):
                raise CatalogueError(
                    f"{name}: commit {sha[:8]} not found at {base_url}"
                    + "".join(f" or {u} {r}" for u, r in heads)
                )
        return catalogue

    def recipe_dir(self, name: str, job_dir: Path, listed: bool) -> Path:
        """recipes/<name> of the cc-ci checkout for a repo the operator listed, else the
        defaults."""
        own = self.recipes_dir / name
        if listed and (own / "recipe_meta.py").is_file():
            return own.resolve()
        defaults = job_dir / "recipes" / name
        defaults.mkdir(parents=True, exist_ok=True)
        (defaults / "recipe_meta.py").write_text(
            '"""Defaults (no recipe dir of cc-ci applies)."""\n'
        )
        return defaults

    def not_applied(self, name: str, listed: bool) -> str:
        """The line a job says when recipes/<name> exists but its repo is not listed ("")."""
        if listed or not (self.recipes_dir / name / "recipe_meta.py").is_file():
            return ""
        return (
            f"`recipes/{name}` does not apply: this repository is not one the service"
            " lists (--repo, --org), so the defaults do"
        )

    def own(self, job_id: int, listed: bool) -> dict[str, str]:
        """What a job's ``cc-ci run`` gets on top of the allowlist environment: the job's
        marker, this cc-ci's import path, the run settings and (for a listed repo) the
        operator's recipe secrets of the service's environment."""
        own = {
            JOB_ENV: f"{self.state_dir}:{job_id}",
            "PYTHONPATH": str(Path(harness.__file__).resolve().parent.parent),
        }
        own |= {name: os.environ[name] for name in RUN_SETTINGS if name in os.environ}
        if listed:
            own |= {k: v for k, v in os.environ.items() if k.startswith(OPERATOR_SECRETS)}
        return own

    def argv(
        self,
        job_id: int,
        recipe_dir: Path,
        catalogue: Path,
        ref: str,
        tiers: tuple[str, ...] | None,
        upgrade_from: str | None,
    ) -> list[str]:
        argv = [
            "setpriv",
            "--pdeathsig",
            "SIGKILL",
            "--",
            sys.executable,
            "-m",
            "harness.cli",
            "run",
            str(recipe_dir),
            "--",
            "--catalogue",
            str(catalogue),
            "--ref",
            ref,
            "--runs-dir",
            str(self.runs_dir / f"job-{job_id}"),
            "--run-deadline",
            str(self.run_deadline),
            "--janitor-age",
            str(self.janitor_age),
            "--rootdir",
            str(recipe_dir.parent.parent),
            "-p",
            "no:cacheprovider",
        ]
        if tiers:
            argv += ["--tiers", ",".join(tiers)]
        if upgrade_from:
            argv += ["--upgrade-from", upgrade_from]
        return argv

    def run(
        self,
        job_id: int,
        name: str,
        catalogue: Path,
        ref: str,
        tiers: tuple[str, ...] | None,
        upgrade_from: str | None,
        listed: bool,
        progress: Callable[[Record], None],
        stop: Callable[[], bool],
    ) -> Outcome:
        """Run the job's ``cc-ci run`` to its end (or its deadline, or the service's stop);
        ``listed``: the operator listed the job's repo (its recipe dir applies)."""
        job_dir = self.state_dir / "jobs" / str(job_id)
        job_dir.mkdir(parents=True, exist_ok=True)
        recipe_dir = self.recipe_dir(name, job_dir, listed)
        argv = self.argv(job_id, recipe_dir, catalogue, ref, tiers, upgrade_from)
        runs = self.runs_dir / f"job-{job_id}"
        output = job_dir / "output.log"
        with output.open("w") as out:
            if note := self.not_applied(name, listed):
                out.write(f"{note}\n")
                out.flush()
            process = start(
                argv,
                output=out,
                cwd=self.recipes_dir.resolve().parent,
                own=self.own(job_id, listed),
            )
        report = reporter(runs, progress)

        def ended() -> tuple[bool, None]:
            finished = process.poll() is not None
            report()
            return finished or stop(), None

        done, _ = poll(ended, Deadline(self.run_deadline + _GRACE), first=_POLL, most=_POLL)
        killed_for = ""
        if process.poll() is None:  # stopped, or past its deadline
            killed_for = _STOPPED if done else "the run deadline passed"
            _end(process)
            janitor.sweep_dead_runs(min_age=0)
        return outcome_of(runs, output, killed_for)


def _has(repo: Path, sha: str) -> bool:
    try:
        git("cat-file", "-e", f"{sha}^{{commit}}", cwd=repo)
    except CatalogueError:
        return False
    return True


def reporter(runs: Path, progress: Callable[[Record], None]) -> Callable[[], None]:
    """A call that hands the run's results.json (under ``runs``) to ``progress`` whenever
    its tiers changed since the last call."""
    seen: list[Any] = [None]

    def report() -> None:
        for path in runs.glob("*/results.json"):
            try:
                doc = read(path)
            except (OSError, ValueError):  # being written: the next call reads it
                continue
            if doc.tiers != seen[0]:
                seen[0] = doc.tiers
                progress(doc)
            return

    return report


def _end(process: subprocess.Popen[bytes]) -> None:
    """SIGINT to the run's process group (pytest tears the run down), SIGKILL if it
    is still there after the grace."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGINT)
    try:
        process.wait(_GRACE)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def outcome_of(runs: Path, output: Path, killed_for: str) -> Outcome:
    found = sorted(runs.glob("*/results.json"))
    doc = read(found[-1]) if found else None
    run_dir = found[-1].parent if found else None
    if killed_for:
        stopped = killed_for == _STOPPED
        return Outcome("error", f"infra: {killed_for}", run_dir, stopped=stopped)
    if doc is None:
        tail = output.read_text(errors="replace").strip().splitlines()
        cause = next((t for t in reversed(tail) if t.startswith("cc-ci")), tail[-1] if tail else "")
        return Outcome("error", f"infra: the run did not start: {cause[:200]}", None)
    infra = [
        f"{tier}: {result.reason}"
        for tier, result in doc.tiers.items()
        if result.failure_class == "infra"
    ]
    level = f"level {doc.level}/5"
    if infra:
        return Outcome("error", f"{level}, infra: {last_line(infra[0])[:200]}", run_dir)
    if doc.level >= doc.expected_level:
        return Outcome("success", level, run_dir)
    return Outcome("failure", f"{level}, expected {doc.expected_level}", run_dir)


def kill_leftovers(state_dir: Path) -> list[int]:
    """Kill every process still carrying a job marker of this service (what a killed
    service's runs left running); their pids."""
    killed = []
    prefix = f"{JOB_ENV}={state_dir}:".encode()
    for environ in Path("/proc").glob("[0-9]*/environ"):
        try:
            marked = any(v.startswith(prefix) for v in environ.read_bytes().split(b"\0"))
        except OSError:
            continue
        if marked:
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(environ.parent.name), signal.SIGKILL)
                killed.append(int(environ.parent.name))
    return killed


_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
_REF = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/+-]{0,199}")  # a commit id or a branch name


def run_dispatched(env: Mapping[str, str], recipes_dir: Path) -> Outcome:
    """``cc-ci job``: the job a dispatched pipeline carries in its variables (set by
    ``cc-ci serve --dispatch``), run on this agent as the service would run it here. The
    variables are input like any other: each is checked before it is used."""

    def need(name: str) -> str:
        value = env.get(name, "")
        if not value:
            raise CatalogueError(f"job: {name} is not set (is this a cc-ci dispatched pipeline?)")
        return value

    job_id, name = need("CCCI_JOB_ID"), need("CCCI_RECIPE")
    if not job_id.isdigit() or not _NAME.fullmatch(name):
        raise CatalogueError(f"job: CCCI_JOB_ID {job_id[:20]!r} / CCCI_RECIPE {name[:40]!r}")
    heads = [
        (url, ref)
        for url, _, ref in (line.partition(" ") for line in env.get("CCCI_HEADS", "").splitlines())
        if ref
    ]
    runs_dir = Path(need("CCCI_RUNS_DIR"))
    state_dir = Path(env.get("CCCI_STATE_DIR") or cache_dir(env) / "agent")
    try:
        deadline = float(env.get("CCCI_RUN_DEADLINE") or DEFAULT_RUN_DEADLINE)
        age = float(env.get("CCCI_JANITOR_AGE") or DEFAULT_JANITOR_AGE)
    except ValueError:
        raise CatalogueError("job: CCCI_RUN_DEADLINE / CCCI_JANITOR_AGE are not numbers") from None
    listed = env.get(LISTED_ENV, "no")
    if listed not in ("yes", "no"):
        raise CatalogueError(f"job: {LISTED_ENV} {listed[:20]!r} is not yes or no")
    ref = need("CCCI_REF")
    if not _REF.fullmatch(ref) or ".." in ref:  # it reaches git: never as an option
        raise CatalogueError(f"job: CCCI_REF {ref[:80]!r} is not a commit id or branch name")
    # The tiers and the upgrade's base, checked by the `!testme` grammar that made them.
    words = [f"tiers={env['CCCI_TIERS']}"] if env.get("CCCI_TIERS") else []
    words += [f"from={env['CCCI_UPGRADE_FROM']}"] if env.get("CCCI_UPGRADE_FROM") else []
    try:
        command = parse(" ".join(["!testme", *words])) or Command()
    except UsageError as exc:
        raise CatalogueError(f"job: CCCI_TIERS / CCCI_UPGRADE_FROM: {exc}") from None
    runner = Runner(state_dir, runs_dir, recipes_dir, deadline, age)
    catalogue = runner.fetch(name, need("CCCI_REPO_URL"), need("CCCI_SHA"), heads)
    return runner.run(
        int(job_id),
        name,
        catalogue,
        ref,
        command.tiers,
        command.upgrade_from,
        listed == "yes",
        progress=_print_tiers,
        stop=lambda: False,
    )


def _print_tiers(doc: Record) -> None:
    tiers = ", ".join(f"{tier} {result.status}" for tier, result in doc.tiers.items())
    print(f"cc-ci: {tiers}", flush=True)
