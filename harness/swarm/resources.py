"""What a run creates on the engine, found by label: list, remove, and create the few
things a deploy needs before ``docker stack deploy`` (secrets, pre-restored volumes),
images checked or pulled, nodes counted."""

from __future__ import annotations

import hashlib
import os
import re
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout

from harness.errors import DeployError, EngineError, last_line
from harness.swarm.engine import client, timestamp, translated

__all__ = [
    "KINDS",
    "PULL_POLICIES",
    "Resource",
    "create_secret",
    "create_volume",
    "disk_use",
    "ensure_images",
    "labelled",
    "ready_nodes",
    "remove_labelled",
]

KINDS = ("service", "container", "network", "volume", "secret", "config")


@dataclass(frozen=True)
class Resource:
    kind: str
    name: str
    labels: dict[str, str]
    created: datetime | None


def _collection(kind: str) -> Any:
    return getattr(client(), f"{kind}s")


def _sdk_list(kind: str, label: str) -> list[Any]:
    # Containers are listed sparse (the list's own JSON): a full listing inspects each one
    # after listing them, and one removed in between would fail the whole listing.
    extra = {"all": True, "sparse": True} if kind == "container" else {}
    return list(_collection(kind).list(filters={"label": label}, **extra))


def _resource(kind: str, obj: Any) -> Resource:
    attrs = getattr(obj, "attrs", {}) or {}
    stamp = attrs.get("CreatedAt") or attrs.get("Created")
    labels = (attrs.get("Spec") or attrs.get("Config") or attrs).get("Labels") or {}
    names = attrs.get("Names") or []  # a sparse container's
    if isinstance(stamp, str):
        created: datetime | None = timestamp(stamp)
    elif isinstance(stamp, int):
        created = datetime.fromtimestamp(stamp, UTC)
    else:
        created = None
    name = getattr(obj, "name", None) or (names[0].lstrip("/") if names else obj.id)
    return Resource(kind, str(name), dict(labels), created)


def labelled(label: str, kinds: Sequence[str] = KINDS) -> list[Resource]:
    """Every resource of ``kinds`` carrying ``label`` (``key`` or ``key=value``)."""
    with translated(f"listing resources labelled {label}"):
        return [_resource(kind, obj) for kind in kinds for obj in _sdk_list(kind, label)]


def remove_labelled(label: str, kinds: Sequence[str] = KINDS) -> tuple[list[str], int]:
    """One pass removing what carries ``label``: (what was removed, how many were found).
    Only a pass that finds nothing proves nothing is left: swarm removes a service's
    containers and endpoints a moment after the service.

    Test apps are disposable: containers go with force, not after their stop grace period.
    Something in use a moment longer (a network with a detaching endpoint, the volume of a
    container being removed) stays for the next pass.
    """
    import docker

    removed: list[str] = []
    found_count = 0
    for kind in kinds:
        with translated(f"listing {kind}s labelled {label}"):
            found = _sdk_list(kind, label)
        found_count += len(found)
        for obj in found:
            name = _resource(kind, obj).name
            try:
                if kind == "container":
                    obj.remove(force=True, v=False)
                elif kind == "volume":
                    obj.remove(force=True)
                else:
                    obj.remove()
                removed.append(f"{kind} {name}")
            except docker.errors.APIError:
                pass  # gone already, or in use a moment longer: the next pass looks again
    return removed, found_count


def create_secret(name: str, value: str, labels: Mapping[str, str]) -> None:
    with translated(f"creating secret {name}"):
        client().secrets.create(name=name, data=value.encode(), labels=dict(labels))


def create_volume(name: str, labels: Mapping[str, str]) -> None:
    with translated(f"creating volume {name}"):
        client().volumes.create(name=name, labels=dict(labels))


PULL_POLICIES = ("missing", "always", "never")
# Registry answers worth one more try; anything else (a name that does not resolve, a
# refused connection: no registry here) fails at once.
_TRANSIENT = re.compile(r"\b(50[234]|timeout|timed out|connection reset|EOF)\b", re.IGNORECASE)


def ensure_images(
    images: Mapping[str, str],
    policy: str,
    locks: Path,
    *,
    seconds: float,
    say: Callable[[str], None] = lambda _: None,
) -> None:
    """Every image (service -> image) present as ``policy`` says — ``missing``: pulled if
    absent; ``always``: pulled again, but for images built here (no registry digest),
    used as they are; ``never``: only what is here — pulled side by side, each image once
    across concurrent runs (a lock per image in ``locks``), all within ``seconds`` (the
    run's deadline), each pull's progress told to ``say``. The first failure is raised."""
    ends = time.monotonic() + seconds
    first = {image: service for service, image in reversed(list(images.items()))}
    todo = [(i, s) for i, s in first.items() if not _usable(_local(i), policy)]
    if len(todo) <= 1:  # the usual case: everything is here, checked in this thread
        for image, service in todo:
            _obtain(image, service, policy, locks, ends, say)
        return
    pool = ThreadPoolExecutor(max_workers=4)
    try:
        for future in [pool.submit(_obtain, i, s, policy, locks, ends, say) for i, s in todo]:
            future.result()
    finally:  # on a failure or Ctrl-C: pulls not started never start, none is waited for
        pool.shutdown(wait=False, cancel_futures=True)


def _usable(here: Any, policy: str) -> bool:
    """Whether a local image (or None) is used as it is: present, and for ``always``
    built here (no registry digest)."""
    return here is not None and (policy != "always" or not here.attrs.get("RepoDigests"))


def _local(image: str) -> Any:
    import docker

    with translated(f"checking image {image}"):
        try:
            return client().images.get(image)
        except docker.errors.ImageNotFound:
            return None


def _obtain(
    image: str, service: str, policy: str, locks: Path, ends: float, say: Callable[[str], None]
) -> None:
    """Pull an image that is not usable as it is here (``ensure_images`` checked), by the
    monotonic time ``ends``."""
    if policy == "never":
        raise DeployError(
            f"image {image} (service {service}) is not present locally, and --pull never"
            " pulls nothing"
        )
    key = hashlib.sha1(image.encode()).hexdigest()[:16]
    locks.mkdir(parents=True, exist_ok=True)
    lock = FileLock(locks / f"{key}.lock", timeout=max(0.0, ends - time.monotonic()))
    try:
        lock.acquire()
    except Timeout:
        raise EngineError(
            f"image {image} (service {service}): another run's pull of it outlasted the"
            " run's deadline"
        ) from None
    try:
        if policy == "missing" and _local(image) is not None:
            return  # another run pulled it meanwhile
        for attempt in (1, 2):
            try:
                _pull(image, ends, say)
                return
            except EngineError as exc:
                if attempt == 2 or not _TRANSIENT.search(str(exc)):
                    raise EngineError(
                        f"image {image} (service {service}) cannot be pulled: {last_line(str(exc))}"
                    ) from exc
            except DeployError as exc:  # the registry says no such image, or no access
                raise DeployError(
                    f"image {image} (service {service}) cannot be pulled: {last_line(str(exc))}"
                ) from exc
    finally:
        lock.release()


def _pull(image: str, ends: float, say: Callable[[str], None]) -> None:
    """Pull ``image`` by the monotonic time ``ends``, its progress told to ``say``."""
    name, tag = _reference(image)
    with translated(f"pulling {image}", refused=DeployError):
        for event in client().api.pull(name, tag, stream=True, decode=True):
            if time.monotonic() > ends:
                raise EngineError(f"pulling {image}: not done by the run's deadline")
            if "error" in event:
                raise EngineError(str(event["error"]))
            said = " ".join(str(event.get(k, "")) for k in ("id", "status", "progress"))
            say(f"pulling {image}: {said.strip()}"[:120])


def _reference(image: str) -> tuple[str, str | None]:
    """An image reference as the pull API takes it: (repository, tag or None)."""
    if "@" in image:  # a digest names the image whole
        return image, None
    if ":" in image.rsplit("/", 1)[-1]:
        name, _, tag = image.rpartition(":")
        return name, tag
    return image, "latest"


def disk_use(label: str) -> dict[str, int]:
    """Bytes the resources carrying ``label`` hold on disk: each container's writable
    layer (``container <service or name>``) and each volume (``volume <name>``) — a volume
    measured where its mount point is on this host (the local engine), else not at all."""
    used: dict[str, int] = {}
    with translated(f"measuring the disk of {label}"):
        for row in client().api.containers(all=True, size=True, filters={"label": label}):
            labels = row.get("Labels") or {}
            owner = labels.get("com.docker.swarm.service.name") or row["Names"][0].lstrip("/")
            key = f"container {owner}"
            used[key] = used.get(key, 0) + int(row.get("SizeRw") or 0)
        volumes = client().api.volumes(filters={"label": label}).get("Volumes") or []
    for volume in volumes:
        mount = Path(volume.get("Mountpoint") or "/nonexistent")
        if mount.is_dir():
            used[f"volume {volume['Name']}"] = _tree_bytes(mount)
    return used


def _tree_bytes(root: Path) -> int:
    """The bytes of the files under ``root`` (as allocated), not following links."""
    total = 0
    stack = [root]
    while stack:
        try:
            entries = list(os.scandir(stack.pop()))
        except OSError:
            continue  # removed meanwhile, or unreadable
        for entry in entries:
            try:
                if entry.is_dir(follow_symlinks=False):
                    stack.append(Path(entry.path))
                else:
                    total += entry.stat(follow_symlinks=False).st_blocks * 512
            except OSError:
                continue
    return total


def ready_nodes() -> int:
    with translated("listing the swarm's nodes"):
        return sum(1 for n in client().nodes.list() if n.attrs["Status"]["State"] == "ready")
