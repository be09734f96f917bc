"""No generated secret reaches a log, a trace, results, junit XML or the terminal.

A demo recipe (kinto: a database password and an HMAC secret, per app) runs its whole
lifecycle; its recipe dir's hooks read back every secret value of every app the run
deploys — from inside the containers, as the app sees them — into a file outside the run
dir. Then every artifact and all captured output is searched for each of them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.recipe.catalogue import DEFAULT_CATALOGUE
from tests.conftest import Workspace

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
    import subprocess

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
