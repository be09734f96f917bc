"""The one seam to the Docker engine: the SDK client, with its errors translated."""

from __future__ import annotations

import functools
import os
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
        where = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
        cause = exc.__context__ or exc
        raise PlatformError(
            f"Docker engine not reachable at {where} ({type(cause).__name__}); "
            "start it with scripts/setup"
        ) from exc
    return engine
