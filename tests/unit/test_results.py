"""results.json: the level function, rungs, warnings, partial writes, the schema, compare."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from harness.reports.results import (
    Record,
    Results,
    Status,
    TierResult,
    compare,
    level,
    rungs_of,
    summary_table,
)

SCHEMA = json.loads(
    (Path(__file__).resolve().parents[2] / "docs" / "results.schema.json").read_text()
)

P: Status = "pass"
F: Status = "fail"
S: Status = "skip"
U: Status = "unver"


@pytest.mark.parametrize(
    ("install", "upgrade", "backup_restore", "custom", "lint", "expected"),
    [
        (P, P, P, P, P, 5),
        (F, P, P, P, P, 0),  # nothing counts without install
        (U, P, P, P, P, 0),
        (P, F, P, P, P, 1),
        (P, U, P, P, P, 1),  # an unverified rung stops the climb
        (P, S, P, P, P, 5),  # skip lets the climb go on...
        (P, S, S, S, S, 1),  # ...but only a passed rung is reached
        (P, P, U, P, P, 2),
        (P, P, S, P, F, 4),
        (P, P, P, P, U, 4),
        (S, P, P, P, P, 0),  # install can never be skipped into a level
    ],
)
def test_level(
    install: str, upgrade: str, backup_restore: str, custom: str, lint: str, expected: int
) -> None:
    rungs = {
        "install": install,
        "upgrade": upgrade,
        "backup_restore": backup_restore,
        "custom": custom,
        "lint": lint,
    }
    assert level(rungs) == expected


def tiers(**statuses: Status) -> dict[str, TierResult]:
    return {name: TierResult(status) for name, status in statuses.items()}


def test_undeclared_na_is_a_coverage_gap_and_declared_na_a_skip() -> None:
    rungs, warnings = rungs_of(tiers(install=P, upgrade=P, lint=P), {"custom": "no UI"})
    assert rungs["custom"] == {"status": "skip", "reason": "n/a: no UI"}
    assert rungs["backup_restore"]["status"] == "unver"
    assert warnings == ["possible coverage gap: backup_restore not verified and not declared n/a"]
    assert level({k: v["status"] for k, v in rungs.items()}) == 2


def test_stale_expected_na_is_reported() -> None:
    _, warnings = rungs_of(tiers(install=P, upgrade=P), {"upgrade": "one release only"})
    assert "stale EXPECTED_NA: upgrade is declared n/a (one release only) yet ran" in warnings


def test_backup_restore_needs_both_tiers() -> None:
    rungs, _ = rungs_of(tiers(install=P, backup=P, restore=F), {})
    assert rungs["backup_restore"]["status"] == "fail"
    rungs, _ = rungs_of(tiers(install=P, backup=P), {})
    assert rungs["backup_restore"]["status"] == "unver"


def test_a_tier_in_flight_reads_unver_and_the_file_always_validates(tmp_path: Path) -> None:
    results = Results(
        tmp_path / "results.json",
        "demo",
        "a1b2c3",
        platform={"name": "local", "ipvs": False, "overlays": []},
    )
    results.start_tier("install")
    results.end_tier("install", TierResult(P))
    results.start_tier("upgrade")  # ... and the run is killed here
    written = json.loads((tmp_path / "results.json").read_text())
    jsonschema.validate(written, SCHEMA)
    assert written["tiers"]["install"]["status"] == P
    assert written["tiers"]["upgrade"]["status"] == U
    assert written["tiers"]["upgrade"]["reason"].startswith("interrupted")
    assert written["finished"] is None
    assert written["level"] == 1
    assert not list(tmp_path.glob(".results.json.*"))  # no temp file left behind


@pytest.mark.parametrize(
    ("outcomes", "expect_fail", "expected_level"),
    [
        ({"install": P, "upgrade": U, "lint": P}, None, 1),  # unverified: a gap, not a fail
        ({"install": P, "upgrade": F, "backup": U, "lint": P}, None, 2),  # fail, and after it
        ({"install": P, "upgrade": S, "lint": P}, None, 1),  # structurally n/a stays n/a
        ({"install": F, "upgrade": U, "lint": P}, "install", 0),  # a canary
        ({"install": P, "upgrade": F, "lint": P}, "upgrade", 1),
    ],
)
def test_expected_level(
    tmp_path: Path, outcomes: dict[str, Status], expect_fail: str | None, expected_level: int
) -> None:
    results = Results(tmp_path / "results.json", "demo", "a1b2c3", expect_fail=expect_fail)
    results.tiers = tiers(**outcomes)
    assert results.expected_level() == expected_level


def test_expected_level_counts_infra_failures_and_interruptions_as_passes(tmp_path: Path) -> None:
    results = Results(tmp_path / "results.json", "demo", "a1b2c3")
    results.tiers = tiers(install=P, upgrade=P)
    results.tiers["backup"] = TierResult(U, "DeployError: engine gone", failure_class="infra")
    assert results.expected_level() == 2  # restore never ran: the rung stays unverified
    results.tiers["restore"] = TierResult(U, "no backup to restore")
    results.tiers["custom"] = TierResult(P)
    results.tiers["lint"] = TierResult(P)
    assert results.expected_level() == 5
    results.tiers["backup"] = TierResult(P)
    results.start_tier("restore")  # then killed
    assert results.expected_level() == 5
    assert results.document()["level"] == 2


def test_summary_table_marks_a_shortfall_and_shows_the_warnings(tmp_path: Path) -> None:
    results = Results(tmp_path / "results.json", "demo", "a1b2c3")
    results.tiers = tiers(install=P, upgrade=F, lint=P)
    table = summary_table([(tmp_path, Record.of(results.document()))])
    assert "demo           1/2 !" in table
    assert "warning: possible coverage gap: backup_restore not verified" in table


def test_compare_shows_level_and_timing_changes(tmp_path: Path) -> None:
    def doc(upgrade: Status, seconds: float) -> Record:
        results = Results(tmp_path / "r.json", "demo", "a1b2c3")
        results.tiers = {
            "install": TierResult(P, duration=4.0),
            "upgrade": TierResult(upgrade, duration=seconds),
        }
        return Record.of(results.document())

    text = compare(doc(F, 10.0), doc(P, 15.0), "A", "B")
    assert "level 1 -> 2 (+1)" in text
    assert "upgrade: fail -> pass" in text
    assert "upgrade: 10.0s -> 15.0s (+5.0s, 1.50x), fail -> pass" in text


def test_the_typed_reader_reads_an_older_schema_and_refuses_a_newer_one(tmp_path: Path) -> None:
    results = Results(tmp_path / "results.json", "demo", "a1b2c3")
    results.tiers = tiers(install=P)
    doc = results.document()
    old = {k: v for k, v in doc.items() if k not in ("policy", "schema_version")}  # schema 1
    record = Record.of(old)
    assert (record.schema_version, record.level, record.rung("install").status) == (1, 1, "pass")
    assert record.policy == {"allowed": {}, "used": []}
    assert record.tiers["install"].status == "pass"
    with pytest.raises(ValueError, match=r"results schema 99 is newer than this cc-ci reads"):
        Record.of({**doc, "schema_version": 99})
    with pytest.raises(ValueError, match=r"not a run's results"):
        Record.of({"recipe": "demo"})
