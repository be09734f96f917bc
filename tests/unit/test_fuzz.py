"""The parsers that read recipe text, fuzzed: whatever a recipe repo holds, they answer
with a value or one of cc-ci's own errors — never a crash of their own."""

from __future__ import annotations

import string

from hypothesis import given, settings
from hypothesis import strategies as st

from harness.errors import PlanError
from harness.lifecycle.backup import selections
from harness.recipe.appenv import expand, parse_env
from harness.recipe.catalogue import parse_version
from harness.recipe.plan import Plan

NAME = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,12}", fullmatch=True)
FUZZ = settings(max_examples=300, deadline=None)


@FUZZ
@given(st.text())
def test_env_files_of_any_text_parse(text: str) -> None:
    try:
        parsed = parse_env(text)
    except PlanError as exc:  # an unterminated quote, named by its line
        message = str(exc)
    else:
        message = ""
        assert all(name.isidentifier() for name in parsed.values)
        assert set(parsed.modifiers) <= set(parsed.values)
    assert message == "" or "unterminated quoted value" in message


@FUZZ
@given(NAME, st.text(alphabet=string.printable.replace("\n", "").replace("\r", "")))
def test_a_quoted_value_reads_back_as_written(name: str, value: str) -> None:
    if "\x0b" in value or "\x0c" in value:
        return
    if "'" not in value:  # single quotes: literal, whatever is inside
        assert parse_env(f"{name}='{value}'\n").values[name] == value
    if not set(value) & set('"$\\'):  # double quotes: as written, but for escapes and $
        assert parse_env(f'{name}="{value}"\n').values[name] == value


@FUZZ
@given(st.text(), st.dictionaries(NAME, st.text(max_size=8), max_size=4))
def test_expansion_of_any_text_never_fails(value: str, env: dict[str, str]) -> None:
    assert isinstance(expand(value, env), str)


@FUZZ
@given(st.text())
def test_any_tag_is_a_version_or_none(tag: str) -> None:
    version = parse_version(tag)
    assert version is None or (len(version) == 3 and all(n >= 0 for n in version))


@FUZZ
@given(
    st.integers(0, 10**6),
    st.integers(0, 10**6),
    st.integers(0, 10**6),
    st.from_regex(r"[0-9A-Za-z.\-]{1,12}", fullmatch=True),
)
def test_release_tags_read_back(major: int, minor: int, patch: int, upstream: str) -> None:
    assert parse_version(f"{major}.{minor}.{patch}+{upstream}") == (major, minor, patch)


LABEL_KEYS = st.sampled_from(
    [
        "backupbot.backup",
        "backupbot.backup.path",
        "backupbot.backup.volumes.data",
        "backupbot.backup.volumes.data.path",
        "backupbot.backup.volumes.other.path",
        "backupbot.backup.pre-hook",
        "backupbot.restore.post-hook",
    ]
)


@FUZZ
@given(st.dictionaries(LABEL_KEYS, st.text(max_size=20) | st.sampled_from(["true", "false"])))
def test_backup_labels_of_any_value_select_or_refuse(labels: dict[str, str]) -> None:
    plan = Plan(
        recipe="r",
        stack="s",
        domain="d",
        compose_files=("compose.yml",),
        config={
            "services": {
                "app": {"volumes": [{"type": "volume", "source": "data", "target": "/data"}]}
            }
        },
        images={"app": "x:1"},
        secrets=(),
        configs={},
        volumes=("data",),
        web=None,
        backup={"app": labels},
        version_label=None,
        version_service=None,
        timeout=None,
    )
    refused = ""
    try:
        chosen = selections(plan)
    except PlanError as exc:
        refused, chosen = str(exc), []
    assert not refused or "backupbot.backup.path" in refused  # a legacy path on no volume
    for selection in chosen:
        assert set(selection.volumes) <= {"data"}
