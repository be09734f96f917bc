"""A short-lived helper container (busybox) on an app's volumes: how backups are read out
and restores written in, as backup-bot does it — labelled with the run like everything
else (and so is a volume its mount creates, one no task of the app made yet: teardown and
the janitor find it by the label), and without a network (it has nothing to reach; none
is set up per helper). The script is an argv for ``sh -c``; callers quote what they put
in it."""

from __future__ import annotations

import io
import tarfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import PurePosixPath

from harness.swarm.engine import client, translated

__all__ = ["HELPER_IMAGE", "HelperResult", "run_helper"]

HELPER_IMAGE = "cc-ci/busybox:bookworm"
HELPER_TIMEOUT = 300


@dataclass(frozen=True)
class HelperResult:
    exit_code: int
    stdout: bytes
    stderr: str
    download: bytes | None = None  # the file asked for, when the script succeeded


def run_helper(
    script: str,
    volumes: Mapping[str, str],
    labels: Mapping[str, str],
    *,
    upload: bytes | None = None,
    download: str | None = None,
) -> HelperResult:
    """Run ``sh -c script`` with each volume (name -> mount point) mounted; ``upload`` is
    a tar put at ``/`` first, ``download`` a file read back after (binary data cannot
    travel through logs: they are text). A volume that does not exist yet is created with
    ``labels``."""
    from docker.types import Mount  # docker is imported only where it is used

    mounts = [
        Mount(target, name, type="volume", labels=dict(labels)) for name, target in volumes.items()
    ]
    with translated(f"helper container on {', '.join(volumes) or 'no volume'}"):
        container = client().containers.create(
            HELPER_IMAGE,
            ["sh", "-c", script],
            mounts=mounts,
            labels=dict(labels),
            network_mode="none",  # it reads and writes volumes, nothing else
        )
        try:
            if upload is not None:
                container.put_archive("/", upload)
            container.start()
            code = int(container.wait(timeout=HELPER_TIMEOUT).get("StatusCode", 1))
            stdout = bytes(container.logs(stdout=True, stderr=False))
            stderr = container.logs(stdout=False, stderr=True).decode(errors="replace")
            data = None
            if download is not None and code == 0:
                stream, _ = container.get_archive(download)
                with tarfile.open(fileobj=io.BytesIO(b"".join(stream))) as tar:
                    member = tar.extractfile(PurePosixPath(download).name)
                    data = member.read() if member is not None else None
        finally:
            container.remove(force=True)
    return HelperResult(code, stdout, stderr, data)
