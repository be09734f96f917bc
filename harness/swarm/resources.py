"""What a run creates on the engine, found by label: list, remove, and create the few
things a deploy needs before ``docker stack deploy`` (secrets, pre-restored volumes),
images checked or pulled, nodes counted."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from harness.errors import DeployError, last_line
from harness.reports import progress
from harness.swarm.engine import client, timestamp, translated

__all__ = [
    "KINDS",
    "Resource",
    "create_secret",
    "create_volume",
    "ensure_image",
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


def ensure_image(image: str, service: str, pull: bool) -> None:
    """The image is present locally, or (``pull``) pulled now; a missing one is named."""
    import docker

    with translated(f"checking image {image}"):
        try:
            client().images.get(image)
            return
        except docker.errors.ImageNotFound:
            pass
    if not pull:
        raise DeployError(
            f"image {image} (service {service}) is not present locally, and nothing is"
            " pulled on the local platform: build it first (see demo/images)"
        )
    try:
        with translated(f"pulling {image}", refused=DeployError):
            name, tag = _reference(image)
            for event in client().api.pull(name, tag, stream=True, decode=True):
                if "error" in event:
                    raise DeployError(str(event["error"]))
                said = " ".join(str(event.get(k, "")) for k in ("id", "status", "progress"))
                progress.step(f"pulling {image}: {said.strip()}"[:120])
    except DeployError as exc:
        raise DeployError(
            f"image {image} (service {service}) is not present locally and cannot be"
            f" pulled: {last_line(str(exc))}"
        ) from exc


def _reference(image: str) -> tuple[str, str | None]:
    """An image reference as the pull API takes it: (repository, tag or None)."""
    if "@" in image:  # a digest names the image whole
        return image, None
    if ":" in image.rsplit("/", 1)[-1]:
        name, _, tag = image.rpartition(":")
        return name, tag
    return image, "latest"


def ready_nodes() -> int:
    with translated("listing the swarm's nodes"):
        return sum(1 for n in client().nodes.list() if n.attrs["Status"]["State"] == "ready")
