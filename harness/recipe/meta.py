"""recipe_meta.py: the registry of keys, the one loader, the hook signature check.

A recipe dir customizes how cc-ci tests its recipe with ALL-CAPS names in
``recipe_meta.py``. ``KEYS`` is the only list of those names: ``RecipeMeta`` is generated
from it (so its fields cannot drift), the docs table is rendered from it, and ``load()``
validates a file against it. ``load()`` is the only place a recipe_meta.py is executed;
everything else receives the loaded, frozen ``RecipeMeta``.

Rules of a recipe_meta.py: lower-case names, ``_private`` names and imports are ignored;
an unknown ALL-CAPS name, a value of the wrong type, a function on a data key, a hook
with other positional parameters than documented, or an exception while executing the
file raise ``MetaError`` naming the file (and line) and the key.
"""

from __future__ import annotations

import dataclasses
import difflib
import inspect
import traceback
import types
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin

from harness.errors import MetaError
from harness.recipe import sandbox
from harness.recipe.policy import RuleId

__all__ = [
    "KEYS",
    "TIERS",
    "Key",
    "MetaWarning",
    "RecipeMeta",
    "check_hook_signature",
    "custom_test_files",
    "defined_at",
    "load",
    "render_key_table",
]

META_FILE = "recipe_meta.py"

Tier = Literal["install", "upgrade", "backup", "restore", "custom"]
Resource = Literal["memory", "cpus", "pids", "disk"]
OptionalRung = Literal["upgrade", "backup_restore", "custom", "lint"]  # install never is
TIERS: tuple[str, ...] = get_args(Tier)
Hook = Callable[..., Any]


class MetaWarning(UserWarning):
    """A recipe_meta.py uses a key that still works but is on its way out."""


@dataclass(frozen=True)
class Key:
    """One name a recipe_meta.py may define.

    ``type`` is the accepted data value (``None``: the key only takes a hook);
    ``hook_params`` are the positional parameters a function value must take
    (``None``: the key takes data only); ``deprecated`` is the reason, when it is.
    """

    name: str
    type: Any
    default: Any
    doc: str
    hook_params: tuple[str, ...] | None = None
    deprecated: str | None = None

    @property
    def annotation(self) -> Any:
        if self.hook_params is None:
            return self.type
        return Hook | None if self.type is None else self.type | Hook


_EMPTY: Mapping[str, str] = types.MappingProxyType({})

KEYS: tuple[Key, ...] = (
    Key(
        "DEPLOY_TIMEOUT",
        int | None,
        None,
        "Seconds a deploy may take to converge; default: the recipe's `TIMEOUT`, else 300.",
    ),
    Key(
        "HEALTH_PATH", str, "/", "Path of the web service that must answer once the app converged."
    ),
    Key(
        "HEALTH_OK",
        tuple[int, ...],
        (200,),
        "HTTP statuses of `HEALTH_PATH` that count as healthy.",
    ),
    Key(
        "READY_PROBE",
        None,
        None,
        "Extra readiness check after health; raise or return False when not ready.",
        hook_params=("ctx",),
    ),
    Key(
        "EXTRA_ENV",
        dict[str, str],
        _EMPTY,
        "Variables added to the app env (over `.env.sample`) for every deploy.",
        hook_params=("ctx",),
    ),
    Key(
        "UPGRADE_EXTRA_ENV",
        dict[str, str],
        _EMPTY,
        "Variables added to the app env when upgrading to the candidate.",
        hook_params=("ctx",),
    ),
    Key(
        "UPGRADE_FROM",
        tuple[str, ...],
        (),
        "Release tags to upgrade from, each in turn; default: the previous release.",
    ),
    Key(
        "BACKUP_CAPABLE",
        bool | None,
        None,
        "Whether the recipe can be backed up; None: detect from its backupbot labels.",
    ),
    Key(
        "BACKUP_VERIFY",
        None,
        None,
        "Check that a backup archive holds usable data (its dir is `ctx.run_dir`).",
        hook_params=("ctx",),
    ),
    Key(
        "SEED_DATA",
        None,
        None,
        "Create real application data before the upgrade and the backup.",
        hook_params=("ctx",),
    ),
    Key(
        "VERIFY_DATA",
        None,
        None,
        "Check the seeded data after the upgrade and the restore; raise or return False.",
        hook_params=("ctx",),
    ),
    Key(
        "SCREENSHOT",
        None,
        None,
        "Take the screenshot of the app yourself (log in first, open a page).",
        hook_params=("page", "ctx"),
    ),
    Key(
        "DEPS",
        tuple[str, ...],
        (),
        "Recipes to provision first (e.g. an identity provider); see `ctx.deps`.",
    ),
    Key("TIERS", tuple[Tier, ...], TIERS, "Tiers to run, in lifecycle order."),
    Key(
        "EXPECT_FAIL",
        Tier | None,
        None,
        "For canaries: the tier at which the recipe is designed to fail.",
    ),
    Key(
        "EXPECTED_NA",
        dict[OptionalRung, str],
        _EMPTY,
        "Rungs that do not apply to this recipe, each with the reason.",
    ),
    Key(
        "ALLOW",
        dict[RuleId, str],
        _EMPTY,
        "Deploy-policy rules the recipe may break, each with the reason (`docker.sock`,"
        " `bind-mount`, `privileged`, …: see the rules in docs/security.md).",
    ),
    Key(
        "RESOURCES",
        dict[Resource, str],
        _EMPTY,
        "Raise the caps of each service's limits and reservations (its limits where the"
        " recipe sets none; what it sets above is lowered to them): `memory` (`1G`),"
        " `cpus` (`1`), `pids` (`1024`); and `disk` (`5G`), what the run's containers and"
        " volumes may hold before the run is stopped.",
    ),
    Key(
        "CHAOS_BASE_DEPLOY",
        bool,
        False,
        "Deploy the upgrade base as chaos.",
        deprecated="a compose.ccci.yml in the recipe dir makes base deploys chaos by itself",
    ),
)

KEYS_BY_NAME: Mapping[str, Key] = types.MappingProxyType({k.name: k for k in KEYS})


def _non_default(self: Any) -> dict[str, Any]:
    """The keys this recipe customized, with their values."""
    return {k.name: getattr(self, k.name) for k in KEYS if getattr(self, k.name) != k.default}


def _field(key: Key) -> Any:
    # A read-only mapping is safe to share, but dataclasses refuses any unhashable default.
    if isinstance(key.default, Mapping):
        return dataclasses.field(default_factory=lambda: key.default)
    return dataclasses.field(default=key.default)


RecipeMeta = dataclasses.make_dataclass(
    "RecipeMeta",
    [(k.name, k.annotation, _field(k)) for k in KEYS],
    frozen=True,
    namespace={
        "__doc__": "How cc-ci tests one recipe: the validated values of its recipe_meta.py.",
        "__module__": __name__,
        "non_default": _non_default,
    },
)


# -- loading ------------------------------------------------------------------------------

OPS_FILE = "ops.py"
OPS_HOOKS = ("pre_install", "pre_upgrade", "pre_backup", "pre_restore", "pre_custom")
PROVIDE_HOOK = "provide"  # a dependency's: what the recipes that name it in DEPS get
INSTALL_STEPS = "install_steps.sh"
OVERLAY = "compose.ccci.yml"


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


CUSTOM_TEST_DIRS = ("functional", "playwright")


def custom_test_files(recipe_dir: Path) -> list[Path]:
    """The recipe dir's custom tests: ``test_*.py`` directly in functional/ and playwright/
    (not recursive; a test_*.py at the top of the recipe dir is not one)."""
    return [f for d in CUSTOM_TEST_DIRS for f in sorted((recipe_dir / d).glob("test_*.py"))]


def load(recipe_dir: Path | str) -> Any:
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
            values[name] = _validate(key, value, path)
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


def _validate(key: Key, value: Any, path: Path) -> Any:
    if callable(value) and not isinstance(value, type):
        if key.hook_params is None:
            raise MetaError(f"{path}: {key.name} must be {type_name(key.type)}, not a function")
        check_hook_signature(value, key.hook_params, f"{key.name}")
        return value
    if key.type is None:
        if value is None:
            return None
        raise MetaError(
            f"{path}: {key.name} must be a function ({', '.join(key.hook_params or ())}),"
            f" got {type(value).__name__}"
        )
    try:
        return _coerce(value, key.type)
    except _Mismatch as exc:
        raise MetaError(f"{path}: {key.name}{exc}") from None


class _Mismatch(Exception):
    """Why a value does not match an annotation; the text continues ``KEY``."""


def _coerce(value: Any, annotation: Any, where: str = "") -> Any:
    """Return ``value`` checked against ``annotation`` (lists become tuples, dicts frozen)."""
    origin = get_origin(annotation)
    args = get_args(annotation)
    if origin in (Union, types.UnionType):
        for option in args:
            try:
                return _coerce(value, option, where)
            except _Mismatch:
                continue
        raise _Mismatch(f"{where} must be {type_name(annotation)}, got {_describe(value)}")
    if origin is Literal:
        if value in args:
            return value
        close = difflib.get_close_matches(str(value), [str(a) for a in args], n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise _Mismatch(f"{where}: {value!r} is not one of {', '.join(map(str, args))}{hint}")
    if origin is tuple:
        item_type = args[0]
        if isinstance(value, str) and (item_type is str or get_origin(item_type) is Literal):
            value = (value,)
        if not isinstance(value, (tuple, list)):
            raise _Mismatch(f"{where} must be {type_name(annotation)}, got {_describe(value)}")
        return tuple(_coerce(v, item_type, f"{where}[{i}]") for i, v in enumerate(value))
    if origin is dict:
        if not isinstance(value, Mapping):
            raise _Mismatch(f"{where} must be {type_name(annotation)}, got {_describe(value)}")
        key_type, value_type = args
        return types.MappingProxyType(
            {
                _coerce(k, key_type, f"{where} key"): _coerce(v, value_type, f"{where}[{k!r}]")
                for k, v in value.items()
            }
        )
    if annotation is type(None):
        if value is None:
            return None
        raise _Mismatch(f"{where} must be None, got {_describe(value)}")
    # Plain classes; bool is an int to Python but never a timeout or a status to us.
    if isinstance(value, annotation) and not (annotation is int and isinstance(value, bool)):
        return value
    raise _Mismatch(f"{where} must be {type_name(annotation)}, got {_describe(value)}")


def _describe(value: Any) -> str:
    text = repr(value)
    return f"{type(value).__name__} {text if len(text) <= 40 else text[:37] + '...'}"


def type_name(annotation: Any) -> str:
    """How an annotation reads in messages and docs: ``tuple[int, ...]``, ``int | None``."""
    origin = get_origin(annotation)
    args = get_args(annotation)
    if origin in (Union, types.UnionType):
        return " | ".join(type_name(a) for a in args)
    if origin is Literal:
        return " | ".join(repr(a) for a in args)
    if origin is tuple:
        return f"tuple[{type_name(args[0])}, ...]"
    if origin is dict:
        return f"dict[{type_name(args[0])}, {type_name(args[1])}]"
    if annotation is type(None):
        return "None"
    return str(getattr(annotation, "__name__", annotation))


# -- hooks --------------------------------------------------------------------------------

_POSITIONAL = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)


def defined_at(fn: Callable[..., Any]) -> str | None:
    """``<file>:<line>`` where a hook (a Python function) is defined, if it is one."""
    code = getattr(fn, "__code__", None)
    return f"{code.co_filename}:{code.co_firstlineno}" if code else None


def check_hook_signature(fn: Callable[..., Any], expected: tuple[str, ...], name: str) -> None:
    """Raise ``MetaError`` unless ``fn`` takes exactly the positional parameters ``expected``.

    Used for recipe_meta.py hooks and ops.py functions alike; the message names the file
    and line where ``fn`` is defined.
    """
    where = defined_at(fn) or repr(fn)
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError) as exc:
        raise MetaError(f"{where}: {name}: cannot read its signature: {exc}") from exc
    params = list(signature.parameters.values())
    positional = tuple(p.name for p in params if p.kind in _POSITIONAL)
    required_kwonly = [
        p.name
        for p in params
        if p.kind is inspect.Parameter.KEYWORD_ONLY and p.default is inspect.Parameter.empty
    ]
    varargs = any(p.kind is inspect.Parameter.VAR_POSITIONAL for p in params)
    if positional != expected or required_kwonly or varargs:
        raise MetaError(f"{where}: {name} must take ({', '.join(expected)}), but takes {signature}")


# -- docs ---------------------------------------------------------------------------------


def render_key_table() -> str:
    """The markdown table of every key, as docs/recipe-customization.md carries it."""
    rows = [
        "| Key | Value | Default | Meaning |",
        "| --- | --- | --- | --- |",
    ]
    for key in KEYS:
        kinds = []
        if key.type is not None:
            kinds.append(type_name(key.type))
        if key.hook_params is not None:
            kinds.append(f"hook({', '.join(key.hook_params)})")
        default = dict(key.default) if isinstance(key.default, Mapping) else key.default
        meaning = key.doc + (f" **Deprecated:** {key.deprecated}." if key.deprecated else "")
        cells = (f"`{key.name}`", f"`{' or '.join(kinds)}`", f"`{default!r}`", meaning)
        rows.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(rows) + "\n"
