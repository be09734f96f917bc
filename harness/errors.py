"""The one error tree of cc-ci.

Every failure the harness reports is one of these; foreign errors (Docker SDK, httpx,
subprocess, YAML) are translated where they enter, with ``raise X(...) from exc``, so a
message reads as one line of cause followed by the evidence::

    CcciError                       base: catch this to catch everything cc-ci raises
    ├── RecipeError                 the recipe (or its recipe dir) is broken — kind "recipe"
    │   ├── MetaError               recipe_meta.py / ops.py / a hook: unknown key, bad type,
    │   │                           bad signature, exception while executing the file
    │   ├── PlanError               compose/env defects found before deploying: bad YAML,
    │   │                           undefined secret, missing variable, refused by policy
    │   ├── ConvergeError           services did not converge: crash loop, rejected task,
    │   │                           rollback, timeout (carries the last log lines)
    │   ├── DeployError             the engine refused what the recipe asks: `docker stack
    │   │                           deploy` rejected its config, an image is missing
    │   ├── StampError              the deployed labels do not name what we deployed
    │   └── ProbeError              a probe, hook command or check against the live app
    │                               failed
    └── InfraError                  the platform failed, not the recipe — kind "infra"
        ├── PlatformError           engine unreachable, swarm inactive, base image missing
        ├── EngineError             a call to the engine failed: a server error, a lost
        │                           connection, a timeout (translated in harness.swarm)
        ├── CatalogueError          recipe repo cannot be fetched, ref or tag not found
        └── TeardownError           resources of the run remain after teardown (a leak)

``kind`` tells results which failure class a rung failed with: an ``infra`` failure is
retried once and never counts against the recipe. Docker's own errors (SDK, connection,
CLI, timeouts) enter only through ``harness.swarm``, which maps them into this tree.
"""

from __future__ import annotations

from typing import ClassVar, Literal

__all__ = [
    "CatalogueError",
    "CcciError",
    "ConvergeError",
    "DeployError",
    "EngineError",
    "InfraError",
    "MetaError",
    "PlanError",
    "PlatformError",
    "ProbeError",
    "RecipeError",
    "StampError",
    "TeardownError",
    "last_line",
]

FailureKind = Literal["recipe", "infra"]


class CcciError(Exception):
    """Base of every error cc-ci raises on purpose."""

    kind: ClassVar[FailureKind] = "infra"


class RecipeError(CcciError):
    """The recipe under test, or its recipe dir, is at fault."""

    kind: ClassVar[FailureKind] = "recipe"


class MetaError(RecipeError):
    """A recipe_meta.py, ops.py or hook is invalid; the message names file and key."""


class PlanError(RecipeError):
    """The recipe cannot be planned: compose, env or secrets are inconsistent."""


class ConvergeError(RecipeError):
    """The deployed services did not reach their desired state."""


class DeployError(RecipeError):
    """The engine refused what the recipe asks for (its stack config, an image)."""


class StampError(RecipeError):
    """The deployed version labels do not name the commit or tag we deployed."""


class ProbeError(RecipeError):
    """A probe, hook command or check against the running app failed."""


class InfraError(CcciError):
    """The platform or the harness failed; the recipe is not to blame."""

    kind: ClassVar[FailureKind] = "infra"


class PlatformError(InfraError):
    """The Docker engine or swarm is not usable."""


class CatalogueError(InfraError):
    """A recipe repo could not be fetched or a ref could not be resolved."""


class EngineError(InfraError):
    """A call to the Docker engine failed: a server error, a lost connection, a timeout."""


class TeardownError(InfraError):
    """Resources labelled with the run id remain after teardown."""


def last_line(text: str | None, default: str = "") -> str:
    """The last non-blank line of a command's output: the one that usually says why."""
    lines = (text or "").strip().splitlines()
    return lines[-1].strip() if lines else default
