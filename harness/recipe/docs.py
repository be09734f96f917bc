"""The generated part of docs/recipe-customization.md: the table of recipe_meta.py keys,
rendered from the registry (``meta_keys.KEYS``) by ``scripts/update-docs``."""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

from harness.recipe.meta_keys import KEYS, type_name

__all__ = ["KEY_TABLE_DOC", "render_key_table", "with_key_table"]

KEY_TABLE_DOC = Path(__file__).resolve().parents[2] / "docs" / "recipe-customization.md"
_SECTION = re.compile(r"(<!-- keys:begin[^\n]*-->\n).*?(<!-- keys:end -->)", re.DOTALL)


def with_key_table(text: str) -> str:
    """``text`` with its keys section replaced by the table rendered from the registry."""
    if not _SECTION.search(text):
        raise ValueError("no <!-- keys:begin --> ... <!-- keys:end --> section")
    return _SECTION.sub(lambda m: m[1] + render_key_table() + m[2], text)


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
