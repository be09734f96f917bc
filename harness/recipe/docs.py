"""The generated part of docs/recipe-customization.md: the table of recipe_meta.py keys."""

from __future__ import annotations

import re
from pathlib import Path

from harness.recipe.meta import render_key_table

KEY_TABLE_DOC = Path(__file__).resolve().parents[2] / "docs" / "recipe-customization.md"
_SECTION = re.compile(r"(<!-- keys:begin[^\n]*-->\n).*?(<!-- keys:end -->)", re.DOTALL)


def with_key_table(text: str) -> str:
    """``text`` with its keys section replaced by the table rendered from the registry."""
    if not _SECTION.search(text):
        raise ValueError("no <!-- keys:begin --> ... <!-- keys:end --> section")
    return _SECTION.sub(lambda m: m[1] + render_key_table() + m[2], text)
