"""Every process cc-ci starts: its environment and its running.

A recipe under test is untrusted, and so is everything it supplies (``.env.sample``,
``abra.sh``, compose files): none of it may become the environment of a process cc-ci
starts, and nothing of cc-ci's own environment that a child does not need (a forge or CI
token) reaches one. So a child's environment is built here, from an allowlist:

- ``PATH`` fixed to the system directories (plus the directory of cc-ci's own
  interpreter, for the ``cc-ci``/``pytest`` of its virtualenv);
- ``HOME``, the locale, ``TZ``, ``TERM``, ``TMPDIR`` and ``XDG_CACHE_HOME`` as cc-ci has
  them;
- the Docker connection (``DOCKER_HOST``, ``DOCKER_CONTEXT``, ``DOCKER_CONFIG``,
  ``DOCKER_CERT_PATH``, ``DOCKER_TLS_VERIFY``) and the CA bundle variables;
- a ``cc-ci serve`` job's marker (``CCCI_SERVE_JOB``), by which a killed service finds the
  processes of the job's run;
- cc-ci's own variables for the child (``own``: a job marker, a run's settings, an app's
  identity), as given.

There is no way to hand a child a recipe's values as its environment: a denylist of the
variables that steer a process (``LD_PRELOAD``, ``BASH_ENV``, ``OPENSSL_CONF``, …) is
never complete. What a child must read of a recipe, it reads from a file
(``install_steps.sh``: ``$CCCI_APP_ENV``).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO

__all__ = ["SYSTEM_PATH", "child_env", "run", "start"]

SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

_PASSED = (
    "HOME",
    "LANG",
    "LANGUAGE",
    "LC_ALL",
    "LC_CTYPE",
    "TZ",
    "TERM",
    "TMPDIR",
    "XDG_CACHE_HOME",
    "DOCKER_HOST",
    "DOCKER_CONTEXT",
    "DOCKER_CONFIG",
    "DOCKER_CERT_PATH",
    "DOCKER_TLS_VERIFY",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "REQUESTS_CA_BUNDLE",
    "CCCI_SERVE_JOB",  # a serve job's marker, in every process of its run (serve.runner)
)


def child_env(own: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of a process cc-ci starts: the allowlist above, then cc-ci's
    ``own`` variables."""
    env = {name: os.environ[name] for name in _PASSED if name in os.environ}
    own_bin = str(Path(sys.executable).parent)
    env["PATH"] = SYSTEM_PATH if own_bin in SYSTEM_PATH.split(":") else f"{own_bin}:{SYSTEM_PATH}"
    env.update(own or {})
    return env


def run(
    argv: Sequence[str],
    *,
    cwd: Path | None = None,
    own: Mapping[str, str] | None = None,
    timeout: float,
    stdin: str | None = None,
) -> subprocess.CompletedProcess[str]:
    """``argv`` (a list, never a shell line) with the allowlist environment, its output
    captured as text, within ``timeout`` seconds (``subprocess.TimeoutExpired`` past it)."""
    return subprocess.run(
        list(argv),
        cwd=cwd,
        env=child_env(own),
        input=stdin,
        stdin=None if stdin is not None else subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def start(
    argv: Sequence[str],
    *,
    output: IO[str],
    cwd: Path | None = None,
    own: Mapping[str, str] | None = None,
) -> subprocess.Popen[bytes]:
    """``argv`` (a list, never a shell line) started with the allowlist environment in a
    session of its own (its process group is the caller's to signal), reading nothing,
    its stdout and stderr going to ``output``; the caller waits for it."""
    return subprocess.Popen(
        list(argv),
        cwd=cwd,
        env=child_env(own),
        stdin=subprocess.DEVNULL,
        stdout=output,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
