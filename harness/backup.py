"""Backups and restores as Co-op Cloud's backup-bot makes them, and proof that data survives.

Which data (backup-bot's labels, on any service): ``backupbot.backup=true`` backs up every
volume the service mounts; ``backupbot.backup.volumes.<vol>=false`` leaves one out;
``backupbot.backup.volumes.<vol>.path=a,b`` keeps only those paths of it; the legacy
``backupbot.backup.path=/abs/path`` names paths inside the container. Hooks run inside the
running container of their service: ``backupbot.backup.pre-hook`` / ``post-hook`` around
the capture, ``backupbot.restore.pre-hook`` / ``post-hook`` around the restore.

The volumes are read and written by a short-lived helper container (busybox) that mounts
them, labelled with the run like everything else.
"""

from __future__ import annotations

import hashlib
import io
import logging
import tarfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from harness import engine
from harness.errors import DeployError, PlanError, RecipeError
from harness.plan import Plan
from harness.platform import RUN_LABEL

__all__ = ["BackupError", "Selection", "archive", "restore", "selections"]

log = logging.getLogger(__name__)

HELPER_IMAGE = "cc-ci/busybox:bookworm"
MARKER = ".ccci-marker"


class BackupError(RecipeError):
    """A backup or restore did not capture or bring back the data it should have."""


@dataclass(frozen=True)
class Selection:
    """What backup-bot takes from one service."""

    service: str
    volumes: dict[str, tuple[str, ...]]  # volume key -> paths in it ("" = all of it)
    hooks: dict[str, str] = field(default_factory=dict)  # backup.pre-hook, restore.post-hook…


def _volume_mounts(spec: Mapping[str, Any]) -> dict[str, str]:
    """volume key -> mount target of a service's named volumes."""
    return {
        m["source"]: m["target"]
        for m in spec.get("volumes") or ()
        if isinstance(m, dict) and m.get("type") == "volume" and m.get("source")
    }


def selections(plan: Plan) -> list[Selection]:
    found = []
    for service, labels in plan.backup.items():
        if str(labels.get("backupbot.backup", "")).lower() != "true":
            continue
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
    plan: Plan,
    run_id: str,
    volumes: list[str],
    script: str,
    upload: bytes | None = None,
    download: str | None = None,
) -> bytes:
    """Run ``script`` in a helper container with ``volumes`` at /v/<key>; its stdout, or the
    file ``download`` it wrote (binary data cannot travel through logs: they are text)."""
    client = engine.client()
    binds = {volume_name(plan, key): {"bind": f"/v/{key}", "mode": "rw"} for key in volumes}
    container = client.containers.create(
        HELPER_IMAGE, ["sh", "-c", script], volumes=binds, labels={RUN_LABEL: run_id}
    )
    try:
        if upload is not None:
            container.put_archive("/", upload)
        container.start()
        status = container.wait(timeout=300)
        if status.get("StatusCode"):
            err = container.logs(stdout=False, stderr=True).decode(errors="replace").strip()
            raise DeployError(f"helper on {', '.join(binds)} failed: {err.splitlines()[-1:]}")
        if download is None:
            return bytes(container.logs(stdout=True, stderr=False))
        stream, _ = container.get_archive(download)
        with tarfile.open(fileobj=io.BytesIO(b"".join(stream))) as tar:
            member = tar.extractfile(PurePosixPath(download).name)
            assert member is not None
            return member.read()
    finally:
        container.remove(force=True)


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


def write_marker(plan: Plan, run_id: str, text: str) -> list[str]:
    """Write ``text`` into a marker file in every data directory; the ones written."""
    keys, places = locations(plan)
    if not keys:
        return []
    script = "; ".join(
        f"[ -d /v/{loc} ] && printf %s '{text}' >/v/{loc}/{MARKER} && echo {loc}" for loc in places
    )
    return _helper(plan, run_id, keys, script + "; true").decode().split()


def read_markers(plan: Plan, run_id: str, places: list[str]) -> dict[str, str]:
    keys = sorted({place.split("/")[0] for place in places})
    script = "; ".join(
        f"printf '%s=' {loc}; cat /v/{loc}/{MARKER} 2>/dev/null; echo" for loc in places
    )
    lines = _helper(plan, run_id, keys, script).decode().splitlines()
    return dict(line.split("=", 1) for line in lines if "=" in line)


@dataclass(frozen=True)
class Archive:
    path: Path
    sha256: str
    size: int
    members: dict[str, int]  # archived file -> size


def archive(plan: Plan, run_id: str, selection: Selection, dest: Path) -> Archive:
    """tar.gz of the selected paths of each volume, as <volume key>/<path> in the archive."""
    keys = list(selection.volumes)
    paths = [f"{key}/{p}" if p else key for key, ps in selection.volumes.items() for p in ps]
    data = _helper(
        plan,
        run_id,
        keys,
        f"cd /v && tar czf /backup.tar.gz {' '.join(paths)}",
        download="/backup.tar.gz",
    )
    dest.write_bytes(data)
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        members = {m.name: m.size for m in tar.getmembers() if m.isfile()}
    return Archive(dest, hashlib.sha256(data).hexdigest(), len(data), members)


def check_usable(found: Archive, selection: Selection) -> None:
    """A green backup command proves nothing: every selected path must hold data."""
    for key, paths in selection.volumes.items():
        for path in paths:
            name = f"{key}/{path}" if path else key
            inside = {
                m: s for m, s in found.members.items() if m == name or m.startswith(name + "/")
            }
            if not inside:
                raise BackupError(f"backup of {selection.service} captured nothing at {name}")
            if not any(size for member, size in inside.items() if not member.endswith(MARKER)):
                raise BackupError(
                    f"backup of {selection.service} captured only empty files at {name}: "
                    + ", ".join(f"{m} ({s} bytes)" for m, s in inside.items())
                )


def restore(plan: Plan, run_id: str, selection: Selection, found: Archive) -> None:
    """Put the archive back: the selected paths are cleared first, so data written after the
    backup is gone, as a restore promises."""
    keys = list(selection.volumes)
    clear = " ".join(
        f"/v/{key}/{p}" if p else f"/v/{key}/* /v/{key}/.[!.]*"
        for key, ps in selection.volumes.items()
        for p in ps
    )
    upload = io.BytesIO()
    with tarfile.open(fileobj=upload, mode="w") as tar:
        tar.add(found.path, arcname="ccci-restore.tar.gz")
    _helper(
        plan,
        run_id,
        keys,
        f"rm -rf {clear}; tar xzf /ccci-restore.tar.gz -C /v",
        upload=upload.getvalue(),
    )
