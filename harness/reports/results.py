"""results.json: what a run proved, rung by rung, and how far up the ladder it got.

The ladder (SPEC §7): install · upgrade · backup_restore · custom · lint. A rung is
``pass``, ``fail``, ``skip`` (not applicable AND declared so in ``EXPECTED_NA``, or
structurally impossible) or ``unver`` (could not be verified). ``level()`` is the one
pure function that turns rungs into a level.

The file is rewritten atomically after every change, so a run killed at any moment leaves
a valid file: a tier that started and did not finish reads ``unver`` ("interrupted").
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, cast, get_args

from harness import redact
from harness.errors import FailureKind
from harness.files import write_atomic

__all__ = [
    "RUNG_TIERS",
    "SCHEMA_VERSION",
    "Record",
    "Results",
    "Rung",
    "TierResult",
    "compare",
    "level",
    "previous_run",
    "read",
    "rungs_of",
    "summary_table",
    "write_json",
]

Status = Literal["pass", "fail", "skip", "unver"]  # a tier's, or a rung's
RungStatus = Status
SCHEMA_VERSION = 2  # 2: policy
INTERRUPTED = "interrupted: the run stopped before this tier finished"
RUNGS = ("install", "upgrade", "backup_restore", "custom", "lint")
# The tiers whose outcomes make up each rung.
RUNG_TIERS: dict[str, tuple[str, ...]] = {
    "install": ("install",),
    "upgrade": ("upgrade",),
    "backup_restore": ("backup", "restore"),
    "custom": ("custom",),
    "lint": ("lint",),
}


def level(rungs: Mapping[str, str]) -> int:
    """The highest rung (1-5) that passed with every rung below it ``pass`` or ``skip``;
    0 when install did not pass (a recipe that does not install has no level)."""
    if rungs.get("install") != "pass":
        return 0
    reached = 0
    for number, rung in enumerate(RUNGS, start=1):
        status = rungs.get(rung, "unver")
        if status == "pass":
            reached = number
        elif status != "skip":
            break
    return reached


@dataclass
class TierResult:
    status: Status
    reason: str = ""
    duration: float = 0.0
    failure_class: FailureKind | None = None  # for fail and unver
    artifacts: list[str] = field(default_factory=list)
    attempts: int = 1


def rungs_of(
    tiers: Mapping[str, TierResult], expected_na: Mapping[str, str]
) -> tuple[dict[str, dict[str, str]], list[str]]:
    """Rung statuses (with reasons) from tier results, and the warnings they raise."""
    rungs: dict[str, dict[str, str]] = {}
    warnings: list[str] = []
    for rung, members in RUNG_TIERS.items():
        results = [tiers[t] for t in members if t in tiers]
        declared = expected_na.get(rung)
        exercised = any(r.status in ("pass", "fail") for r in results)
        if declared and exercised:
            warnings.append(f"stale EXPECTED_NA: {rung} is declared n/a ({declared}) yet ran")
        if results and len(results) == len(members):
            failed = [r for r in results if r.status != "pass"]
            status = failed[0].status if failed else "pass"
            reason = failed[0].reason if failed else ""
        elif declared:
            status, reason = "skip", f"n/a: {declared}"
        else:
            status, reason = "unver", "not run"
        if status == "unver" and rung in ("backup_restore", "custom") and not declared:
            warnings.append(f"possible coverage gap: {rung} not verified and not declared n/a")
        rungs[rung] = {"status": status, "reason": reason}
    return rungs, warnings


def write_json(path: Path, data: Any) -> None:
    """Write ``data`` to ``path`` atomically (readers see the old file or the new one).
    What cc-ci publishes is redacted by its writer (``Results.save``, the trace), not here:
    a data file the harness reads back (a dependency's entries, op_state) must keep its
    values."""
    write_atomic(path, json.dumps(data, indent=2) + "\n")


def _stops(result: TierResult) -> bool:
    """A tier that failed, for the recipe or for the platform: later tiers cannot run."""
    return result.status == "fail" or bool(result.failure_class)


@dataclass
class Results:
    """The run's results, rewritten to ``path`` as they change."""

    path: Path
    recipe: str
    run_id: str
    expected_na: Mapping[str, str] = field(default_factory=dict)
    expect_fail: str | None = None
    refs: dict[str, Any] = field(default_factory=dict)
    platform: dict[str, Any] = field(default_factory=dict)
    stamps: dict[str, dict[str, str]] = field(default_factory=dict)
    customization: dict[str, Any] = field(
        default_factory=lambda: {
            "meta_non_default": {},
            "hooks": [],
            "overlays": [],
            "custom_tests": [],
            "env_overrides": {},
        }
    )
    lint: dict[str, Any] | None = None
    policy: dict[str, Any] = field(default_factory=lambda: {"allowed": {}, "used": []})
    tiers: dict[str, TierResult] = field(default_factory=dict)
    artifacts: dict[str, str] = field(default_factory=dict)
    started: str = field(default_factory=lambda: datetime.now(UTC).isoformat())
    finished: str | None = None
    _running: dict[str, float] = field(default_factory=dict)

    def start_tier(self, tier: str) -> None:
        self._running[tier] = time.monotonic()
        self.tiers[tier] = TierResult("unver", INTERRUPTED)
        self.save()

    def end_tier(self, tier: str, result: TierResult) -> None:
        began = self._running.pop(tier, None)
        if began is not None:
            result.duration = round(time.monotonic() - began, 3)
        self.tiers[tier] = result
        self.save()

    def finish(self) -> None:
        self.finished = datetime.now(UTC).isoformat()
        self.save()

    def blocker(self) -> tuple[str, bool] | None:
        """The earlier tier that failed — (its name, whether it failed as designed) — and
        keeps later tiers from running; None when none did. lint needs no app."""
        for name, result in self.tiers.items():
            if name != "lint" and _stops(result):
                return name, name == self.expect_fail
        return None

    def expected_level(self) -> int:
        """The level the run would have reached had nothing failed: a failed tier (but the
        canary's designed failure) counts as passed, and so does every tier after it, which
        the failure kept from running. A tier that could not be verified on its own (no
        backup labels, a base release that does not install) stays unverified: it is a
        coverage gap to report, not a failure to expect better from."""
        designed: dict[str, TierResult] = {}
        blocked = False
        for name, result in self.tiers.items():  # in the order they ran
            blocked = blocked or _stops(result) or result.reason == INTERRUPTED
            if name == self.expect_fail:
                designed[name] = TierResult("fail")
            else:
                designed[name] = TierResult("pass" if blocked else result.status)
        rungs, _ = rungs_of(designed, self.expected_na)
        return level({k: v["status"] for k, v in rungs.items()})

    def document(self) -> dict[str, Any]:
        rungs, warnings = rungs_of(self.tiers, self.expected_na)
        reached = level({k: v["status"] for k, v in rungs.items()})
        return {
            "schema_version": SCHEMA_VERSION,
            "recipe": self.recipe,
            "run_id": self.run_id,
            "started": self.started,
            "finished": self.finished,
            "deployer": "native",
            "refs": self.refs,
            "platform": self.platform,
            "level": reached,
            "expected_level": self.expected_level(),
            "expect_fail": self.expect_fail,
            "rungs": rungs,
            "tiers": {name: asdict(result) for name, result in self.tiers.items()},
            "warnings": warnings,
            "stamps": self.stamps,
            "lint": self.lint,
            "policy": self.policy,
            "customization": self.customization,
            "artifacts": self.artifacts,
        }

    def save(self) -> None:
        write_json(self.path, redact.scrub(self.document()))


@dataclass(frozen=True)
class Rung:
    status: RungStatus
    reason: str = ""


@dataclass(frozen=True)
class Record:
    """A results.json as read back: what every consumer of a run's results reads (the
    summary, ``cc-ci compare``, the dashboard, the PR comment), never raw keys. A file of
    an older schema reads with the defaults of what it lacks; one of a newer schema, or
    one that is not a run's results, is a ValueError naming why."""

    recipe: str
    run_id: str
    schema_version: int
    level: int
    expected_level: int
    rungs: Mapping[str, Rung]
    tiers: Mapping[str, TierResult]
    started: str | None = None
    finished: str | None = None
    expect_fail: str | None = None
    warnings: tuple[str, ...] = ()
    refs: Mapping[str, Any] = field(default_factory=dict)
    platform: Mapping[str, Any] = field(default_factory=dict)
    stamps: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    lint: Mapping[str, Any] | None = None
    policy: Mapping[str, Any] = field(default_factory=dict)
    customization: Mapping[str, Any] = field(default_factory=dict)
    artifacts: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def of(cls, doc: Any) -> Record:
        if (
            not isinstance(doc, dict)
            or not doc.get("recipe")
            or not isinstance(doc.get("rungs"), dict)
        ):
            raise ValueError("not a run's results (no recipe, or no rungs)")
        version = int(doc.get("schema_version", 1))
        if version > SCHEMA_VERSION:
            raise ValueError(
                f"results schema {version} is newer than this cc-ci reads ({SCHEMA_VERSION})"
            )
        rungs = {
            rung: Rung(_status(value.get("status", "unver")), str(value.get("reason", "")))
            for rung, value in doc["rungs"].items()
            if isinstance(value, dict)
        }
        fields = TierResult.__dataclass_fields__
        tiers = {
            name: TierResult(**{k: v for k, v in value.items() if k in fields})
            for name, value in (doc.get("tiers") or {}).items()
            if isinstance(value, dict) and "status" in value
        }
        return cls(
            recipe=str(doc["recipe"]),
            run_id=str(doc.get("run_id", "")),
            schema_version=version,
            level=int(doc.get("level", 0)),
            expected_level=int(doc.get("expected_level", 0)),
            rungs=rungs,
            tiers=tiers,
            started=doc.get("started"),
            finished=doc.get("finished"),
            expect_fail=doc.get("expect_fail"),
            warnings=tuple(doc.get("warnings") or ()),
            refs=doc.get("refs") or {},
            platform=doc.get("platform") or {},
            stamps=doc.get("stamps") or {},
            lint=doc.get("lint"),
            policy=doc.get("policy") or {"allowed": {}, "used": []},  # schema 1 had none
            customization=doc.get("customization") or {},
            artifacts=doc.get("artifacts") or {},
        )

    def rung(self, name: str) -> Rung:
        """A rung's status and reason (``unver`` when the run never said)."""
        return self.rungs.get(name, Rung("unver"))


def _status(text: object) -> Status:
    """A status as results.json says it; another word is a ValueError naming it."""
    if text not in get_args(Status):
        raise ValueError(f"status {text!r} is not one of {', '.join(get_args(Status))}")
    return cast(Status, text)


def read(run_dir: Path) -> Record:
    """The results of a run dir (or the results.json itself), read as a ``Record``."""
    path = run_dir if run_dir.name == "results.json" else run_dir / "results.json"
    return Record.of(json.loads(path.read_text()))


def summary_table(documents: list[tuple[Path, Record]]) -> str:
    """One row per run: level (expected), each rung; then tier durations, run dir and the
    run's warnings (coverage gaps, stale ``EXPECTED_NA``)."""
    head = f"{'recipe':14} {'level':8} " + " ".join(f"{r[:8]:8}" for r in RUNGS)
    rows = [head, "-" * len(head)]
    for run_dir, doc in documents:
        mark = "" if doc.level == doc.expected_level else " !"
        cells = " ".join(f"{doc.rung(r).status:8}" for r in RUNGS)
        timings = ", ".join(f"{t} {v.duration:.1f}s" for t, v in doc.tiers.items())
        rows.append(f"{doc.recipe:14} {doc.level}/{doc.expected_level}{mark:4} {cells}")
        rows.append(f"{'':14} {timings} — {run_dir}")
        rows.extend(f"{'':14} warning: {w}" for w in doc.warnings)
    return "\n".join(rows)


def previous_run(run_dir: Path) -> Path:
    """The run of the same recipe just before ``run_dir``, in the same runs dir."""
    recipe = read(run_dir).recipe
    earlier = sorted(
        d
        for d in run_dir.parent.glob(f"{recipe}-*")
        if d.name < run_dir.name and (d / "results.json").is_file()
    )
    if not earlier:
        raise FileNotFoundError(f"no earlier run of {recipe} in {run_dir.parent}")
    return earlier[-1]


def compare(before: Record, after: Record, name_a: str, name_b: str) -> str:
    """Level and per-tier timing changes from ``before`` to ``after``."""
    lines = [f"{before.recipe}: {name_a} -> {name_b}"]
    change = after.level - before.level
    lines.append(
        f"level {before.level} -> {after.level}" + (f" ({change:+d})" if change else " (same)")
    )
    for rung in RUNGS:
        a, b = before.rung(rung).status, after.rung(rung).status
        if a != b:
            lines.append(f"  {rung}: {a} -> {b}")
    for tier in dict.fromkeys([*before.tiers, *after.tiers]):
        was, now = before.tiers.get(tier), after.tiers.get(tier)
        if was is None or now is None:
            lines.append(f"  {tier}: {'only in ' + (name_b if was is None else name_a)}")
            continue
        delta = now.duration - was.duration
        ratio = f", {now.duration / was.duration:.2f}x" if was.duration else ""
        lines.append(
            f"  {tier}: {was.duration:.1f}s -> {now.duration:.1f}s ({delta:+.1f}s{ratio})"
            + (f", {was.status} -> {now.status}" if was.status != now.status else "")
        )
    return "\n".join(lines)
