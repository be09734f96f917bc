"""The native deployer's own part of `abra app deploy`: secrets and the deploy file.

Secrets are generated before the deploy, one per external secret of the plan, honouring
the ``length``/``charset``/``generate=false`` modifiers of .env.sample; a secret that
must not be generated takes its value from ``CCCI_SECRET_<RECIPE>_<KEY>`` in cc-ci's
environment (the variable names the recipe, so one recipe never receives a value meant for
another). Values never reach a log: only names do, and each value is registered with the
redactor as it is made, for the logs the app itself writes.
"""

from __future__ import annotations

import logging
import os
import secrets as random
import string
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import yaml

from harness import redact
from harness.errors import PlanError
from harness.lifecycle.platform import RUN_LABEL, run_labels
from harness.recipe.plan import Plan, SecretPlan

if TYPE_CHECKING:
    from harness.lifecycle.context import Swarm

__all__ = ["create_secrets", "render_deploy_file", "secret_value", "secret_variable"]

log = logging.getLogger(__name__)

CHARSETS = {
    "alnum": string.ascii_letters + string.digits,
    "hex": "0123456789abcdef",
    "alpha": string.ascii_letters,
    "digits": string.digits,
    "ascii": string.ascii_letters + string.digits + string.punctuation,
}


def secret_variable(recipe: str, key: str) -> str:
    """The variable that gives the value of a ``generate=false`` secret: ``recipe`` is the
    recipe's identity (``kinto``, ``db_password`` -> ``CCCI_SECRET_KINTO_DB_PASSWORD``)."""
    return f"{redact.SECRET_ENV_PREFIX}{recipe}_{key}".upper().replace("-", "_")


def secret_value(secret: SecretPlan, recipe: str, environ: Mapping[str, str] = os.environ) -> str:
    """A new value for ``secret`` of ``recipe``: generated, or the operator's."""
    if not secret.generate:
        variable = secret_variable(recipe, secret.key)
        given = environ.get(variable)
        if given is None:
            unscoped = f"{redact.SECRET_ENV_PREFIX}{secret.key.upper()}"
            ignored = (
                f"; {unscoped} is set but not taken: it names no recipe"
                if unscoped in environ
                else ""
            )
            raise PlanError(
                f"secret not generated: {secret.key} (generate=false; "
                f"give its value as {variable}{ignored})"
            )
        return given
    alphabet = CHARSETS.get(secret.charset)
    if alphabet is None:
        raise PlanError(f"secret {secret.key}: unknown charset={secret.charset}")
    return "".join(random.choice(alphabet) for _ in range(secret.length))


def create_secrets(swarm: Swarm, plan: Plan, run_id: str, recipe: str) -> dict[str, str]:
    """Create the plan's secrets that do not exist yet; return ``{key: value}`` of new ones.
    ``recipe`` names the recipe as the operator does (its recipe dir, the repo a job is
    for), never as the recipe under test calls itself: a pull request that writes
    ``TYPE=kinto`` in its .env.sample gets no ``CCCI_SECRET_KINTO_*``."""
    existing = {r.name for r in swarm.labelled(f"{RUN_LABEL}={run_id}", ("secret",))}
    created = {}
    for secret in plan.secrets:
        if secret.name in existing:
            continue
        value = secret_value(secret, recipe)
        if not redact.register(value):
            log.warning(
                "secret %s is shorter than %d characters: not masked in cc-ci's output",
                secret.name,
                redact.MIN_LENGTH,
            )
        swarm.create_secret(secret.name, value, run_labels(run_id))
        created[secret.key] = value
        log.info("created secret %s", secret.name)
    return created


def _escape_dollars(value: Any) -> Any:
    """Re-escape ``$``: the merged config is interpolated already, and deploy does it again."""
    if isinstance(value, str):
        return value.replace("$", "$$")
    if isinstance(value, dict):
        return {k: _escape_dollars(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_escape_dollars(v) for v in value]
    return value


class _QuotingDumper(yaml.SafeDumper):
    """Quotes every string: Docker's YAML 1.2 parser reads ``2905e9`` (a run id, a sha8) as a
    number, where PyYAML, following YAML 1.1, writes it bare."""


_QuotingDumper.add_representer(
    str, lambda dumper, value: dumper.represent_scalar("tag:yaml.org,2002:str", value, style='"')
)


def render_deploy_file(config: dict[str, Any]) -> str:
    """The YAML `docker stack deploy` reads back as ``config``, string for string."""
    return yaml.dump(_escape_dollars(config), Dumper=_QuotingDumper, sort_keys=False)
