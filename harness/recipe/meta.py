"""recipe_meta.py and ops.py loaded: the frozen ``RecipeMeta`` of a recipe dir, and its
ops hooks.

A recipe dir customizes how cc-ci tests its recipe with ALL-CAPS names in
``recipe_meta.py``, each a key of the registry (``meta_keys.KEYS``). ``load()`` is the
only place a recipe_meta.py is executed (bounded by ``sandbox``), each value checked
against its key (``meta_check``); everything else receives the loaded, frozen
``RecipeMeta``, a field per key (a test holds its fields to the registry).

Rules of a recipe_meta.py: lower-case names, ``_private`` names and imports are ignored;
an unknown ALL-CAPS name, a value of the wrong type, a function on a data key, a hook
with other positional parameters than documented, or an exception while executing the
file raise ``MetaError`` naming the file (and line) and the key.
"""

from __future__ import annotations

import difflib
import traceback
import types
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.errors import MetaError
from harness.recipe import sandbox
from harness.recipe.meta_check import check_hook_signature, validate
from harness.recipe.meta_keys import KEYS, KEYS_BY_NAME, Hook, Tier

__all__ = [
    "META_FILE",
    "OPS_HOOKS",
    "PROVIDE_HOOK",
    "MetaWarning",
    "RecipeMeta",
    "load",
    "load_ops",
]

META_FILE = "recipe_meta.py"
OPS_FILE = "ops.py"
OPS_HOOKS = ("pre_install", "pre_upgrade", "pre_backup", "pre_restore", "pre_custom")
PROVIDE_HOOK = "provide"  # a dependency's: what the recipes that name it in DEPS get


class MetaWarning(UserWarning):
    """A recipe_meta.py uses a key that still works but is on its way out."""


def _empty() -> Mapping[str, str]:
    return types.MappingProxyType({})


@dataclass(frozen=True)
class RecipeMeta:
    """How cc-ci tests one recipe: the validated values of its recipe_meta.py.

    A field per key of ``meta_keys.KEYS``, in its order, with its default, and typed as
    the loaded value is: a ``dict[K, V]`` key's is a read-only ``Mapping[str, V]``."""

    DEPLOY_TIMEOUT: int | None = None
    HEALTH_PATH: str = "/"
    HEALTH_OK: tuple[int, ...] = (200,)
    READY_PROBE: Hook | None = None
    EXTRA_ENV: Mapping[str, str] | Hook = field(default_factory=_empty)
    UPGRADE_EXTRA_ENV: Mapping[str, str] | Hook = field(default_factory=_empty)
    UPGRADE_FROM: tuple[str, ...] = ()
    BACKUP_CAPABLE: bool | None = None
    BACKUP_VERIFY: Hook | None = None
    SEED_DATA: Hook | None = None
    VERIFY_DATA: Hook | None = None
    SCREENSHOT: Hook | None = None
    DEPS: tuple[str, ...] = ()
    TIERS: tuple[Tier, ...] = ("install", "upgrade", "backup", "restore", "custom")
    EXPECT_FAIL: Tier | None = None
    EXPECTED_NA: Mapping[str, str] = field(default_factory=_empty)
    ALLOW: Mapping[str, str] = field(default_factory=_empty)
    RESOURCES: Mapping[str, str] = field(default_factory=_empty)
    CHAOS_BASE_DEPLOY: bool = False

    def non_default(self) -> dict[str, Any]:
        """The keys this recipe customized, with their values."""
        return {k.name: getattr(self, k.name) for k in KEYS if getattr(self, k.name) != k.default}


def load_ops(recipe_dir: Path) -> dict[str, Callable[..., Any]]:
    """The ``pre_<tier>(ctx)`` hooks (and ``provide(ctx)``) of ``recipe_dir/ops.py``,
    signature-checked; a ``pre_*`` name that is no hook is refused with a suggestion, like
    an unknown key."""
    path = Path(recipe_dir) / OPS_FILE
    if not path.is_file():
        return {}
    namespace = _execute(path)
    hooks: dict[str, Callable[..., Any]] = {}
    problems = []
    for name, value in namespace.items():
        if not (name.startswith("pre_") or name == PROVIDE_HOOK) or not callable(value):
            continue
        if name not in (*OPS_HOOKS, PROVIDE_HOOK):
            close = difflib.get_close_matches(name, OPS_HOOKS, n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            problems.append(f"{path}: unknown hook {name}{hint}; hooks are {', '.join(OPS_HOOKS)}")
            continue
        try:
            check_hook_signature(value, ("ctx",), name)
        except MetaError as exc:
            problems.append(str(exc))
            continue
        hooks[name] = value
    if problems:
        raise MetaError("\n".join(problems))
    return hooks


def load(recipe_dir: Path | str) -> RecipeMeta:
    """Execute ``recipe_dir/recipe_meta.py`` and return its frozen ``RecipeMeta``.

    A recipe dir without recipe_meta.py gets the defaults.
    """
    recipe_dir = Path(recipe_dir)
    path = recipe_dir / META_FILE
    if not recipe_dir.is_dir():
        raise MetaError(f"{recipe_dir}: no such recipe dir")
    if not path.is_file():
        return RecipeMeta()
    namespace = _execute(path)
    values: dict[str, Any] = {}
    problems: list[str] = []
    for name, value in namespace.items():
        if name.startswith("_") or not name.isupper() or isinstance(value, types.ModuleType):
            continue
        key = KEYS_BY_NAME.get(name)
        if key is None:
            problems.append(f"{path}: unknown key {name}{_suggest(name)}")
            continue
        try:
            values[name] = validate(key, value, path)
        except MetaError as exc:
            problems.append(str(exc))
            continue
        if key.deprecated:
            warnings.warn(
                MetaWarning(f"{path}: {name} is deprecated: {key.deprecated}"), stacklevel=2
            )
    if problems:
        raise MetaError("\n".join(problems))
    return RecipeMeta(**values)


def _execute(path: Path) -> dict[str, Any]:
    try:
        source = path.read_text(encoding="utf-8")
        code = compile(source, str(path), "exec")
    except SyntaxError as exc:
        raise MetaError(f"{path}:{exc.lineno}: syntax error: {exc.msg}") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise MetaError(f"{path}: cannot read: {exc}") from exc
    namespace: dict[str, Any] = {"__file__": str(path), "__name__": "recipe_meta"}
    with sandbox.bounded(str(path), sandbox.LOAD_WINDOW):
        try:
            exec(code, namespace)
        except Exception as exc:
            line = next(
                (
                    f.lineno
                    for f in reversed(traceback.extract_tb(exc.__traceback__))
                    if f.filename == str(path)
                ),
                None,
            )
            raise MetaError(f"{path}:{line}: {type(exc).__name__} while executing: {exc}") from exc
    return namespace


def _suggest(name: str) -> str:
    close = difflib.get_close_matches(name, KEYS_BY_NAME, n=1)
    return f" (did you mean {close[0]}?)" if close else ""
