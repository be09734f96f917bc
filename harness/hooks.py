"""What a hook receives: ``HookCtx``, the one argument of every recipe hook.

Hooks in recipe_meta.py (``READY_PROBE(ctx)``, ``SCREENSHOT(page, ctx)``, …) and in ops.py
(``pre_install(ctx)``, …) all receive the same frozen context: who the app is, where it
answers, what the run knows, and helpers to exec in a service, read its logs and speak
HTTP to it with the right ``Host`` header.
"""

from __future__ import annotations

import json
import os
import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

import httpx

from harness import engine
from harness.errors import InfraError, ProbeError

__all__ = ["ExecResult", "HookCtx", "load_deps", "raised", "verdict"]

DEPS_FILE_ENV = "CCCI_DEPS_FILE"
EXEC_WAIT = 60.0


@dataclass(frozen=True)
class ExecResult:
    """The outcome of a command run inside a service's container."""

    exit_code: int
    stdout: str
    stderr: str


@dataclass(frozen=True)
class HookCtx:
    """The live app as a hook sees it."""

    recipe: str
    app: str  # the stack name
    domain: str
    base_url: str  # where to connect; requests carry ``Host: domain``
    op: str  # the tier running the hook
    meta: Any  # the loaded RecipeMeta
    run_dir: Path
    env: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    deps: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """An HTTP request to the app: ``base_url + path`` with ``Host: <domain>``."""
        headers = {"Host": self.domain, **kwargs.pop("headers", {})}
        kwargs.setdefault("timeout", 10.0)
        with httpx.Client(base_url=self.base_url, headers=headers) as http:
            return http.request(method, path, **kwargs)

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("GET", path, **kwargs)

    def exec(self, service: str, argv: Sequence[str], *, check: bool = True) -> ExecResult:
        """Run ``argv`` in the running container of ``service``; raise on failure if ``check``."""
        container = self._container(service)
        code, (out, err) = container.exec_run(list(argv), demux=True)
        result = ExecResult(
            code, (out or b"").decode(errors="replace"), (err or b"").decode(errors="replace")
        )
        if check and code != 0:
            last = (result.stderr or result.stdout).strip().splitlines()[-1:] or [""]
            raise ProbeError(f"{self.app}_{service}: {list(argv)} exited {code}: {last[0]}")
        return result

    def logs(self, service: str, tail: int = 50) -> str:
        """The last ``tail`` log lines of ``service`` (all its tasks), as text."""
        svc = engine.client().services.get(f"{self.app}_{service}")
        chunks = svc.logs(stdout=True, stderr=True, tail=tail)
        return b"".join(chunks).decode(errors="replace")

    def _container(self, service: str, wait: float = EXEC_WAIT) -> Any:
        """The service's running container, waited for: a hook such as pre_install runs
        right after the deploy, before the service has converged."""
        # Local platform only: the task containers of a one-node swarm live on this engine.
        name = f"{self.app}_{service}"
        deadline = time.monotonic() + wait
        while True:
            running = engine.client().containers.list(
                filters={"label": f"com.docker.swarm.service.name={name}", "status": "running"}
            )
            if running:
                return running[0]
            if time.monotonic() >= deadline:
                raise ProbeError(f"{name}: no running container to exec in after {wait:.0f}s")
            time.sleep(0.2)


def load_deps(environ: Mapping[str, str] = os.environ) -> Mapping[str, Any]:
    """The dependency entries ``{recipe: entry}`` from the file named by CCCI_DEPS_FILE."""
    path = environ.get(DEPS_FILE_ENV)
    if not path:
        return MappingProxyType({})
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise InfraError(f"{DEPS_FILE_ENV}={path}: unreadable: {exc}") from exc
    if not isinstance(data, dict):
        raise InfraError(f"{DEPS_FILE_ENV}={path}: expected a JSON object of recipes")
    return MappingProxyType(data)


def raised(hook: Callable[..., Any], exc: BaseException) -> str:
    """What a recipe hook raised, where: ``<file>:<line>: <Type>: <message>`` — the line is
    the last one of the hook's own file in the traceback (the ``def`` line when none)."""
    where = hook.__code__.co_filename
    line = next(
        (
            f.lineno
            for f in reversed(traceback.extract_tb(exc.__traceback__))
            if f.filename == where
        ),
        hook.__code__.co_firstlineno,
    )
    return f"{where}:{line}: {type(exc).__name__}: {exc}"


def verdict(hook: Callable[..., Any], *args: Any) -> tuple[bool, str]:
    """Call a check hook (``READY_PROBE``, ``VERIFY_DATA``, ``BACKUP_VERIFY``): it fails by
    raising or returning False; any other return passes. The reason, when it failed."""
    try:
        returned = hook(*args)
    except Exception as exc:
        return False, f"raised at {raised(hook, exc)}"
    return (False, "returned False") if returned is False else (True, "")
