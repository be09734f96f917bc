"""Fixtures for a recipe's custom tests (recipes/<name>/functional/, playwright/).

``app`` is the live app as a ``HookCtx`` (domain, base URL, HTTP with the Host header, exec
and logs per service); ``meta`` the loaded RecipeMeta; ``deps`` the provisioned
dependencies; ``op_state`` what each tier did (the run's ``op_state.json``); ``page`` a playwright
page of the system chromium, already on the app: one browser per process (shared with the
install tier's screenshot), a fresh context and page per test.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from harness.lifecycle.run import Run
    from harness.recipe.meta import RecipeMeta


@pytest.fixture
def _ccci_run(request: pytest.FixtureRequest) -> Any:
    from harness.collect import RecipeDir

    recipe_dir = request.node.getparent(RecipeDir)
    if recipe_dir is None or recipe_dir.run is None:
        pytest.skip("cc-ci fixtures serve the custom tests of a recipe dir")
    return recipe_dir.run


@pytest.fixture
def meta(_ccci_run: Run) -> RecipeMeta:
    return _ccci_run.meta


@pytest.fixture
def app(_ccci_run: Any) -> Any:
    live = _ccci_run.live_app
    if live is None:
        tiers = _ccci_run.results.tiers
        ran = ", ".join(f"{t} {r.status}" for t, r in tiers.items() if t != "custom")
        pytest.skip(f"no live app to test (tiers: {ran or 'none ran'})")
    if not _ccci_run.custom_started:  # ops.py's pre_custom, once, before the first test
        _ccci_run.custom_started = True
        live.call_pre("custom")
    return live.ctx("custom")


@pytest.fixture
def deps(_ccci_run: Any) -> Any:
    return _ccci_run.context.deps.entries


@pytest.fixture
def op_state(_ccci_run: Any) -> Any:
    path: Path = _ccci_run.op_state_file
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        pytest.skip(f"{path} does not exist")
    except (OSError, ValueError) as exc:
        pytest.skip(f"{path} is not readable JSON: {exc}")


@pytest.fixture
def page(app: Any) -> Iterator[Any]:
    """A fresh context and page of the shared chromium, on the app's page; it reaches
    only the app's origin and its DEPS' (what else the page asks for is blocked and
    listed in the run dir's browser-blocked.txt)."""
    from harness.lifecycle.browser import app_context

    context = app_context(app)
    page = context.new_page()
    page.goto("/")
    yield page
    context.close()
