"""``cc-ci serve`` for real: the service as a process, a fake Gitea over real HTTP (it
follows Gitea's documented API and signs deliveries as Gitea does), real runs of a recipe
on the local swarm, from the PR head of a fork."""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import itertools
import json
import os
import re
import select
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from harness.lifecycle.labels import RUN_LABEL
from harness.swarm import engine
from tests.conftest import WEB_APP, Session, Workspace
from tests.fake_gitea import TOKEN, FakeGitea, Repo, free_port

pytestmark = pytest.mark.e2e

SECRET = "webhook-secret-fedcba9876543210"
# In the service's environment: none of it may reach a run.
CANARY = {"SERVE_ENV_CANARY": "serve-env-canary-7c1d", "CCCI_CANARY": "ccci-canary-93ab"}
MIB = 1 << 20
# The recipe dir's hook writes down the environment a run's code sees (in @OUT@).
ENV_PROBE = """
import os


def READY_PROBE(ctx):
    with open(@OUT@, "a") as out:
        out.write(repr(sorted(os.environ.items())) + "\\n")
    return True
"""
# A PR that asks the swarm for the host: the deploy policy refuses it, in seconds.
PRIVILEGED = WEB_APP.replace(
    "    networks: [proxy]\n", "    networks: [proxy]\n    privileged: true\n"
)


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t", *args],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()


class Service:
    """``cc-ci serve`` in its own process, pointed at the fake forge; ``lists`` the repos
    whose recipe dirs apply (default: the project's, by its full name)."""

    def __init__(
        self,
        workspace: Workspace,
        forge: FakeGitea,
        *extra: str,
        lists: tuple[str, ...] = ("--repo", "recipes/webapp"),
    ) -> None:
        self.workspace, self.forge, self.extra = workspace, forge, (*lists, *extra)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = workspace.root / "serve.log"
        self.process: subprocess.Popen[bytes] | None = None
        forge.hooks = [(f"{self.url}/hook", SECRET)]

    def start(self) -> Service:
        env = os.environ | CANARY | {"CCCI_FORGE_TOKEN": TOKEN, "CCCI_WEBHOOK_SECRET": SECRET}
        argv = [
            sys.executable,
            "-m",
            "harness.cli",
            "serve",
            "--forge-url",
            self.forge.url,
            "--listen",
            f"127.0.0.1:{self.port}",
            "--state-dir",
            "state",
            "--runs-dir",
            "runs",
            "--public-url",
            "http://ci.example/",
            "--run-deadline",
            "300",
            *self.extra,
        ]
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                argv, cwd=self.workspace.root, env=env, stdout=out, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + 20
        while True:
            assert self.process.poll() is None, self.log.read_text()
            try:
                httpx.get(f"{self.url}/healthz", timeout=1)
                return self
            except httpx.TransportError:
                assert time.monotonic() < deadline, self.log.read_text()
                time.sleep(0.1)

    def counts(self) -> dict[str, int]:
        answer: dict[str, int] = httpx.get(f"{self.url}/healthz", timeout=5).json()
        return answer

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(sig)
            self.process.wait(180)

    def idle(self, timeout: float) -> dict[str, int]:
        deadline = time.monotonic() + timeout
        while True:
            counts = self.counts()
            if not any(counts.get(s) for s in ("received", "queued", "running")):
                return counts
            assert time.monotonic() < deadline, f"still busy: {counts}\n{self.log.read_text()}"
            time.sleep(0.5)


@pytest.fixture
def forge() -> Iterator[FakeGitea]:
    fake = FakeGitea().start()
    yield fake
    fake.stop()


@pytest.fixture
def project(workspace: Workspace, forge: FakeGitea) -> tuple[Repo, Repo]:
    """The recipe's repo on the forge (a release, then main) and a contributor's fork with
    branch ``fix`` one commit ahead; the cc-ci checkout has a recipe dir for it."""
    probe = ENV_PROBE.replace("@OUT@", repr(str(workspace.root / "run-env.txt")))
    workspace.recipe("webapp", [("1.0.0+1", WEB_APP)], meta=probe)
    base = workspace.catalogue / "webapp"
    fork = workspace.root / "forks" / "webapp"
    _git(workspace.root, "clone", "-q", str(base), str(fork))
    _git(fork, "checkout", "-q", "-b", "fix")
    (fork / "README.md").write_text("a contributor's change\n")
    _git(fork, "add", "-A")
    _git(fork, "commit", "-q", "-m", "fix")
    _git(fork, "checkout", "-q", "-b", "privileged")
    (fork / "compose.yml").write_text(PRIVILEGED.replace("@VERSION@", "1.0.0+1"))
    _git(fork, "commit", "-q", "-am", "ask for the host")
    _git(fork, "checkout", "-q", "fix")
    repo = forge.add_repo("recipes", "webapp", str(base))
    repo.permissions = {"maintainer": "write", "stranger": "read", "member": "read"}
    forge.orgs["coop-cloud"] = {"member"}
    fork_repo = forge.add_repo("contributor", "webapp", str(fork))
    forge.open_pull(repo, 1, fork_repo, "fix", fork)
    forge.open_pull(repo, 2, fork_repo, "privileged", fork)
    return repo, fork_repo


def _final(
    forge: FakeGitea, sha: str, context: str, timeout: float, service: Service
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        done = [
            s
            for s in forge.statuses_of(sha)
            if s["context"] == context and s["status"] not in ("pending", "warning")
        ]
        if done:
            return done[0]
        assert service.process is not None
        assert service.process.poll() is None, service.log.read_text()
        assert time.monotonic() < deadline, (
            f"no final status; statuses {forge.statuses_of(sha)}\n{service.log.read_text()}"
        )
        time.sleep(0.2)


def _nothing_left(workspace: Workspace) -> None:
    for job in (workspace.root / "runs").glob("job-*"):
        Session(0, "", job).assert_nothing_left()


def test_a_collaborators_testme_on_a_fork_pr_runs_and_reports_on_the_pr(
    workspace: Workspace, forge: FakeGitea, project: tuple[Repo, Repo]
) -> None:
    repo, _ = project
    sha = repo.pulls[1]["head"]["sha"]
    service = Service(workspace, forge).start()
    try:
        # A push to main first: the base the PR's run is compared with.
        main_sha = _git(workspace.catalogue / "webapp", "rev-parse", "main")
        assert forge.push(repo, "main", workspace.catalogue / "webapp").status_code == 202
        assert forge.push(repo, "main", workspace.catalogue / "webapp").status_code == 200
        base = _final(forge, main_sha, "cc-ci", 300, service)
        assert base["status"] == "success", service.log.read_text()
        said = time.monotonic()
        answer = forge.user_comments(repo, 1, "maintainer", "!testme\nplease check")
        assert answer is not None
        assert answer.status_code == 202, answer.text
        final = _final(forge, sha, "cc-ci", 300, service)
        finished = time.monotonic()
    finally:
        service.stop()
    statuses = [s for s in forge.statuses_of(sha) if s["context"] == "cc-ci"]
    assert [c for c in forge.comments.values() if "push" in c["body"]] == []  # status only
    pending = statuses[0]
    assert pending["status"] == "pending"
    assert pending["target_url"].startswith("http://ci.example/jobs/")
    assert final["status"] == "success", (final, service.log.read_text())
    assert final["description"].startswith("level 2/5"), final
    [final_at] = [s["_at"] for s in statuses if s is final]
    print(
        f"\ncomment -> pending {pending['_at'] - said:.2f}s, "
        f"-> final status {final_at - said:.1f}s, -> seen here {finished - said:.1f}s"
    )
    # One reply, edited in place from "queued" through "running" to the verdict.
    replies = [c for c in forge.comments_on(repo, 1) if c["user"]["login"] == "cc-ci-bot"]
    assert len(replies) == 1, replies
    reply = replies[0]
    assert "queued" in reply["_edits"][0] or "next in the queue" in reply["_edits"][0]
    assert any("running on" in e for e in reply["_edits"])
    body = reply["body"]
    assert "level 2/5" in body
    assert "| install | ✅ pass |" in body
    assert "| upgrade | ✅ pass |" in body
    assert "Against `main`: level 1 → 2 (+1)." in body  # main is the release: no upgrade
    assert "- install: " in body
    # The links resolve on the service (only the public artifacts do).
    page = final["target_url"].replace("http://ci.example", service.url)
    service.start()
    try:
        assert "success" in httpx.get(page).text
        urls = {
            name: url.replace("http://ci.example", service.url)
            for name, url in re.findall(r"\[([^\]]+)\]\((http://ci\.example/runs/[^)]+)\)", body)
        }
        assert set(urls) >= {"run page", "results.json", "trace.json", "harness.log"}, body
        served = httpx.get(urls["results.json"])
        assert served.status_code == 200
        assert json.loads(served.text)["refs"]["candidate_sha"] == sha
        assert "webapp: level 2 of 5" in httpx.get(urls["run page"]).text
        assert "level 2" in httpx.get(f"{service.url}/badges/webapp.svg").text
        assert ">webapp</a>" in httpx.get(f"{service.url}/").text  # the dashboard, at /
        # The PR card: embedded, served, and it says the level (read back by OCR).
        [card_url] = re.findall(r"\[!\[cc-ci: level 2 of 5\]\((http://[^)]+/card\.png)\)", body)
        card = httpx.get(card_url.replace("http://ci.example", service.url))
        assert card.headers["content-type"] == "image/png"
        (workspace.root / "card.png").write_bytes(card.content)
        read = subprocess.run(
            ["tesseract", str(workspace.root / "card.png"), "-"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        assert "level 2" in read, read
        assert "webapp" in read, read
        run_path = urls["results.json"].rsplit("/", 1)[0]
        for hidden in (
            "op_state.json",
            "candidate/compose.yml",
            "../../state/jobs.sqlite",
            "..%2F..%2F..%2Fstate%2Fjobs.sqlite",
        ):
            assert httpx.get(f"{run_path}/{hidden}").status_code == 404, hidden
    finally:
        service.stop()
    # Nothing secret anywhere public, nothing left on the swarm.
    texts = [c["body"] for c in forge.comments.values()] + [json.dumps(s) for s in forge.statuses]
    texts += [
        p.read_text(errors="replace")
        for p in (workspace.root / "runs").rglob("*")
        if p.is_file() and p.suffix in (".json", ".log", ".yml")
    ]
    seen_by_the_run = (workspace.root / "run-env.txt").read_text()
    assert "CCCI_SERVE_JOB" in seen_by_the_run
    for name, value in CANARY.items():  # nothing of the service's environment but the allowlist
        assert name not in seen_by_the_run
        assert value not in seen_by_the_run
    texts.append(seen_by_the_run)
    texts += [(workspace.root / "state" / "jobs" / "1" / "output.log").read_text()]
    for secret in (TOKEN, SECRET):
        assert not any(secret in t for t in texts)
    _nothing_left(workspace)


def test_refusals_answer_as_documented_and_queue_nothing(
    workspace: Workspace, forge: FakeGitea, project: tuple[Repo, Repo]
) -> None:
    repo, _ = project
    service = Service(workspace, forge).start()
    comment = forge._new_comment(repo, 1, "maintainer", "!testme")
    payload = forge.payload(repo, 1, comment, "created")
    try:
        # Forged and missing signatures: 401, before anything is parsed.
        assert forge.deliver(payload, secret="not-the-secret")[0].status_code == 401
        assert forge.deliver(payload, sign=False)[0].status_code == 401
        garbage = forge.deliver({"is_pull": True}, body=b"{not json")[0]
        assert garbage.status_code == 400, garbage.text
        assert forge.deliver({"is_pull": True}, body=b'{"action": "created"}')[0].status_code == 400
        assert service.counts() == {}
        # Ignored (200): an edited comment, a comment on an issue.
        edited = forge.payload(repo, 1, comment, "edited")
        assert forge.deliver(edited)[0].json() == {"ignored": "comment edited, not created"}
        on_issue = forge.user_comments(repo, 7, "maintainer", "!testme", issue=True)
        assert on_issue is not None
        assert "not a pull request" in on_issue.json()["ignored"]
        # Refused with a reply: a non-collaborator, an unknown option.
        stranger = forge.user_comments(repo, 1, "stranger", "!testme")
        unknown = forge.user_comments(repo, 1, "maintainer", "!testme please")
        assert stranger is not None
        assert unknown is not None
        assert (stranger.status_code, unknown.status_code) == (202, 202)
        service.idle(30)
        bodies = [
            c["body"] for c in forge.comments_on(repo, 1) if c["user"]["login"] == "cc-ci-bot"
        ]
        assert any("@stranger: only people with write access" in b for b in bodies), bodies
        assert any("`please` is not an option" in b and "`!testme quick`" in b for b in bodies)
        assert forge.statuses == []
        assert service.counts() == {"refused": 2}
        # A redelivery of a comment already taken in: 200, not queued again.
        again = forge.deliver(forge.payload(repo, 1, forge.comments_on(repo, 1)[-1], "created"))
        assert again[0].status_code in (200, 202)
        first = forge.deliver(
            forge.payload(
                repo,
                1,
                next(c for c in forge.comments_on(repo, 1) if c["body"] == "!testme please"),
                "created",
            )
        )
        assert first[0].json() == {"received": False}
        assert service.counts() == {"refused": 2}
    finally:
        service.stop()


def test_a_flood_of_commands_runs_one_per_pr_and_everyone_gets_an_answer(
    workspace: Workspace, forge: FakeGitea, project: tuple[Repo, Repo]
) -> None:
    repo, _ = project
    sha = repo.pulls[2]["head"]["sha"]
    service = Service(workspace, forge, "--parallel", "2", "--org", "coop-cloud").start()
    try:
        with ThreadPoolExecutor(10) as pool:
            answers = list(
                pool.map(
                    lambda n: forge.user_comments(
                        repo, 2, "member" if n % 2 else "maintainer", f"!testme quick\nflood {n}"
                    ),
                    range(50),
                )
            )
        assert [a.status_code for a in answers if a is not None] == [202] * 50
        counts = service.idle(240)
    finally:
        service.stop()
    assert counts.get("refused", 0) == 0, counts  # org members may run too
    runs = sorted((workspace.root / "runs").glob("job-*/*/results.json"))
    assert 1 <= len(runs) <= 2, runs  # the first may start before the flood is in; then one
    spans = sorted(
        (json.loads(p.read_text())["started"], json.loads(p.read_text())["finished"]) for p in runs
    )
    assert all(a[1] <= b[0] for a, b in itertools.pairwise(spans)), spans
    finals = [
        s
        for s in forge.statuses_of(sha)
        if s["context"] == "cc-ci/quick" and s["status"] not in ("pending", "warning")
    ]
    assert len(finals) == len(runs)
    assert finals[-1]["status"] == "failure"
    replies = [c for c in forge.comments_on(repo, 2) if c["user"]["login"] == "cc-ci-bot"]
    assert len(replies) == 50
    superseded = [c for c in replies if "superseded" in c["body"]]
    verdicts = [c for c in replies if "level 0/5" in c["body"]]
    assert len(superseded) + len(verdicts) == 50, [c["body"] for c in replies]
    assert "privileged" in verdicts[-1]["body"]  # the policy's one-line reason, on the PR
    _nothing_left(workspace)


@pytest.mark.parametrize("how", [signal.SIGKILL, signal.SIGTERM], ids=["kill-9", "sigterm"])
def test_a_service_stopped_during_a_run_reports_once_after_restart_and_leaks_nothing(
    workspace: Workspace, forge: FakeGitea, project: tuple[Repo, Repo], how: signal.Signals
) -> None:
    """kill -9: the run dies with the service, the restart sweeps it and runs the job again
    (its second attempt). SIGTERM: the run is torn down, the job queued again uncounted."""
    repo, _ = project
    sha = repo.pulls[1]["head"]["sha"]
    service = Service(workspace, forge).start()
    client = engine.client()
    try:
        forge.user_comments(repo, 1, "maintainer", "!testme quick")
        deadline = time.monotonic() + 120
        job_runs = Session(0, "", workspace.root / "runs" / "job-1")
        while not any(
            client.services.list(filters={"label": f"{RUN_LABEL}={run_id}"})
            for run_id in job_runs.run_ids()
        ):
            assert time.monotonic() < deadline, service.log.read_text()
            time.sleep(0.2)
        service.stop(how)
        time.sleep(1)
        orphans = subprocess.run(
            ["pgrep", "-f", f"{workspace.root}/runs/job-"], capture_output=True, text=True
        ).stdout.split()
        assert orphans == [], "the run outlived the service"
        service.start()
        final = _final(forge, sha, "cc-ci/quick", 240, service)
    finally:
        service.stop()
    assert final["status"] == "success", service.log.read_text()
    finals = [
        s
        for s in forge.statuses_of(sha)
        if s["context"] == "cc-ci/quick" and s["status"] != "pending"
    ]
    assert finals == [final]
    replies = [c for c in forge.comments_on(repo, 1) if c["user"]["login"] == "cc-ci-bot"]
    assert len(replies) == 1
    assert "level 1/5" in replies[0]["body"]
    assert len(list((workspace.root / "runs").glob("job-*/*/results.json"))) == 2
    with sqlite3.connect(workspace.root / "state" / "jobs.sqlite") as db:
        [(attempts,)] = db.execute("SELECT attempts FROM jobs").fetchall()
    if how == signal.SIGKILL:
        assert "recovered" in service.log.read_text()
        assert attempts == 2
    else:
        assert attempts == 1
    _nothing_left(workspace)


def test_polling_takes_new_commands_of_open_prs_without_a_webhook(
    workspace: Workspace, forge: FakeGitea, project: tuple[Repo, Repo]
) -> None:
    repo, _ = project
    sha = repo.pulls[2]["head"]["sha"]
    forge._new_comment(repo, 2, "maintainer", "!testme")  # before the service: history
    time.sleep(1.1)  # the forge keeps seconds
    service = Service(workspace, forge, "--poll", "1", "--repo", "recipes/webapp")
    forge.hooks = []  # nobody could register one
    service.start()
    try:
        time.sleep(2)
        forge._new_comment(repo, 2, "maintainer", "!testme quick")
        final = _final(forge, sha, "cc-ci/quick", 120, service)
        time.sleep(2)  # later polls see the same comment again
        counts = service.idle(30)
    finally:
        service.stop()
    assert final["status"] == "failure"
    assert counts == {"done": 1}, counts
    assert [s["context"] for s in forge.statuses_of(sha) if s["status"] != "pending"] == [
        "cc-ci/quick"
    ]


def test_a_repo_the_operator_did_not_list_never_gets_the_recipe_dir_of_its_name(
    workspace: Workspace, forge: FakeGitea, project: tuple[Repo, Repo]
) -> None:
    """The service serves every repo and lists the ``recipes`` org, whose recipe dir
    ``recipes/webapp`` allows privileged containers. A PR of another owner's repo named
    webapp asks for one: it gets the defaults, the policy refuses it, and the PR is told why
    the recipe dir did not apply."""
    _, fork_repo = project
    meta = workspace.root / "recipes" / "webapp" / "recipe_meta.py"
    meta.write_text(meta.read_text() + 'ALLOW = {"privileged": "the operator trusts it"}\n')
    fork_repo.permissions = {"contributor": "owner"}
    pull = forge.open_pull(fork_repo, 3, fork_repo, "privileged", workspace.root / "forks/webapp")
    service = Service(workspace, forge, lists=("--org", "recipes")).start()
    try:
        answer = forge.user_comments(fork_repo, 3, "contributor", "!testme quick")
        assert answer is not None
        assert answer.status_code == 202, answer.text
        final = _final(forge, pull["head"]["sha"], "cc-ci/quick", 240, service)
    finally:
        service.stop()
    [reply] = [c for c in forge.comments_on(fork_repo, 3) if c["user"]["login"] == "cc-ci-bot"]
    assert final["status"] == "failure", (final, reply["body"])
    assert "level 0/5" in reply["body"]
    assert "privileged" in reply["body"]  # the policy's refusal: no ALLOW for this repo
    said = "`recipes/webapp` does not apply: this repository is not one the service lists"
    assert said in reply["body"]
    assert said in (workspace.root / "state" / "jobs" / "1" / "output.log").read_text()
    assert not (workspace.root / "run-env.txt").exists()  # nor any other code of the dir
    _nothing_left(workspace)


def _signed(body: bytes) -> dict[str, str]:
    return {"X-Gitea-Signature": hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()}


def _answer(sock: socket.socket) -> bytes:
    """The service's answer, read to the end of the connection (a reset ends it too: the
    service closes with the client's unread bytes still in its buffer)."""
    got = b""
    with contextlib.suppress(ConnectionResetError):
        while part := sock.recv(65536):
            got += part
    return got


def test_a_delivery_past_1_mib_is_refused_as_it_streams_in_and_a_normal_one_still_works(
    workspace: Workspace, forge: FakeGitea, project: tuple[Repo, Repo]
) -> None:
    repo, _ = project
    service = Service(workspace, forge).start()
    head = b"POST /hook HTTP/1.1\r\nHost: ci\r\nX-Gitea-Event: issue_comment\r\n"
    try:
        # A Content-Length past the bound: refused before any of the body is sent.
        with socket.create_connection(("127.0.0.1", service.port), timeout=60) as sock:
            sock.sendall(head + b"Content-Length: %d\r\n\r\n" % (8 * MIB))
            declared = _answer(sock)
        # 8 MiB chunked, sent slowly: past 1 MiB, the client waits after each chunk for
        # an answer before it sends the next.
        chunk = b"x" * (64 << 10)
        with socket.create_connection(("127.0.0.1", service.port), timeout=60) as sock:
            sock.sendall(head + b"Transfer-Encoding: chunked\r\n\r\n")
            sent = 0
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # it answered
                while sent < 8 * MIB:
                    sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                    sent += len(chunk)
                    if select.select([sock], [], [], 0.5 if sent > MIB else 0)[0]:
                        break
                else:
                    sock.sendall(b"0\r\n\r\n")
            streamed = _answer(sock)
        # A delivery under the bound, chunked too, is read whole and taken as before.
        comment = forge._new_comment(repo, 1, "maintainer", "!testme")
        body = json.dumps(forge.payload(repo, 1, comment, "edited")).encode()
        normal = httpx.post(
            f"{service.url}/hook",
            content=iter([body[:100], body[100:]]),
            headers={"X-Gitea-Event": "issue_comment", **_signed(body)},
        )
    finally:
        service.stop()
    print(f"\n413 after {sent / MIB:.2f} MiB of 8 MiB sent")
    assert sent < 8 * MIB, streamed  # answered before the client was done: the rest unread
    for answer in (declared, streamed):
        assert answer.startswith(b"HTTP/1.1 413"), answer
        assert answer.endswith(b'\r\n\r\n{"error":"body too large: past 1048576 bytes"}')
    assert normal.request.headers["transfer-encoding"] == "chunked"
    assert normal.json() == {"ignored": "comment edited, not created"}, normal.text
