"""The pytest11 entry point of cc-ci: hooks only, heavy imports inside them.

Registering the plugin costs nothing: no Docker, no git, no browser is touched until a
recipe dir (a directory holding recipe_meta.py) is collected.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from harness import settings


def pytest_addoption(parser: pytest.Parser) -> None:
    settings.add_options(parser)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "e2e: deploys real stacks on the local swarm (slow)")
    config.stash[settings.SETTINGS_KEY] = settings.resolve(config)


def pytest_report_header(config: pytest.Config) -> str:
    host = os.environ.get("DOCKER_HOST")
    chosen = config.stash[settings.SETTINGS_KEY]
    return (
        f"cc-ci platform: {'remote swarm at ' + host if host else 'local'}; "
        f"catalogue: {chosen.catalogue}"
    )


@pytest.hookimpl(tryfirst=True)
def pytest_collect_directory(path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    if not (path / "recipe_meta.py").is_file():
        return None
    from harness.collect import RecipeDir

    return RecipeDir.from_parent(parent, path=path)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    from harness.collect import TierItem  # cheap: collection already imported it, if used

    tiers = config.stash[settings.SETTINGS_KEY].tiers
    deselected = [i for i in items if isinstance(i, TierItem) and i.tier not in tiers]
    if deselected:
        config.hook.pytest_deselected(items=deselected)
        items[:] = [i for i in items if i not in deselected]
