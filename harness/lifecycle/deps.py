"""DEPS: the recipes a recipe needs running before its own app (an identity provider).

Each dependency is a run of its own — its own id, lease, resources and teardown — nested in
the recipe's run: two runs never share or clobber a dependency, and the recipe's run tears
its dependencies down when it closes. A dependency is its recipe dir beside the recipe's
(``recipes/<dep>``), deployed at its default branch from the same catalogue, converged and
probed like any app; then its ``ops.py`` ``provide(ctx)`` makes what the recipe needs (a
client, a test user) and returns the entry: ``{issuer, client_id, …}``. ``provide`` returns
the entries (``{recipe: entry}``, also kept as ``deps.json`` in the run dir) and the
networks of the dependencies' web services as a value, ``Deps``, which the tiers give the
run: ``ctx.deps``, the ``deps`` fixture and ``EXTRA_ENV(ctx)`` read the entries from it,
and the recipe's app joins the networks. cc-ci adds ``url`` (the dependency from the host
and the browser) and ``internal_url`` (from the recipe's app, on the dependency's network).
A dependency's own DEPS are not provided. A dependency that fails is an infra failure of
the recipe's run, naming the dependency.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from harness.errors import CcciError, InfraError, MetaError
from harness.lifecycle.app import App
from harness.lifecycle.context import Deps
from harness.lifecycle.hooks import call_named
from harness.lifecycle.run import Run
from harness.recipe import customization, manifest
from harness.recipe.meta import PROVIDE_HOOK
from harness.reports.results import write_json

__all__ = ["DependencyError", "provide"]

log = logging.getLogger(__name__)

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]*")


class DependencyError(InfraError):
    """A dependency of the recipe could not be provided; names which and why."""


def provide(run: Run) -> tuple[Deps, list[Run]]:
    """Provide every dependency of ``run``: what they give, and their runs (which the
    caller closes). Nothing half-provided stays when one fails: the runs made so far are
    closed, and the infra retry provides them all again."""
    runs: list[Run] = []
    try:
        entries = {name: _provide_one(run, name, runs) for name in run.meta.DEPS}
    except BaseException:
        for dependency in reversed(runs):
            try:
                dependency.close()
            except CcciError as exc:
                log.warning("closing dependency run %s: %s", dependency.id, exc)
        raise
    write_json(run.dir / "deps.json", entries)
    found = [n for dep in runs if dep.live_app for n in _networks(run, dep.live_app)]
    return Deps(MappingProxyType(entries), tuple(found)), runs


def _provide_one(run: Run, name: str, runs: list[Run]) -> dict[str, Any]:
    if not _NAME.fullmatch(name):  # a recipe dir beside the recipe's, not a path
        raise DependencyError(f"dependency {name!r}: not the name of a recipe dir")
    with run.tracer.span("dependency", recipe=name) as span:
        try:
            dep = Run(
                customization.read(run.customization.path.parent / name),
                catalogue=run.catalogue,
                ref=None,
                runs_root=run.dir / "deps",
                deadline=run.deadline.left(),
                platform=run.platform,
                tiers=("install",),
                pull=run.pull,
                swarm=run.swarm,
            )
        except CcciError as exc:
            raise DependencyError(f"dependency {name}: {exc}") from exc
        runs.append(dep)
        log.info("%s", manifest.render(dep.name, dep.manifest))
        span.context["run_id"] = dep.id
        try:
            return _start(dep)
        except CcciError as exc:
            raise DependencyError(f"dependency {name}: {type(exc).__name__}: {exc}") from exc


def _start(dep: Run) -> dict[str, Any]:
    app = dep.new_app("install", dep.fetch().sha)
    app.start("install", release=app.release_here())
    app.await_ready("install")
    dep.live_app = app
    assert app.plan is not None
    entry: dict[str, Any] = {"url": app.base_url}
    if app.plan.web is not None:
        service, port = app.plan.web
        entry["internal_url"] = f"http://{app.stack.service_name(service)}:{port}"
    hook = dep.customization.ops.get(PROVIDE_HOOK)
    if hook is not None:
        given = call_named(PROVIDE_HOOK, hook, app.ctx("provide"), seconds=dep.deadline.left())
        if not isinstance(given, Mapping):
            raise MetaError(f"provide returned {type(given).__name__}, not a dict of the entry")
        entry.update(given)
    return entry


def _networks(run: Run, app: App) -> list[str]:
    """The networks of a dependency's web service, which the recipe's app joins (on a
    remote swarm, not the shared proxy network: the app is on it already)."""
    assert app.plan is not None
    found = []
    service = app.plan.web[0] if app.plan.web else next(iter(app.plan.images))
    joined = app.plan.config["services"][service].get("networks") or ["default"]
    declared = app.plan.config.get("networks") or {}
    for key in joined:
        spec = declared.get(key) or {}
        if spec.get("external") and run.platform.name != "local":
            continue
        own = spec.get("name") if not spec.get("external") else None
        found.append(str(own or f"{app.stack.name}_{key}"))
    return found
