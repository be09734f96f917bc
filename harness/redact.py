"""The one redactor: no secret value leaves cc-ci in anything it prints, logs, stores or posts.

It knows two kinds of values:

- the run's generated secrets, each ``register``-ed by ``deploy.create_secrets`` as it is
  made (kept for the process's life: masking a value of a finished run costs nothing);
- the operator's: every ``CCCI_SECRET_*`` value and the tokens in ``OPERATOR_ENV``, read
  from cc-ci's environment at each call, so a value set later is known too.

``redact(text)`` replaces each of them — as it is, JSON-escaped (an app's JSON log line),
URL-encoded (a DSN), HTML-escaped and base64-encoded — with ``MASK``. (Against an app that
means to show its own secrets no masking helps: it can put them on its page. The redactor
keeps an honest app's output clean, and the operator's values out of everything.) A value
shorter than ``MIN_LENGTH`` characters is not masked: it would blot out common words and
numbers all over the output, and is too weak to be worth it (``register`` says so, for the
caller to warn).

Where it is applied: ``LogFilter`` (every log record, as it is made: harness.log, the
records of trace.json, pytest's captured and live logs), ``Stack.evidence`` (the service
log lines a failure quotes), the plugin's report and warning hooks (the terminal, junit
XML), the writers of results.json and trace.json, the forge client (comments,
statuses) and the dispatcher's ``output.log``.
"""

from __future__ import annotations

import base64
import html
import json
import logging
import os
import urllib.parse
from collections.abc import Mapping
from typing import Any

__all__ = [
    "MASK",
    "MIN_LENGTH",
    "OPERATOR_ENV",
    "SECRET_ENV_PREFIX",
    "LogFilter",
    "install_log_filter",
    "redact",
    "register",
    "scrub",
]

MASK = "[secret]"
MIN_LENGTH = 6  # characters; a shorter value is not masked
SECRET_ENV_PREFIX = "CCCI_SECRET_"  # an operator-supplied secret of a recipe
OPERATOR_ENV = ("CCCI_FORGE_TOKEN", "CCCI_WEBHOOK_SECRET", "CCCI_CI_TOKEN")  # serve's own

_registered: set[str] = set()  # every form of every generated secret of this process


def _forms(value: str) -> set[str]:
    """``value`` as it may appear in output: as it is, JSON-escaped (PHP's ``\\/`` too),
    URL-encoded (a DSN), HTML-escaped, base64-encoded."""
    if len(value) < MIN_LENGTH:
        return set()
    encoded = base64.b64encode(value.encode()).decode()
    in_json = json.dumps(value)[1:-1]
    return {
        value,
        in_json,
        in_json.replace("/", "\\/"),
        urllib.parse.quote(value, safe=""),
        urllib.parse.quote_plus(value),
        html.escape(value),
        encoded,
        encoded.rstrip("="),
    }


def register(value: str) -> bool:
    """Mask ``value`` from now on; False when it is too short to be masked."""
    forms = _forms(value)
    _registered.update(forms)
    return bool(forms)


def _known(environ: Mapping[str, str]) -> list[str]:
    """Every form of every value to mask, longest first (a value that contains another is
    masked whole)."""
    operators = {
        form
        for name, value in environ.items()
        if name.startswith(SECRET_ENV_PREFIX) or name in OPERATOR_ENV
        for form in _forms(value)
    }
    return sorted(_registered | operators, key=len, reverse=True)


def _mask(text: str, known: list[str]) -> str:
    for value in known:
        if value in text:
            text = text.replace(value, MASK)
    return text


def redact(text: str, environ: Mapping[str, str] = os.environ) -> str:
    """``text`` with every known secret value replaced by ``MASK``."""
    return _mask(text, _known(environ))


def scrub(data: Any, environ: Mapping[str, str] = os.environ) -> Any:
    """A JSON-like document with every string in it (keys too) redacted; what is not a
    string, number, list or dict becomes its redacted ``str``."""
    known = _known(environ)

    def walk(item: Any) -> Any:
        if isinstance(item, str):
            return _mask(item, known)
        if isinstance(item, dict):
            return {walk(k): walk(v) for k, v in item.items()}
        if isinstance(item, list | tuple):
            return [walk(v) for v in item]
        if item is None or isinstance(item, bool | int | float):
            return item
        return _mask(str(item), known)

    return walk(data)


class LogFilter(logging.Filter):
    """Rewrites a record in place: its message (arguments merged) and its exception text
    redacted. Keeps every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except (TypeError, ValueError):  # bad arguments: the handler reports the record
            return True
        record.msg, record.args = redact(message), ()
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


def install_log_filter() -> None:
    """Pass every log record of the process through ``LogFilter`` as it is made, whichever
    logger makes it and whichever handlers take it (idempotent). A filter on a logger sees
    only that logger's own records, and handlers come and go (pytest adds its own per test
    phase): the record factory is the one place every record passes."""
    make = logging.getLogRecordFactory()
    if getattr(make, "ccci_redacting", False):
        return
    keep = LogFilter()

    def redacted(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = make(*args, **kwargs)
        keep.filter(record)
        return record

    redacted.ccci_redacting = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(redacted)
