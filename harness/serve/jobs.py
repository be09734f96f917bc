"""The service's durable job queue: one SQLite file in the state dir, in WAL mode.

A row per ``!testme`` comment (the comment id is unique, so a redelivered hook or a comment
seen again by the poller never queues twice), moving through

    received → refused                       (not a command we run: the reply says why)
             → queued …                      (a push to the default branch: PR 0, no reply)
             → queued → running → done       (``verdict`` set, then ``reported``)
             → queued → superseded           (a newer ``!testme`` on the same PR)

Every change is one transaction, so ``kill -9`` between any two leaves a state the next
start resumes from: received rows are taken in again, a running job is re-run once (its
``attempts`` say whether it already was) or ends as an infra error, and a done job whose
report did not go out is reported again. Plain ``sqlite3``: the transitions above (unique
comment, supersede, one running job per PR, run at most twice) are not a task queue's.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Literal, TypedDict, Unpack

__all__ = ["MAX_ATTEMPTS", "Job", "Jobs", "State", "Verdict"]

State = Literal["received", "refused", "queued", "running", "done", "superseded"]
Verdict = Literal["success", "failure", "error"]  # a done job's, and its final commit status
MAX_ATTEMPTS = 2  # a run the service's death interrupted is re-run once, not again

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id INTEGER PRIMARY KEY,
    comment_id INTEGER UNIQUE,  -- NULL for a push
    repo TEXT NOT NULL,
    pr INTEGER NOT NULL,
    commenter TEXT NOT NULL,
    body TEXT NOT NULL,
    state TEXT NOT NULL,
    options TEXT NOT NULL DEFAULT '',
    attempts INTEGER NOT NULL DEFAULT 0,
    reply_id INTEGER,
    sha TEXT,
    verdict TEXT,
    summary TEXT,
    run_dir TEXT,
    base_ref TEXT,
    reported INTEGER NOT NULL DEFAULT 0,
    created REAL NOT NULL,
    started REAL,
    finished REAL
);
CREATE INDEX IF NOT EXISTS jobs_state ON jobs (state, id);
CREATE UNIQUE INDEX IF NOT EXISTS jobs_push ON jobs (repo, sha) WHERE comment_id IS NULL;
CREATE TABLE IF NOT EXISTS polls (repo TEXT PRIMARY KEY, since TEXT NOT NULL);
"""


@dataclass(frozen=True)
class Job:
    id: int
    comment_id: int | None  # None: a push to the default branch (pr 0)
    repo: str
    pr: int
    commenter: str
    body: str
    state: State
    options: str
    attempts: int
    reply_id: int | None
    sha: str | None
    verdict: Verdict | None
    summary: str | None
    run_dir: str | None
    base_ref: str | None
    reported: int
    created: float
    started: float | None
    finished: float | None


class Fields(TypedDict, total=False):
    """The columns a job's ``update`` may set."""

    state: State
    options: str
    attempts: int
    reply_id: int
    sha: str
    verdict: Verdict
    summary: str
    run_dir: str | None
    base_ref: str
    reported: int
    finished: float


class Jobs:
    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(path, timeout=30)
        try:
            db.execute("PRAGMA journal_mode=WAL")  # persistent: every later connection has it
            db.executescript(_SCHEMA)
        finally:
            db.close()

    @contextmanager
    def _db(self) -> Iterator[sqlite3.Connection]:
        """A connection of its own (one per call: the service's threads share nothing),
        inside one transaction that takes the write lock at once."""
        db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        db.row_factory = sqlite3.Row
        try:
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")
        finally:
            db.close()

    @staticmethod
    def _job(row: sqlite3.Row | None) -> Job | None:
        return Job(**dict(row)) if row is not None else None

    def receive(self, comment_id: int, repo: str, pr: int, commenter: str, body: str) -> bool:
        """Record a command comment; False when this comment was seen before."""
        with self._db() as db:
            cursor = db.execute(
                "INSERT OR IGNORE INTO jobs (comment_id, repo, pr, commenter, body, state,"
                " created) VALUES (?, ?, ?, ?, ?, 'received', ?)",
                (comment_id, repo, pr, commenter, body, time.time()),
            )
            return cursor.rowcount == 1

    def receive_push(self, repo: str, branch: str, sha: str, pusher: str) -> bool:
        """Record a push to the default branch (as PR 0); False when seen before."""
        with self._db() as db:
            cursor = db.execute(
                "INSERT OR IGNORE INTO jobs (repo, pr, commenter, body, state, sha, base_ref,"
                " created) VALUES (?, 0, ?, ?, 'received', ?, ?, ?)",
                (repo, pusher, f"push to {branch}", sha, branch, time.time()),
            )
            return cursor.rowcount == 1

    def find(self, job_id: int) -> Job | None:
        with self._db() as db:
            return self._job(db.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone())

    def get(self, job_id: int) -> Job:
        """A job known to exist (one this service made)."""
        job = self.find(job_id)
        if job is None:
            raise LookupError(f"no job {job_id}")
        return job

    def in_state(self, state: State) -> list[Job]:
        with self._db() as db:
            rows = db.execute("SELECT * FROM jobs WHERE state = ? ORDER BY id", (state,))
            return [Job(**dict(r)) for r in rows]

    def update(self, job_id: int, **fields: Unpack[Fields]) -> None:
        names = ", ".join(f"{name} = ?" for name in fields)
        with self._db() as db:
            db.execute(f"UPDATE jobs SET {names} WHERE id = ?", (*fields.values(), job_id))

    def enqueue(self, job_id: int, options: str) -> list[Job]:
        """Queue a received job; the older queued jobs of its PR it supersedes."""
        with self._db() as db:
            job = self._job(db.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone())
            if job is None:
                raise LookupError(f"no job {job_id}")
            older = [
                Job(**dict(r))
                for r in db.execute(
                    "SELECT * FROM jobs WHERE repo = ? AND pr = ? AND state = 'queued' AND id < ?",
                    (job.repo, job.pr, job_id),
                )
            ]
            db.execute(
                "UPDATE jobs SET state = 'superseded', finished = ?"
                " WHERE repo = ? AND pr = ? AND state = 'queued' AND id < ?",
                (time.time(), job.repo, job.pr, job_id),
            )
            db.execute(
                "UPDATE jobs SET state = 'queued', options = ? WHERE id = ?", (options, job_id)
            )
        return older

    def position(self, job_id: int) -> int:
        """How many queued or running jobs are ahead of this one (0: next)."""
        with self._db() as db:
            row = db.execute(
                "SELECT COUNT(*) FROM jobs WHERE state = 'running'"
                " OR (state = 'queued' AND id < ?)",
                (job_id,),
            ).fetchone()
        return int(row[0])

    def claim(self) -> Job | None:
        """The oldest queued job of a PR that has no running job, now running."""
        with self._db() as db:
            job = self._job(
                db.execute(
                    "SELECT * FROM jobs AS j WHERE state = 'queued' AND NOT EXISTS ("
                    " SELECT 1 FROM jobs WHERE state = 'running' AND repo = j.repo"
                    " AND pr = j.pr) ORDER BY id LIMIT 1"
                ).fetchone()
            )
            if job is None:
                return None
            db.execute(
                "UPDATE jobs SET state = 'running', attempts = attempts + 1, started = ?"
                " WHERE id = ?",
                (time.time(), job.id),
            )
        return self.get(job.id)

    def finish(self, job_id: int, verdict: Verdict, summary: str, run_dir: str | None) -> None:
        self.update(
            job_id,
            state="done",
            verdict=verdict,
            summary=summary,
            run_dir=run_dir,
            finished=time.time(),
        )

    def recover(self) -> tuple[list[Job], list[Job]]:
        """After a stop, however it happened: the running jobs to run again (once), and
        those that already were, which end as infra errors. Returns (requeued, given up)."""
        with self._db() as db:
            running = [
                Job(**dict(r)) for r in db.execute("SELECT * FROM jobs WHERE state = 'running'")
            ]
            again = [j for j in running if j.attempts < MAX_ATTEMPTS]
            given_up = [j for j in running if j.attempts >= MAX_ATTEMPTS]
            for job in again:
                db.execute("UPDATE jobs SET state = 'queued' WHERE id = ?", (job.id,))
            for job in given_up:
                db.execute(
                    "UPDATE jobs SET state = 'done', verdict = 'error', summary = ?,"
                    " finished = ? WHERE id = ?",
                    ("the service stopped during this run twice", time.time(), job.id),
                )
        return again, given_up

    def unreported(self, older_than: float = 0.0) -> list[Job]:
        """Finished jobs whose report has not gone out, finished ``older_than`` s ago."""
        with self._db() as db:
            rows = db.execute(
                "SELECT * FROM jobs WHERE state = 'done' AND reported = 0 AND finished <= ?",
                (time.time() - older_than,),
            )
            return [Job(**dict(r)) for r in rows]

    def poll_since(self, repo: str, first: datetime) -> datetime:
        """Where polling ``repo`` goes on from (``first`` the first time: no history)."""
        with self._db() as db:
            db.execute("INSERT OR IGNORE INTO polls VALUES (?, ?)", (repo, first.isoformat()))
            row = db.execute("SELECT since FROM polls WHERE repo = ?", (repo,)).fetchone()
        return datetime.fromisoformat(row[0])

    def polled(self, repo: str, since: datetime) -> None:
        """The next poll of ``repo`` reads from ``since`` on (never earlier than before)."""
        with self._db() as db:
            db.execute(
                "UPDATE polls SET since = MAX(since, ?) WHERE repo = ?", (since.isoformat(), repo)
            )

    def counts(self) -> dict[str, int]:
        with self._db() as db:
            rows = db.execute("SELECT state, COUNT(*) FROM jobs GROUP BY state")
            return {str(r[0]): int(r[1]) for r in rows}
