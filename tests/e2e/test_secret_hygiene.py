"""No secret value reaches a log, a trace, results, junit XML or the terminal.

A demo recipe (kinto: a database password and an HMAC secret, per app) runs its whole
lifecycle; its recipe dir's hooks read back every secret value of every app the run
deploys — from inside the containers, as the app sees them — into a file outside the run
dir. Then every artifact and all captured output is searched for each of them.

And a recipe whose app prints its secrets (a generated one, and one the operator gives as
``CCCI_SECRET_<RECIPE>_<KEY>``) to its log, as they are, in JSON and in base64, and
exits: install fails with the crash-loop lines quoted, and no value is in the console of
the run (the pipeline log of ``cc-ci job``, the ``output.log`` of a serve job: the stdout
of ``cc-ci run``), harness.log, trace.json, results.json or any file of the run dir."""

from __future__ import annotations

import base64
import json
import subprocess
import uuid
from pathlib import Path

import pytest

from harness.config import DEFAULT_CATALOGUE
from harness.redact import MASK
from harness.serve.runner import Runner
from tests.conftest import WEB_APP, Workspace

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]

READ_BACK = """

import os as _os

_ready = READY_PROBE


def _read_secrets(ctx):
    with open(_os.environ["CCCI_TEST_SECRETS_OUT"], "a") as out:
        for service in ("app", "db"):
            listing = "for f in /run/secrets/*; do cat \\"$f\\"; echo; done"
            out.write(ctx.exec(service, ["sh", "-c", listing]).stdout)


def READY_PROBE(ctx):  # every deploy of every app is probed: install, base, upgrade, restore
    _read_secrets(ctx)
    return _ready(ctx)
"""


def test_generated_secrets_appear_in_no_artifact_and_no_output(
    workspace: Workspace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    recipe_dir = workspace.root / "recipes" / "kinto"
    recipe_dir.mkdir(parents=True)
    meta = (ROOT / "recipes" / "kinto" / "recipe_meta.py").read_text()
    (recipe_dir / "recipe_meta.py").write_text(meta + READ_BACK)
    secrets_file = tmp_path / "secrets.txt"
    monkeypatch.setenv("CCCI_TEST_SECRETS_OUT", str(secrets_file))
    junit = workspace.runs_dir.parent / "junit.xml"
    done = subprocess.run(
        workspace.argv("recipes/kinto", f"--junitxml={junit}", catalogue=DEFAULT_CATALOGUE),
        cwd=workspace.root,
        capture_output=True,
        text=True,
        timeout=600,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    values = {line.strip() for line in secrets_file.read_text().splitlines() if line.strip()}
    # two secrets in each of the install, upgrade and fresh restore apps
    assert len(values) >= 6, values
    assert all(len(v) >= 12 for v in values), "a secret too short to search for safely"
    places = {"terminal output": output, "junit.xml": junit.read_text()}
    for path in workspace.runs_dir.rglob("*"):
        if path.is_file() and ".git" not in path.parts:
            places[str(path.relative_to(workspace.runs_dir))] = path.read_bytes().decode(
                errors="replace"
            )
    assert any(name.endswith("trace.json") for name in places)
    assert any(name.endswith("results.json") for name in places)
    leaks = {name for name, text in places.items() for v in values if v in text}
    assert leaks == set(), f"secret values found in {sorted(leaks)}"
    (run_dir,) = workspace.runs_dir.iterdir()
    assert json.loads((run_dir / "results.json").read_text())["level"] >= 3


# The app writes what it was given where the test reads it (a bind mount outside the run
# dir), prints it to its log as it is, as JSON and in base64, and dies: a crash loop.
LEAKY_APP = """\
version: "3.8"
services:
  app:
    image: cc-ci/busybox:bookworm
    command:
      - sh
      - -c
      - >-
        cp /run/secrets/db_password /run/secrets/api_key /out/;
        echo "leaky: db_password=$$(cat /run/secrets/db_password)
        api_key=$$(cat /run/secrets/api_key)";
        echo "{\\"api_key\\": \\"$$(cat /run/secrets/api_key)\\"}";
        base64 /run/secrets/db_password; base64 /run/secrets/api_key;
        exit 1
    networks: [proxy]
    secrets: [db_password, api_key]
    volumes:
      - @OUT@:/out
    deploy:
      labels:
        - "traefik.enable=true"
        - "traefik.http.services.${STACK_NAME}.loadbalancer.server.port=8080"
        - "coop-cloud.${STACK_NAME}.version=@VERSION@"
networks:
  proxy:
    external: true
secrets:
  db_password:
    external: true
    name: ${STACK_NAME}_db_password_${SECRET_DB_PASSWORD_VERSION}
  api_key:
    external: true
    name: ${STACK_NAME}_api_key_${SECRET_API_KEY_VERSION}
"""


def _leaky_recipe(workspace: Workspace, out: Path) -> None:
    workspace.recipe(
        "leaky",
        [("1.0.0+1", LEAKY_APP.replace("@OUT@", str(out)))],
        meta='ALLOW = {"bind-mount": "hands the test what the app was given"}\n',
    )
    repo = workspace.catalogue / "leaky"
    (repo / ".env.sample").write_text(
        "TYPE=leaky\nDOMAIN=leaky.example.com\n"
        "SECRET_DB_PASSWORD_VERSION=v1 # length=32\n"
        "SECRET_API_KEY_VERSION=v1 # generate=false\n"
    )
    git = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run([*git, "commit", "-q", "-am", "secrets"], check=True)
    subprocess.run([*git, "tag", "-f", "-a", "-m", "1.0.0+1", "1.0.0+1"], check=True)


def _leaks(values: set[str], console: str, runs_dir: Path) -> set[str]:
    """Where any of ``values`` — as it is, or in base64 — is found: the console, or a
    file under ``runs_dir``."""
    forms = values | {base64.b64encode(v.encode()).decode() for v in values}
    places = {"console": console}
    for path in runs_dir.rglob("*"):
        if path.is_file() and ".git" not in path.parts:
            places[str(path.relative_to(runs_dir))] = path.read_bytes().decode(errors="replace")
    names = {Path(name).name for name in places}
    assert {"harness.log", "trace.json", "results.json"} <= names, sorted(places)
    return {name for name, text in places.items() for v in forms if v in text}


@pytest.mark.parametrize("via", ["pytest", "cc-ci run"])
def test_secrets_a_crash_looping_app_prints_appear_nowhere(
    workspace: Workspace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, via: str
) -> None:
    out = tmp_path / "given"
    out.mkdir()
    _leaky_recipe(workspace, out)
    given = f"operator-{uuid.uuid4().hex}"
    monkeypatch.setenv("CCCI_SECRET_LEAKY_API_KEY", given)
    monkeypatch.setenv("CCCI_SECRET_API_KEY", f"unscoped-{uuid.uuid4().hex}")  # not taken
    monkeypatch.setenv("CCCI_SECRET_OTHER_API_KEY", f"other-{uuid.uuid4().hex}")  # not ours
    if via == "pytest":
        session = workspace.pytest("recipes/leaky", "--tiers", "install")
        console, runs_dir = session.output, workspace.runs_dir
    else:  # as serve's runner runs a job: `cc-ci run`, its stdout into output.log
        state = tmp_path / "state"
        runner = Runner(state, workspace.runs_dir, workspace.root / "recipes", 600.0, 60.0)
        runner.run(
            1,
            "leaky",
            workspace.catalogue,
            "main",
            ("install",),
            None,
            True,  # a repo the operator lists: its CCCI_SECRET_* values reach the run
            lambda doc: None,
            lambda: False,
        )
        console, runs_dir = (state / "jobs" / "1" / "output.log").read_text(), workspace.runs_dir
    values = {(out / key).read_text() for key in ("db_password", "api_key")}
    assert len(min(values, key=len)) >= 32, values
    assert "crash-looping" in console, console
    assert _leaks(values, console, runs_dir) == set()
    assert f"leaky: db_password={MASK} api_key={MASK}" in console, console
    assert (out / "api_key").read_text() == given  # the scoped variable, no other
    (results,) = (p for p in runs_dir.rglob("results.json") if "site" not in p.parts)
    assert json.loads(results.read_text())["tiers"]["install"]["status"] == "fail"


def test_a_recipe_that_calls_itself_another_gets_none_of_its_secrets(
    workspace: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    compose = WEB_APP.replace(
        "    networks: [proxy]\n", "    networks: [proxy]\n    secrets: [api_key]\n"
    ) + (
        "secrets:\n  api_key:\n    external: true\n"
        "    name: ${STACK_NAME}_api_key_${SECRET_API_KEY_VERSION}\n"
    )
    workspace.recipe("claimer", [("1.0.0+1", compose)])
    repo = workspace.catalogue / "claimer"
    (repo / ".env.sample").write_text(
        "TYPE=kinto\nDOMAIN=claimer.example.com\nSECRET_API_KEY_VERSION=v1 # generate=false\n"
    )
    git = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run([*git, "commit", "-q", "-am", "calls itself kinto"], check=True)
    canary = f"kintos-own-{uuid.uuid4().hex}"
    monkeypatch.setenv("CCCI_SECRET_KINTO_API_KEY", canary)  # the operator's, for kinto
    session = workspace.pytest("recipes/claimer", "--tiers", "install")
    assert session.tier_outcomes == {"recipes/claimer::install": "FAILED"}, session.output
    assert "give its value as CCCI_SECRET_CLAIMER_API_KEY" in session.output
    assert _leaks({canary}, session.output, workspace.runs_dir) == set()
    session.assert_nothing_left()
