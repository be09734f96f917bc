"""A recipe dir, read once into a frozen value: what collection, the manifest and the run
all use, so none of them can disagree with another about what the recipe dir says.

``recipes/<name>/``: ``recipe_meta.py`` (loaded by ``meta.load``, the only place it is
executed), ``ops.py`` (its ``pre_<tier>(ctx)`` hooks), ``install_steps.sh``,
``compose.ccci.yml`` (the overlay) and the custom tests in ``functional/`` and
``playwright/``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

from harness.recipe import meta
from harness.recipe.meta import RecipeMeta

__all__ = ["Customization", "custom_test_files", "read"]

INSTALL_STEPS = "install_steps.sh"
OVERLAY = "compose.ccci.yml"
CUSTOM_TEST_DIRS = ("functional", "playwright")


@dataclass(frozen=True)
class Customization:
    path: Path  # the recipe dir
    recipe: str  # the recipe it tests
    meta: RecipeMeta
    ops: Mapping[str, Callable[..., Any]]  # ops.py's pre_<tier> hooks
    install_steps: Path | None
    overlay: Path | None
    custom_tests: tuple[Path, ...]  # only when the custom tier is selected in TIERS


def custom_test_files(recipe_dir: Path) -> list[Path]:
    """The recipe dir's custom tests: ``test_*.py`` directly in functional/ and playwright/
    (not recursive; a test_*.py at the top of the recipe dir is not one)."""
    return [f for d in CUSTOM_TEST_DIRS for f in sorted((recipe_dir / d).glob("test_*.py"))]


def read(recipe_dir: Path) -> Customization:
    """Read ``recipe_dir`` (executing recipe_meta.py and ops.py once); ``MetaError`` names
    the file and the key of every problem."""
    recipe_dir = Path(recipe_dir)
    loaded = meta.load(recipe_dir)
    steps = recipe_dir / INSTALL_STEPS
    overlay = recipe_dir / OVERLAY
    return Customization(
        path=recipe_dir,
        recipe=recipe_dir.name,
        meta=loaded,
        ops=MappingProxyType(meta.load_ops(recipe_dir)),
        install_steps=steps if steps.is_file() else None,
        overlay=overlay if overlay.is_file() else None,
        custom_tests=tuple(custom_test_files(recipe_dir)) if "custom" in loaded.TIERS else (),
    )
