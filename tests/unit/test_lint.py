"""Native lint on the real recipes, as git repos with their real tags, and on the demos."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from harness.fetch import tags
from harness.recipe.catalogue import Tag
from harness.recipe.lint import RULES, Finding, lint, summary

DATA = Path(__file__).resolve().parents[1] / "data" / "real-recipes"
DEMO = Path(__file__).resolve().parents[2] / "demo" / "recipes"


def repo(tmp_path: Path, source: Path, tags: dict[str, bool]) -> Path:
    """A throwaway git repo of ``source`` with ``tags`` (name -> annotated)."""
    path = tmp_path / source.name
    shutil.copytree(source, path)
    git = ["git", "-C", str(path), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "import"], check=True)
    for tag, annotated in tags.items():
        subprocess.run([*git, "tag", *(["-a", "-m", tag] if annotated else []), tag], check=True)
    return path


def linted(path: Path) -> list[Finding]:
    """Lint as cc-ci runs it: on the checkout, with the tags git lists of it."""
    return lint(path, tags(path))


def outcomes(path: Path) -> dict[str, str]:
    return {f.rule: f.status for f in linted(path)}


def test_traefik_lightweight_tag_fails_r014(tmp_path: Path) -> None:
    found = outcomes(repo(tmp_path, DATA / "traefik-2021", {"v2.4.8": False}))
    assert found["R014"] == "fail"  # error severity: the lint rung fails
    assert found["R006"] == "fail"  # v2.4.8 is no <semver>+<upstream> release
    assert found["R013"] == "skip"  # offline
    assert summary(linted(tmp_path / "traefik-2021"))["errors"] == ["R014"]


def test_gaseous_untagged_and_latest_images(tmp_path: Path) -> None:
    found = outcomes(repo(tmp_path, DATA / "gaseous", {}))
    assert found["R003"] == "fail"  # mariadb has no tag
    assert found["R004"] == "fail"  # gaseousserver:latest
    assert found["R002"] == "fail"  # no healthchecks
    assert found["R009"] == found["R010"] == found["R016"] == "pass"
    assert summary(linted(tmp_path / "gaseous"))["status"] == "pass"  # warnings only


def test_custom_php_has_no_healthchecks_but_vendors_its_configs(tmp_path: Path) -> None:
    found = outcomes(repo(tmp_path, DATA / "custom-php-2021", {}))
    assert found["R002"] == "fail"
    assert found["R012"] == "pass"  # every *_VERSION of its configs is exported in abra.sh
    assert found["R001"] == "pass"


def test_r012_names_a_config_version_missing_from_abra_sh(tmp_path: Path) -> None:
    path = repo(tmp_path, DATA / "custom-php-2021", {})
    (path / "abra.sh").write_text("export NGINX_DEFAULT_CONF_VERSION=v6\n")
    (finding,) = [f for f in linted(path) if f.rule == "R012"]
    assert finding.status == "fail"
    assert "PHP_UPLOADS_CONF_VERSION" in finding.detail


@pytest.mark.parametrize("recipe", ["radicale", "kinto"])
def test_demo_recipes_pass_every_error_rule(tmp_path: Path, recipe: str) -> None:
    latest = sorted((DEMO / recipe).iterdir())[-1]
    tree = tmp_path / recipe
    shutil.copytree(sorted((DEMO / recipe).iterdir())[0], tree)
    shutil.copytree(latest, tree, dirs_exist_ok=True)
    verdict = summary(linted(repo(tmp_path / "git", tree, {latest.name: True})))
    assert verdict["errors"] == []
    assert verdict["warnings"] == []


def test_the_tags_are_the_ones_given(tmp_path: Path) -> None:
    """lint runs no git: a plain copy, no repo, judged on the tags handed to it."""
    shutil.copytree(DATA / "gaseous", tmp_path / "gaseous")
    light = Tag("0.1.0+4.3.1", annotated=False, sha="0" * 40)
    found = {f.rule: f.status for f in lint(tmp_path / "gaseous", [light])}
    assert found["R006"] == "pass"  # a <semver>+<upstream> release tag
    assert found["R014"] == "fail"  # but lightweight
    assert {f.rule: f.status for f in lint(tmp_path / "gaseous", [])}["R006"] == "fail"


def test_rule_table_is_complete() -> None:
    assert [r[0] for r in RULES] == [f"R{n:03d}" for n in range(1, 17)]
