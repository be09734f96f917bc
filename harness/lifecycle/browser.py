"""The one browser of a cc-ci process: Debian's chromium driven by playwright.

Playwright's sync API allows one instance per thread, so the install tier's screenshot
and the custom tests' ``page`` fixture share this browser; it is closed at session end.

The app's page is untrusted, and the browser stays on the app:

- every context ``app_context`` makes may reach only the app's origin (as the browser
  sees it) and its DEPS': a request elsewhere is aborted by request interception, and what
  interception cannot see (a redirect's next hop, a preconnect, a WebSocket) goes to the
  context's proxy, a port that refuses every connection, which only the allowed origins
  bypass; WebRTC may use nothing but that proxy; no service worker serves a page. Each URL
  blocked is logged once and listed, without its query, in ``browser-blocked.txt`` of the
  run dir (at most ``MAX_BLOCKED``);
- chromium gets the environment ``proc.child_env`` builds, never cc-ci's own;
- chromium keeps its sandbox: run as root, cc-ci starts it as the unprivileged
  ``BROWSER_USER`` (``scripts/setup`` makes it) through a small wrapper, since chromium
  refuses its sandbox to root. Where that user is missing or the kernel refuses the
  sandbox, chromium runs with ``--no-sandbox``, and one log line says why.
"""

from __future__ import annotations

import logging
import os
import pwd
import re
import shutil
import socket
import tempfile
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import urlsplit

from harness import redact
from harness.chromium import CHROMIUM, CHROMIUM_ARGS
from harness.proc import child_env

__all__ = [
    "BLOCKED_FILE",
    "Origin",
    "allowed_origins",
    "app_context",
    "browser",
    "close",
    "sandbox",
    "screenshot",
]

log = logging.getLogger(__name__)

BROWSER_USER = "ccci-browser"
BLOCKED_FILE = "browser-blocked.txt"
MAX_BLOCKED = 100
_PAGE_OWN = ("data", "blob", "about")  # schemes that request nothing from a network

# Run as root, playwright starts this instead of chromium: it hands the fresh profile dir
# playwright made to BROWSER_USER (its HOME too: nothing outlives the browser) and becomes
# that user, with no capability left.
_AS_USER = """#!/bin/sh
for arg; do
  case $arg in --user-data-dir=*)
    dir=${arg#--user-data-dir=}
    chown -R @UID@:@GID@ "$dir" || exit 1
    export HOME="$dir" XDG_CACHE_HOME="$dir/.cache"
  esac
done
exec /usr/bin/setpriv --reuid=@UID@ --regid=@GID@ --clear-groups --inh-caps=-all \\
  -- @CHROMIUM@ "$@"
"""

_open: dict[str, Any] = {}


def browser() -> Any:
    if "browser" not in _open:
        from playwright.sync_api import sync_playwright

        from harness.lifecycle.platform import detect

        args = list(CHROMIUM_ARGS)
        platform = detect()
        if platform.proxy is not None:  # every app's domain dialled at the remote proxy
            args.append(f"--host-resolver-rules=MAP *.{platform.domain} {platform.proxy}")
        # Bound and never listening: a connection to it is refused at once, and no other
        # process can take the port while the browser runs.
        _open["refusing"] = socket.socket()
        _open["refusing"].bind(("127.0.0.1", 0))
        _open["playwright"] = sync_playwright().start()
        _open["browser"] = _launch(_open["playwright"].chromium, args)
    return _open["browser"]


def _launch(chromium: Any, args: list[str]) -> Any:
    """Chromium with its sandbox (as BROWSER_USER when cc-ci is root), or without it and
    one log line saying why; its environment is ``child_env``'s."""
    from playwright.sync_api import Error

    env = child_env()
    why_not = None
    executable = CHROMIUM
    if os.geteuid() == 0:
        try:
            user = pwd.getpwnam(BROWSER_USER)
        except KeyError:
            why_not = f"no user {BROWSER_USER} to run it as (scripts/setup makes it)"
        else:
            _open["wrapper"] = Path(tempfile.mkdtemp(prefix="ccci-chromium-"))
            executable = str(_open["wrapper"] / "chromium")
            script = _AS_USER.replace("@UID@", str(user.pw_uid)).replace("@GID@", str(user.pw_gid))
            script = script.replace("@CHROMIUM@", CHROMIUM)
            Path(executable).write_text(script)
            Path(executable).chmod(0o700)
    if why_not is None:
        try:
            launched = chromium.launch(
                executable_path=executable, args=args, env=env, chromium_sandbox=True
            )
        except Error as exc:
            why_not = _cause(str(exc))
        else:
            _open["sandbox"] = None
            return launched
    log.warning("chromium runs without its sandbox: %s", why_not)
    _open["sandbox"] = why_not
    return chromium.launch(executable_path=CHROMIUM, args=args, env=env, chromium_sandbox=False)


_FATAL = re.compile(r"FATAL:[^\]\s]*\] ([^\n]{1,160})")


def _cause(launch_error: str) -> str:
    """The one line of playwright's launch error that says why: chromium's fatal one
    ("No usable sandbox! ..."), or else its first."""
    fatal = _FATAL.search(launch_error)
    return fatal.group(1) if fatal else launch_error.splitlines()[0]


def sandbox() -> str | None:
    """Why the open browser runs without its sandbox; None when it has it."""
    browser()
    why_not: str | None = _open["sandbox"]
    return why_not


def close() -> None:
    if "browser" in _open:
        _open["browser"].close()
        _open["playwright"].stop()
        _open["refusing"].close()
        if "wrapper" in _open:
            shutil.rmtree(_open["wrapper"], ignore_errors=True)
    _open.clear()


class Origin(NamedTuple):
    """What a context may reach: a scheme, a host (or ``*.<suffix>``) and a port."""

    scheme: str
    host: str
    port: int

    def admits(self, scheme: str, host: str, port: int) -> bool:
        same_host = host == self.host or (
            self.host.startswith("*.") and host.endswith(self.host[1:])
        )
        return scheme == self.scheme and same_host and port == self.port


def _origins(url: str, local_host: str) -> list[Origin]:
    """The origins of the server at ``url`` as the browser sees it: on the local
    platform's loopback, ``local_host`` (the app's domain) and the address itself (what
    ``ctx.base_url`` gives a custom test), at the same port."""
    parts = urlsplit(url)
    scheme = parts.scheme
    port = parts.port or (443 if scheme == "https" else 80)
    if parts.hostname == "127.0.0.1":
        return [Origin(scheme, local_host, port), Origin(scheme, "127.0.0.1", port)]
    return [Origin(scheme, str(parts.hostname), port)]


def allowed_origins(ctx: Any) -> list[Origin]:
    """The app's origins and its DEPS': on the local platform a dependency's entry names
    its loopback port, not its domain, so any ``*.<platform domain>`` name at that port."""
    found = _origins(ctx.base_url, ctx.domain)
    suffix = "*." + ctx.domain.split(".", 1)[-1]
    for entry in ctx.deps.values():
        if "url" in entry:
            found += _origins(str(entry["url"]), suffix)
    return found


def _admitted(url: str, origins: list[Origin]) -> bool:
    parts = urlsplit(url)
    if parts.scheme in _PAGE_OWN:
        return True
    scheme = {"ws": "http", "wss": "https"}.get(parts.scheme, parts.scheme)
    try:
        port = parts.port or (443 if scheme == "https" else 80)
    except ValueError:
        return False
    host = parts.hostname or ""
    return any(o.admits(scheme, host, port) for o in origins)


def _shown(url: str) -> str:
    """``url`` without its user info, query and fragment (where a page puts what it
    exfiltrates), and at most 200 characters."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}{parts.path}"[:200]


_blocked: dict[Path, set[str]] = {}


def _block(ctx: Any, url: str) -> None:
    """Log ``url`` once and list it in the run dir's BLOCKED_FILE (up to MAX_BLOCKED)."""
    shown = _shown(url)
    seen = _blocked.setdefault(ctx.run_dir, set())
    if shown in seen or len(seen) > MAX_BLOCKED:
        return
    seen.add(shown)
    if len(seen) > MAX_BLOCKED:
        line = f"(more than {MAX_BLOCKED} URLs blocked: the rest is not listed)"
    else:
        line = shown
        log.info("%s: the browser blocked %s (not the app's origin or a DEPS one)", ctx.app, shown)
    with (ctx.run_dir / BLOCKED_FILE).open("a") as listed:  # public: redacted as it is written
        listed.write(redact.redact(line) + "\n")


def app_context(ctx: Any, **options: Any) -> Any:
    """A fresh browser context whose relative URLs reach the app by its domain (on the
    local platform *.localhost resolves to loopback, at the app's host port; on a remote
    one the domain is the proxy's, whose default certificate is not checked), and which
    reaches nothing but the app's origin and its DEPS'."""
    connect = urlsplit(ctx.base_url)
    if connect.hostname == "127.0.0.1":
        base_url = f"http://{ctx.domain}:{connect.port}"
    else:
        base_url = str(ctx.base_url)
        options.setdefault("ignore_https_errors", True)
    origins = allowed_origins(ctx)
    opened = browser()
    refusing = _open["refusing"].getsockname()[1]
    bypass = ",".join(["<-loopback>", *(f"{o.host}:{o.port}" for o in origins)])
    proxy = {"server": f"http://127.0.0.1:{refusing}", "bypass": bypass}
    context = opened.new_context(base_url=base_url, proxy=proxy, service_workers="block", **options)

    def route(route: Any) -> None:
        if _admitted(route.request.url, origins):
            route.continue_()
        else:
            _block(ctx, route.request.url)
            route.abort("blockedbyclient")

    def failed(request: Any) -> None:  # what interception never saw: a redirect's next hop
        if request.failure == "net::ERR_PROXY_CONNECTION_FAILED":
            _block(ctx, request.url)

    def websocket(socket: Any) -> None:  # refused at the proxy; listed here
        if not _admitted(socket.url, origins):
            _block(ctx, socket.url)

    context.route("**/*", route)
    context.on("requestfailed", failed)
    context.on("page", lambda page: page.on("websocket", websocket))
    return context


def screenshot(ctx: Any, path: Path, hook: Any = None, seconds: float = 600) -> int | None:
    """A screenshot of the app's web page (or what ``SCREENSHOT(page, ctx)`` shows, within
    ``seconds``) at ``path``; the HTTP status of the page, when the harness opened it."""
    from harness.lifecycle.hooks import call

    context = app_context(ctx, viewport={"width": 1280, "height": 800})
    try:
        page = context.new_page()
        if hook is not None:
            call(hook, page, ctx, seconds=seconds)
            status = None
        else:
            response = page.goto("/")
            page.wait_for_load_state("networkidle")
            status = response.status if response is not None else None
        page.screenshot(path=str(path))
        return status
    finally:
        context.close()
