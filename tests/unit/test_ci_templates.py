"""The pipeline templates in docs/ci/ against each engine's published schema (as vendored
by check-jsonschema from the engines' repositories / SchemaStore), and the rules a
template must keep so a job's variables never become part of a command line."""

from __future__ import annotations

import copy
import importlib.resources
import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from harness.serve.dispatch import Dispatcher, job_variables
from harness.serve.runner import Runner

DOCS = Path(__file__).resolve().parents[2] / "docs" / "ci"
TEMPLATES = {"woodpecker": "woodpecker.yml", "drone": "drone.yml"}
SCHEMAS = {"woodpecker": "woodpecker-ci.json", "drone": "drone-ci.json"}


def _schema(engine: str) -> dict[str, Any]:
    vendored = importlib.resources.files("check_jsonschema") / "builtin_schemas" / "vendor"
    schema: dict[str, Any] = json.loads((vendored / SCHEMAS[engine]).read_text())
    return schema


def _errors(engine: str, doc: Any) -> list[str]:
    schema = _schema(engine)
    validator = jsonschema.validators.validator_for(schema)(schema)
    return [
        f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(doc)
    ]


def _template(engine: str) -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load((DOCS / TEMPLATES[engine]).read_text())
    return doc


def _steps(doc: dict[str, Any]) -> list[dict[str, Any]]:
    steps = doc["steps"]
    return list(steps.values()) if isinstance(steps, dict) else list(steps)


@pytest.mark.parametrize("engine", sorted(TEMPLATES))
def test_the_template_is_valid_by_the_engines_schema(engine: str) -> None:
    assert _errors(engine, _template(engine)) == []


@pytest.mark.parametrize(
    ("engine", "break_it"),
    [
        ("woodpecker", lambda d: _steps(d)[0].pop("image")),
        ("woodpecker", lambda d: d.update(pipeline=d.pop("steps"))),  # the pre-1.0 key
        ("drone", lambda d: d.update(type="swarm")),
        ("drone", lambda d: d["trigger"].update(event="comment")),
    ],
    ids=["step-without-image", "pipeline-key", "unknown-type", "unknown-event"],
)
def test_a_change_the_engine_would_reject_fails_here(engine: str, break_it: Any) -> None:
    doc = copy.deepcopy(_template(engine))
    break_it(doc)
    assert _errors(engine, doc), "the schema let a broken template through"


@pytest.mark.parametrize("engine", sorted(TEMPLATES))
def test_the_template_runs_only_the_dispatched_job_and_pastes_nothing(
    engine: str, tmp_path: Path
) -> None:
    doc = _template(engine)
    events = doc["when"][0]["event"] if engine == "woodpecker" else doc["trigger"]["event"]
    assert events in (["manual"], "manual", ["custom"], "custom")  # never a push or a PR
    commands = [c for step in _steps(doc) for c in step["commands"]]
    assert commands[-1] == "cc-ci job"
    job = job_variables("r", "https://forge/o/r.git", "0" * 40, [], "0" * 40, None, None, False)
    runner = Runner(tmp_path, tmp_path, tmp_path, 60, 60)
    dispatcher = Dispatcher(None, "o/cc-ci", "main", runner)  # type: ignore[arg-type]
    carried = set(dispatcher.variables(1, job))
    for command in commands:
        # Every `$` is `$$` (the shell's, at run time), never the engine's substitution.
        assert not re.search(r"(?<!\$)\$(?!\$)\{?[A-Z]", command.replace("$$", "")), command
        for name in re.findall(r"\$\$\{?(\w+)", command):
            assert name in carried, f"{name} is not a variable the service sets"
        assert re.fullmatch(r'echo "[^`]*"|cc-ci job', command), command
