"""The one browser of a cc-ci process: Debian's chromium driven by playwright.

Playwright's sync API allows one instance per thread, so the install tier's screenshot
and the custom tests' ``page`` fixture share this browser; it is closed at session end.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

__all__ = ["app_context", "browser", "close", "screenshot"]

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
_open: dict[str, Any] = {}


def browser() -> Any:
    if "browser" not in _open:
        from playwright.sync_api import sync_playwright

        from harness.lifecycle.platform import detect

        args = list(CHROMIUM_ARGS)
        platform = detect()
        if platform.proxy is not None:  # every app's domain dialled at the remote proxy
            args.append(f"--host-resolver-rules=MAP *.{platform.domain} {platform.proxy}")
        _open["playwright"] = sync_playwright().start()
        _open["browser"] = _open["playwright"].chromium.launch(executable_path=CHROMIUM, args=args)
    return _open["browser"]


def close() -> None:
    if _open:
        _open.pop("browser").close()
        _open.pop("playwright").stop()


def app_context(ctx: Any, **options: Any) -> Any:
    """A fresh browser context whose relative URLs reach the app by its domain (on the
    local platform *.localhost resolves to loopback, at the app's host port; on a remote
    one the domain is the proxy's, whose default certificate is not checked)."""
    connect = urlsplit(ctx.base_url)
    if connect.hostname == "127.0.0.1":
        base_url = f"http://{ctx.domain}:{connect.port}"
    else:
        base_url = str(ctx.base_url)
        options.setdefault("ignore_https_errors", True)
    return browser().new_context(base_url=base_url, **options)


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
