"""Defaults a user can predict: where run dirs go, and which engine the header names."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from harness import plugin, settings
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
