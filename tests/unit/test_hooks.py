"""The hook signature check and HookCtx (its HTTP against a real local server)."""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.errors import MetaError
from harness.lifecycle.hooks import HookCtx, raised, verdict
from harness.recipe import meta
from harness.recipe.meta_check import check_hook_signature


def test_signature_check_accepts_expected_and_optional_keywords() -> None:
    def pre_install(ctx: object, *, verbose: bool = False) -> None:
        pass

    check_hook_signature(pre_install, ("ctx",), "pre_install")


def test_raised_names_the_hooks_own_file_and_line(tmp_path: Path) -> None:
    (tmp_path / "recipe_meta.py").write_text(
        "import json\n\ndef SEED_DATA(ctx):\n    json.loads(ctx)\n"
    )
    hook = meta.load(tmp_path).SEED_DATA
    assert hook is not None
    with pytest.raises(json.JSONDecodeError) as caught:
        hook("not json")
    # json's own frames come later in the traceback: the line is the hook's call into it
    text = raised(hook, caught.value)
    assert text.startswith(f"{tmp_path / 'recipe_meta.py'}:4: JSONDecodeError: Expecting value")


def test_verdict_fails_on_false_or_a_raise_and_passes_on_anything_else(tmp_path: Path) -> None:
    (tmp_path / "recipe_meta.py").write_text(
        "def READY_PROBE(ctx):\n    if ctx == 'boom':\n        raise OSError('no db')\n"
        "    return ctx\n"
    )
    hook = meta.load(tmp_path).READY_PROBE
    assert hook is not None
    assert verdict(hook, None, seconds=5) == (
        True,
        "",
    )  # None is not False: a probe may return nothing
    assert verdict(hook, False, seconds=5) == (False, "returned False")
    passed, why = verdict(hook, "boom", seconds=5)
    assert not passed
    assert why == f"raised at {tmp_path / 'recipe_meta.py'}:3: OSError: no db"


def test_signature_check_names_definition_site() -> None:
    def pre_backup(ctx: object, extra: object) -> None:
        pass

    with pytest.raises(MetaError) as caught:
        check_hook_signature(pre_backup, ("ctx",), "pre_backup")
    line = pre_backup.__code__.co_firstlineno
    assert str(caught.value).startswith(f"{__file__}:{line}: pre_backup must take (ctx)")


def test_signature_check_refuses_uninspectable_callables() -> None:
    with pytest.raises(MetaError, match="must take"):
        check_hook_signature(len, ("ctx",), "READY_PROBE")


class _EchoHost(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = json.dumps({"host": self.headers["Host"], "path": self.path}).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def echo_url() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _EchoHost)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def make_ctx(base_url: str, tmp_path: Path) -> HookCtx:
    return HookCtx(
        recipe="demo",
        app="demo_x1_ccci_test",
        domain="demo-x1.ccci.localhost",
        base_url=base_url,
        op="install",
        meta=meta.RecipeMeta(),
        run_dir=tmp_path,
    )


def test_ctx_http_sends_the_app_domain_as_host(echo_url: str, tmp_path: Path) -> None:
    ctx = make_ctx(echo_url, tmp_path)
    answer = ctx.get("/status?x=1")
    assert answer.status_code == 200
    assert answer.json() == {"host": "demo-x1.ccci.localhost", "path": "/status?x=1"}


def test_ctx_is_frozen(tmp_path: Path) -> None:
    ctx = make_ctx("http://127.0.0.1:1", tmp_path)
    with pytest.raises(AttributeError):
        ctx.domain = "other"  # type: ignore[misc]


def test_the_repr_of_a_ctx_redacts_secret_shaped_env_values(tmp_path: Path) -> None:
    ctx = HookCtx(
        recipe="r",
        app="s",
        domain="d",
        base_url="http://127.0.0.1:9",
        op="custom",
        meta=meta.RecipeMeta(),
        run_dir=tmp_path,
        env={"DB_PASSWORD": "hunter2-hunter2", "API_KEY": "k-123456789", "DOMAIN": "d"},
    )
    shown = repr(ctx)
    assert "hunter2" not in shown
    assert "k-123456789" not in shown
    assert "'DOMAIN': 'd'" in shown
    assert "'DB_PASSWORD': '***'" in shown
