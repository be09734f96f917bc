"""The native deployer: secrets, images, `docker stack deploy` — what `abra app deploy` does.

Secrets are generated before the deploy, one per external secret of the plan, honouring
the ``length``/``charset``/``generate=false`` modifiers of .env.sample; a secret that
must not be generated takes its value from ``CCCI_SECRET_<KEY>`` in cc-ci's environment.
Values never reach a log: only names do.
"""

from __future__ import annotations

import logging
import os
import secrets as random
import string
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from harness import engine
from harness.errors import DeployError, PlanError
from harness.plan import Plan, SecretPlan
from harness.platform import RUN_LABEL

__all__ = ["create_secrets", "ensure_images", "render_deploy_file", "stack_deploy"]

log = logging.getLogger(__name__)

CHARSETS = {
    "alnum": string.ascii_letters + string.digits,
    "hex": "0123456789abcdef",
    "alpha": string.ascii_letters,
    "digits": string.digits,
    "ascii": string.ascii_letters + string.digits + string.punctuation,
}


def secret_value(secret: SecretPlan, environ: Mapping[str, str] = os.environ) -> str:
    if not secret.generate:
        given = environ.get(f"CCCI_SECRET_{secret.key.upper()}")
        if given is None:
            raise PlanError(
                f"secret not generated: {secret.key} (generate=false; "
                f"give its value as CCCI_SECRET_{secret.key.upper()})"
            )
        return given
    alphabet = CHARSETS.get(secret.charset)
    if alphabet is None:
        raise PlanError(f"secret {secret.key}: unknown charset={secret.charset}")
    return "".join(random.choice(alphabet) for _ in range(secret.length))


def create_secrets(plan: Plan, run_id: str) -> dict[str, str]:
    """Create the plan's secrets that do not exist yet; return ``{key: value}`` of new ones."""
    client = engine.client()
    existing = {s.name for s in client.secrets.list(filters={"label": f"{RUN_LABEL}={run_id}"})}
    created = {}
    for secret in plan.secrets:
        if secret.name in existing:
            continue
        value = secret_value(secret)
        try:
            client.secrets.create(name=secret.name, data=value.encode(), labels={RUN_LABEL: run_id})
        except Exception as exc:  # docker.errors.APIError, translated at this seam
            raise DeployError(f"creating secret {secret.name}: {exc}") from exc
        created[secret.key] = value
        log.info("created secret %s", secret.name)
    return created


def ensure_images(images: Mapping[str, str], pull: bool) -> None:
    """Every image is present locally, or (``pull``) pulled now; a missing one is named.

    The local platform has no registry to pull from, and a pull attempt would send traffic
    off the machine: there a missing image is reported at once.
    """
    import docker

    client = engine.client()
    for service, image in images.items():
        try:
            client.images.get(image)
            continue
        except docker.errors.ImageNotFound:
            if not pull:
                raise DeployError(
                    f"image {image} (service {service}) is not present locally, and nothing is"
                    " pulled on the local platform: build it first (see demo/images)"
                ) from None
        log.info("pulling %s for service %s", image, service)
        try:
            client.images.pull(image)
        except docker.errors.DockerException as exc:
            raise DeployError(
                f"image {image} (service {service}) is not present locally and cannot be"
                f" pulled: {str(exc).splitlines()[0]}"
            ) from exc


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


def stack_deploy(stack: str, config: dict[str, Any], path: Path) -> None:
    """Write ``config`` (merged and interpolated) to ``path`` and deploy it as ``stack``."""
    path.write_text(render_deploy_file(config))
    argv = [
        "docker",
        "stack",
        "deploy",
        "--detach=true",
        "--prune",
        "--resolve-image",
        "never",
        "-c",
        str(path),
        stack,
    ]
    log.info("deploying %s: %s", stack, " ".join(argv))
    done = subprocess.run(argv, capture_output=True, text=True, timeout=300)
    if done.returncode != 0:
        lines = (done.stderr or done.stdout).strip().splitlines()
        raise DeployError(f"docker stack deploy {stack}: {lines[-1] if lines else 'failed'}")
