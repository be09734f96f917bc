"""The redactor: every known secret value masked, in text, documents, log records, reports."""

from __future__ import annotations

import base64
import json
import logging
import warnings
from pathlib import Path

import pytest

from harness import plugin, redact
from harness.redact import MASK, MIN_LENGTH
from harness.reports.results import Results, write_json
from harness.reports.trace import Tracer
from harness.serve.forge import Forge
from tests.fake_gitea import TOKEN, FakeGitea


def test_a_registered_value_is_masked_as_it_is_escaped_and_encoded() -> None:
    value = 'pa"ss\\word-0123'
    assert redact.register(value)
    encoded = base64.b64encode(value.encode()).decode()
    text = f"raw {value}; json {json.dumps({'p': value})}; b64 {encoded}; again {value}"
    assert redact.redact(text, environ={}) == (
        f'raw {MASK}; json {{"p": "{MASK}"}}; b64 {MASK}; again {MASK}'
    )


def test_a_value_shorter_than_the_bound_is_not_masked() -> None:
    short = "x" * (MIN_LENGTH - 1)
    assert not redact.register(short)
    assert redact.redact(f"a {short} b", environ={}) == f"a {short} b"
    assert redact.redact("token abc", environ={"CCCI_SECRET_K_A": "abc"}) == "token abc"


def test_the_operators_values_are_masked_from_the_environment() -> None:
    environ = {
        "CCCI_SECRET_KINTO_DB_PASSWORD": "operator-password",
        **{name: f"{name.lower()}-value" for name in redact.OPERATOR_ENV},
        "HOME": "/root/not-a-secret",
    }
    text = " ".join(environ.values())
    assert redact.redact(text, environ=environ) == " ".join(
        [MASK] * (len(environ) - 1) + ["/root/not-a-secret"]
    )


def test_a_value_containing_another_is_masked_whole() -> None:
    redact.register("inner-value")
    redact.register("outer-inner-value-outer")
    assert redact.redact("[outer-inner-value-outer]", environ={}) == f"[{MASK}]"


def test_results_and_traces_are_written_redacted(tmp_path: Path) -> None:
    redact.register("written-secret-1")
    results = Results(path=tmp_path / "results.json", recipe="r", run_id="x")
    results.customization = {"reason": "boom written-secret-1", "written-secret-1": ["/x"]}
    results.save()
    tracer = Tracer(tmp_path / "trace.json", "run r written-secret-1", run_id="x")
    tracer.close_run("finished")
    for name in ("results.json", "trace.json"):
        assert "written-secret-1" not in (tmp_path / name).read_text(), name
    saved = json.loads((tmp_path / "results.json").read_text())["customization"]
    assert saved == {"reason": f"boom {MASK}", MASK: ["/x"]}


def test_a_data_file_the_harness_reads_back_keeps_its_values(tmp_path: Path) -> None:
    redact.register("a-dependencys-client-secret")  # generated for the provider
    write_json(tmp_path / "deps.json", {"client_secret": "a-dependencys-client-secret"})
    read = json.loads((tmp_path / "deps.json").read_text())
    assert read == {"client_secret": "a-dependencys-client-secret"}  # the dependant needs it


def test_every_log_record_is_masked_as_it_is_made(caplog: pytest.LogCaptureFixture) -> None:
    redact.register("logged-secret-1")
    before = logging.getLogRecordFactory()
    redact.install_log_filter()
    redact.install_log_filter()  # once is enough, twice is harmless
    try:
        raise ValueError("in an exception: logged-secret-1")
    except ValueError:
        logging.getLogger("harness.anything").exception("args: %s", "logged-secret-1")
    finally:
        logging.setLogRecordFactory(before)
    (record,) = caplog.records
    assert record.getMessage() == f"args: {MASK}"
    assert "logged-secret-1" not in caplog.text
    assert f"in an exception: {MASK}" in caplog.text


def test_a_recipe_items_report_is_masked_whatever_it_holds() -> None:
    """The plugin's report hook: a failure's text, captured output and log sections, a
    designed failure's reason, a skip's reason."""
    redact.register("reported-secret-1")
    failed = pytest.TestReport(
        "recipes/demo::install",
        ("recipes/demo", None, "demo::install"),
        {},
        "failed",
        "ConvergeError: service app is crash-looping\nlast log lines:\nreported-secret-1",
        "call",
        sections=[("Captured log call", "WARNING x: reported-secret-1")],
    )
    failed.wasxfail = "designed failure: reported-secret-1"
    plugin._redact_report(failed)
    assert (
        failed.longrepr == f"ConvergeError: service app is crash-looping\nlast log lines:\n{MASK}"
    )
    assert failed.sections == [("Captured log call", f"WARNING x: {MASK}")]
    assert failed.wasxfail == f"designed failure: {MASK}"
    skipped = pytest.TestReport(
        "n", ("p", None, "n"), {}, "skipped", ("p", 1, "Skipped: reported-secret-1"), "call"
    )
    plugin._redact_report(skipped)
    assert skipped.longrepr == ("p", 1, f"Skipped: {MASK}")


def test_a_warning_is_masked_before_the_warnings_summary_keeps_it() -> None:
    import harness.collect  # noqa: F401  (a recipe session: the hook acts)

    redact.register("warned-secret-1")
    said = warnings.WarningMessage(
        pytest.PytestWarning("recipes/demo::upgrade unverified: warned-secret-1"),
        pytest.PytestWarning,
        "x.py",
        1,
    )
    plugin.pytest_warning_recorded(said)
    assert isinstance(said.message, pytest.PytestWarning)
    assert str(said.message) == f"recipes/demo::upgrade unverified: {MASK}"


def test_what_is_posted_to_the_forge_is_masked(monkeypatch: pytest.MonkeyPatch) -> None:
    """Comments and statuses, on the fake Gitea (the forge cannot run here)."""
    monkeypatch.setenv("CCCI_SECRET_KINTO_SMTP_PASSWORD", "operator-smtp-password")
    monkeypatch.setenv("CCCI_WEBHOOK_SECRET", "operator-webhook-secret")
    fake = FakeGitea().start()
    try:
        repo = fake.add_repo("o", "kinto", "http://127.0.0.1:1/o/kinto.git").full_name
        forge = Forge(fake.url, TOKEN)
        said = "install: operator-smtp-password, operator-webhook-secret"
        comment = forge.comment(repo, 1, said)
        forge.edit_comment(repo, comment, f"{said} again")
        forge.status(repo, "a" * 40, "failure", said, "http://127.0.0.1:1/run", "cc-ci")
        forge.close()
    finally:
        fake.stop()
    masked = f"install: {MASK}, {MASK}"
    assert fake.comments[comment]["_edits"] == [masked]
    assert fake.comments[comment]["body"] == f"{masked} again"
    assert [s["description"] for s in fake.statuses_of("a" * 40)] == [masked]


def test_a_secret_is_masked_in_the_forms_an_app_writes_it_in() -> None:
    import html
    import urllib.parse

    secret = "p@ss/w0rd&x=<y>"
    redact.register(secret)
    forms = [
        urllib.parse.quote(secret, safe=""),  # in a DSN
        urllib.parse.quote_plus(secret),
        json.dumps(secret)[1:-1].replace("/", "\\/"),  # PHP's json_encode
        html.escape(secret),  # in a page
    ]
    for form in forms:
        assert redact.redact(f"db: {form}!", environ={}) == f"db: {MASK}!", form


def test_the_browsers_blocked_list_is_redacted_as_it_is_written(tmp_path: Path) -> None:
    from types import SimpleNamespace

    from harness.lifecycle import browser

    redact.register("exfiltrated-secret-7")
    ctx = SimpleNamespace(run_dir=tmp_path, app="a")
    browser._block(ctx, "http://exfil.invalid/exfiltrated-secret-7/pixel.png")
    listed = (tmp_path / browser.BLOCKED_FILE).read_text()
    assert "exfiltrated-secret-7" not in listed
    assert MASK in listed
