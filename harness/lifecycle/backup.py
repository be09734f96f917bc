"""Backups and restores as Co-op Cloud's backup-bot makes them, and proof that data survives.

Which data (backup-bot's labels, on any service): ``backupbot.backup=true`` backs up every
volume the service mounts; ``backupbot.backup.volumes.<vol>=false`` leaves one out;
``backupbot.backup.volumes.<vol>.path=a,b`` keeps only those paths of it; the legacy
``backupbot.backup.path=/abs/path`` names paths inside the container. Hooks run inside the
running container of their service: ``backupbot.backup.pre-hook`` / ``post-hook`` around
the capture, ``backupbot.restore.pre-hook`` / ``post-hook`` around the restore.

The volumes are read and written by a short-lived helper container (busybox) that mounts
them, labelled with the run like everything else. Its shell lines are built from what the
recipe's labels say (paths), so every such word is quoted (``shlex.quote``).
"""

from __future__ import annotations

import hashlib
import io
import logging
import re
import shlex
import tarfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from harness.errors import PlanError, RecipeError, last_line
from harness.lifecycle.labels import run_labels
from harness.recipe.plan import Plan
from harness.swarm import NAMESPACE_LABEL

if TYPE_CHECKING:
    from harness.lifecycle.context import Swarm

__all__ = [
    "Archive",
    "BackupError",
    "Selection",
    "archive",
    "create_volumes",
    "read_markers",
    "restore",
    "selections",
    "write_marker",
]

log = logging.getLogger(__name__)

MARKER = ".ccci-marker"


class BackupError(RecipeError):
    """A backup or restore did not capture or bring back the data it should have."""


@dataclass(frozen=True)
class Selection:
    """What backup-bot takes from one service."""

    service: str
    volumes: dict[str, tuple[str, ...]]  # volume key -> paths in it ("" = all of it)
    hooks: dict[str, str] = field(default_factory=dict)  # backup.pre-hook, restore.post-hook…

    @property
    def restore_hooks(self) -> bool:
        """Whether restoring it runs hooks, which need its running container."""
        return any(name.startswith("restore.") for name in self.hooks)


def _volume_mounts(spec: Mapping[str, Any]) -> dict[str, str]:
    """volume key -> mount target of a service's named volumes."""
    return {
        m["source"]: m["target"]
        for m in spec.get("volumes") or ()
        if isinstance(m, dict) and m.get("type") == "volume" and m.get("source")
    }


# The labels backup-bot-two reads; any other backupbot.* label is refused by name, never
# ignored (a backup that skips what the recipe asked for is not its backup).
_KNOWN = re.compile(
    r"^backupbot\.(backup|backup\.path|(backup|restore)\.(pre|post)-hook"
    r"|backup\.volumes\.[^.]+(\.path)?)$"
)
_OLDER = {
    "backupbot.backup.command": "an older backup-bot's label: its command is not run; dump"
    " with backupbot.backup.pre-hook and name the dump with backupbot.backup.path",
}


def selections(plan: Plan) -> list[Selection]:
    found = []
    for service, labels in plan.backup.items():
        if str(labels.get("backupbot.backup", "")).lower() != "true":
            continue
        for label in labels:
            if not _KNOWN.match(label):
                why = _OLDER.get(label, "not a label backup-bot-two reads")
                raise PlanError(f"service {service}: backup label {label}: {why}")
        mounts = _volume_mounts(plan.config["services"][service])
        volumes: dict[str, tuple[str, ...]] = dict.fromkeys(mounts, ("",))
        for key in mounts:
            if str(labels.get(f"backupbot.backup.volumes.{key}", "")).lower() == "false":
                volumes.pop(key)
            elif paths := labels.get(f"backupbot.backup.volumes.{key}.path"):
                volumes[key] = tuple(p.strip().strip("/") for p in paths.split(",") if p.strip())
        if legacy := labels.get("backupbot.backup.path"):
            volumes = {}
            for path in (p.strip() for p in legacy.split(",") if p.strip()):
                inside = [
                    (k, t) for k, t in mounts.items() if PurePosixPath(path).is_relative_to(t)
                ]
                if not inside:
                    raise PlanError(f"backupbot.backup.path {path} of {service} is on no volume")
                key, target = max(inside, key=lambda kt: len(kt[1]))
                rel = str(PurePosixPath(path).relative_to(target))
                volumes.setdefault(key, ())
                volumes[key] += ("" if rel == "." else rel,)
        hooks = {
            name: labels[f"backupbot.{name}"]
            for name in (
                "backup.pre-hook",
                "backup.post-hook",
                "restore.pre-hook",
                "restore.post-hook",
            )
            if labels.get(f"backupbot.{name}")
        }
        found.append(Selection(service, volumes, hooks))
    return found


def volume_name(plan: Plan, key: str) -> str:
    spec = (plan.config.get("volumes") or {}).get(key) or {}
    return str(spec.get("name") or f"{plan.stack}_{key}")


def _helper(
    swarm: Swarm,
    plan: Plan,
    run_id: str,
    keys: list[str],
    script: str,
    *,
    upload: bytes | None = None,
    download: str | None = None,
) -> bytes:
    """Run ``script`` with the volumes ``keys`` at /v/<key>; its stdout, or the file
    ``download`` it wrote. A failing script is the recipe's data not being what its
    labels say: a ``BackupError``."""
    done = swarm.run_helper(
        script,
        {volume_name(plan, key): f"/v/{key}" for key in keys},
        run_labels(run_id),
        upload=upload,
        download=download,
    )
    if done.exit_code != 0:
        raise BackupError(
            f"helper on {', '.join(keys)} of {plan.stack} exited {done.exit_code}:"
            f" {last_line(done.stderr, 'no output')}"
        )
    if download is not None:
        assert done.download is not None
        return done.download
    return done.stdout


def _at(place: str, *more: str) -> str:
    """A quoted path under /v for a shell line: ``place`` comes from the recipe's labels."""
    return shlex.quote("/".join(("/v", place, *more)))


def locations(plan: Plan) -> tuple[list[str], list[str]]:
    """Where data markers go — (volume keys to mount, <key>[/<path>] locations): the
    backed-up volumes and paths, or every volume when nothing is backed up."""
    chosen = selections(plan)
    if not chosen:
        keys = list(plan.volumes)
        return keys, keys
    keys = sorted({key for sel in chosen for key in sel.volumes})
    places = [f"{k}/{p}" if p else k for sel in chosen for k, ps in sel.volumes.items() for p in ps]
    return keys, places


def write_marker(swarm: Swarm, plan: Plan, run_id: str, text: str) -> list[str]:
    """Write ``text`` into a marker file in every data directory; the ones written."""
    keys, places = locations(plan)
    if not keys:
        return []
    script = "; ".join(
        f"[ -d {_at(loc)} ] && printf %s {shlex.quote(text)} >{_at(loc, MARKER)}"
        f" && echo {shlex.quote(loc)}"
        for loc in places
    )
    return _helper(swarm, plan, run_id, keys, script + "; true").decode().splitlines()


def read_markers(swarm: Swarm, plan: Plan, run_id: str, places: list[str]) -> dict[str, str]:
    keys = sorted({place.split("/")[0] for place in places})
    script = "; ".join(
        f"printf '%s=' {shlex.quote(loc)}; cat {_at(loc, MARKER)} 2>/dev/null; echo"
        for loc in places
    )
    lines = _helper(swarm, plan, run_id, keys, script).decode().splitlines()
    return dict(line.split("=", 1) for line in lines if "=" in line)


@dataclass(frozen=True)
class Archive:
    path: Path
    sha256: str
    size: int
    members: dict[str, int]  # archived file -> size


def _paths(selection: Selection) -> list[str]:
    return [f"{key}/{p}" if p else key for key, ps in selection.volumes.items() for p in ps]


def archive(swarm: Swarm, plan: Plan, run_id: str, selection: Selection, dest: Path) -> Archive:
    """tar.gz of the selected paths of each volume, as <volume key>/<path> in the archive."""
    paths = " ".join(shlex.quote(p) for p in _paths(selection))
    data = _helper(
        swarm,
        plan,
        run_id,
        list(selection.volumes),
        f"cd /v && tar czf /backup.tar.gz {paths}",
        download="/backup.tar.gz",
    )
    dest.write_bytes(data)
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        members = {m.name: m.size for m in tar.getmembers() if m.isfile()}
    return Archive(dest, hashlib.sha256(data).hexdigest(), len(data), members)


def check_usable(found: Archive, selection: Selection) -> None:
    """A green backup command proves nothing: every selected path must hold data."""
    for name in _paths(selection):
        inside = {m: s for m, s in found.members.items() if m == name or m.startswith(name + "/")}
        if not inside:
            raise BackupError(f"backup of {selection.service} captured nothing at {name}")
        if not any(size for member, size in inside.items() if not member.endswith(MARKER)):
            raise BackupError(
                f"backup of {selection.service} captured only empty files at {name}: "
                + ", ".join(f"{m} ({s} bytes)" for m, s in inside.items())
            )


def restore(swarm: Swarm, plan: Plan, run_id: str, selection: Selection, found: Archive) -> None:
    """Put the archive back: the selected paths are cleared first, so data written after the
    backup is gone, as a restore promises."""
    clear = " ".join(
        _at(key, p) if p else f"{_at(key)}/* {_at(key)}/.[!.]*"
        for key, ps in selection.volumes.items()
        for p in ps
    )
    upload = io.BytesIO()
    with tarfile.open(fileobj=upload, mode="w") as tar:
        tar.add(found.path, arcname="ccci-restore.tar.gz")
    _helper(
        swarm,
        plan,
        run_id,
        list(selection.volumes),
        f"rm -rf {clear}; tar xzf /ccci-restore.tar.gz -C /v",
        upload=upload.getvalue(),
    )


def create_volumes(swarm: Swarm, plan: Plan, run_id: str, keys: list[str]) -> None:
    """Create an app's volumes before its first deploy (to restore into them), labelled as
    the stack would label them, so the deploy takes them and teardown finds them."""
    for key in keys:
        swarm.create_volume(
            volume_name(plan, key), {**run_labels(run_id), NAMESPACE_LABEL: plan.stack}
        )
