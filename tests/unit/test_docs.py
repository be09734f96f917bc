"""docs/recipe-customization.md carries exactly the key table the registry renders."""

from __future__ import annotations

import pytest

from harness.recipe import meta_keys
from harness.recipe.docs import KEY_TABLE_DOC, with_key_table


def test_key_table_in_docs_matches_registry() -> None:
    text = KEY_TABLE_DOC.read_text()
    assert with_key_table(text) == text, "docs are stale: run scripts/update-docs"


def test_every_key_has_a_row() -> None:
    text = KEY_TABLE_DOC.read_text()
    for key in meta_keys.KEYS:
        assert f"| `{key.name}` |" in text


def test_sync_check_can_fail() -> None:
    text = KEY_TABLE_DOC.read_text().replace("| `HEALTH_PATH` |", "| `HEALTH_PAHT` |")
    assert with_key_table(text) != text
    with pytest.raises(ValueError, match="keys:begin"):
        with_key_table("# no section\n")
