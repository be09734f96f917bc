"""What a job says on the PR: the commit status and the one comment it keeps editing.

The comment is Gitea markdown: a headline, a rung table with each failure's one-line
reason, the change against the base branch's latest run, and links to the run. Only what
``results.json`` holds is shown — already free of secrets — and every recipe-supplied
string is cut to one line and kept out of markdown structure.
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

from harness.reports.results import RUNGS, Record, read

__all__ = [
    "base_run",
    "final",
    "queued",
    "refused",
    "running",
    "superseded",
]

ARTIFACTS = (  # linked from the comment
    "results.json",
    "trace.json",
    "harness.log",
    "screenshot.png",
    "browser-blocked.txt",
)
_MARK = {"pass": "✅ pass", "fail": "❌ fail", "skip": "⏭️ skip", "unver": "❔ unver"}


def _line(text: Any, limit: int = 200) -> str:
    """A recipe-supplied string as one inert line of a markdown table cell."""
    flat = " ".join(str(text).split())[:limit]
    for char in "\\`*_[]|#!~":
        flat = flat.replace(char, f"\\{char}")
    return html.escape(flat, quote=False).replace("@", "&#64;")


def _head(who: str, options: str) -> str:
    shown = f"`!testme {options}`" if options else "`!testme`"
    return f"**cc-ci** {shown} from @{who}"


def queued(who: str, options: str, position: int) -> str:
    ahead = "next in the queue" if position == 0 else f"queued, {position} ahead"
    return f"{_head(who, options)}: ⏳ {ahead}."


def superseded(who: str, options: str, by: str) -> str:
    return f"{_head(who, options)}: superseded by a newer `!testme` ({by}); not run."


def refused(who: str, why: str) -> str:
    return f"**cc-ci** @{who}: {why}"


def running(who: str, options: str, sha: str, doc: Record | None) -> str:
    lines = [f"{_head(who, options)}: 🏃 running on `{sha[:8]}`."]
    if doc:
        done = [f"{t} {_MARK.get(r.status, r.status)}" for t, r in doc.tiers.items()]
        lines.append("Tiers so far: " + ", ".join(done))
    return "\n\n".join(lines)


def base_run(runs_dir: Path, recipe: str, base_ref: str, exclude: Path | None) -> Path | None:
    """The latest finished run of ``recipe`` at the base branch in the runs dir."""
    found: list[tuple[str, Path]] = []
    for path in runs_dir.glob("**/results.json"):
        if exclude is not None and path.parent == exclude:
            continue
        try:
            doc = read(path)
        except (OSError, ValueError):
            continue
        if doc.recipe == recipe and doc.finished and doc.refs.get("candidate") == base_ref:
            found.append((doc.finished, path.parent))
    return max(found)[1] if found else None


def _comparison(doc: Record, base: Record | None, base_ref: str) -> list[str]:
    if base is None:
        return [f"No run of `{_line(base_ref, 60)}` to compare with yet."]
    change = doc.level - base.level
    said = f"{change:+d}" if change else "same"
    lines = [f"Against `{_line(base_ref, 60)}`: level {base.level} → {doc.level} ({said})."]
    for tier, now in doc.tiers.items():  # the tiers that ran both times
        before = base.tiers.get(tier)
        ran = before is not None and {before.status, now.status} <= {"pass", "fail"}
        if ran and before is not None and before.duration and now.duration:
            was, took = before.duration, now.duration
            lines.append(f"- {tier}: {was:.1f}s → {took:.1f}s ({took / was:.2f}x)")
    return lines


def final(
    who: str,
    options: str,
    sha: str,
    verdict: str,
    summary: str,
    doc: Record | None,
    base: Record | None,
    base_ref: str,
    links: list[tuple[str, str]],
    card_url: str | None = None,
) -> str:
    icon = {"success": "✅", "failure": "❌"}.get(verdict, "⚠️")
    lines = [f"{_head(who, options)} on `{sha[:8]}`: {icon} **{_line(summary)}**"]
    if doc is not None:
        table = ["| rung | status | reason |", "|---|---|---|"]
        for rung in RUNGS:
            cell = doc.rung(rung)
            reason = _line(cell.reason)
            table.append(f"| {rung} | {_MARK.get(cell.status, cell.status)} | {reason} |")
        lines.append("\n".join(table))
        lines.append("\n".join(_comparison(doc, base, base_ref)))
    if card_url:
        level = f"level {doc.level} of 5" if doc else "the run"
        lines.insert(1, f"[![cc-ci: {level}]({card_url})]({links[0][1]})")
    if links:
        lines.append(" · ".join(f"[{name}]({url})" for name, url in links))
    return "\n\n".join(lines)
