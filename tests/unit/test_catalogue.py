"""harness.fetch with real git repos (mirror, checkout of every ref form, tags), and what
harness.recipe.catalogue makes of the tags: releases, their order, the previous one."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from harness import fetch
from harness.errors import CatalogueError
from harness.recipe import catalogue


def git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(repo), *args],
        check=True,
        capture_output=True,
        text=True,
        env={
            "GIT_AUTHOR_NAME": "t",
            "GIT_AUTHOR_EMAIL": "t@t",
            "GIT_COMMITTER_NAME": "t",
            "GIT_COMMITTER_EMAIL": "t@t",
            "PATH": "/usr/bin:/bin",
        },
    ).stdout.strip()


def commit(repo: Path, content: str) -> str:
    (repo / "compose.yml").write_text(content)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", content)
    return git(repo, "rev-parse", "HEAD")


@pytest.fixture
def recipe_repo(tmp_path: Path) -> Path:
    """A recipe repo with annotated releases, a lightweight tag, a branch and a PR head."""
    repo = tmp_path / "cat" / "demo"
    repo.mkdir(parents=True)
    git(repo, "init", "-q", "-b", "main")
    commit(repo, "one")
    git(repo, "tag", "-a", "1.0.0+2.0", "-m", "r")
    commit(repo, "two")
    git(repo, "tag", "-a", "1.2.0+2.1", "-m", "r")
    git(repo, "tag", "v2.4.8")  # lightweight, not a release
    git(repo, "checkout", "-q", "-b", "feature")
    commit(repo, "feature")
    git(repo, "update-ref", "refs/pull/7/head", "HEAD")
    git(repo, "checkout", "-q", "main")
    commit(repo, "three")
    git(repo, "tag", "-a", "1.10.0+2.1", "-m", "r")  # above 1.2.0 by semver, not by text
    return repo


def test_mirror_and_checkout_every_ref_form(recipe_repo: Path, tmp_path: Path) -> None:
    catalogue_dir = str(recipe_repo.parent)
    mirror = fetch.mirror("demo", catalogue_dir, cache_dir=tmp_path / "cache")
    assert fetch.mirror("demo", catalogue_dir, cache_dir=tmp_path / "cache") == mirror

    def content(ref: str | None, n: int) -> str:
        tree = fetch.checkout(mirror, ref, tmp_path / f"co{n}")
        assert tree.sha == git(tree.path, "rev-parse", "HEAD")
        return (tree.path / "compose.yml").read_text()

    assert content(None, 0) == "three"  # the default branch
    assert content("1.0.0+2.0", 1) == "one"  # a tag
    assert content("feature", 2) == "feature"  # a branch
    assert content(git(recipe_repo, "rev-parse", "main~1")[:10], 3) == "two"  # a sha
    assert content("pull/7", 4) == "feature"  # a PR head
    with pytest.raises(CatalogueError, match=r"ref 'nope' not found"):
        fetch.checkout(mirror, "nope", tmp_path / "co5")


def test_unknown_recipe_names_what_the_catalogue_has(recipe_repo: Path, tmp_path: Path) -> None:
    with pytest.raises(CatalogueError, match=r"unknown recipe 'demoo': .* \(demo\)"):
        fetch.mirror("demoo", str(recipe_repo.parent), cache_dir=tmp_path)
    with pytest.raises(CatalogueError, match="is not a directory"):
        fetch.mirror("demo", str(tmp_path / "none"), cache_dir=tmp_path)


def test_releases_in_semver_order_with_tag_kinds(recipe_repo: Path) -> None:
    found, other = fetch.releases(recipe_repo)
    assert [r.tag for r in found] == ["1.0.0+2.0", "1.2.0+2.1", "1.10.0+2.1"]
    assert all(r.annotated for r in found)
    assert other == ["v2.4.8"]
    assert found[1].sha == git(recipe_repo, "rev-parse", "main~1")


@pytest.mark.parametrize(
    ("candidate", "label", "expected"),
    [
        ("1.10.0+2.1", None, "1.2.0+2.1"),  # a tagged candidate: the release below it
        ("1.0.0+2.0", None, None),  # the first release has no base
        ("untagged", (1, 10, 0), "1.10.0+2.1"),  # work on top of a release: that release
        ("untagged", (1, 5, 0), "1.2.0+2.1"),
        ("untagged", None, "1.10.0+2.1"),  # no label: the newest release
    ],
)
def test_previous_release(
    recipe_repo: Path, candidate: str, label: catalogue.Version | None, expected: str | None
) -> None:
    found, _ = fetch.releases(recipe_repo)
    sha = next((r.sha for r in found if r.tag == candidate), "f" * 40)
    base = catalogue.previous_release(found, sha, label)
    assert (base.tag if base else None) == expected


def test_parse_version() -> None:
    assert catalogue.parse_version("1.2.3+4.5-rc1") == (1, 2, 3)
    assert catalogue.parse_version("v0.1.0+1") == (0, 1, 0)
    assert catalogue.parse_version("v2.4.8") is None
    assert catalogue.parse_version("latest") is None


def test_git_runs_in_cc_cis_own_environment_not_the_callers(
    recipe_repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What steers git (GIT_DIR, its config) is never taken from the environment cc-ci
    was started in: git reads the repo it is pointed at."""
    monkeypatch.setenv("GIT_DIR", str(recipe_repo.parent / "elsewhere"))
    monkeypatch.setenv("GIT_CONFIG_PARAMETERS", "'core.bare=true'")
    found, _ = fetch.releases(recipe_repo)
    assert [r.tag for r in found] == ["1.0.0+2.0", "1.2.0+2.1", "1.10.0+2.1"]


def test_tags_are_read_from_git_and_none_outside_a_repo(recipe_repo: Path, tmp_path: Path) -> None:
    tags = fetch.tags(recipe_repo)
    assert {t.name: t.annotated for t in tags} == {
        "1.0.0+2.0": True,
        "1.10.0+2.1": True,
        "1.2.0+2.1": True,
        "v2.4.8": False,
    }
    assert next(t for t in tags if t.name == "v2.4.8").sha == git(
        recipe_repo, "rev-parse", "main~1"
    )
    assert fetch.tags(tmp_path / "cat") == ()  # a plain dir: lint sees no tags


def test_releases_are_parsed_from_the_tag_listing_alone() -> None:
    """recipe.catalogue runs no git: the listing comes in as text."""
    refs = "\n".join(
        [
            f"1.10.0+2 tag {'a' * 40} {'1' * 40}",
            f"v2.4.8 commit {'2' * 40} ",
            f"1.2.0+1 commit {'3' * 40} ",
            f"1.9.0+2 tag {'b' * 40} {'4' * 40}",
        ]
    )
    found, other = catalogue.releases_of(catalogue.parse_tags(refs))
    assert [(r.tag, r.sha[0], r.annotated) for r in found] == [
        ("1.2.0+1", "3", False),
        ("1.9.0+2", "4", True),  # an annotated tag's commit, not the tag object
        ("1.10.0+2", "1", True),
    ]
    assert other == ["v2.4.8"]
