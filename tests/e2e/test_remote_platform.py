"""The remote code path — no host ports, apps reached through the swarm's proxy by their
domain — run against the local engine. The proxy is the test's stand-in for Traefik: a
service on the shared external ``proxy`` network that routes by the ``Host`` header to the
app's service, published on a host port, logging what it forwards."""

from __future__ import annotations

import json
import socket
import textwrap
import time
from collections.abc import Iterator

import docker
import pytest

from harness.errors import ProbeError
from harness.lifecycle import tiers
from harness.lifecycle.platform import Platform
from harness.lifecycle.run import Run
from harness.recipe import customization
from harness.swarm import engine
from tests.conftest import WEB_APP, Workspace

pytestmark = pytest.mark.e2e

LABEL = {"cc-ci.test": "remote-platform"}
PROXY = textwrap.dedent(
    """
    import http.server, urllib.error, urllib.request

    class Route(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            host = self.headers["Host"].split(":")[0]
            print("proxy: GET", self.path, "Host=" + host, flush=True)
            upstream = "http://" + host.replace(".", "_") + "_app:8080" + self.path
            try:
                with urllib.request.urlopen(upstream, timeout=5) as answer:
                    code, body = answer.status, answer.read()
            except urllib.error.HTTPError as exc:
                code, body = exc.code, exc.read()
            except OSError as exc:
                code, body = 502, str(exc).encode()
            self.send_response(code)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    http.server.ThreadingHTTPServer(("", 8000), Route).serve_forever()
    """
)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def proxy() -> Iterator[tuple[str, docker.models.services.Service]]:
    """The external ``proxy`` network and a routing proxy on it: (its URL, its service)."""
    client = engine.client()
    network = client.networks.create("proxy", driver="overlay", attachable=True, labels=LABEL)
    port = _free_port()
    service = client.services.create(
        "cc-ci-demo/python:bookworm",
        ["python3", "-u", "-c", PROXY],
        name="ccci-test-proxy",
        networks=["proxy"],
        labels=LABEL,
        endpoint_spec=docker.types.EndpointSpec(mode="dnsrr", ports={port: (8000, "tcp", "host")}),
        stop_grace_period=0,
    )
    try:
        yield f"http://127.0.0.1:{port}", service
    finally:
        service.remove()
        deadline = time.monotonic() + 30
        while client.networks.list(filters={"label": "cc-ci.test=remote-platform"}):
            assert time.monotonic() < deadline, "the proxy network stayed in use"
            try:
                network.remove()
            except docker.errors.APIError:
                time.sleep(0.3)


def test_health_is_probed_through_the_proxy_where_there_are_no_host_ports(
    workspace: Workspace, proxy: tuple[str, docker.models.services.Service]
) -> None:
    url, proxy_service = proxy
    compose = WEB_APP.replace(
        "echo ok >/www/index.html", "echo ok >/www/index.html && echo ok >/www/probe-me"
    )
    recipe_dir = workspace.recipe(
        "remote", [("1.0.0+1", compose)], meta='HEALTH_PATH = "/probe-me"\n'
    )
    run = Run(
        customization.read(recipe_dir),
        catalogue=str(workspace.catalogue),
        ref=None,
        runs_root=workspace.runs_dir,
        platform=Platform("remote", ipvs=False, proxy=url),
        tiers=("install",),
    )
    try:
        app = tiers.install(run)
        assert app.host_port is None
        assert app.base_url == url
    finally:
        run.close()
    logs = b"".join(proxy_service.logs(stdout=True, stderr=True)).decode()
    assert f"proxy: GET /probe-me Host={app.domain}" in logs, logs
    trace = json.loads((run.dir / "trace.json").read_text())
    probes = [s for s in _spans(trace) if s["name"] == "probe"]
    assert probes[0]["context"]["url"] == f"{url}/probe-me"
    assert probes[0]["status"] == "ok"
    doc = json.loads((run.dir / "results.json").read_text())
    assert doc["platform"]["name"] == "remote"
    assert not any("host mode" in o for o in doc["platform"]["overlays"])


def _spans(span: dict) -> Iterator[dict]:
    yield span
    for child in span["children"]:
        yield from _spans(child)


def test_a_failing_health_path_fails_install_on_the_remote_path_too(
    workspace: Workspace, proxy: tuple[str, docker.models.services.Service]
) -> None:
    url, _ = proxy
    recipe_dir = workspace.recipe("remote", [("1.0.0+1", WEB_APP)], meta='HEALTH_PATH = "/gone"\n')
    run = Run(
        customization.read(recipe_dir),
        catalogue=str(workspace.catalogue),
        ref=None,
        runs_root=workspace.runs_dir,
        deadline=25,  # the probe window is cut to what is left of it
        platform=Platform("remote", ipvs=False, proxy=url),
        tiers=("install",),
    )
    try:
        with pytest.raises(
            ProbeError, match=r"health: GET http://127\.0\.0\.1:\d+/gone .*answered 404"
        ):
            tiers.install(run)
    finally:
        run.close()
