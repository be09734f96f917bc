"""What a hook receives: ``HookCtx``, the one argument of every recipe hook.

Hooks in recipe_meta.py (``READY_PROBE(ctx)``, ``SCREENSHOT(page, ctx)``, …) and in ops.py
(``pre_install(ctx)``, …) all receive the same frozen context: who the app is, where it
answers, what the run knows, and helpers to exec in a service, read its logs and speak
HTTP to it with the right ``Host`` header.
"""

from __future__ import annotations

import traceback
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

import httpx

from harness.errors import CcciError, MetaError, ProbeError, last_line
from harness.lifecycle.context import ENGINE, Swarm, SwarmStack
from harness.lifecycle.platform import app_client
from harness.lifecycle.waits import Wait, wait_for
from harness.recipe.manifest import redact
from harness.recipe.meta import RecipeMeta
from harness.recipe.meta_check import defined_at
from harness.recipe.sandbox import bounded
from harness.swarm import ExecResult

__all__ = ["ExecResult", "HookCtx", "call", "call_named", "raised", "verdict"]

EXEC_WAIT = 60.0


@dataclass(frozen=True)
class HookCtx:
    """The live app as a hook sees it."""

    recipe: str
    app: str  # the stack name
    domain: str
    base_url: str  # where the app answers; requests carry ``Host: domain``
    op: str  # the tier running the hook
    meta: RecipeMeta
    run_dir: Path
    env: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    deps: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    proxy: str | None = None  # where connections go instead, when set (a remote proxy)
    swarm: Swarm = ENGINE  # the seam the app runs on

    @property
    def stack(self) -> SwarmStack:
        return self.swarm.stack(self.app)

    def __repr__(self) -> str:
        # Shown in failing custom tests' reports: secret-shaped env values never are.
        env = redact(dict(self.env))
        return (
            f"HookCtx(recipe={self.recipe!r}, app={self.app!r}, domain={self.domain!r},"
            f" base_url={self.base_url!r}, op={self.op!r}, env={env!r})"
        )

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """An HTTP request to the app: ``base_url + path`` with ``Host: <domain>``."""
        kwargs.setdefault("timeout", 10.0)
        headers = kwargs.pop("headers", {})
        with app_client(self.base_url, self.domain, self.proxy, headers=headers) as http:
            return http.request(method, path, **kwargs)

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("GET", path, **kwargs)

    def exec(
        self, service: str, argv: Sequence[str], *, check: bool = True, wait: float = EXEC_WAIT
    ) -> ExecResult:
        """Run ``argv`` in the running container of ``service``, waiting up to ``wait`` s
        for one (a hook such as pre_install runs before the app converged); raise on a
        non-zero exit if ``check``."""
        result = _Exec(self.stack, service, argv)
        wait_for(result, wait)
        assert result.result is not None
        if check and result.result.exit_code != 0:
            last = last_line(result.result.stderr or result.result.stdout)
            raise ProbeError(
                f"{self.stack.service_name(service)}: {list(argv)} exited"
                f" {result.result.exit_code}: {last}"
            )
        return result.result

    def logs(self, service: str, tail: int = 50) -> str:
        """The last ``tail`` log lines of ``service`` (all its tasks), as text."""
        return self.stack.logs(service, tail)


class _Exec(Wait):
    """The command ran, once the service has a running container."""

    def __init__(self, stack: SwarmStack, service: str, argv: Sequence[str]) -> None:
        self.stack, self.service, self.argv = stack, service, argv
        self.result: ExecResult | None = None

    def check(self) -> tuple[bool, str]:
        self.result = self.stack.exec(self.service, self.argv)
        return self.result is not None, "no running container"

    def timed_out(self, window: float, state: str) -> CcciError:
        name = self.stack.service_name(self.service)
        return ProbeError(f"{name}: no running container to exec in after {window:.0f}s")


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


def call(hook: Callable[..., Any], *args: Any, seconds: float) -> Any:
    """Call a recipe hook, bounded in time (the run's deadline, or less) and output."""
    where = defined_at(hook) or repr(hook)
    with bounded(f"{where}: {getattr(hook, '__name__', 'hook')}", seconds):
        return hook(*args)


def call_named(name: str, hook: Callable[..., Any], *args: Any, seconds: float) -> Any:
    """``call`` an ops.py hook; what it raises fails as ``MetaError`` naming the hook's file
    and line (cc-ci's own errors pass as they are)."""
    try:
        return call(hook, *args, seconds=seconds)
    except CcciError:
        raise
    except Exception as exc:
        raise MetaError(f"{name} raised at {raised(hook, exc)}") from exc


def verdict(hook: Callable[..., Any], *args: Any, seconds: float) -> tuple[bool, str]:
    """Call a check hook (``READY_PROBE``, ``VERIFY_DATA``, ``BACKUP_VERIFY``): it fails by
    raising or returning False; any other return passes. The reason, when it failed."""
    try:
        returned = call(hook, *args, seconds=seconds)
    except Exception as exc:
        return False, f"raised at {raised(hook, exc)}"
    return (False, "returned False") if returned is False else (True, "")
