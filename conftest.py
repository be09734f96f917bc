"""This repo's own configuration for ``pytest recipes/...``.

Every item under ``recipes/`` deploys the recipe on the swarm, so it carries this
project's ``e2e`` marker (registered in pyproject.toml, never by the plugin): here
``pytest -m "not e2e"`` runs the unit tests alone. The recipe dirs are tested against the
embedded default — the demo catalogue ``scripts/setup`` builds — unless ``--catalogue``
says otherwise.
"""

from __future__ import annotations

from pathlib import Path

import pytest

RECIPES = Path(__file__).resolve().parent / "recipes"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if RECIPES in item.path.parents:
            item.add_marker(pytest.mark.e2e)
