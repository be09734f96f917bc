"""The customization manifest: how this recipe dir changes what the run does.

``{meta_non_default, hooks, overlays, custom_tests, env_overrides}``, built from the very
objects the run uses (the loaded RecipeMeta, the settings), so it cannot disagree with
what executes. Printed as one block at the start of a run and stored in results.json.
Values whose key name looks secret are redacted, recursively; names stay visible.
"""

from __future__ import annotations

import inspect
import os
import re
from collections.abc import Mapping
from typing import Any

from harness.recipe.customization import Customization
from harness.recipe.meta_check import defined_at

__all__ = ["build", "redact", "render"]

_SECRET_NAME = re.compile(r"SECRET|PASSWORD|TOKEN|CREDENTIAL", re.IGNORECASE)
REDACTED = "***"


def _secret_shaped(name: str) -> bool:
    # KEY only as a whole word segment: API_KEY and KEY are secret, KEYCLOAK_URL is not.
    segments = re.split(r"[^A-Za-z0-9]+", name.upper())
    return bool(_SECRET_NAME.search(name)) or "KEY" in segments


def redact(value: Any, name: str = "") -> Any:
    """``value`` made JSON-clean, with secret-shaped keys' values replaced, recursively."""
    if name and _secret_shaped(name) and not isinstance(value, Mapping):
        return REDACTED
    if isinstance(value, Mapping):
        return {str(k): redact(v, str(k)) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [redact(v) for v in value]
    if callable(value):
        at = defined_at(value)
        where = f" at {at}" if at else ""
        return f"hook {getattr(value, '__name__', 'callable')}{inspect.signature(value)}{where}"
    return value


def build(recipe: Customization, environ: Mapping[str, str] = os.environ) -> dict[str, Any]:
    """The manifest of a recipe dir as read (``customization.read``), and cc-ci's options
    from the environment."""
    customized = recipe.meta.non_default()
    hooks = sorted(name for name, value in customized.items() if callable(value))
    hooks += [f"ops.py:{name}" for name in recipe.ops]
    if recipe.install_steps is not None:
        hooks.append(recipe.install_steps.name)
    built: dict[str, Any] = redact(
        {
            "meta_non_default": customized,
            "hooks": hooks,
            "overlays": [recipe.overlay.name] if recipe.overlay is not None else [],
            "custom_tests": [str(f.relative_to(recipe.path)) for f in recipe.custom_tests],
            "env_overrides": {k: v for k, v in sorted(environ.items()) if k.startswith("CCCI_")},
        }
    )
    return built


def render(recipe: str, manifest: Mapping[str, Any]) -> str:
    lines = [f"cc-ci customization of {recipe}:"]
    for section, value in manifest.items():
        if not value:
            lines.append(f"  {section}: (none)")
        elif isinstance(value, Mapping):
            lines.append(f"  {section}:")
            lines += [f"    {k} = {v!r}" for k, v in value.items()]
        else:
            lines.append(f"  {section}: {', '.join(map(str, value))}")
    return "\n".join(lines)
