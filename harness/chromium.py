"""The system chromium: where it is, the flags cc-ci always gives it, and the launch of a
browser for cc-ci's own pages (the PR card, the README pictures) — cc-ci's own HTML, not
an app's. The browser an app's page is shown in, confined to the app and sandboxed, is
``lifecycle/browser.py``, built on this.
"""

from __future__ import annotations

from typing import Any

from harness.proc import child_env

__all__ = ["CHROMIUM", "CHROMIUM_ARGS", "launch_for_own_pages"]

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    # WebRTC only through the proxy, i.e. never to a STUN or TURN server of the page's.
    "--webrtc-ip-handling-policy=disable_non_proxied_udp",
]


def launch_for_own_pages(chromium: Any) -> Any:
    """A browser of playwright's ``chromium`` (its ``BrowserType``) for pages cc-ci made
    itself, with the allowlist environment, never cc-ci's own."""
    return chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, env=child_env())
