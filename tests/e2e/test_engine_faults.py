"""The engine failing under a run: its failures are infra — retried once, never counted
against the recipe. The engine is real; between it and the run sits a socket proxy that
drops it for a moment (every connection cut, new ones refused), as a restarting dockerd
or a flaky remote link does."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from pathlib import Path

import pytest

from harness.lifecycle.labels import RUN_LABEL
from harness.swarm import engine
from tests.conftest import WEB_APP, Session, Workspace

pytestmark = pytest.mark.e2e

ENGINE_SOCKET = "/var/run/docker.sock"

# Healthy after about 3 s: the outage lands while the install converges.
SLOW_START = WEB_APP.replace(
    "mkdir -p /www && echo ok >/www/index.html && exec httpd -f -p 8080 -h /www",
    "sleep 3; mkdir -p /www && echo ok >/www/index.html && exec httpd -f -p 8080 -h /www",
).replace(
    "    networks: [proxy]\n",
    "    networks: [proxy]\n"
    "    healthcheck:\n"
    '      test: ["CMD", "test", "-f", "/www/index.html"]\n'
    "      interval: 1s\n",
)


class FlakyEngine:
    """A unix socket that forwards to the engine's, until ``outage()`` cuts it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.down = threading.Event()
        self.outages = 0
        self._open: list[socket.socket] = []
        self._lock = threading.Lock()
        self._server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._server.bind(str(path))
        self._server.listen(64)
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._server.accept()
            except OSError:
                return  # closed
            if self.down.is_set():
                client.close()
                continue
            upstream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            upstream.connect(ENGINE_SOCKET)
            with self._lock:
                self._open += [client, upstream]
            for src, dst in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(src, dst), daemon=True).start()

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        for end in (src, dst):
            with contextlib.suppress(OSError):
                end.shutdown(socket.SHUT_RDWR)

    def outage(self, seconds: float) -> None:
        """Cut every connection and refuse new ones for ``seconds``."""
        self.down.set()
        self.outages += 1
        with self._lock:
            cut, self._open = self._open, []
        for end in cut:
            with contextlib.suppress(OSError):
                end.shutdown(socket.SHUT_RDWR)
        threading.Timer(seconds, self.down.clear).start()

    def close(self) -> None:
        self._server.close()


def test_an_engine_outage_mid_tier_is_infra_and_retried_once(
    workspace: Workspace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    flaky = FlakyEngine(tmp_path / "engine.sock")
    workspace.recipe("flaky", [("1.0.0+1", SLOW_START)])
    monkeypatch.setenv("DOCKER_HOST", f"unix://{flaky.path}")
    inner = workspace.start("recipes/flaky", "--tiers", "install")
    monkeypatch.delenv("DOCKER_HOST")
    try:
        run_id = workspace.wait_deployed(inner)
        client = engine.client()  # the real engine, not through the proxy
        deadline = time.monotonic() + 60
        while not client.containers.list(filters={"label": f"{RUN_LABEL}={run_id}"}):
            assert time.monotonic() < deadline, "the run never started a container"
            assert inner.poll() is None, inner.communicate()[0]
            time.sleep(0.1)
        flaky.outage(3.0)  # while the install converges
        output, _ = inner.communicate(timeout=300)
    finally:
        flaky.close()
    session = Session(inner.returncode, output, workspace.runs_dir)
    assert session.tier_outcomes == {"recipes/flaky::install": "PASSED"}, output
    (run_dir,) = workspace.runs_dir.iterdir()
    log = (run_dir / "harness.log").read_text()
    assert "recipes/flaky::install: infra failure, retrying once: EngineError: " in log, log
    trace = json.loads((run_dir / "trace.json").read_text())
    attempts = [
        (s["context"]["attempt"], s["status"]) for s in trace["children"] if s["name"] == "install"
    ]
    assert attempts == [(1, "error: EngineError"), (2, "ok")], attempts
    (doc,) = session.results()
    assert doc["tiers"]["install"]["status"] == "pass"
    assert doc["level"] >= 1  # the outage never counted against the recipe
    session.assert_nothing_left()
