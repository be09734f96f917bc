"""What a browser context of cc-ci may reach (the app's origin as the browser sees it, its
DEPS'), and how what it may not is listed: without a query, once, bounded."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from harness.lifecycle import browser
from harness.lifecycle.browser import Origin, _admitted, _block, _cause, allowed_origins

LOCAL = SimpleNamespace(
    base_url="http://127.0.0.1:31000",
    domain="app-x1.localhost",
    deps={"idp": {"url": "http://127.0.0.1:32000", "client_id": "c"}},
)
REMOTE = SimpleNamespace(
    base_url="https://app-x1.ci.example.org",
    domain="app-x1.ci.example.org",
    deps={"idp": {"url": "https://idp-x2.ci.example.org", "client_id": "c"}},
)


def test_the_origins_are_the_app_s_and_its_deps_as_the_browser_sees_them() -> None:
    assert allowed_origins(LOCAL) == [
        Origin("http", "app-x1.localhost", 31000),
        Origin("http", "127.0.0.1", 31000),
        Origin("http", "*.localhost", 32000),
        Origin("http", "127.0.0.1", 32000),
    ]
    assert allowed_origins(REMOTE) == [
        Origin("https", "app-x1.ci.example.org", 443),
        Origin("https", "idp-x2.ci.example.org", 443),
    ]


@pytest.mark.parametrize(
    ("url", "admitted"),
    [
        ("http://app-x1.localhost:31000/", True),
        ("ws://app-x1.localhost:31000/socket", True),
        ("http://idp-x2.localhost:32000/auth?x=1", True),
        ("data:text/html,<p>x</p>", True),
        ("blob:http://app-x1.localhost:31000/1f0e", True),
        ("about:blank", True),
        ("http://app-x1.localhost:31001/", False),  # another loopback port
        ("http://127.0.0.1:31000/", True),  # its base_url, as a custom test has it
        ("http://localhost:31000/", False),
        ("http://127.0.0.1:5432/", False),
        ("https://app-x1.localhost:31000/", False),
        ("http://other.localhost:31000/", False),
        ("http://169.254.169.254/latest/meta-data/", False),
        ("http://app-x1.localhost:99999/", False),  # no port at all
        ("file:///etc/passwd", False),
    ],
)
def test_a_local_context_admits_only_its_origins(url: str, admitted: bool) -> None:
    assert _admitted(url, allowed_origins(LOCAL)) is admitted


@pytest.mark.parametrize(
    ("url", "admitted"),
    [
        ("https://app-x1.ci.example.org/", True),
        ("https://app-x1.ci.example.org:443/x", True),
        ("wss://app-x1.ci.example.org/socket", True),
        ("https://idp-x2.ci.example.org/auth", True),
        ("http://app-x1.ci.example.org/", False),
        ("https://app-x1.ci.example.org:8443/", False),
        ("https://other-x3.ci.example.org/", False),
        ("https://app-x1.ci.example.org.evil.example/", False),
    ],
)
def test_a_remote_context_admits_only_its_origins(url: str, admitted: bool) -> None:
    assert _admitted(url, allowed_origins(REMOTE)) is admitted


def test_a_blocked_url_is_listed_once_without_what_it_carries(tmp_path: Path) -> None:
    ctx = SimpleNamespace(app="app_x1", run_dir=tmp_path)
    for _ in range(3):
        _block(ctx, "http://user:pw@127.0.0.1:9/leak?token=s3cret#frag")
    assert (tmp_path / browser.BLOCKED_FILE).read_text() == "http://127.0.0.1:9/leak\n"


def test_the_list_is_bounded(tmp_path: Path) -> None:
    ctx = SimpleNamespace(app="app_x1", run_dir=tmp_path)
    for n in range(browser.MAX_BLOCKED * 3):
        _block(ctx, f"http://127.0.0.1:9/{n}")
    listed = (tmp_path / browser.BLOCKED_FILE).read_text().splitlines()
    assert len(listed) == browser.MAX_BLOCKED + 1
    assert listed[-1] == f"(more than {browser.MAX_BLOCKED} URLs blocked: the rest is not listed)"


def test_a_refused_sandbox_is_said_in_chromium_s_own_line() -> None:
    # The shape of playwright's launch error (chromium's stderr in its call log).
    error = (
        "BrowserType.launch: Target page, context or browser has been closed\n"
        "Browser logs:\nChromium sandboxing failed!\n\nCall log:\n"
        "  - <launching> /usr/bin/chromium --headless\n"
        "  - [pid=7][err] [7:7:1202/002400.000000:FATAL:content/browser/zygote_host/"
        "zygote_host_impl_linux.cc:128] No usable sandbox! If you are running on Ubuntu\n"
    )
    assert _cause(error) == "No usable sandbox! If you are running on Ubuntu"
    assert _cause("BrowserType.launch: spawn EACCES\nCall log:\n") == (
        "BrowserType.launch: spawn EACCES"
    )
