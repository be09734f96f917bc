"""The registry of recipe_meta.py keys: every ALL-CAPS name a recipe dir may define, the
value it takes (data, a hook, or either), its default and its docs.

``KEYS`` is the only list of those names: the loader (``meta``) accepts exactly these,
the checker (``meta_check``) holds each value to its key's type, the docs table
(``docs``) is rendered from them, and a test holds ``meta.RecipeMeta`` to them.
"""

from __future__ import annotations

import types
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, Union, get_args, get_origin

from harness.recipe.policy import RuleId

__all__ = [
    "KEYS",
    "KEYS_BY_NAME",
    "TIERS",
    "Hook",
    "Key",
    "Tier",
    "type_name",
]

Tier = Literal["install", "upgrade", "backup", "restore", "custom"]
Resource = Literal["memory", "cpus", "pids", "disk"]
OptionalRung = Literal["upgrade", "backup_restore", "custom", "lint"]  # install never is
TIERS: tuple[Tier, ...] = get_args(Tier)
Hook = Callable[..., Any]


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
