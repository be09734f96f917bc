"""cc-ci writes its own process environment only where a child process must read it — and
today nowhere: a run's op_state and DEPS are values of the run, and every child process
gets the environment it needs from ``harness.proc.child_env``, never from a variable set
in cc-ci's own. A write found here fails with its file and line; one a child process truly
needs goes into ``CHILD_PROCESS_WRITES`` with the reason."""

from __future__ import annotations

import re
from pathlib import Path

import harness

HARNESS = Path(harness.__file__).parent

# (file relative to harness/, the written line stripped) -> the child process that reads it
CHILD_PROCESS_WRITES: dict[tuple[str, str], str] = {}

WRITE = re.compile(
    r"environ\s*\[[^]]+\]\s*=(?!=)"  # os.environ[k] = v
    r"|environ\s*\.\s*(update|setdefault|pop|popitem|clear)\s*\("
    r"|\bdel\s+(os\.)?environ\b"
    r"|\b(putenv|unsetenv)\s*\("
)


def writes(text: str) -> list[tuple[int, str]]:
    return [(n, line.strip()) for n, line in enumerate(text.splitlines(), 1) if WRITE.search(line)]


def test_the_pattern_finds_every_form_of_write() -> None:
    forms = [
        'os.environ["X"] = "1"',
        "os.environ.update(X='1')",
        'os.environ.setdefault("X", "1")',
        'os.environ.pop("X", None)',
        "os.environ.clear()",
        'del os.environ["X"]',
        'os.putenv("X", "1")',
        'os.unsetenv("X")',
    ]
    assert [n for n, _ in writes("\n".join(forms))] == list(range(1, len(forms) + 1))
    assert writes('value = os.environ["X"]\nif os.environ.get("X") == "1": pass\n') == []


def test_harness_writes_no_environment_but_for_child_processes() -> None:
    found = {
        (str(path.relative_to(HARNESS)), line): number
        for path in sorted(HARNESS.rglob("*.py"))
        for number, line in writes(path.read_text())
    }
    unlisted = [f"harness/{f}:{n}: {line}" for (f, line), n in found.items()]
    unlisted = [
        u for u, key in zip(unlisted, found, strict=True) if key not in CHILD_PROCESS_WRITES
    ]
    assert unlisted == [], "os.environ written for no child process:\n" + "\n".join(unlisted)
    stale = [key for key in CHILD_PROCESS_WRITES if key not in found]
    assert stale == [], f"listed writes no longer in harness/: {stale}"
