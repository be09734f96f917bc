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


LOCAL = "unix:///var/run/docker.sock"
# The API version spoken (Docker 20.10's; later engines speak it too). Fixed, not
# negotiated: negotiating is a call made before the session can be told to ignore
# REQUESTS_CA_BUNDLE, which would then override a remote engine's CA.
API_VERSION = "1.41"


@functools.cache
def _context() -> tuple[str, Any]:
    """The engine the docker CLI would talk to, and its TLS config: ``DOCKER_HOST``, else
    the Docker context in effect (``DOCKER_CONTEXT``, or the CLI's current one)."""
    if os.environ.get("DOCKER_HOST"):
        return os.environ["DOCKER_HOST"], None
    from docker.context import ContextAPI

    name = os.environ.get("DOCKER_CONTEXT")
    try:
        context = ContextAPI.get_context(name) if name else ContextAPI.get_current_context()
    except Exception as exc:  # a context the CLI's config names but cannot read
        raise PlatformError(f"Docker context {name or '(current)'}: {exc}") from exc
    if context is None:
        raise PlatformError(f"Docker context {name!r} does not exist (docker context ls)")
    return context.Host or LOCAL, context.TLSConfig


def where() -> str:
    """The engine's address (never its credentials)."""
    return _context()[0]


@functools.cache
def client() -> Any:
    """The Docker SDK client of this process: the engine of ``DOCKER_HOST`` (TLS from
    ``DOCKER_TLS_VERIFY``/``DOCKER_CERT_PATH``), else of the Docker context in effect, the
    one ``docker stack deploy`` talks to as well. ``ssh://`` goes through the ssh client."""
    import docker

    host, tls = _context()
    try:
        if os.environ.get("DOCKER_HOST") or host == LOCAL:
            engine = docker.from_env(
                version=API_VERSION, timeout=CALL_TIMEOUT, use_ssh_client=host.startswith("ssh://")
            )
        else:
            engine = docker.DockerClient(
                base_url=host,
                tls=tls,
                version=API_VERSION,
                timeout=CALL_TIMEOUT,
                use_ssh_client=host.startswith("ssh://"),
            )
        # The engine's own TLS settings decide, not REQUESTS_CA_BUNDLE & co. (requests lets
        # those override a session's CA), and no HTTP proxy of the environment applies;
        # nor does each call scan the environment for them.
        engine.api.trust_env = False
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
