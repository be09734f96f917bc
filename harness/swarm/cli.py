"""The docker CLI, only where the SDK has no equivalent: ``stack deploy``, ``stack config``.

Argv lists, never a shell line, and the allowlist environment of ``harness.proc``: nothing
a recipe supplies is ever the CLI's environment (the compose files it is handed are
interpolated by cc-ci already, ``harness.recipe.compose``). A failure is translated like
the SDK's: the engine or the CLI itself failing (unreachable, timed out) is infra; the
CLI refusing the recipe's config is the class the caller names.
"""

from __future__ import annotations

import re
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from harness import proc
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
    timeout: float = 300,
) -> str:
    """Run ``docker <argv>``; its stdout, or the failure translated."""
    try:
        done = proc.run(["docker", *argv], cwd=cwd, timeout=timeout)
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


def stack_config(documents: Sequence[tuple[str, str]], *, timeout: float = 60) -> Any:
    """The merged config of compose ``documents`` (``(name, text)``, interpolated already,
    their paths absolute), by the very loader ``docker stack deploy`` uses (it needs no
    engine). A refusal names the document by its own name, not the scratch file's."""
    with tempfile.TemporaryDirectory(prefix="cc-ci-compose-") as scratch:
        argv = ["stack", "config", "--skip-interpolation"]
        for number, (_, text) in enumerate(documents):
            path = Path(scratch) / f"{number}.yml"
            path.write_text(text)
            argv += ["-c", str(path)]
        try:
            out = docker(
                argv,
                what="docker stack config",
                refused=PlanError,
                cwd=Path(scratch),
                timeout=timeout,
            )
        except PlanError as exc:
            message = str(exc)
            for number, (name, _) in enumerate(documents):
                message = message.replace(str(Path(scratch) / f"{number}.yml"), name)
            raise PlanError(message.replace(scratch, ".")) from None
    return yaml.safe_load(out) or {}
