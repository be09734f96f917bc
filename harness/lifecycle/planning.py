"""The deploy plan of an app, whole: its compose files resolved (``recipe.plan``), merged
by ``docker stack config`` (the swarm seam: the loader ``docker stack deploy`` uses),
and planned from both. The one place the CLI runs for a plan: the run's apps and
``cc-ci plan`` alike."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from pathlib import Path

from harness.recipe.appenv import EnvFile
from harness.recipe.plan import Plan, compose_files, make_plan, resolve
from harness.swarm import stack_config

__all__ = ["plan_app"]


def plan_app(
    recipe: str,
    checkout: Path,
    env: Mapping[str, str],
    sample: EnvFile,
    *,
    publishes_ports: bool = True,
    allowed: Collection[str] = (),
) -> Plan:
    """Plan the deploy of ``checkout`` with ``env``; every defect raises one PlanError.
    ``publishes_ports``: whether the platform publishes the recipe's own ports (for the
    deploy policy's low-port rule); ``allowed``: the policy rules the recipe dir allows
    (an ``env_file`` from outside the checkout is read only where ``outside-file`` is)."""
    resolved = resolve(checkout, compose_files(env), env, allowed)
    config = stack_config(resolved.texts)
    return make_plan(
        recipe, checkout, env, sample, resolved, config, publishes_ports=publishes_ports
    )
