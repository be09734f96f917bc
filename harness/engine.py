"""The one seam to the Docker engine: the SDK client, with its errors translated."""

from __future__ import annotations

import functools
from typing import Any

from harness.errors import PlatformError


@functools.cache
def client() -> Any:
    """The Docker SDK client of this process (``DOCKER_HOST`` / context from the env)."""
    import docker

    try:
        engine = docker.from_env()
        engine.ping()
    except docker.errors.DockerException as exc:
        raise PlatformError(f"Docker engine not reachable: {exc}") from exc
    return engine
