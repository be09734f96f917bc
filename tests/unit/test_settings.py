"""Defaults a user can predict: where run dirs go, and which engine the header names."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from harness import config, plugin, settings
from harness.swarm import engine


def _recipes(where: Path) -> None:
    (where / "recipes" / "web").mkdir(parents=True)
    (where / "recipes" / "web" / "recipe_meta.py").write_text("")


def test_runs_go_to_the_working_directory_without_an_ini_file(
    pytester: pytest.Pytester, tmp_path: Path
) -> None:
    _recipes(pytester.path)
    (pytester.path / "pytest.ini").unlink(missing_ok=True)
    catalogue = tmp_path.parent / "elsewhere-cat"  # a sibling: the guessed rootdir would be /tmp…
    catalogue.mkdir(exist_ok=True)
    config = pytester.parseconfig("recipes", "--catalogue", str(catalogue))
    assert config.inipath is None
    assert settings.resolve(config).runs_dir == pytester.path / "runs"


def test_runs_go_beside_the_ini_file(pytester: pytest.Pytester) -> None:
    _recipes(pytester.path / "project")
    pytester.makeini("[pytest]\n")
    os.chdir(pytester.path / "project")
    config = pytester.parseconfig("recipes")
    assert settings.resolve(config).runs_dir == pytester.path / "runs"


def test_the_header_names_the_engine_of_the_docker_context(
    pytester: pytest.Pytester, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _recipes(pytester.path)
    docker_config = tmp_path / "docker-config"
    docker_config.mkdir()
    (docker_config / "config.json").write_text("{}\n")  # the SDK finds contexts beside it
    subprocess.run(
        ["docker", "context", "create", "elsewhere", "--docker", "host=tcp://127.0.0.1:9"],
        env={"PATH": os.environ["PATH"], "DOCKER_CONFIG": str(docker_config)},
        check=True,
        capture_output=True,
        timeout=60,
    )
    monkeypatch.delenv("DOCKER_HOST", raising=False)
    monkeypatch.setenv("DOCKER_CONFIG", str(docker_config))
    monkeypatch.setenv("DOCKER_CONTEXT", "elsewhere")
    engine._context.cache_clear()
    try:
        header = plugin.pytest_report_header(pytester.parseconfig("recipes"))
    finally:
        engine._context.cache_clear()
    assert header is not None
    assert header.startswith("cc-ci platform: remote swarm at tcp://127.0.0.1:9;"), header


def test_a_setting_comes_from_the_flag_then_the_environment_then_the_ini_then_its_default() -> None:
    names = ("run-deadline", "janitor-age", "listen", "state-dir")
    ini = {"ccci_run_deadline": "30", "ccci_janitor_age": "40", "ccci_listen": "0.0.0.0:1"}
    environ = {"CCCI_RUN_DEADLINE": "20", "CCCI_JANITOR_AGE": "50"}
    values = config.resolve(names, {"run-deadline": 10.0}, ini, environ)
    assert {n: (v.value, v.source) for n, v in values.items()} == {
        "run-deadline": ("10.0", "--run-deadline"),
        "janitor-age": ("50", "CCCI_JANITOR_AGE"),
        "listen": ("0.0.0.0:1", "ini ccci_listen"),
        "state-dir": ("state", "default"),
    }


def test_a_secret_is_read_from_the_environment_only_and_never_shown() -> None:
    ini = {"ccci_forge_token": "from-an-ini-file"}
    flags = {"forge-token": "from-a-flag"}
    assert config.resolve(("forge-token",), flags, ini, {})["forge-token"].value is None
    values = config.resolve(("forge-token",), flags, ini, {"CCCI_FORGE_TOKEN": "t0ken-value"})
    assert values["forge-token"] == config.Value("t0ken-value", "CCCI_FORGE_TOKEN")
    shown = config.table(values)
    assert "t0ken-value" not in shown
    assert "(set)" in shown


def test_cc_ci_config_says_where_each_value_came_from(tmp_path: Path) -> None:
    (tmp_path / "pytest.ini").write_text("[pytest]\nccci_parallel = 3\n")
    done = subprocess.run(
        [sys.executable, "-m", "harness.cli", "config"],
        cwd=tmp_path,
        env={**os.environ, "CCCI_POLL": "15", "CCCI_WEBHOOK_SECRET": "s3cret-value"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    rows = {(line.split()[0], line.split()[-1]) for line in done.stdout.splitlines()}
    assert ("parallel", "ccci_parallel") in rows
    assert ("poll", "CCCI_POLL") in rows
    assert ("run-deadline", "default") in rows
    assert "s3cret-value" not in done.stdout
