"""The engine connection, and the one place Docker SDK failures become cc-ci errors.

Like httpx's transport mapping: every SDK call of the seam runs inside ``translated()``,
so a server error, a dropped connection or a timeout is an ``EngineError`` (infra: retried
once, never the recipe's fault) wherever it happens — converge, backup, hooks, janitor.
What the engine *refuses* (a 4xx: an invalid spec, a name in use) is raised as the class
the caller names, because only the caller knows whose fault that is.
"""

from __future__ import annotations

import contextlib
import functools
import os
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from harness.errors import CcciError, EngineError, PlatformError

__all__ = ["client", "ping", "timestamp", "translated"]

CALL_TIMEOUT = 60  # seconds one API call may take before it counts as an engine failure


def where() -> str:
    return os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")


@functools.cache
def client() -> Any:
    """The Docker SDK client of this process (``DOCKER_HOST`` / context from the env)."""
    import docker

    try:
        engine = docker.from_env(timeout=CALL_TIMEOUT)
        engine.ping()
    except Exception as exc:  # whatever the SDK or the transport raised: not reachable
        cause = exc.__context__ or exc
        raise PlatformError(
            f"Docker engine not reachable at {where()} ({type(cause).__name__}); "
            "start it with scripts/setup"
        ) from exc
    return engine


def ping() -> None:
    """Raise ``EngineError`` (``PlatformError`` if it never did) unless the engine answers."""
    with translated("ping"):
        client().ping()


@contextlib.contextmanager
def translated(what: str, refused: type[CcciError] = EngineError) -> Iterator[None]:
    """Run SDK calls; their failures leave as cc-ci errors saying ``what`` was being done."""
    import docker
    import requests

    try:
        yield
    except CcciError:
        raise
    except docker.errors.APIError as exc:
        detail = exc.explanation or str(exc)
        if exc.is_client_error():
            raise refused(f"{what}: {detail}") from exc
        raise EngineError(f"{what}: the engine failed: {detail}") from exc
    except (docker.errors.DockerException, requests.RequestException, OSError) as exc:
        raise EngineError(f"{what}: {type(exc).__name__}: {exc}") from exc


def timestamp(text: str) -> datetime:
    """A Docker timestamp (RFC 3339 with nanoseconds, ``Z`` or an offset) as a UTC datetime."""
    head, _, frac = text.rstrip("Z").split("+")[0].partition(".")
    return datetime.fromisoformat(f"{head}.{(frac + '000000')[:6]}+00:00")
