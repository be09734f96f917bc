"""The convergence assessment, judged on real task lists recorded from canary services
(scripts/record-tasks writes tests/data/converge/): no Docker needed."""

from __future__ import annotations

import copy
import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from harness.lifecycle.converge import SETTLE_UPTIME, assess
from harness.swarm import Service

RECORDED = Path(__file__).resolve().parents[1] / "data" / "converge"


def recorded(case: str) -> tuple[Service, datetime, datetime]:
    data: dict[str, Any] = json.loads((RECORDED / f"{case}.json").read_text())
    service = Service.from_attrs("ccci-rec", data["service"], data["tasks"])
    return service, datetime.fromisoformat(data["since"]), datetime.fromisoformat(data["now"])


@pytest.mark.parametrize(
    ("case", "done", "state", "failure"),
    [
        ("crash_loop", False, "failed", "is crash-looping: 3 task(s) failed since the deploy"),
        ("one_shot_complete", True, "1/1 complete (one-shot)", None),
        ("slow_health_check", False, "0/1 running (starting)", None),
        ("rollback_completed", False, "rollback_completed", "update rollback_completed"),
        ("stale_old_spec_running", False, "0/1 running (starting), updating", None),
    ],
)
def test_recorded_states(case: str, done: bool, state: str, failure: str | None) -> None:
    service, since, now = recorded(case)
    verdict = assess(service, since, nodes=1, now=now)
    assert (verdict.done, verdict.state) == (done, state), verdict
    if failure is None:
        assert verdict.failure is None
    else:
        assert (verdict.failure or "").startswith(failure), verdict


def test_crash_loop_failure_names_the_exit_code() -> None:
    service, since, now = recorded("crash_loop")
    verdict = assess(service, since, nodes=1, now=now)
    assert verdict.failure is not None
    assert "(exit code 1)" in verdict.failure


def test_failures_before_the_deploy_are_history() -> None:
    service, _, now = recorded("crash_loop")
    assert assess(service, now, nodes=1, now=now).failure is None


def test_a_rollback_before_this_deploy_is_history_and_the_old_spec_runs() -> None:
    service, _, now = recorded("rollback_completed")
    later = now + timedelta(seconds=60)
    assert assess(service, later, nodes=1, now=later).done


def test_a_task_without_healthcheck_counts_once_it_stayed_up() -> None:
    service, since, now = recorded("running_just_started")
    assert service.spec["TaskTemplate"]["ContainerSpec"].get("Healthcheck") is None
    assert not assess(service, since, nodes=1, now=now).done  # started a moment ago
    later = now + timedelta(seconds=2)
    assert assess(service, since, nodes=1, now=later).done
    # ... but has not yet stayed up long enough for a tier to end on it
    assert not assess(service, since, nodes=1, now=later, min_uptime=SETTLE_UPTIME).done
    settled = now + timedelta(seconds=SETTLE_UPTIME + 1)
    assert assess(service, since, nodes=1, now=settled, min_uptime=SETTLE_UPTIME).done


def test_a_restarted_service_waits_for_its_new_task_not_the_update_monitor() -> None:
    """``docker service update --force`` (what cc-ci does to restart a service after a
    restore): the old task may still run, the new one starts; the update then stays
    ``updating`` for its monitor period after the new task runs."""
    _, since, now = recorded("slow_health_check")
    data: dict[str, Any] = json.loads((RECORDED / "slow_health_check.json").read_text())
    old, new = copy.deepcopy(data["tasks"][0]), copy.deepcopy(data["tasks"][0])
    old["CreatedAt"] = (since - timedelta(minutes=5)).isoformat()
    old["Status"] |= {"State": "running", "Timestamp": (since - timedelta(minutes=5)).isoformat()}
    attrs = {
        **data["service"],
        "UpdateStatus": {"State": "updating", "StartedAt": since.isoformat()},
    }

    def judged(tasks: list[dict[str, Any]], restarted: bool) -> bool:
        one = Service.from_attrs("ccci-rec", attrs, tasks)
        return assess(one, since, nodes=1, now=now, restarted=restarted).done

    assert not judged([old, new], restarted=False)  # the update is still on
    assert not judged([old, new], restarted=True)  # the old task is not the restart
    new["Status"] |= {"State": "running"}
    assert not judged([old, new], restarted=False)  # waits out the monitor period
    assert judged([old, new], restarted=True)  # the new task runs: restarted
