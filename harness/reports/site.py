"""``cc-ci report``: a static site of the runs in a runs dir.

    index.html                the recipes x rungs matrix: each recipe's latest run
    recipes/<recipe>.html     its history (level and duration over time, as SVG)
    runs/<run>/index.html     one run: rungs, tier timings, the trace as a timeline, the
                              manifest, lint, screenshot, backups, and its public files
    badges/<recipe>.svg       a level badge, at a stable URL, for READMEs

Jinja2 templates in the package, no script and no external asset: the site works from
``file://`` and from any static server (``cc-ci serve`` serves it at ``/``). Rebuilt
incrementally — a run's page only when its run has changed since — and atomically: every
file is written aside and renamed into place, so a reader never sees half a page.
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from html import escape
from pathlib import Path
from typing import Any

import yaml
from jinja2 import Environment, PackageLoader, select_autoescape

from harness.files import write_atomic
from harness.recipe.manifest import redact
from harness.reports.results import RUNGS, Record, read

__all__ = ["PUBLIC_FILES", "Built", "badge", "build"]

# What of a run dir is public (copied into the site): never its checkouts or op_state.
PUBLIC_FILES = (
    "results.json",
    "trace.json",
    "harness.log",
    "screenshot.png",
    "card.png",
    "browser-blocked.txt",  # what the browser was kept from (paths only, no query)
)
_SYMBOL = {"pass": "✓", "fail": "✗", "skip": "-", "unver": "?", "running": "…"}
_COLOUR = {0: "#9b0c0c", 1: "#a34a00", 2: "#6b5d00", 3: "#35620b", 4: "#1e6b2f", 5: "#0b5d27"}
BADGE_WIDTH = 88
# What a run's page and its public files hold; raised when that changes, so that a site an
# older cc-ci built is rebuilt whole (2: deploy files with secret-shaped values hidden).
SITE_FORMAT = 2


@dataclass(frozen=True)
class Built:
    runs: int
    pages: int  # run pages (re)written
    skipped: int  # run pages already up to date


def _environment() -> Environment:
    env = Environment(
        loader=PackageLoader("harness.reports", "templates"),
        autoescape=select_autoescape(["j2"]),
        keep_trailing_newline=True,
    )
    env.globals["symbol"] = lambda status: _SYMBOL.get(status, "")
    return env


def _seconds(seconds: float | None) -> str:
    if seconds is None:
        return "running"
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes}m {rest:02d}s" if minutes else f"{seconds:.1f}s"


def _when(text: str | None) -> datetime | None:
    with contextlib.suppress(TypeError, ValueError):
        return datetime.fromisoformat(str(text))
    return None


@dataclass
class _Run:
    key: str  # the run dir's name: <recipe>-<stamp>-<run id>, unique
    dir: Path
    doc: Record

    @property
    def recipe(self) -> str:
        """The recipe's name as a file name of the site (a name is not a path)."""
        name = re.sub(r"[^A-Za-z0-9._+-]", "-", self.doc.recipe)[:100]
        return name.lstrip(".") or "-"

    @property
    def started(self) -> datetime | None:
        return _when(self.doc.started)

    @property
    def duration(self) -> float | None:
        start, end = self.started, _when(self.doc.finished)
        return (end - start).total_seconds() if start and end else None

    def view(self) -> dict[str, Any]:
        doc = self.doc
        rungs = {r: {"status": doc.rung(r).status, "reason": doc.rung(r).reason} for r in RUNGS}
        if not doc.finished:
            rungs = {
                r: {**v, "status": "running"} if v["status"] == "unver" else v
                for r, v in rungs.items()
            }
        started = self.started
        return {
            "key": self.key,
            "recipe": self.recipe,
            "run_id": doc.run_id,
            "level": doc.level,
            "expected_level": doc.expected_level,
            "rungs": rungs,
            "ref": doc.refs.get("candidate") or "default branch",
            "sha": doc.refs.get("candidate_sha") or "",
            "date": started.strftime("%Y-%m-%d %H:%M") if started else "?",
            "took": _seconds(self.duration),
            "platform": doc.platform.get("name", "?"),
            "overlays": doc.platform.get("overlays") or [],
            "tiers": [
                (
                    name,
                    {
                        "status": t.status,
                        "reason": t.reason,
                        "duration": t.duration or 0.0,
                        "failure_class": t.failure_class,
                    },
                )
                for name, t in doc.tiers.items()
            ],
            "warnings": list(doc.warnings),
            "lint": doc.lint,
        }


def _runs(runs_dir: Path, out_dir: Path) -> list[_Run]:
    found = []
    for path in runs_dir.glob("**/results.json"):
        # A run dir has its op_state.json; a site's public copy of a run never does.
        if out_dir in path.parents or not (path.parent / "op_state.json").is_file():
            continue
        if path.parent.parent.name == "deps":  # a dependency's run, shown with its recipe's
            continue
        try:
            found.append(_Run(path.parent.name, path.parent, read(path)))
        except (OSError, ValueError):
            continue  # a run being written, a broken file, a newer schema: skipped
    return sorted(found, key=lambda r: (r.doc.started or "", r.key))


def badge(level: int) -> str:
    """A ``level N`` badge (SVG), coloured by level, readable without the colour."""
    colour = _COLOUR.get(level, "#555")
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{BADGE_WIDTH}" height="20" role="img"'
        f' aria-label="cc-ci: level {level} of 5"><title>cc-ci: level {level} of 5</title>'
        '<rect width="40" height="20" fill="#444"/>'
        f'<rect x="40" width="{BADGE_WIDTH - 40}" height="20" fill="{colour}"/>'
        '<g fill="#fff" font-family="Verdana,DejaVu Sans,sans-serif" font-size="11">'
        '<text x="6" y="14">cc-ci</text>'
        f'<text x="46" y="14">level {level}</text></g></svg>'
    )


def _chart(runs: list[_Run]) -> str:
    """Level (line, left axis 0-5) and duration (bars, right axis) of a recipe's runs."""
    width, height, pad = 640, 180, 34
    points = runs[-60:]
    if not points:
        return ""
    longest = max((r.duration or 0.0) for r in points) or 1.0
    step = (width - 2 * pad) / max(len(points), 1)
    bars, line = [], []
    for i, run in enumerate(points):
        x = pad + i * step
        h = (run.duration or 0.0) / longest * (height - 2 * pad)
        bars.append(
            f'<rect x="{x + step * 0.2:.1f}" y="{height - pad - h:.1f}" width="{step * 0.6:.1f}"'
            f' height="{h:.1f}" fill="#c6dafc"><title>{escape(run.key)}:'
            f" {_seconds(run.duration)}</title></rect>"
        )
        y = height - pad - run.doc.level / 5 * (height - 2 * pad)
        line.append(f"{x + step / 2:.1f},{y:.1f}")
    axis = "".join(
        f'<text x="4" y="{height - pad - n / 5 * (height - 2 * pad) + 4:.1f}"'
        f' font-size="11">{n}</text>'
        for n in range(6)
    )
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img"'
        f' aria-label="level (line, 0 to 5) and duration (bars, longest {_seconds(longest)})'
        f' of the last {len(points)} runs">'
        + "".join(bars)
        + f'<polyline points="{" ".join(line)}" fill="none" stroke="#0b5d27" stroke-width="2"/>'
        + axis
        + f'<text x="{width - pad}" y="14" font-size="11" text-anchor="end">bars: duration,'
        f" longest {_seconds(longest)}</text></svg>"
    )


def _spans(span: dict[str, Any], depth: int = 0) -> Iterable[tuple[int, dict[str, Any]]]:
    yield depth, span
    for child in span.get("children") or []:
        yield from _spans(child, depth + 1)


def _gantt(trace_path: Path) -> str:
    """The trace's spans as a timeline: one bar per span, indented by depth."""
    try:
        root = json.loads(trace_path.read_text())
        spans = list(_spans(root))[:400]
        origin = _when(root["start"])
        total = float(root.get("duration") or 0.0)
    except (OSError, ValueError, KeyError, TypeError):
        return "<p>No trace.</p>"
    if origin is None or not spans:
        return "<p>No trace.</p>"
    total = total or max(float(s.get("duration") or 0) for _, s in spans) or 1.0
    row, label, width = 16, 170, 460
    rows = []
    for i, (depth, span) in enumerate(spans):
        start = _when(span.get("start"))
        offset = (start - origin).total_seconds() if start else 0.0
        took = float(span.get("duration") or 0.0)
        x = label + offset / total * width
        w = max(took / total * width, 1.0)
        colour = "#9b0c0c" if span.get("status") not in ("ok", "finished") else "#1a73e8"
        name = escape(str(span.get("name", "")))
        rows.append(
            f'<text x="{4 + depth * 8}" y="{i * row + 12}" font-size="11">{name[:24]}</text>'
            f'<rect x="{x:.1f}" y="{i * row + 3}" width="{w:.1f}" height="{row - 5}"'
            f' fill="{colour}"><title>{name}: {took:.2f}s at +{offset:.2f}s'
            f" ({escape(str(span.get('status', '')))})</title></rect>"
        )
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{label + width + 10}"'
        f' height="{len(spans) * row + 4}" role="img" aria-label="timeline of {len(spans)}'
        f' steps over {total:.1f} seconds">' + "".join(rows) + "</svg>"
    )


def _archives(run_dir: Path) -> list[dict[str, Any]]:
    try:
        state = json.loads((run_dir / "op_state.json").read_text())
        return list(state.get("backup", {}).get("archives") or [])
    except (OSError, ValueError, AttributeError):
        return []


def _manifest(doc: Record) -> str:
    return json.dumps(doc.customization, indent=2, default=str)


def _run_page(env: Environment, run: _Run, out: Path) -> None:
    files = []
    for name in PUBLIC_FILES:
        if (run.dir / name).is_file():
            write_atomic(out / name, (run.dir / name).read_bytes())
            files.append(name)
    for deploy_file in sorted(run.dir.glob("deploy-*.yml")):
        # The public copy: env values with secret-shaped names (a client secret an app got
        # from its identity provider, say) are redacted.
        try:
            shown = yaml.safe_dump(redact(yaml.safe_load(deploy_file.read_text())), sort_keys=False)
        except (OSError, yaml.YAMLError):
            continue
        write_atomic(out / deploy_file.name, shown)
        files.append(deploy_file.name)
    view = run.view() | {
        "screenshot": "screenshot.png" in files,
        "archives": _archives(run.dir),
        "manifest": _manifest(run.doc),
        "files": files,
    }
    html = env.get_template("run.html.j2").render(
        run=view, rungs=RUNGS, root="../../", gantt=_gantt(run.dir / "trace.json")
    )
    write_atomic(out / "index.html", html)


def _fresh(run: _Run, page: Path) -> bool:
    """Whether a run's page is newer than everything it shows."""
    try:
        built = page.stat().st_mtime
    except FileNotFoundError:
        return False
    sources = [run.dir / n for n in (*PUBLIC_FILES, "op_state.json")]
    sources += run.dir.glob("deploy-*.yml")
    return all(built >= s.stat().st_mtime for s in sources if s.exists())


def build(runs_dir: Path, out_dir: Path) -> Built:
    """Build (or bring up to date) the site of ``runs_dir`` in ``out_dir``."""
    env = _environment()
    runs = _runs(runs_dir, out_dir)
    pages = skipped = 0
    stamp = out_dir / "site-format"  # pages of an older format are all rebuilt
    current = stamp.is_file() and stamp.read_text().strip() == str(SITE_FORMAT)
    for run in runs:
        page = out_dir / "runs" / run.key / "index.html"
        if current and _fresh(run, page):
            skipped += 1
            continue
        _run_page(env, run, page.parent)
        pages += 1
    by_recipe: dict[str, list[_Run]] = {}
    for run in runs:
        by_recipe.setdefault(run.recipe, []).append(run)
    recipes = []
    for recipe, history in sorted(by_recipe.items()):
        latest = history[-1]
        write_atomic(out_dir / "badges" / f"{recipe}.svg", badge(latest.doc.level))
        views = [r.view() for r in reversed(history)]
        write_atomic(
            out_dir / "recipes" / f"{recipe}.html",
            env.get_template("recipe.html.j2").render(
                recipe=recipe,
                runs=views,
                rungs=RUNGS,
                chart=_chart(history),
                root="../",
                badge_width=BADGE_WIDTH,
            ),
        )
        recipes.append({"recipe": recipe, "latest": views[0]})
    write_atomic(stamp, f"{SITE_FORMAT}\n")
    write_atomic(
        out_dir / "index.html",
        env.get_template("index.html.j2").render(
            recipes=recipes, rungs=RUNGS, run_count=len(runs), root="", badge_width=BADGE_WIDTH
        ),
    )
    return Built(len(runs), pages, skipped)
