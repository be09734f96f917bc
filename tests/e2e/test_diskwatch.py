"""The disk a run fills is watched: past its bound the run is stopped through its deadline,
naming what holds the most, on the real engine (a container's writable layer, a volume)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import pytest

from harness.deadline import Deadline
from harness.errors import ConvergeError
from harness.lifecycle.diskwatch import DiskWatch
from harness.lifecycle.labels import RUN_LABEL
from harness.swarm import disk_use, engine
from tests.conftest import WEB_APP, Workspace

pytestmark = pytest.mark.e2e

MiB = 1024**2


@pytest.fixture
def writer() -> Iterator[str]:
    """A labelled container that has written 40 MiB to its layer and 30 MiB to a volume."""
    label = f"{RUN_LABEL}=disk{uuid.uuid4().hex[:6]}"
    key, value = label.split("=")
    client = engine.client()
    volume = client.volumes.create(labels={key: value})
    container = client.containers.run(
        "cc-ci/busybox:bookworm",
        [
            "sh",
            "-c",
            "head -c 41943040 /dev/zero >/layer; head -c 31457280 /dev/zero >/data/v; sleep 600",
        ],
        labels={key: value},
        volumes={volume.name: {"bind": "/data", "mode": "rw"}},
        network_mode="none",
        detach=True,
    )
    try:
        yield label
    finally:
        container.remove(force=True)
        volume.remove(force=True)


def _filled(label: str) -> dict[str, int]:
    """What the writer holds, once it has written it all (within 30 s)."""
    ends = time.monotonic() + 30
    while sum((used := disk_use(label)).values()) < 70 * MiB:
        assert time.monotonic() < ends, f"the writer never wrote: {used}"
        time.sleep(0.2)
    return used


def test_the_run_is_stopped_past_its_disk_bound_naming_what_holds_most(writer: str) -> None:
    used = _filled(writer)
    layer = next(v for k, v in used.items() if k.startswith("container "))
    volume = next(v for k, v in used.items() if k.startswith("volume "))
    assert layer >= 40 * MiB
    assert volume >= 30 * MiB
    deadline = Deadline(600)
    watch = DiskWatch(writer, 50 * MiB, deadline, disk_use)
    try:
        watch.sample()
    finally:
        watch.close()
    with pytest.raises(
        ConvergeError,
        match=r"^disk: the run's containers and volumes hold 7\d MiB"
        r", past its bound of 50 MiB \(most: container ",
    ):
        deadline.check()
    assert deadline.left() == 0  # every wait of the run ends at once


def test_a_run_within_its_bound_goes_on(writer: str) -> None:
    _filled(writer)
    deadline = Deadline(600)
    watch = DiskWatch(writer, 500 * MiB, deadline, disk_use)
    try:
        watch.sample()
    finally:
        watch.close()
    deadline.check()
    assert watch.peak >= 70 * MiB


def test_a_recipe_that_fills_its_volume_fails_its_tier_naming_the_bound(
    workspace: Workspace,
) -> None:
    filler = (
        WEB_APP.replace(
            "mkdir -p /www &&",
            "head -c 104857600 /dev/zero >/data/fill && mkdir -p /www &&",
        ).replace(
            "    networks: [proxy]\n",
            "    networks: [proxy]\n    volumes: [data:/data]\n",
        )
        + "volumes:\n  data:\n"
    )
    workspace.recipe("filler", [("1.0.0+1", filler)], meta='RESOURCES = {"disk": "50M"}\n')
    session = workspace.pytest("recipes/filler", "--tiers", "install")
    assert session.tier_outcomes == {"recipes/filler::install": "FAILED"}, session.output
    assert "disk: the run's containers and volumes hold 100 MiB, past its bound of 50 MiB" in (
        session.output
    )
    assert "(most: volume filler-" in session.output
    session.assert_nothing_left()
