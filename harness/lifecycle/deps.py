"""DEPS: the recipes a recipe needs running before its own app (an identity provider).

Each dependency is a run of its own — its own id, lease, resources and teardown — nested in
the recipe's run: two runs never share or clobber a dependency, and the recipe's run tears
its dependencies down when it closes. A dependency is its recipe dir beside the recipe's
(``recipes/<dep>``), deployed at its default branch from the same catalogue, converged and
probed like any app; then its ``ops.py`` ``provide(ctx)`` makes what the recipe needs (a
client, a test user) and returns the entry: ``{issuer, client_id, …}``. The entries are
written to the file named by ``CCCI_DEPS_FILE`` (``{recipe: entry}``), for ``ctx.deps``,
the ``deps`` fixture and ``EXTRA_ENV(ctx)``. cc-ci adds ``url`` (the dependency from the
host and the browser) and ``internal_url`` (from the recipe's app, on the dependency's
network, which the app's services join). A dependency that fails is an infra failure of
the recipe's run, naming the dependency.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from harness.errors import CcciError, InfraError, MetaError
from harness.lifecycle.hooks import DEPS_FILE_ENV, call_named
from harness.recipe import customization
from harness.recipe.meta import PROVIDE_HOOK
from harness.reports.results import write_json

if TYPE_CHECKING:
    from harness.lifecycle.run import Run

__all__ = ["DependencyError", "networks", "provide"]

log = logging.getLogger(__name__)

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]*")


class DependencyError(InfraError):
    """A dependency of the recipe could not be provided; names which and why."""


def provide(run: Run) -> None:
    """Provide every dependency of ``run`` (once), and point CCCI_DEPS_FILE at them."""
    try:
        entries = _provide_all(run)
    except BaseException:
        # Nothing half-provided stays: the infra retry provides them all again.
        for dependency in reversed(run.dependencies):
            try:
                dependency.close()
            except CcciError as exc:
                log.warning("closing dependency run %s: %s", dependency.id, exc)
        run.dependencies.clear()
        raise
    path = run.dir / "deps.json"
    write_json(path, entries)
    os.environ[DEPS_FILE_ENV] = str(path)


def _provide_all(run: Run) -> dict[str, Any]:
    from harness.lifecycle.run import Run

    entries: dict[str, Any] = {}
    for name in run.meta.DEPS:
        if not _NAME.fullmatch(name):  # a recipe dir beside the recipe's, not a path
            raise DependencyError(f"dependency {name!r}: not the name of a recipe dir")
        with run.tracer.span("dependency", recipe=name) as span:
            try:
                dep = Run(
                    customization.read(run.recipe.path.parent / name),
                    catalogue=run.catalogue,
                    ref=None,
                    runs_root=run.dir / "deps",
                    deadline=run.deadline.left(),
                    platform=run.platform,
                    tiers=("install",),
                    pull=run.pull,
                    nested=True,
                )
            except CcciError as exc:
                raise DependencyError(f"dependency {name}: {exc}") from exc
            run.dependencies.append(dep)
            span.context["run_id"] = dep.id
            try:
                entries[name] = _start(dep)
            except CcciError as exc:
                raise DependencyError(f"dependency {name}: {type(exc).__name__}: {exc}") from exc
    return entries


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
    hook = dep.recipe.ops.get(PROVIDE_HOOK)
    if hook is not None:
        given = call_named(PROVIDE_HOOK, hook, app.ctx("provide"), seconds=dep.deadline.left())
        if not isinstance(given, Mapping):
            raise MetaError(f"provide returned {type(given).__name__}, not a dict of the entry")
        entry.update(given)
    return entry


def networks(run: Run) -> list[str]:
    """The networks of ``run``'s dependencies' web services, which the recipe's app joins
    (on a remote swarm, not the shared proxy network: the app is on it already)."""
    found = []
    for dep in run.dependencies:
        app = dep.live_app
        if app is None or app.plan is None:
            continue
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
