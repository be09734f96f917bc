"""The parts of ``cc-ci serve`` that need no swarm: the command grammar, the signature, the
payload's shape, the queue's transitions, what the PR comment says, and a job's recipe dir,
catalogue and environment (with real git and a real process)."""

from __future__ import annotations

import hashlib
import hmac
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from harness.proc import SYSTEM_PATH
from harness.reports.results import Record
from harness.serve import verdict, web
from harness.serve.command import Command, UsageError, parse, signed
from harness.serve.forge import Forge, ForgeError
from harness.serve.jobs import Jobs
from harness.serve.payloads import Comment, Push, command_in
from harness.serve.runner import JOB_ENV, Runner
from tests.fake_gitea import TOKEN, FakeGitea, free_port, serve_in_thread

SECRET = "s3cret"


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("!testme", Command(None, None, "")),
        ("  !testme  \nplease have a look", Command(None, None, "")),
        ("!testme quick", Command(("install",), None, "quick")),
        (
            "!testme tiers=install,upgrade",
            Command(("install", "upgrade"), None, "tiers=install,upgrade"),
        ),
        ("!testme from=1.2.0+3.4.5", Command(None, "1.2.0+3.4.5", "from=1.2.0+3.4.5")),
        (
            "!testme tiers=upgrade from=0.1.0+1",
            Command(("upgrade",), "0.1.0+1", "tiers=upgrade from=0.1.0+1"),
        ),
        ("!testmeplease", None),
        ("please !testme", None),
        ("", None),
        ("LGTM\n!testme", None),  # the command is the first line
    ],
)
def test_the_command_grammar(body: str, expected: Command | None) -> None:
    assert parse(body) == expected


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ("!testme please", "`please` is not an option"),
        ("!testme tiers=install,deploy", "unknown tier(s) deploy"),
        ("!testme tiers=", "unknown tier(s) (none)"),
        ("!testme quick quick", "`quick` is not an option"),
        ("!testme quick tiers=install", "`tiers=install` is not an option"),
        ("!testme from=$(reboot)", "is not a release tag"),
        ("!testme from=-x", "is not a release tag"),
        ("!testme quick from=1.0.0+1", "the upgrade tier is not run"),
    ],
)
def test_a_bad_command_is_a_usage_error_naming_the_option(body: str, says: str) -> None:
    with pytest.raises(UsageError, match=None) as raised:
        parse(body)
    assert says in str(raised.value)


def test_contexts_differ_per_option_set() -> None:
    commands = [parse(b) for b in ("!testme", "!testme quick", "!testme from=1.0.0+1")]
    contexts = {c.context for c in commands if c is not None}
    assert contexts == {"cc-ci", "cc-ci/quick", "cc-ci/from=1.0.0+1"}


def _sign(body: bytes, secret: str = SECRET) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


@pytest.mark.parametrize(
    "headers",
    [
        {"x-gitea-signature": _sign(b"{}")},
        {"x-forgejo-signature": _sign(b"{}").upper()},
        {"x-hub-signature-256": "sha256=" + _sign(b"{}")},
    ],
)
def test_each_documented_signature_header_verifies(headers: dict[str, str]) -> None:
    assert signed(b"{}", headers, SECRET)


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"x-gitea-signature": ""},
        {"x-gitea-signature": _sign(b"{}", "other")},
        {"x-gitea-signature": _sign(b"{ }")},
        {"x-hub-signature-256": _sign(b"{}")[:-1]},
        {"x-gitea-signature": "é" * 64},
        {"x-hub-signature": "sha1=" + hmac.new(b"s3cret", b"{}", hashlib.sha1).hexdigest()},
    ],
)
def test_a_missing_wrong_or_sha1_signature_does_not(headers: dict[str, str]) -> None:
    assert not signed(b"{}", headers, SECRET)


def test_no_secret_verifies_nothing() -> None:
    assert not signed(b"{}", {"x-gitea-signature": _sign(b"{}", "")}, "")


def _payload(**over: object) -> dict[str, object]:
    payload: dict[str, object] = {
        "action": "created",
        "issue": {"number": 3, "pull_request": {"merged": False}},
        "comment": {"id": 77, "body": "!testme quick", "user": {"login": "ann"}},
        "repository": {"full_name": "recipes/radicale"},
        "is_pull": True,
    }
    return payload | over


def test_a_pr_comment_delivery_is_a_command() -> None:
    assert command_in("issue_comment", _payload()) == Comment(
        "recipes/radicale", 3, 77, "ann", "!testme quick"
    )


@pytest.mark.parametrize(
    ("event", "payload", "why"),
    [
        ("release", _payload(), "event release is not a comment or a push"),
        ("issue_comment", _payload(action="edited"), "comment edited, not created"),
        ("issue_comment", _payload(action="deleted"), "comment deleted, not created"),
        (
            "issue_comment",
            _payload(is_pull=False, issue={"number": 3, "pull_request": None}),
            "a comment on an issue, not a pull request",
        ),
        (
            "issue_comment",
            _payload(comment={"id": 1, "body": "LGTM", "user": {"login": "a"}}),
            "not a !testme comment",
        ),
    ],
)
def test_other_deliveries_are_ignored_with_a_reason(
    event: str, payload: dict[str, object], why: str
) -> None:
    assert command_in(event, payload) == why


@pytest.mark.parametrize(
    "payload",
    [
        [],
        _payload(issue="3"),
        _payload(comment={"id": "77", "body": "!testme", "user": {"login": "ann"}}),
        _payload(comment={"id": 77, "body": "!testme", "user": None}),
        _payload(repository={"full_name": "../../etc"}),
        _payload(repository={"full_name": "a/b/c"}),
    ],
)
def test_a_delivery_of_the_wrong_shape_is_a_value_error(payload: object) -> None:
    with pytest.raises(ValueError, match=r"."):
        command_in("issue_comment", payload)


def _push(**over: object) -> dict[str, object]:
    payload: dict[str, object] = {
        "ref": "refs/heads/main",
        "before": "0" * 40,
        "after": "a" * 40,
        "repository": {"full_name": "recipes/radicale", "default_branch": "main"},
        "pusher": {"login": "ann"},
    }
    return payload | over


def test_a_push_to_the_default_branch_is_a_base_run() -> None:
    assert command_in("push", _push()) == Push("recipes/radicale", "main", "a" * 40, "ann")


@pytest.mark.parametrize(
    ("payload", "why"),
    [
        (_push(ref="refs/heads/feature"), "a push to refs/heads/feature, not to the default"),
        (_push(ref="refs/tags/1.0.0+1"), "a push to refs/tags/1.0.0+1, not to the default"),
        (_push(after="0" * 40), "a push that deleted the branch"),
        (_push(after="main"), "no commit"),
    ],
)
def test_other_pushes_are_ignored(payload: dict[str, object], why: str) -> None:
    found = command_in("push", payload)
    assert isinstance(found, str)
    assert found.startswith(why)


def test_a_push_of_the_wrong_shape_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="pusher"):
        command_in("push", _push(pusher="ann"))


@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(max_size=20),
        lambda inner: (
            st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=6)
        ),
        max_leaves=20,
    )
)
def test_any_json_is_a_command_a_reason_or_a_value_error(payload: object) -> None:
    for event in ("issue_comment", "push"):
        try:
            found = command_in(event, payload)
        except ValueError:
            continue
        assert isinstance(found, (Comment, Push, str))


@given(st.text(max_size=200))
def test_any_comment_is_a_command_none_or_a_usage_error(body: str) -> None:
    try:
        found = parse(body)
    except UsageError:
        assert body.split()[0] == "!testme"
        return
    assert found is None or body.split()[0] == "!testme"


# -- the queue -------------------------------------------------------------------------------


def test_a_comment_is_received_once(tmp_path: Path) -> None:
    jobs = Jobs(tmp_path / "jobs.sqlite")
    assert jobs.receive(1, "o/r", 5, "ann", "!testme")
    assert not jobs.receive(1, "o/r", 5, "ann", "!testme")
    assert jobs.counts() == {"received": 1}
    assert Jobs(tmp_path / "jobs.sqlite").counts() == {"received": 1}  # durable


def test_a_newer_command_supersedes_the_queued_ones_of_its_pr_only(tmp_path: Path) -> None:
    jobs = Jobs(tmp_path / "jobs.sqlite")
    for comment, pr in ((1, 5), (2, 5), (3, 6), (4, 5)):
        jobs.receive(comment, "o/r", pr, "ann", "!testme")
    first, second, other, newest = (j.id for j in jobs.in_state("received"))
    assert jobs.enqueue(first, "") == []
    assert [j.id for j in jobs.enqueue(second, "")] == [first]
    assert jobs.enqueue(other, "") == []
    running = jobs.claim()
    assert running is not None
    assert running.id == second
    assert [j.id for j in jobs.enqueue(newest, "")] == []  # a running job is not superseded
    assert jobs.claim() is not None  # PR 6's
    assert jobs.claim() is None  # PR 5's newest waits for PR 5's running job
    jobs.finish(second, "success", "level 1/5", None)
    claimed = jobs.claim()
    assert claimed is not None
    assert claimed.id == newest
    assert jobs.counts() == {"superseded": 1, "running": 2, "done": 1}


def test_a_job_the_service_died_in_runs_again_once_then_is_an_error(tmp_path: Path) -> None:
    jobs = Jobs(tmp_path / "jobs.sqlite")
    jobs.receive(1, "o/r", 5, "ann", "!testme")
    [job] = jobs.in_state("received")
    jobs.enqueue(job.id, "")
    assert jobs.claim() is not None
    again, given_up = jobs.recover()
    assert ([j.id for j in again], given_up) == ([job.id], [])
    assert jobs.claim() is not None
    again, given_up = jobs.recover()
    assert (again, [j.id for j in given_up]) == ([], [job.id])
    done = jobs.get(job.id)
    assert (done.state, done.verdict, done.attempts) == ("done", "error", 2)
    assert [j.id for j in jobs.unreported()] == [job.id]


def test_the_queue_position_counts_what_is_ahead(tmp_path: Path) -> None:
    jobs = Jobs(tmp_path / "jobs.sqlite")
    for comment in range(3):
        jobs.receive(comment, "o/r", comment, "ann", "!testme")
    ids = [j.id for j in jobs.in_state("received")]
    for job_id in ids:
        jobs.enqueue(job_id, "")
    jobs.claim()
    assert [jobs.position(i) for i in ids[1:]] == [1, 2]


# -- the comment -----------------------------------------------------------------------------


def _doc(reason: str, level: int = 1) -> Record:
    rung = {"status": "pass", "reason": ""}
    return Record.of(
        {
            "recipe": "webapp",
            "expected_level": 2,
            "rungs": {
                "install": rung,
                "upgrade": {"status": "fail", "reason": reason},
                "backup_restore": {"status": "unver", "reason": "not run"},
                "custom": {"status": "unver", "reason": "not run"},
                "lint": rung,
            },
            "tiers": {
                "install": {"status": "pass", "duration": 10.0},
                "upgrade": {"status": "fail", "duration": 4.0},
                "backup": {"status": "skip", "duration": 0.1},
            },
        }
        | {"level": level}
    )


def test_the_final_comment_has_the_level_a_rung_table_the_comparison_and_links() -> None:
    base = _doc("", level=2)
    body = verdict.final(
        "ann",
        "",
        "0123456789abcdef",
        "failure",
        "level 1/5, expected 2",
        _doc("StampError: the label names 1.0.0"),
        base,
        "main",
        [("results.json", "http://ci/runs/job-1/r/results.json")],
    )
    assert "`0123456` " not in body
    assert "on `01234567`: ❌ **level 1/5, expected 2**" in body
    assert "| upgrade | ❌ fail | StampError: the label names 1.0.0 |" in body
    assert "Against `main`: level 2 → 1 (-1)." in body
    assert "- install: 10.0s → 10.0s (1.00x)" in body
    assert "- upgrade: 4.0s → 4.0s (1.00x)" in body
    assert "- backup" not in body  # it did not run
    assert "[results.json](http://ci/runs/job-1/r/results.json)" in body


def test_a_recipe_supplied_reason_cannot_break_out_of_its_cell() -> None:
    hostile = "x | y\n\n## [click](http://evil) <img src=x onerror=alert(1)> `code` @everyone"
    body = verdict.final(
        "ann", "", "0" * 40, "failure", "level 1/5", _doc(hostile), None, "main", []
    )
    row = next(line for line in body.splitlines() if line.startswith("| upgrade"))
    assert row.count(" | ") == 2  # three cells, the reason's pipe escaped
    assert "\\|" in row
    assert "<img" not in body
    assert "\\[click\\]" in row
    assert "\n## " not in body
    assert "@everyone" not in body
    assert "No run of `main` to compare with yet." in body


def test_a_base_run_is_the_latest_finished_run_of_the_recipe_at_the_base_branch(
    tmp_path: Path,
) -> None:
    def run(name: str, recipe: str, ref: str, finished: str | None) -> Path:
        path = tmp_path / "job-1" / name
        path.mkdir(parents=True)
        doc = {"recipe": recipe, "refs": {"candidate": ref}, "finished": finished, "rungs": {}}
        (path / "results.json").write_text(json.dumps(doc))
        return path

    run("a", "webapp", "main", "2026-01-01T00:00:00")
    newest = run("b", "webapp", "main", "2026-02-01T00:00:00")
    run("c", "webapp", "main", None)
    run("d", "webapp", "fix", "2026-03-01T00:00:00")
    run("e", "other", "main", "2026-03-01T00:00:00")
    (tmp_path / "job-2").mkdir()
    (tmp_path / "job-2" / "results.json").write_text("{broken")
    assert verdict.base_run(tmp_path, "webapp", "main", None) == newest
    older = verdict.base_run(tmp_path, "webapp", "main", newest)
    assert older is not None
    assert older.name == "a"
    assert verdict.base_run(tmp_path, "webapp", "develop", None) is None


def test_a_push_is_received_once_per_commit_and_supersedes_the_queued_older_push(
    tmp_path: Path,
) -> None:
    jobs = Jobs(tmp_path / "jobs.sqlite")
    assert jobs.receive_push("o/r", "main", "a" * 40, "ann")
    assert not jobs.receive_push("o/r", "main", "a" * 40, "ann")
    assert jobs.receive_push("o/r", "main", "b" * 40, "ann")
    assert jobs.receive(1, "o/r", 5, "ann", "!testme")  # a PR's comment is not a push
    first, second, comment = jobs.in_state("received")
    assert (first.pr, first.base_ref, first.comment_id) == (0, "main", None)
    jobs.enqueue(first.id, "")
    jobs.enqueue(comment.id, "")
    assert [j.id for j in jobs.enqueue(second.id, "")] == [first.id]


# -- configuration ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("pytest.ini", "[pytest]\nccci_forge_url = https://git.example\nother = 1\n"),
        ("pyproject.toml", '[tool.pytest.ini_options]\nccci_forge_url = "https://git.example"\n'),
        ("tox.ini", "[pytest]\nccci_forge_url = https://git.example\n"),
        ("setup.cfg", "[tool:pytest]\nccci_forge_url = https://git.example\n"),
    ],
)
def test_the_ini_file_pytest_reads_configures_serve_too(
    tmp_path: Path, name: str, text: str
) -> None:
    from harness.settings import ini_values

    (tmp_path / name).write_text(text)
    assert ini_values(tmp_path) == {"ccci_forge_url": "https://git.example"}


def test_serve_takes_flags_then_environment_then_ini(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from harness import cli

    monkeypatch.chdir(tmp_path)
    for name in ("CCCI_FORGE_URL", "CCCI_FORGE_TOKEN", "CCCI_WEBHOOK_SECRET"):
        monkeypatch.delenv(name, raising=False)
    assert cli.main(["serve"]) == 1
    assert "no forge: give --forge-url or CCCI_FORGE_URL" in capsys.readouterr().err
    (tmp_path / "pytest.ini").write_text("[pytest]\nccci_forge_url = https://git.example\n")
    assert cli.main(["serve"]) == 1
    assert "no forge token: set CCCI_FORGE_TOKEN" in capsys.readouterr().err
    monkeypatch.setenv("CCCI_FORGE_TOKEN", "t")
    assert cli.main(["serve"]) == 1
    assert "no webhook secret" in capsys.readouterr().err
    assert cli.main(["serve", "--poll", "5"]) == 1
    assert "--poll needs the repositories to poll" in capsys.readouterr().err
    monkeypatch.setenv("CCCI_WEBHOOK_SECRET", "s")
    assert cli.main(["serve", "--listen", "nowhere"]) == 1
    assert "--listen 'nowhere' is not HOST:PORT" in capsys.readouterr().err


# -- what the forge answers, as git sees it ----------------------------------------------------


@pytest.mark.parametrize(
    ("base", "sha", "heads", "says"),
    [
        ("/x", "--upload-pack=touch /tmp/pwned", [], "is not a commit id"),
        ("/x", "abc", [], "is not a commit id"),
        ("--upload-pack=touch /tmp/pwned", "a" * 40, [], "is not a clone URL"),
        ("/x", "a" * 40, [("-c core.sshCommand=x", "refs/heads/x")], "is not a clone URL"),
    ],
)
def test_the_forges_answers_reach_git_only_as_arguments(
    tmp_path: Path, base: str, sha: str, heads: list[tuple[str, str]], says: str
) -> None:
    from harness.errors import CatalogueError
    from harness.serve.runner import Runner

    runner = Runner(tmp_path, tmp_path, tmp_path, 60.0, 60.0)
    with pytest.raises(CatalogueError, match=says):
        runner.fetch("webapp", base, sha, heads)
    assert not (tmp_path / "catalogue").exists()  # refused before git ran


def test_a_dependency_is_a_recipe_dir_name_not_a_path() -> None:
    from types import SimpleNamespace

    from harness.lifecycle.deps import DependencyError, provide

    run = SimpleNamespace(meta=SimpleNamespace(DEPS=("../elsewhere",)), dependencies=[])
    with pytest.raises(DependencyError, match="not the name of a recipe dir"):
        provide(run)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("change", "cause"),
    [
        ({"CCCI_RECIPE": "../etc"}, "CCCI_RECIPE"),
        ({"CCCI_REF": "--upload-pack=touch /tmp/x"}, "CCCI_REF"),
        ({"CCCI_REF": "main..evil"}, "CCCI_REF"),
        ({"CCCI_TIERS": "install,everything"}, "unknown tier"),
        ({"CCCI_UPGRADE_FROM": "--help"}, "is not a release tag"),
        ({"CCCI_TIERS": "install", "CCCI_UPGRADE_FROM": "1.0.0+1"}, "upgrade tier is not run"),
        ({"CCCI_SHA": "-x"}, "is not a commit id"),
        ({"CCCI_LISTED": "maybe"}, "CCCI_LISTED 'maybe' is not yes or no"),
    ],
)
def test_a_dispatched_jobs_variables_are_checked_before_use(
    tmp_path: Path, change: dict[str, str], cause: str
) -> None:
    from harness.errors import CatalogueError
    from harness.serve.runner import run_dispatched

    env = {
        "CCCI_JOB_ID": "7",
        "CCCI_RECIPE": "webapp",
        "CCCI_REPO_URL": str(tmp_path / "nowhere"),
        "CCCI_SHA": "0" * 40,
        "CCCI_REF": "0" * 40,
        "CCCI_RUNS_DIR": str(tmp_path / "runs"),
        "CCCI_STATE_DIR": str(tmp_path / "state"),
        **change,
    }
    with pytest.raises(CatalogueError, match=cause):
        run_dispatched(env, tmp_path / "recipes")
    assert not (tmp_path / "runs").exists()  # refused before anything ran


# -- whose recipe dir, whose mirror, what environment ------------------------------------------


def _bare_with_tag(root: Path, owner: str, content: str) -> tuple[str, str]:
    """``<root>/<owner>/webapp.git`` with release 1.0.0+1 at a commit of ``content``; its
    URL and that commit."""
    work = root / "work" / owner
    work.mkdir(parents=True)
    git = ["git", "-C", str(work), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run([*git, "init", "-q", "-b", "main"], check=True)
    (work / "compose.yml").write_text(content)
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-q", "-m", content], check=True)
    subprocess.run([*git, "tag", "-a", "-m", "r", "1.0.0+1"], check=True)
    bare = root / owner / "webapp.git"
    subprocess.run(["git", "clone", "-q", "--bare", str(work), str(bare)], check=True)
    sha = subprocess.run([*git, "rev-parse", "HEAD"], capture_output=True, text=True, check=True)
    return str(bare), sha.stdout.strip()


def test_repos_of_the_same_name_keep_their_own_tags(tmp_path: Path) -> None:
    """Two owners' repos named webapp, each with its own 1.0.0+1: fetching one never
    replaces the other's tag, in the service's catalogue or in the run's mirror of it."""
    from harness.fetch import mirror, releases
    from harness.serve.runner import Runner

    runner = Runner(tmp_path / "state", tmp_path / "runs", tmp_path / "recipes", 60.0, 60.0)
    upstream_url, upstream_sha = _bare_with_tag(tmp_path, "coop-cloud", "upstream's")
    fork_url, fork_sha = _bare_with_tag(tmp_path, "attacker", "the attacker's")
    upstream = runner.fetch("webapp", upstream_url, upstream_sha, [])
    fork = runner.fetch("webapp", fork_url, fork_sha, [])
    for catalogue, sha in ((upstream, upstream_sha), (fork, fork_sha)):
        found, _ = releases(mirror("webapp", str(catalogue), tmp_path / "cache"))
        assert [(r.tag, r.sha) for r in found] == [("1.0.0+1", sha)], catalogue
    runner.fetch("webapp", upstream_url, upstream_sha, [])  # again: each keeps its own
    found, _ = releases(mirror("webapp", str(fork), tmp_path / "cache"))
    assert [r.sha for r in found] == [fork_sha]


@pytest.mark.parametrize(
    ("repos", "orgs", "repo", "listed"),
    [
        ((), (), "coop-cloud/webapp", False),  # serving every repo lists none
        (("coop-cloud/webapp",), (), "coop-cloud/webapp", True),
        (("coop-cloud/webapp",), (), "attacker/webapp", False),
        ((), ("coop-cloud",), "coop-cloud/webapp", True),  # an org mapping
        ((), ("coop-cloud",), "coop-cloud-fork/webapp", False),
        ((), ("coop-cloud",), "attacker/webapp", False),
    ],
)
def test_a_repo_is_listed_by_its_full_name_or_its_org_only(
    tmp_path: Path, repos: tuple[str, ...], orgs: tuple[str, ...], repo: str, listed: bool
) -> None:
    from harness.serve.service import Config, Service

    service = Service(
        Config(
            "http://forge.invalid",
            "t",
            "s",
            tmp_path,
            tmp_path,
            "http://ci",
            repos=repos,
            orgs=orgs,
        )
    )
    try:
        assert service.listed(repo) is listed
    finally:
        service.forge.close()


def test_a_recipe_dir_applies_to_a_listed_repo_only(tmp_path: Path) -> None:
    """recipes/webapp with a permissive ALLOW: a repo of that name the operator did not list
    gets the defaults, and its job says so in one line."""
    from harness.recipe import meta
    from harness.serve.runner import Runner

    own = tmp_path / "recipes" / "webapp"
    own.mkdir(parents=True)
    (own / "recipe_meta.py").write_text('ALLOW = {"privileged": "the operator trusts it"}\n')
    runner = Runner(tmp_path / "state", tmp_path / "runs", tmp_path / "recipes", 60.0, 60.0)
    assert runner.recipe_dir("webapp", tmp_path / "job-1", listed=True) == own.resolve()
    assert runner.not_applied("webapp", listed=True) == ""
    assert meta.load(own).ALLOW == {"privileged": "the operator trusts it"}
    unlisted = runner.recipe_dir("webapp", tmp_path / "job-2", listed=False)
    assert unlisted == tmp_path / "job-2" / "recipes" / "webapp"
    assert meta.load(unlisted).ALLOW == {}
    note = runner.not_applied("webapp", listed=False)
    assert note.splitlines() == [note]
    assert "`recipes/webapp` does not apply" in note
    assert "(--repo, --org)" in note
    assert runner.not_applied("kinto", listed=False) == ""  # no recipe dir: nothing to say


class _EnvDump(Runner):
    """The job's ``cc-ci run`` replaced by a program that prints its environment."""

    def argv(self, *_: object) -> list[str]:
        return [sys.executable, "-c", "import json, os; print(json.dumps(dict(os.environ)))"]


@pytest.mark.parametrize("listed", [True, False], ids=["listed", "unlisted"])
def test_a_jobs_run_gets_no_variable_of_the_services_own_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, listed: bool
) -> None:
    """Only the allowlist, the job's marker and what a run reads: none of the service's
    tokens, nothing else of its environment; the operator's recipe secrets only for a repo
    it listed."""
    canaries = {
        "CCCI_FORGE_TOKEN": "forge-token-canary",
        "CCCI_WEBHOOK_SECRET": "webhook-secret-canary",
        "CCCI_CI_TOKEN": "ci-token-canary",
        "CCCI_TIERS": "install",  # a run's option: given as a flag or not at all
        "SERVE_CANARY": "serve-env-canary",
        "LD_PRELOAD": "/tmp/canary.so",
        "BASH_ENV": "/tmp/canary.sh",
    }
    for name, value in canaries.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("CCCI_DOMAIN", "ci.example.org")
    monkeypatch.setenv("CCCI_SECRET_WEBAPP_SMTP_PASSWORD", "operator-secret")
    state = tmp_path / "state"
    runner = _EnvDump(state, tmp_path / "runs", tmp_path / "recipes", 60.0, 60.0)
    outcome = runner.run(7, "webapp", tmp_path, "main", None, None, listed, print, lambda: False)
    assert outcome.run_dir is None  # no cc-ci run: no results
    seen = json.loads((state / "jobs" / "7" / "output.log").read_text())
    assert seen[JOB_ENV] == f"{state}:7"
    assert seen["CCCI_DOMAIN"] == "ci.example.org"
    assert seen["PATH"].endswith(SYSTEM_PATH)
    assert not set(canaries) & set(seen), sorted(seen)
    assert not set(canaries.values()) & set(seen.values())
    assert ("CCCI_SECRET_WEBAPP_SMTP_PASSWORD" in seen) is listed


def test_a_forge_read_is_tried_three_times_and_a_new_comment_once() -> None:
    """Against the fake Gitea answering 502 (overloaded): a read or an idempotent write is
    tried again 1 s, then 2 s later; a comment is posted once (a retry could post it twice);
    a 404 is not tried again."""
    fake = FakeGitea().start()
    slept: list[float] = []
    forge = Forge(fake.url, TOKEN, sleep=slept.append)
    try:
        repo = fake.add_repo("o", "r", "http://127.0.0.1:1/o/r.git").full_name
        fake.failing = 2
        assert forge.clone_url(repo) == "http://127.0.0.1:1/o/r.git"
        assert slept == [1.0, 2.0]
        fake.failing = 3
        with pytest.raises(ForgeError, match=r"^GET /repos/o/r: HTTP 502$"):
            forge.clone_url(repo)
        fake.failing = 1
        with pytest.raises(ForgeError, match=r"^POST /repos/o/r/issues/1/comments: HTTP 502$"):
            forge.comment(repo, 1, "hello")
        with pytest.raises(ForgeError, match="HTTP 404"):
            forge.clone_url("o/nope")
    finally:
        forge.close()
        fake.stop()
    assert slept == [1.0, 2.0] * 2
    assert [m for m, _ in fake.requests] == ["GET"] * 6 + ["POST", "GET"]
    assert not fake.comments


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[httpx.Client, Jobs]]:
    """The service's web app on loopback over a real job queue, deliveries recorded as the
    service records them; a client of it."""
    jobs = Jobs(tmp_path / "jobs.sqlite")

    def receive(event: Comment | Push) -> bool:
        if isinstance(event, Push):
            return jobs.receive_push(event.repo, event.branch, event.sha, event.pusher)
        return jobs.receive(event.comment_id, event.repo, event.pr, event.user, event.body)

    port = free_port()
    server = serve_in_thread(web.app(jobs, receive, SECRET, tmp_path / "site"), port, "the app")
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
        yield client, jobs
    server.should_exit = True


def _deliver(
    client: httpx.Client, body: bytes, event: str = "issue_comment", **headers: str
) -> httpx.Response:
    signature = {"x-gitea-signature": _sign(body)} | headers
    return client.post("/hook", content=body, headers={"x-gitea-event": event, **signature})


def test_the_hook_answers_each_delivery_as_it_deserves(
    served: tuple[httpx.Client, Jobs],
) -> None:
    client, jobs = served
    comment = json.dumps(_payload()).encode()
    too_large = _deliver(client, b" " * ((1 << 20) + 1))
    assert (too_large.status_code, too_large.headers["connection"]) == (413, "close")
    unsigned = _deliver(client, comment, **{"x-gitea-signature": _sign(comment, "other")})
    assert (unsigned.status_code, unsigned.json()) == (401, {"error": "signature missing or wrong"})
    not_json = _deliver(client, b"{nope")
    assert not_json.status_code == 400
    assert not_json.json()["error"].startswith("not a comment delivery: ")
    ignored = _deliver(client, comment, event="issues")
    assert (ignored.status_code, ignored.json()) == (
        200,
        {"ignored": "event issues is not a comment or a push"},
    )
    assert jobs.counts() == {}
    first, again = _deliver(client, comment), _deliver(client, comment)
    assert (first.status_code, first.json()) == (202, {"received": True})
    assert (again.status_code, again.json()) == (200, {"received": False})  # seen before
    assert _deliver(client, json.dumps(_push()).encode(), event="push").status_code == 202
    assert client.get("/healthz").json() == {"received": 2}


def test_a_jobs_page_shows_it_escaped_and_a_job_there_is_not_is_404(
    tmp_path: Path, served: tuple[httpx.Client, Jobs]
) -> None:
    client, jobs = served
    jobs.receive(77, "recipes/radicale", 3, "ann", "!testme")
    [job] = jobs.in_state("received")
    jobs.finish(job.id, "failure", "install: <script>alert(1)</script>", str(tmp_path / "r1"))
    page = client.get(f"/jobs/{job.id}")
    assert page.status_code == 200
    assert f"<title>cc-ci job {job.id}</title>" in page.text
    assert "<tr><th>repository</th><td>recipes/radicale #3</td></tr>" in page.text
    assert "<td>failure</td>" in page.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text
    assert "the run" not in page.text  # not published (yet)
    (tmp_path / "site" / "runs" / "r1").mkdir(parents=True)
    assert '<a href="../runs/r1/index.html">the run</a>' in client.get(f"/jobs/{job.id}").text
    missing = client.get("/jobs/999")
    assert (missing.status_code, missing.text) == (404, "<h1>no such job</h1>")
