"""xdist scheduling: every item of a recipe dir — its tiers and its custom tests — is one
work unit, run in order on one worker, since they share one ``Run``.

xdist's ``loadscope`` groups by the nodeid before its last ``::``: ``recipes/kinto`` for
``recipes/kinto::install``, but ``recipes/kinto/functional/test_records.py`` for a custom
test, which would then run on another worker, against no app. Here the scope of any item
under a recipe dir is that dir; other items keep loadscope's scopes.
"""

from __future__ import annotations

import functools
from pathlib import Path, PurePosixPath

from xdist.scheduler import LoadScopeScheduling

__all__ = ["RecipeScopeScheduling"]


class RecipeScopeScheduling(LoadScopeScheduling):  # type: ignore[misc]
    def _split_scope(self, nodeid: str) -> str:
        return _recipe_dir(self.config.rootpath, nodeid.split("::", 1)[0]) or super()._split_scope(
            nodeid
        )


@functools.cache
def _recipe_dir(root: Path, path: str) -> str | None:
    """The recipe dir (relative, as in nodeids) holding ``path``, if one does."""
    relative = PurePosixPath(path)
    for candidate in (relative, *relative.parents):
        if str(candidate) != "." and (root / candidate / "recipe_meta.py").is_file():
            return str(candidate)
    return None
