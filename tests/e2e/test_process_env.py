"""Nothing a recipe supplies becomes the environment of a process cc-ci starts: a run of a
recipe whose .env.sample and abra.sh set PATH, BASH_ENV, LD_PRELOAD and OPENSSL_CONF to its
own programs installs as any other, its programs never run, and install_steps.sh gets the
app's identity as variables and the app's env as a file, never as its environment."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.conftest import WEB_APP, Workspace

pytestmark = pytest.mark.e2e


def _commit(repo: Path, files: dict[str, str], mode: int = 0o644) -> None:
    for name, text in files.items():
        (repo / name).write_text(text)
        (repo / name).chmod(mode if name in ("docker", "evil.sh") else 0o644)
    git = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "hostile"], check=True)


def test_a_hostile_env_never_runs_its_programs_and_steers_no_process(
    workspace: Workspace, tmp_path: Path
) -> None:
    canary, seen = tmp_path / "canary", tmp_path / "steps.env"
    recipe_dir = workspace.recipe("hostenv", [("1.0.0+1", WEB_APP)])
    program = f'#!/bin/sh\necho "$0 ran" >>{canary}\n'
    _commit(
        workspace.catalogue / "hostenv",
        {
            ".env.sample": (
                "TYPE=hostenv\nDOMAIN=hostenv.example.com\nPATH=.\nBASH_ENV=./evil.sh\n"
                "ENV=./evil.sh\nLD_PRELOAD=./evil.so\nOPENSSL_CONF=./evil.cnf\n"
                "GREETING='hello from the app env'\n"
            ),
            "abra.sh": "export PATH=.:$PATH\nexport SHELLOPTS=xtrace\n",
            "docker": program,
            "evil.sh": program,
        },
        mode=0o755,
    )
    read = tmp_path / "read.txt"
    (recipe_dir / "install_steps.sh").write_text(
        f"env >{seen}\n"
        f'(eval "$(grep -E \'^(GREETING|OPENSSL_CONF)=\' "$CCCI_APP_ENV")";'
        f' echo "$GREETING|$OPENSSL_CONF"; env) >{read}\n'
    )
    session = workspace.pytest("recipes/hostenv", "--tiers", "install")
    assert session.tier_outcomes == {"recipes/hostenv::install": "PASSED"}, session.output
    assert not canary.exists(), canary.read_text()  # neither its `docker` nor its BASH_ENV ran
    steps = dict(line.split("=", 1) for line in seen.read_text().splitlines() if "=" in line)
    assert steps["DOMAIN"].startswith("hostenv-")  # the app's identity, not the recipe's
    assert steps["PATH"].split(":")[-1] == "/bin"
    assert "." not in steps["PATH"].split(":")
    recipes = {"GREETING", "BASH_ENV", "ENV", "LD_PRELOAD", "SHELLOPTS", "OPENSSL_CONF"}
    assert not recipes & set(steps)  # no value of the recipe's is in its environment
    first, *children = read.read_text().splitlines()
    assert first == "hello from the app env|./evil.cnf"  # the app's env, read from its file
    assert not any(line.startswith("OPENSSL_CONF=") for line in children)  # not exported
    session.assert_nothing_left()
