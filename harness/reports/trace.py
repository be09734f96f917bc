"""trace.json: nested spans run → tier → step, each with its time, records and context.

A ``Tracer`` is also a logging handler: every log record emitted inside a span is kept in
that span, so the trace reads as the run's story. It is rewritten atomically as spans end.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from harness import redact
from harness.reports import progress
from harness.reports.results import write_json

__all__ = ["Span", "Tracer"]


@dataclass
class Span:
    name: str
    start: str
    context: dict[str, Any] = field(default_factory=dict)
    duration: float | None = None
    status: str = "running"
    records: list[str] = field(default_factory=list)
    children: list[Span] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "start": self.start,
            "duration": self.duration,
            "status": self.status,
            "context": self.context,
            "records": self.records,
            "children": [c.as_dict() for c in self.children],
        }


class Tracer(logging.Handler):
    def __init__(self, path: Path, name: str, **context: Any) -> None:
        super().__init__(level=logging.INFO)
        self.path = path
        self.root = Span(name, datetime.now(UTC).isoformat(), context)
        self._stack = [self.root]
        self._began = [time.monotonic()]

    @contextlib.contextmanager
    def span(self, name: str, **context: Any) -> Iterator[Span]:
        progress.step(name)
        span = Span(name, datetime.now(UTC).isoformat(), context)
        self._stack[-1].children.append(span)
        self._stack.append(span)
        self._began.append(time.monotonic())
        try:
            yield span
            span.status = "ok"
        except BaseException as exc:
            span.status = f"error: {type(exc).__name__}"
            raise
        finally:
            span.duration = round(time.monotonic() - self._began.pop(), 3)
            self._stack.pop()
            self.save()

    def emit(self, record: logging.LogRecord) -> None:
        self._stack[-1].records.append(f"{record.levelname} {record.name}: {record.getMessage()}")

    def close_run(self, status: str) -> None:
        self.root.status = status
        self.root.duration = round(time.monotonic() - self._began[0], 3)
        self.save()

    def save(self) -> None:
        write_json(self.path, redact.scrub(self.root.as_dict()))
