"""The service: the web app (``harness.serve.web``) taking webhook deliveries, and the
threads behind it.

Threads: the *intake* takes recorded comments in (permission, options, supersede, the
pending status and the queued comment); *workers* (``parallel`` of them) run queued jobs
one per PR at a time; the *poller* (``--poll``) reads new comments of open PRs where no
webhook can be registered. On start, before any of them, what a killed service left is
cleaned up: its runs' processes killed, dead runs swept off the swarm, running jobs
re-queued once, finished jobs whose report did not go out reported.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from harness.ci.api import Api
from harness.config import DEFAULT_RUN_DEADLINE
from harness.errors import CcciError
from harness.lifecycle import janitor
from harness.reports import card, site
from harness.reports.results import Record, read
from harness.serve import verdict, web
from harness.serve.command import USAGE, Command, UsageError, context, parse
from harness.serve.dispatch import Dispatcher, job_variables
from harness.serve.forge import Forge, ForgeError
from harness.serve.jobs import Job, Jobs
from harness.serve.payloads import Comment, Push, is_command
from harness.serve.runner import Runner, kill_leftovers

__all__ = ["Config", "Service", "serve"]

log = logging.getLogger(__name__)

_TICK = 1.0
_INTAKE_PATIENCE = 900.0  # seconds a comment waits for the forge to answer about it
_REPORT_PATIENCE = 60.0  # seconds before a report that did not go out is tried again


@dataclass(frozen=True)
class Config:
    forge_url: str
    token: str
    secret: str
    state_dir: Path
    runs_dir: Path
    public_url: str
    listen: str = "127.0.0.1:8088"
    parallel: int = 1
    repos: tuple[str, ...] = ()  # owner/name; empty: every repo the forge delivers from
    orgs: tuple[str, ...] = ()  # members of these may start runs too; their repos are listed
    poll: float | None = None
    recipes_dir: Path = Path("recipes")
    run_deadline: float = DEFAULT_RUN_DEADLINE
    janitor_age: float = 60.0
    dispatch: Api | None = None  # hand jobs to this CI engine's agents instead
    ci_repo: str = ""  # the engine's repo whose pipeline file runs jobs (docs/ci/)
    ci_branch: str = "main"


@dataclass
class Service:
    config: Config
    forge: Forge = field(init=False)
    jobs: Jobs = field(init=False)
    runner: Runner = field(init=False)
    stopping: threading.Event = field(default_factory=threading.Event)
    wake: threading.Event = field(default_factory=threading.Event)
    _site_lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        c = self.config
        self.forge = Forge(c.forge_url, c.token)
        self.jobs = Jobs(c.state_dir / "jobs.sqlite")
        self.runner = Runner(c.state_dir, c.runs_dir, c.recipes_dir, c.run_deadline, c.janitor_age)
        self.dispatcher = (
            Dispatcher(c.dispatch, c.ci_repo, c.ci_branch, self.runner)
            if c.dispatch is not None
            else None
        )

    # -- receiving -----------------------------------------------------------------------

    def serves(self, repo: str) -> bool:
        return not self.config.repos or repo in self.config.repos

    def listed(self, repo: str) -> bool:
        """Whether the operator named ``repo`` (``--repo``) or its owner (``--org``): only
        then does the recipe dir of its name apply to it, with the operator's secrets."""
        return repo in self.config.repos or repo.split("/")[0] in self.config.orgs

    def receive(self, event: Comment | Push) -> bool:
        """Record a command comment or a push (durably); False when seen before or not
        served."""
        if not self.serves(event.repo):
            return False
        if isinstance(event, Push):
            new = self.jobs.receive_push(event.repo, event.branch, event.sha, event.pusher)
        else:
            new = self.jobs.receive(event.comment_id, event.repo, event.pr, event.user, event.body)
        self.wake.set()
        return new

    def take_in(self, job: Job) -> None:
        """Permission, options, supersede; then the pending status and the queued reply.
        A push to the default branch is queued as it is (whoever pushed there may)."""
        if job.pr == 0:
            assert job.sha is not None
            self.forge.status(job.repo, job.sha, "pending", "queued", self._page(job.id), "cc-ci")
            self._supersede(job, self.jobs.enqueue(job.id, ""), job.sha)
            return
        try:
            command = parse(job.body)
        except UsageError as exc:
            self._refuse(job, f"{exc}. {USAGE}")
            return
        if command is None:
            self.jobs.update(job.id, state="refused", summary="not a command")
            return
        if not self.forge.may_run(job.repo, job.commenter, self.config.orgs):
            self._refuse(
                job,
                "only people with write access to this repository"
                + (f" or members of {', '.join(self.config.orgs)}" if self.config.orgs else "")
                + " can start a `!testme` run.",
            )
            return
        # The reply and the pending status go out before the job is queued (a worker may
        # claim it at once); a restart between the two edits the reply instead of adding one.
        sha = str(self.forge.pull(job.repo, job.pr)["head"]["sha"])
        self.forge.status(job.repo, sha, "pending", "queued", self._page(job.id), command.context)
        self.jobs.update(job.id, sha=sha)
        waiting = verdict.queued(job.commenter, command.options, self.jobs.position(job.id))
        if job.reply_id is None:
            self.jobs.update(job.id, reply_id=self.forge.comment(job.repo, job.pr, waiting))
        else:
            self.forge.edit_comment(job.repo, job.reply_id, waiting)
        self._supersede(job, self.jobs.enqueue(job.id, command.options), sha)

    def _supersede(self, job: Job, older: list[Job], sha: str) -> None:
        """Tell the older queued jobs of the PR (or branch) that ``job`` replaces them."""
        for old in older:
            if old.reply_id is not None:
                self.forge.edit_comment(
                    old.repo,
                    old.reply_id,
                    verdict.superseded(old.commenter, old.options, f"comment {job.comment_id}"),
                )
            if old.sha and old.sha != sha:
                self.forge.status(
                    old.repo,
                    old.sha,
                    "warning",
                    "superseded",
                    self._page(old.id),
                    context(old.options),
                )

    def _refuse(self, job: Job, why: str) -> None:
        self.jobs.update(job.id, state="refused", summary=why)
        self.forge.comment(job.repo, job.pr, verdict.refused(job.commenter, why))

    # -- running -------------------------------------------------------------------------

    def work(self, job: Job) -> None:
        """Run a claimed job to its verdict, and report it."""
        command = parse(job.body) or Command()  # a push runs every tier
        name = job.repo.split("/")[1]
        if job.pr:  # the PR head, from the fork (or the base repo's refs/pull/<n>/head)
            pull = self.forge.pull(job.repo, job.pr)
            sha, base_ref = str(pull["head"]["sha"]), str(pull["base"]["ref"])
            base_url = str(pull["base"]["repo"]["clone_url"])
            fork = pull["head"].get("repo") or {}
            heads = [(str(fork["clone_url"]), f"refs/heads/{pull['head']['ref']}")] if fork else []
            heads.append((base_url, f"refs/pull/{job.pr}/head"))
            ref = sha
        else:  # the default branch, as it is now: what later PR runs compare with
            assert job.sha is not None
            assert job.base_ref is not None
            sha, base_ref, heads = job.sha, job.base_ref, []
            base_url, ref = self.forge.clone_url(job.repo), job.base_ref
        if job.sha and job.sha != sha:  # pushed to since: the new head runs instead
            self.forge.status(
                job.repo,
                job.sha,
                "warning",
                f"the head moved to {sha[:8]}",
                self._page(job.id),
                context(job.options),
            )
        self.jobs.update(job.id, sha=sha, base_ref=base_ref)
        if job.pr and job.reply_id is None:
            self.jobs.update(job.id, reply_id=self.forge.comment(job.repo, job.pr, "…"))
        job = self.jobs.get(job.id)
        self.forge.status(
            job.repo, sha, "pending", "running", self._page(job.id), context(job.options)
        )
        self._edit(job, verdict.running(job.commenter, job.options, sha, None))

        def progress(doc: Record) -> None:
            self._edit(job, verdict.running(job.commenter, job.options, sha, doc))

        if self.dispatcher is not None:  # the pipeline fetches and runs it on an agent
            carried = job_variables(
                name,
                base_url,
                sha,
                heads,
                ref,
                command.tiers,
                command.upgrade_from,
                self.listed(job.repo),
            )
            outcome = self.dispatcher.run(job.id, carried, progress, self.stopping.is_set)
        else:
            try:
                catalogue = self.runner.fetch(name, base_url, sha, heads)
            except CcciError as exc:
                self.jobs.finish(job.id, "error", f"infra: fetching {sha[:8]}: {exc}"[:300], None)
                self.report(self.jobs.get(job.id))
                return
            outcome = self.runner.run(
                job.id,
                name,
                catalogue,
                ref,
                command.tiers,
                command.upgrade_from,
                self.listed(job.repo),
                progress=progress,
                stop=self.stopping.is_set,
            )
        if outcome.stopped:
            # Stopped by us (SIGTERM): not an attempt; the next start runs it again.
            self.jobs.update(job.id, state="queued", attempts=job.attempts - 1)
            return
        run_dir = str(outcome.run_dir) if outcome.run_dir else None
        if outcome.run_dir is not None:
            self.publish(outcome.run_dir)
        self.jobs.finish(job.id, outcome.verdict, outcome.summary, run_dir)
        self.report(self.jobs.get(job.id))

    def publish(self, run_dir: Path) -> None:
        """The run's PR card, and the site brought up to date (the public copy of the run)."""
        try:
            card.render(run_dir)
        except Exception as exc:  # a card is a picture: the verdict does not wait on it
            log.error("card of %s: %s: %s", run_dir.name, type(exc).__name__, exc)
        with self._site_lock:
            site.build(self.config.runs_dir, self.site_dir)

    @property
    def site_dir(self) -> Path:
        return self.config.runs_dir / "site"

    def report(self, job: Job) -> None:
        """The final status and comment of a finished job (again after a restart, if the
        service died before they went out: both are idempotent)."""
        assert job.verdict is not None
        if job.sha is None:  # it failed before the PR was read: nowhere to report
            self.jobs.update(job.id, reported=1)
            return
        base_ref = job.base_ref or ""
        run_dir = Path(job.run_dir) if job.run_dir else None
        doc = read(run_dir) if run_dir and (run_dir / "results.json").is_file() else None
        base_dir = (
            verdict.base_run(self.config.runs_dir, doc.recipe, base_ref, run_dir)
            if doc and base_ref
            else None
        )
        base = read(base_dir) if base_dir else None
        links, card_url = [("job", self._page(job.id))], None
        public = self.site_dir / "runs" / run_dir.name if run_dir is not None else None
        if run_dir is not None and public is not None and public.is_dir():
            base_url = f"{self.config.public_url}/runs/{run_dir.name}"
            links.insert(0, ("run page", f"{base_url}/index.html"))
            links += [(n, f"{base_url}/{n}") for n in verdict.ARTIFACTS if (public / n).is_file()]
            card_url = f"{base_url}/card.png" if (public / "card.png").is_file() else None
        body = verdict.final(
            job.commenter,
            job.options,
            job.sha,
            job.verdict,
            job.summary or "",
            doc,
            base,
            base_ref or "the base branch",
            links,
            card_url,
        )
        if note := self.runner.not_applied(job.repo.split("/")[1], self.listed(job.repo)):
            body += f"\n\n{note}"
        self.forge.status(
            job.repo,
            job.sha,
            job.verdict,
            job.summary or "",
            self._page(job.id),
            context(job.options),
        )
        self._edit(job, body)
        self.jobs.update(job.id, reported=1)

    def _edit(self, job: Job, body: str) -> None:
        if job.reply_id is not None:
            self.forge.edit_comment(job.repo, job.reply_id, body)

    def _page(self, job_id: int) -> str:
        return f"{self.config.public_url}/jobs/{job_id}"

    # -- threads -------------------------------------------------------------------------

    def recover(self) -> None:
        """What a killed service left: processes of its runs, their stacks, its jobs."""
        killed = kill_leftovers(self.config.state_dir)
        swept = janitor.sweep_dead_runs(min_age=0)
        again, given_up = self.jobs.recover()
        if killed or swept or again or given_up:
            log.warning(
                "recovered: %d processes killed, %d resources swept, %d jobs re-queued,"
                " %d given up",
                len(killed),
                len(swept),
                len(again),
                len(given_up),
            )
        with self._site_lock:
            site.build(self.config.runs_dir, self.site_dir)
        self.report_pending(0.0)

    def report_pending(self, older_than: float) -> None:
        """Report finished jobs whose report did not go out (the forge was down)."""
        for job in self.jobs.unreported(older_than):
            try:
                self.report(job)
            except ForgeError as exc:
                log.error("job %d: reporting: %s", job.id, exc)

    def intake_loop(self) -> None:
        """Take received comments in; a comment the forge cannot be asked about (down, or
        the PR gone) is tried again, and dropped after ``_INTAKE_PATIENCE``."""
        while not self.stopping.is_set():
            for job in self.jobs.in_state("received"):
                try:
                    self.take_in(job)
                except Exception as exc:
                    log.error("job %d: taking in: %s: %s", job.id, type(exc).__name__, exc)
                    if time.time() - job.created > _INTAKE_PATIENCE:
                        self.jobs.update(job.id, state="refused", summary=f"intake: {exc}"[:300])
            self.report_pending(_REPORT_PATIENCE)
            self.wake.wait(_TICK)
            self.wake.clear()

    def worker_loop(self) -> None:
        while not self.stopping.is_set():
            job = self.jobs.claim()
            if job is None:
                self.stopping.wait(_TICK)
                continue
            try:
                self.work(job)
            except Exception as exc:  # never lost: it ends as an infra error on the PR
                log.exception("job %d", job.id)
                self.jobs.finish(job.id, "error", f"infra: {type(exc).__name__}: {exc}"[:300], None)
                with contextlib.suppress(ForgeError):  # else again, by the intake
                    self.report(self.jobs.get(job.id))

    def poll_loop(self, every: float) -> None:
        """New ``!testme`` comments of open PRs, read through the API. Where it got to is
        kept in the state dir: comments made while the service was down are read after a
        restart, comments made before its first start never are."""
        first = datetime.now(UTC).replace(microsecond=0)
        while not self.stopping.wait(every):
            for repo in self.config.repos:
                started = datetime.now(UTC)
                since = self.jobs.poll_since(repo, first)
                try:
                    for pull in self.forge.open_pulls(repo):
                        index = int(pull["number"])
                        for c in self.forge.comments(repo, index, since):
                            if is_command(str(c.get("body", ""))):
                                user = str(c["user"]["login"])
                                self.receive(Comment(repo, index, int(c["id"]), user, c["body"]))
                except (CcciError, KeyError, TypeError, ValueError) as exc:
                    log.error("polling %s: %s", repo, exc)
                    continue
                # Forges keep seconds: read the last few again (comment ids dedupe).
                self.jobs.polled(repo, started - timedelta(seconds=5))


def serve(config: Config) -> int:
    """Run the service until SIGINT/SIGTERM."""
    import uvicorn

    service = Service(config)
    service.recover()
    threads = [threading.Thread(target=service.intake_loop, name="intake", daemon=True)]
    threads += [
        threading.Thread(target=service.worker_loop, name=f"worker-{n}", daemon=True)
        for n in range(config.parallel)
    ]
    if config.poll:
        threads.append(
            threading.Thread(
                target=service.poll_loop, args=(config.poll,), name="poller", daemon=True
            )
        )
    for thread in threads:
        thread.start()
    host, _, port = config.listen.rpartition(":")
    server = uvicorn.Server(
        uvicorn.Config(
            web.app(service.jobs, service.receive, config.secret, service.site_dir),
            host=host or "127.0.0.1",
            port=int(port),
            log_level="warning",
            access_log=False,
        )
    )
    print(
        f"cc-ci serve: listening on http://{host}:{port}, state in {config.state_dir},"
        f" {config.parallel} run(s) at a time"
        + (f", polling every {config.poll:g}s" if config.poll else ""),
        file=sys.stderr,
        flush=True,
    )
    # uvicorn stops on SIGINT/SIGTERM and then raises the signal again for the handler it
    # found: ours, so that the runs in progress are torn down and re-queued (not killed).
    for stop in (signal.SIGINT, signal.SIGTERM):
        signal.signal(stop, lambda *_: service.stopping.set())
    try:
        server.run()
    finally:
        service.stopping.set()
        service.wake.set()
        for thread in threads:
            thread.join(timeout=120)
        service.forge.close()
    return 0
