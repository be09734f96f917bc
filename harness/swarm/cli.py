"""The docker CLI, only where the SDK has no equivalent: ``stack deploy``, ``stack config``.

Argv lists, never a shell line. A failure is translated like the SDK's: the engine or the
CLI itself failing (unreachable, timed out) is infra; the CLI refusing the recipe's config
is the class the caller names.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from harness.errors import CcciError, EngineError, PlanError, PlatformError, last_line

__all__ = ["docker", "stack_config"]

# What the CLI prints when the engine, not the request, is the problem.
_ENGINE_FAILED = re.compile(
    r"Cannot connect to the Docker daemon|error during connect|connection refused"
    r"|i/o timeout|context deadline exceeded|code = Unavailable|Internal Server Error"
    r"|connection reset|broken pipe|\bEOF\b",
    re.IGNORECASE,
)


def docker(
    argv: Sequence[str],
    *,
    what: str,
    refused: type[CcciError],
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    timeout: float = 300,
) -> str:
    """Run ``docker <argv>``; its stdout, or the failure translated."""
    try:
        done = subprocess.run(
            ["docker", *argv],
            cwd=cwd,
            env=None if env is None else dict(env),
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired as exc:
        raise EngineError(f"{what}: docker {argv[0]} did not finish within {timeout:.0f}s") from exc
    except OSError as exc:
        raise PlatformError(f"{what}: the docker CLI cannot run: {exc}") from exc
    if done.returncode != 0:
        cause = last_line(done.stderr or done.stdout, "failed")
        if _ENGINE_FAILED.search(done.stderr):
            raise EngineError(f"{what}: {cause}")
        raise refused(f"{what}: {cause}")
    return done.stdout


def stack_config(checkout: Path, files: Sequence[str], env: Mapping[str, str]) -> Any:
    """The merged, interpolated config of ``files`` with ``env``, by the very loader
    ``docker stack deploy`` uses (it needs no engine)."""
    argv = ["stack", "config"]
    for name in files:
        argv += ["-c", name]
    out = docker(
        argv,
        what="docker stack config",
        refused=PlanError,
        cwd=checkout,
        env={"PATH": "/usr/local/bin:/usr/bin:/bin", **env},
        timeout=60,
    )
    return yaml.safe_load(out) or {}
