"""Reading backup-bot's labels: which volumes and paths a backup takes, and its hooks."""

from __future__ import annotations

import re

import pytest

from harness.errors import PlanError
from harness.lifecycle.backup import Selection, selections
from harness.recipe.plan import Plan


def plan_with(labels: dict[str, str], mounts: dict[str, str]) -> Plan:
    service = {"volumes": [{"type": "volume", "source": k, "target": t} for k, t in mounts.items()]}
    return Plan(
        recipe="r",
        stack="s",
        domain="d",
        compose_files=("compose.yml",),
        config={"services": {"app": service}, "volumes": {k: {} for k in mounts}},
        images={"app": "x"},
        secrets=(),
        configs={},
        volumes=tuple(mounts),
        web=None,
        backup={"app": labels},
        version_label=None,
        version_service=None,
        timeout=None,
    )


MOUNTS = {"data": "/var/lib/app", "cache": "/cache", "db": "/var/lib/postgresql/data"}


@pytest.mark.parametrize(
    ("labels", "volumes"),
    [
        ({"backupbot.backup": "true"}, {"data": ("",), "cache": ("",), "db": ("",)}),
        (
            {"backupbot.backup": "true", "backupbot.backup.volumes.cache": "false"},
            {"data": ("",), "db": ("",)},
        ),
        (
            {"backupbot.backup": "true", "backupbot.backup.volumes.db.path": "backup.sql, /dumps/"},
            {"data": ("",), "cache": ("",), "db": ("backup.sql", "dumps")},
        ),
        # the legacy label names paths inside the container; they map to their volume
        (
            {"backupbot.backup": "true", "backupbot.backup.path": "/var/lib/app/uploads,/cache"},
            {"data": ("uploads",), "cache": ("",)},
        ),
    ],
)
def test_volumes_and_paths_selected(
    labels: dict[str, str], volumes: dict[str, tuple[str, ...]]
) -> None:
    (selected,) = selections(plan_with(labels, MOUNTS))
    assert selected.volumes == volumes


def test_hooks_and_disabled_backups() -> None:
    labels = {
        "backupbot.backup": "true",
        "backupbot.backup.pre-hook": "/pg_backup.sh backup",
        "backupbot.restore.post-hook": "/pg_backup.sh restore",
    }
    (selected,) = selections(plan_with(labels, MOUNTS))
    assert selected == Selection(
        "app",
        dict.fromkeys(MOUNTS, ("",)),
        {
            "backup.pre-hook": "/pg_backup.sh backup",
            "restore.post-hook": "/pg_backup.sh restore",
        },
    )
    assert selections(plan_with({"backupbot.backup": "false"}, MOUNTS)) == []


def test_legacy_path_outside_every_volume_is_named() -> None:
    labels = {"backupbot.backup": "true", "backupbot.backup.path": "/etc/app"}
    with pytest.raises(PlanError, match=r"backupbot.backup.path /etc/app of app is on no volume"):
        selections(plan_with(labels, MOUNTS))


def test_a_legacy_absolute_path_is_mapped_onto_its_volume_as_backup_bot_did() -> None:
    target = next(iter(MOUNTS.values()))
    labels = {"backupbot.backup": "true", "backupbot.backup.path": f"{target}/db,{target}"}
    (selected,) = selections(plan_with(labels, MOUNTS))
    assert selected.volumes == {next(iter(MOUNTS)): ("db", "")}


@pytest.mark.parametrize(
    ("label", "says"),
    [
        ("backupbot.backup.command", "an older backup-bot's label: its command is not run"),
        ("backupbot.backup.volumes", "not a label backup-bot-two reads"),
        ("backupbot.restore.command", "not a label backup-bot-two reads"),
        ("backupbot.backup.pre_hook", "not a label backup-bot-two reads"),
    ],
)
def test_a_backup_label_cc_ci_does_not_read_is_refused_by_name(label: str, says: str) -> None:
    labels = {"backupbot.backup": "true", label: "pg_dump -f /tmp/x"}
    with pytest.raises(PlanError, match=rf"^service app: backup label {re.escape(label)}: "):
        selections(plan_with(labels, MOUNTS))
    with pytest.raises(PlanError, match=re.escape(says)):
        selections(plan_with(labels, MOUNTS))


@pytest.mark.parametrize(
    "hostile", ["a b", "x'; rm -rf / #", "$(touch /tmp/pwned)", "`id`", "data;reboot", "*"]
)
def test_label_paths_reach_the_helper_shell_as_one_word(hostile: str) -> None:
    import shlex

    from harness.lifecycle import backup

    assert shlex.split(backup._at(hostile, backup.MARKER)) == [f"/v/{hostile}/{backup.MARKER}"]
