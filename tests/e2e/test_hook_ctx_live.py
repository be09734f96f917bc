"""HookCtx's exec and logs helpers against a real service on the local swarm."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from harness.errors import ProbeError
from harness.lifecycle.hooks import HookCtx
from harness.recipe import meta
from harness.swarm import engine

pytestmark = pytest.mark.e2e

BUSYBOX = "cc-ci/busybox:bookworm"


@pytest.fixture
def live_app() -> Iterator[str]:
    app = f"ccci_hookctx_{uuid.uuid4().hex[:8]}"
    service: Any = engine.client().services.create(
        BUSYBOX,
        ["sh", "-c", "echo hello-from-app; exec sleep 600"],
        name=f"{app}_app",
        labels={"cc-ci.test": app},
        stop_grace_period=0,
    )
    try:
        deadline = time.monotonic() + 30
        while not any(t["Status"]["State"] == "running" for t in service.tasks()):
            assert time.monotonic() < deadline, "service never ran"
            time.sleep(0.2)
        yield app
    finally:
        service.remove()


def test_exec_and_logs_reach_the_running_service(live_app: str, tmp_path: Path) -> None:
    ctx = HookCtx(
        recipe="demo",
        app=live_app,
        domain="x.localhost",
        base_url="http://127.0.0.1:9",
        op="install",
        meta=meta.RecipeMeta(),
        run_dir=tmp_path,
    )
    assert ctx.exec("app", ["sh", "-c", "echo out; echo err >&2"]).stdout == "out\n"
    result = ctx.exec("app", ["sh", "-c", "exit 3"], check=False)
    assert result.exit_code == 3
    with pytest.raises(ProbeError, match=r"_app: \['sh', '-c', 'echo boom >&2; exit 4'\] exited 4"):
        ctx.exec("app", ["sh", "-c", "echo boom >&2; exit 4"])
    with pytest.raises(ProbeError, match="no running container"):
        ctx.exec("db", ["true"], wait=0.5)
    deadline = time.monotonic() + 10
    while "hello-from-app" not in ctx.logs("app"):
        assert time.monotonic() < deadline, ctx.logs("app")
        time.sleep(0.2)
