"""The browser stays on the app: a page that embeds, fetches, redirects to, opens a
WebSocket and asks WebRTC's STUN of a canary server on the host's loopback reaches none of
it (the screenshot is still taken, each URL listed in the run dir), while its DEPS' origin
answers; chromium gets none of cc-ci's environment and keeps its sandbox, or says that it
cannot."""

from __future__ import annotations

import json
import logging
import os
import pwd
import socket
import textwrap
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from harness.lifecycle import browser
from harness.lifecycle.hooks import HookCtx
from harness.recipe.meta import RecipeMeta
from tests.conftest import Session, Workspace

pytestmark = pytest.mark.e2e

TOKEN = "forge-token-canary-5e1f"  # in the inner session's environment only
SECRET = "s3cret-in-a-query"


class Canary(ThreadingHTTPServer):
    """An HTTP server on the host's loopback that only counts: what reached it."""

    def __init__(self) -> None:
        self.requests: list[str] = []
        self.connections = 0
        self.udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)  # a STUN server's port
        self.udp.bind(("127.0.0.1", 0))
        self.udp.setblocking(False)

        class Handler(BaseHTTPRequestHandler):
            def do_GET(handler) -> None:
                self.requests.append(handler.path)
                handler.send_response(200)
                handler.end_headers()
                handler.wfile.write(b"the canary answered")

            def log_message(handler, *args: Any) -> None:
                pass

        super().__init__(("127.0.0.1", 0), Handler)

    def get_request(self) -> Any:
        self.connections += 1
        return super().get_request()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def datagrams(self) -> int:
        count = 0
        while True:
            try:
                self.udp.recv(2048)
            except BlockingIOError:
                return count
            count += 1


def _app(canary: str, stun: int) -> str:
    """A web app whose page reaches for the canary every way a page can."""
    page = textwrap.indent(
        textwrap.dedent(f"""\
            <h1>confined</h1>
            <iframe src="{canary}/iframe"></iframe>
            <img src="{canary}/img?token={SECRET}">
            <iframe src="/cgi-bin/redirect"></iframe>
            <link rel="preconnect" href="{canary}">
            <script>
              fetch("{canary}/fetch").catch(function () {{}});
              try {{ new WebSocket("{canary.replace("http", "ws")}/ws"); }} catch (e) {{}}
              var rtc = new RTCPeerConnection({{iceServers: [{{urls: "stun:127.0.0.1:{stun}"}}]}});
              rtc.createDataChannel("x");
              rtc.createOffer().then(function (offer) {{ rtc.setLocalDescription(offer); }});
            </script>
            """),
        "        ",
    )
    return f"""\
version: "3.8"
services:
  app:
    image: cc-ci/busybox:bookworm
    command:
      - sh
      - -c
      - |
        mkdir -p /www/cgi-bin
        cat >/www/index.html <<'EOF'
{page}        EOF
        echo '#!/bin/sh' >/www/cgi-bin/redirect
        echo 'printf "Status: 302 Found\\r\\n"' >>/www/cgi-bin/redirect
        echo 'printf "Location: {canary}/redirected\\r\\n\\r\\n"' >>/www/cgi-bin/redirect
        chmod +x /www/cgi-bin/redirect
        exec httpd -f -p 8080 -h /www
    networks: [proxy]
    deploy:
      labels:
        - "traefik.enable=true"
        - "traefik.http.services.${{STACK_NAME}}.loadbalancer.server.port=8080"
        - "coop-cloud.${{STACK_NAME}}.version=1.0.0+1"
networks:
  proxy:
    external: true
"""


# A custom test of the recipe: its page fetches the canary too, and it reads what the
# chromium processes of its session run with, into FOUND.
CUSTOM_TEST = """
import json
import os
from pathlib import Path

from harness.proc import child_env

# Set by Debian's /usr/bin/chromium launcher (its public API keys among them), and sh.
LAUNCHER = {{"PWD", "CHROME_WRAPPER", "CHROME_DESKTOP", "CHROME_VERSION_EXTRA", "CHROMIUM_FLAGS",
            "GOOGLE_API_KEY", "GOOGLE_DEFAULT_CLIENT_ID", "GOOGLE_DEFAULT_CLIENT_SECRET"}}


def chromium_processes():
    parent = {{}}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parent[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    mine, grew = {{os.getpid()}}, True
    while grew:
        more = {{pid for pid, ppid in parent.items() if ppid in mine}} - mine
        mine |= more
        grew = bool(more)
    for pid in sorted(mine):
        proc = Path("/proc", str(pid))
        try:
            if os.readlink(proc / "exe") == "/usr/lib/chromium/chromium":
                yield proc
        except OSError:
            pass


def test_the_page_is_confined(page):
    reached = page.evaluate(
        "fetch('{canary}/from-test?key={secret}').then(() => 'reached', () => 'blocked')"
    )
    own = set(child_env()) | {{"HOME", "XDG_CACHE_HOME"}} | LAUNCHER
    found = {{"fetch": reached, "processes": []}}
    for proc in chromium_processes():
        environ = (proc / "environ").read_bytes().split(b"\\0")
        names = {{v.split(b"=", 1)[0].decode() for v in environ if v}}
        status = dict(ln.split(":", 1) for ln in (proc / "status").read_text().splitlines())
        found["processes"].append({{
            "cmdline": (proc / "cmdline").read_bytes().decode().split("\\0"),
            "uid": int(status["Uid"].split()[0]),
            "seccomp": int(status["Seccomp"]),
            "not_ccci_s": sorted(names - own),
            "token": any({token!r}.encode() in v for v in environ),
        }})
    Path({found!r}).write_text(json.dumps(found))
"""


@pytest.fixture(scope="module")
def canary() -> Iterator[Canary]:
    server = Canary()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()
    server.udp.close()


@pytest.fixture(scope="module")
def confined(
    tmp_path_factory: pytest.TempPathFactory, canary: Canary
) -> Iterator[tuple[Session, Path, dict[str, Any]]]:
    """One install and custom run of the canary-reaching app, with a forge token in the
    session's environment."""
    workspace = Workspace(tmp_path_factory.mktemp("confined"))
    found = workspace.root / "found.json"
    recipe_dir = workspace.recipe(
        "reacher", [("1.0.0+1", _app(canary.url, canary.udp.getsockname()[1]))]
    )
    (recipe_dir / "functional").mkdir()
    custom = CUSTOM_TEST.format(canary=canary.url, secret=SECRET, token=TOKEN, found=str(found))
    (recipe_dir / "functional" / "test_confined.py").write_text(custom)
    with pytest.MonkeyPatch.context() as env:
        env.setenv("CCCI_FORGE_TOKEN", TOKEN)
        session = workspace.pytest("recipes/reacher", "--tiers", "install,custom")
    (run_dir,) = workspace.runs_dir.iterdir()
    yield session, run_dir, json.loads(found.read_text()) if found.exists() else {}
    session.assert_nothing_left()


def test_the_page_reaches_nothing_but_the_app(
    confined: tuple[Session, Path, dict[str, Any]], canary: Canary
) -> None:
    session, run_dir, found = confined
    assert session.tier_outcomes["recipes/reacher::install"] == "PASSED", session.output
    assert canary.requests == []
    assert canary.connections == 0  # not even the preconnect
    assert canary.datagrams() == 0  # nor WebRTC's STUN
    (doc,) = session.results()
    assert doc["artifacts"]["screenshot"] == "screenshot.png"
    assert (run_dir / "screenshot.png").stat().st_size > 0
    assert found["fetch"] == "blocked"
    listed = (run_dir / browser.BLOCKED_FILE).read_text().splitlines()
    assert sorted(listed) == sorted(
        [
            f"{canary.url}/iframe",
            f"{canary.url}/img",  # its query cut
            f"{canary.url}/fetch",
            f"{canary.url}/redirected",  # the hop interception never sees
            f"{canary.url.replace('http', 'ws')}/ws",
            f"{canary.url}/from-test",
        ]
    )
    log = (run_dir / "harness.log").read_text()
    assert log.count(f"the browser blocked {canary.url}/iframe ") == 1
    assert SECRET not in log + session.output


def test_chromium_gets_none_of_ccci_s_environment(
    confined: tuple[Session, Path, dict[str, Any]],
) -> None:
    session, _, found = confined
    assert found.get("processes"), session.output
    assert not [p["cmdline"][:2] for p in found["processes"] if p["token"]]
    # The browser's own (its children overwrite theirs with their titles); they inherit it.
    (main,) = [p for p in found["processes"] if not any("--type=" in a for a in p["cmdline"])]
    assert main["not_ccci_s"] == []


def test_chromium_keeps_its_sandbox_as_an_unprivileged_user(
    confined: tuple[Session, Path, dict[str, Any]],
) -> None:
    session, _, found = confined
    user = pwd.getpwnam(browser.BROWSER_USER)  # scripts/setup makes it
    assert "without its sandbox" not in session.output
    assert {p["uid"] for p in found["processes"]} == {user.pw_uid}
    # A child's title is its command line in one string.
    assert not [p for p in found["processes"] if "--no-sandbox" in " ".join(p["cmdline"])]
    renderers = [p for p in found["processes"] if "--type=renderer" in " ".join(p["cmdline"])]
    assert renderers
    assert {p["seccomp"] for p in renderers} == {2}  # seccomp-bpf filters it


def _renderers() -> list[Path]:
    """The renderer processes of this process's chromium."""
    mine = []
    for proc in Path("/proc").iterdir():
        try:
            cmdline = (proc / "cmdline").read_bytes()
            if b"--type=renderer" in cmdline and _descends(proc, os.getpid()):
                mine.append(proc)
        except OSError:
            continue
    return mine


def _descends(proc: Path, ancestor: int) -> bool:
    pid = int(proc.name)
    while pid > 1:
        if pid == ancestor:
            return True
        pid = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    return False


def test_without_its_user_chromium_says_it_runs_unsandboxed(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(browser, "BROWSER_USER", "ccci-no-such-user")
    caplog.set_level(logging.WARNING, logger="harness.lifecycle.browser")
    browser.close()
    try:
        page = browser.browser().new_page()
        page.set_content("<p>a renderer</p>")
        why_not = browser.sandbox()
        renderers = _renderers()
        assert renderers
        for proc in renderers:
            assert b"--no-sandbox" in (proc / "cmdline").read_bytes()
            assert "Seccomp:\t0" in (proc / "status").read_text()
    finally:
        browser.close()
    assert why_not == "no user ccci-no-such-user to run it as (scripts/setup makes it)"
    said = [r.getMessage() for r in caplog.records]
    assert said == [f"chromium runs without its sandbox: {why_not}"]


class _PageServer(ThreadingHTTPServer):
    """Serves ``_Page`` and keeps the paths asked of it."""

    requests: list[str]


class _Page(BaseHTTPRequestHandler):
    """Serves a page that fetches the URLs of its query; the app of the next test."""

    server: _PageServer

    def do_GET(self) -> None:
        self.server.requests.append(self.path)
        body = b"ok"
        if self.path.startswith("/page"):
            body = b"<p>app</p>"
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Access-Control-Allow-Origin", "*")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


def _server() -> _PageServer:
    server = _PageServer(("127.0.0.1", 0), _Page)
    server.requests = []
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def test_a_deps_origin_is_reached_and_nothing_else(tmp_path: Path, canary: Canary) -> None:
    app, dep = _server(), _server()
    ctx = HookCtx(
        recipe="consumer",
        app="consumer_x",
        domain="consumer-x.localhost",
        base_url=f"http://127.0.0.1:{app.server_address[1]}",
        op="custom",
        meta=RecipeMeta(),
        run_dir=tmp_path,
        deps={"provider": {"url": f"http://127.0.0.1:{dep.server_address[1]}"}},
    )
    fetch = "url => fetch(url).then(r => r.text(), () => 'blocked')"
    dep_url = f"http://provider-x.localhost:{dep.server_address[1]}/from-app"
    context = browser.app_context(ctx)
    try:
        page = context.new_page()
        page.goto("/page")
        assert page.evaluate(fetch, dep_url) == "ok"
        assert page.evaluate(fetch, f"{canary.url}/from-app") == "blocked"
        assert page.evaluate(fetch, f"http://localhost:{dep.server_address[1]}/x") == "blocked"
    finally:
        context.close()
        for server in (app, dep):
            server.shutdown()
            server.server_close()
    assert dep.requests == ["/from-app"]
    assert canary.requests == []
    assert (tmp_path / browser.BLOCKED_FILE).read_text().splitlines() == [
        f"{canary.url}/from-app",
        f"http://localhost:{dep.server_address[1]}/x",
    ]
