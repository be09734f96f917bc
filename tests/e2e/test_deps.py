"""DEPS for real: a dependency deployed as a run of its own before the recipe's app, its
``provide(ctx)`` entry in ``ctx.deps``, ``EXTRA_ENV`` and the ``deps`` fixture, the app
reaching it on its network; torn down with the run; a missing one an infra failure."""

from __future__ import annotations

import textwrap

import pytest

from harness.lifecycle import teardown
from tests.conftest import WEB_APP, Workspace

pytestmark = pytest.mark.e2e

PROVIDE = '''
def provide(ctx):
    """A client and a test user, as an identity provider's hook would make them."""
    page = ctx.exec("app", ["cat", "/www/index.html"]).stdout.strip()
    return {"client_id": "cc-ci", "username": "alice", "page": page}
'''

CONSUMER = """
DEPS = ("provider",)
TIERS = ("install", "custom")


def EXTRA_ENV(ctx):
    return {"PROVIDER_CLIENT": ctx.deps["provider"]["client_id"]}


def READY_PROBE(ctx):
    provider = ctx.deps["provider"]
    assert ctx.env["PROVIDER_CLIENT"] == "cc-ci", ctx.env
    # The app reaches the dependency on its network, by its service name.
    seen = ctx.exec("app", ["wget", "-qO-", provider["internal_url"] + "/"]).stdout
    assert seen.strip() == "ok", seen
    return True
"""

CUSTOM_TEST = """
import httpx


def test_the_dependency_is_there(deps):
    provider = deps["provider"]
    assert provider["username"] == "alice"
    assert provider["page"] == "ok"
    assert httpx.get(provider["url"] + "/", timeout=10).text.strip() == "ok"
"""


def test_a_dependency_is_provided_first_and_torn_down_with_the_run(
    workspace: Workspace,
) -> None:
    workspace.recipe("provider", [("1.0.0+1", WEB_APP)])
    (workspace.root / "recipes" / "provider" / "ops.py").write_text(PROVIDE)
    consumer = workspace.recipe("consumer", [("1.0.0+1", WEB_APP)], meta=CONSUMER)
    (consumer / "functional").mkdir()
    (consumer / "functional" / "test_deps.py").write_text(textwrap.dedent(CUSTOM_TEST))
    session = workspace.pytest("recipes/consumer")
    assert session.tier_outcomes == {
        "recipes/consumer::install": "PASSED",
        "recipes/consumer/functional/test_deps.py::test_the_dependency_is_there": "PASSED",
    }, session.output
    [run_dir] = [p for p in workspace.runs_dir.glob("consumer-*") if p.is_dir()]
    [dep_dir] = list((run_dir / "deps").glob("provider-*"))
    assert (run_dir / "deps.json").is_file()
    trace = (run_dir / "trace.json").read_text()
    assert '"name": "dependency"' in trace
    session.assert_nothing_left()
    dep_id = dep_dir.name.rsplit("-", 1)[1]
    assert teardown.leftovers(dep_id) == {}


def test_a_dependency_that_cannot_be_provided_is_an_infra_failure_naming_it(
    workspace: Workspace,
) -> None:
    workspace.recipe("lonely", [("1.0.0+1", WEB_APP)], meta='DEPS = ("nowhere",)\n')
    session = workspace.pytest("recipes/lonely", "--tiers", "install")
    [doc] = session.results()
    install = doc["tiers"]["install"]
    assert install["failure_class"] == "infra", install
    assert install["reason"].startswith("DependencyError: dependency nowhere: "), install
    session.assert_nothing_left()
