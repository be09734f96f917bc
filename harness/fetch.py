"""Recipes fetched from the catalogue with git: a cached mirror per recipe, a checkout
per app, the tags of a repo — every git process cc-ci starts, and all its network I/O
for recipes (what the tags mean is ``recipe.catalogue``'s, pure).

The catalogue is a URL prefix (``<prefix>/<recipe>.git``, e.g. a Gitea organisation)
or a directory of recipe repos (``<dir>/<recipe>``). A recipe is mirrored once with all its
branches and tags into the cache, under a file lock, and each app of a run gets its own
cheap local clone of the mirror at the ref it deploys.
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

from filelock import FileLock

from harness import proc
from harness.config import cache_dir
from harness.errors import CatalogueError
from harness.recipe.catalogue import TAG_FORMAT, Release, Tag, parse_tags, releases_of
from harness.recipe.policy import refuse_escaping_symlinks

__all__ = [
    "CACHE_DIR",
    "Checkout",
    "checkout",
    "git",
    "mirror",
    "releases",
    "tags",
]

CACHE_DIR = cache_dir()

_PULL = re.compile(r"^(?:refs/)?(?:pull|pr)/(\d+)(?:/head)?$")


_GIT_TIMEOUT = 300.0
# git as cc-ci runs it: the allowlist environment (harness.proc), an ssh catalogue's agent,
# and never a prompt for credentials (there is nobody to answer it).
_GIT_ENV = ("SSH_AUTH_SOCK",)


def git(*args: str, cwd: Path | None = None) -> str:
    """Run git; a failure becomes a CatalogueError with git's own last line."""
    own = {name: os.environ[name] for name in _GIT_ENV if name in os.environ}
    try:
        done = proc.run(
            ["git", *args], cwd=cwd, own={**own, "GIT_TERMINAL_PROMPT": "0"}, timeout=_GIT_TIMEOUT
        )
    except subprocess.TimeoutExpired:
        raise CatalogueError(f"git {' '.join(args)}: no answer in {_GIT_TIMEOUT:g}s") from None
    if done.returncode:
        last = (done.stderr or done.stdout or "").strip().splitlines()[-1:] or ["failed"]
        raise CatalogueError(f"git {' '.join(args)}: {last[0]}")
    return done.stdout.strip()


def source_url(catalogue: str, recipe: str) -> str:
    if "://" in catalogue or catalogue.startswith("git@"):
        return f"{catalogue.rstrip('/')}/{recipe}.git"
    base = Path(catalogue).expanduser()
    if not base.is_dir():
        raise CatalogueError(f"catalogue {catalogue} is not a directory (run scripts/setup?)")
    for candidate in (base / recipe, base / f"{recipe}.git"):
        if candidate.exists():
            return str(candidate.resolve())
    known = ", ".join(sorted(p.name for p in base.iterdir() if not p.name.startswith(".")))
    raise CatalogueError(f"unknown recipe {recipe!r}: not in catalogue {catalogue} ({known})")


def mirror(recipe: str, catalogue: str, cache_dir: Path = CACHE_DIR) -> Path:
    """The up-to-date mirror (all branches, tags and PR heads) of ``recipe``: one per
    source URL, so repos of the same name from other owners (or catalogues) never share one
    (the key is long enough that no owner name can be found to collide with another's)."""
    url = source_url(catalogue, recipe)
    dest = cache_dir / "mirrors" / f"{recipe}-{hashlib.sha256(url.encode()).hexdigest()[:16]}.git"
    dest.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(f"{dest}.lock"):
        if dest.is_dir():
            git("remote", "update", "--prune", cwd=dest)
        else:
            git("clone", "--quiet", "--mirror", url, str(dest))
    return dest


@dataclass(frozen=True)
class Checkout:
    """A working tree of the recipe at one commit."""

    path: Path
    sha: str
    ref: str

    @property
    def short(self) -> str:
        return self.sha[:8]

    def dirty(self) -> bool:
        """Uncommitted or untracked changes (the harness's own overlay counts)."""
        return bool(git("status", "--porcelain", "--untracked-files=all", cwd=self.path))

    def switch(self, ref: str) -> Checkout:
        sha = _resolve(self.path, ref)
        git("checkout", "--quiet", "--force", "--detach", sha, cwd=self.path)
        refuse_escaping_symlinks(self.path)
        return Checkout(self.path, sha, ref)


def checkout(mirror_path: Path, ref: str | None, dest: Path) -> Checkout:
    """Clone the mirror into ``dest`` and check out ``ref`` (default: the default branch)."""
    git("clone", "--quiet", "--no-checkout", str(mirror_path), str(dest))
    tree = Checkout(dest, "", "HEAD")
    return tree.switch(ref or "HEAD")


def _resolve(repo: Path, ref: str) -> str:
    pull = _PULL.match(ref)
    if pull:
        git("fetch", "--quiet", "origin", f"refs/pull/{pull[1]}/head", cwd=repo)
        return git("rev-parse", "FETCH_HEAD^{commit}", cwd=repo)
    for candidate in (f"refs/tags/{ref}", f"refs/remotes/origin/{ref}", ref):
        try:
            return git("rev-parse", "--verify", "--quiet", f"{candidate}^{{commit}}", cwd=repo)
        except CatalogueError:
            continue
    raise CatalogueError(f"{repo.name}: ref {ref!r} not found (no such tag, branch or commit)")


def _tags(repo: Path) -> tuple[Tag, ...]:
    return parse_tags(git("for-each-ref", "refs/tags", f"--format={TAG_FORMAT}", cwd=repo))


def releases(repo: Path) -> tuple[list[Release], list[str]]:
    """The release tags of ``repo`` in version order, and the tags that are not releases."""
    return releases_of(_tags(repo))


def tags(repo: Path) -> tuple[Tag, ...]:
    """The tags of ``repo``, as lint sees them: none outside a git repo."""
    try:
        return _tags(repo)
    except CatalogueError:
        return ()
