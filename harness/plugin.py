"""The pytest11 entry point of cc-ci: hooks only, heavy imports inside them.

Registering the plugin costs nothing: no Docker, no git, no browser is touched until a
recipe dir (a directory holding recipe_meta.py) is collected.
"""

from __future__ import annotations

import os

import pytest


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "e2e: deploys real stacks on the local swarm (slow)")


def pytest_report_header(config: pytest.Config) -> str:
    host = os.environ.get("DOCKER_HOST")
    return f"cc-ci platform: {'remote swarm at ' + host if host else 'local'}"
