"""The Co-op Cloud recipe lint rules, natively: same ids, severities and meaning as abra's.

Run on a pristine checkout of the tested ref (never a tree the harness has touched), with
its git tags as the caller listed them (``harness.fetch.tags``).
The lint rung passes when no rule of ``error`` severity fails; ``warn`` rules are reported.
R013 (the upstream repo exists) needs the network and is skipped here.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from harness.recipe.appenv import abra_exports
from harness.recipe.catalogue import Tag, parse_version

__all__ = ["RULES", "Finding", "lint", "render_table", "summary"]

_SEMVER_TAG = re.compile(r"^v?\d+\.\d+(\.\d+)?([.+-].*)?$")
_VERSION_VAR = re.compile(r"\$\{?([A-Z0-9_]*VERSION)\}?")


@dataclass(frozen=True)
class Finding:
    rule: str
    severity: str  # error | warn
    description: str
    status: str  # pass | fail | skip
    detail: str = ""


class _Recipe:
    """What the rules look at: the compose files, raw; abra.sh; README; the git tags."""

    def __init__(self, path: Path, tags: Sequence[Tag]) -> None:
        self.path = path
        self._tags = tags
        self.composes: dict[str, dict[str, Any]] = {}
        for file in sorted(path.glob("compose*.yml")):
            try:
                data = yaml.safe_load(file.read_text())
            except yaml.YAMLError:
                data = None
            self.composes[file.name] = data if isinstance(data, dict) else {}
        self.main = self.composes.get("compose.yml", {})

    def services(self, all_files: bool = False) -> Iterator[tuple[str, str, dict[str, Any]]]:
        files = self.composes if all_files else {"compose.yml": self.main}
        for file, data in files.items():
            for name, spec in (data.get("services") or {}).items():
                yield file, name, spec or {}

    def deploy_labels(self, spec: dict[str, Any]) -> list[str]:
        labels = (spec.get("deploy") or {}).get("labels") or []
        return [f"{k}={v}" for k, v in labels.items()] if isinstance(labels, dict) else labels

    def tags(self) -> tuple[list[str], list[str]]:
        """(annotated, lightweight) tag names."""
        return (
            [t.name for t in self._tags if t.annotated],
            [t.name for t in self._tags if not t.annotated],
        )


def _image_tag(image: str) -> str | None:
    name = image.split("@")[0]
    last = name.rsplit("/", 1)[-1]
    return last.split(":", 1)[1] if ":" in last else None


def r001(r: _Recipe) -> str:
    bad = [f for f, d in r.composes.items() if str(d.get("version", "")) != "3.8"]
    return f"not version 3.8: {', '.join(bad)}" if bad else ""


def r002(r: _Recipe) -> str:
    bad = [n for _, n, s in r.services() if not (s.get("healthcheck") or {}).get("test")]
    return f"no healthcheck: {', '.join(bad)}" if bad else ""


def r003(r: _Recipe) -> str:
    bad = [
        s["image"] for _, _, s in r.services(True) if s.get("image") and not _image_tag(s["image"])
    ]
    return f"untagged: {', '.join(bad)}" if bad else ""


def r004(r: _Recipe) -> str:
    bad = [
        s["image"] for _, _, s in r.services(True) if _image_tag(s.get("image") or "") == "latest"
    ]
    return f"unstable tag: {', '.join(bad)}" if bad else ""


def r005(r: _Recipe) -> str:
    bad = [
        s["image"]
        for _, _, s in r.services(True)
        if (tag := _image_tag(s.get("image") or "")) and not _SEMVER_TAG.match(tag)
    ]
    return f"not semver-like: {', '.join(bad)}" if bad else ""


def r006(r: _Recipe) -> str:
    annotated, light = r.tags()
    found = [t for t in annotated + light if parse_version(t)]
    return "" if found else "no <semver>+<upstream> release tag"


def r007(r: _Recipe) -> str:
    readme = r.path / "README.md"
    if not readme.is_file():
        return "no README.md"
    text = readme.read_text(errors="replace")
    block = re.search(r"<!-- metadata -->(.*?)<!-- endmetadata -->", text, re.DOTALL)
    if not block:
        return "no <!-- metadata --> block"
    empty = [
        m[1]
        for m in re.finditer(r"\*\*([^*]+)\*\*:\s*(.*)", block[1])
        if m[2].strip() in ("", "?", "~", "N/A?")
    ]
    return f"not filled in: {', '.join(empty)}" if empty else ""


def r008(r: _Recipe) -> str:
    return "" if (r.path / ".env.sample").is_file() else "no .env.sample"


def r009(r: _Recipe) -> str:
    return "" if "app" in (r.main.get("services") or {}) else "no service named app in compose.yml"


def r010(r: _Recipe) -> str:
    enabled = any(
        label.replace(" ", "") in ("traefik.enable=true", "traefik.enable=True")
        for _, _, s in r.services()
        for label in r.deploy_labels(s)
    )
    return "" if enabled else "no service has traefik.enable=true"


def r011(r: _Recipe) -> str:
    bad = [f"{f}:{n}" for f, n, s in r.services(True) if not s.get("image") and "build" not in s]
    # An override file's service without an image extends the main file's service.
    bad = [b for b in bad if b.startswith("compose.yml:")]
    return f"no image: {', '.join(bad)}" if bad else ""


def r012(r: _Recipe) -> str:
    vendored = abra_exports(r.path / "abra.sh")
    missing = sorted(
        {
            var
            for data in r.composes.values()
            for spec in (data.get("configs") or {}).values()
            for var in _VERSION_VAR.findall(str((spec or {}).get("name", "")))
            if var not in vendored
        }
    )
    return f"not exported in abra.sh: {', '.join(missing)}" if missing else ""


def r013(r: _Recipe) -> str | None:
    return None  # skipped: needs the network


def r014(r: _Recipe) -> str:
    _, light = r.tags()
    return f"lightweight tags: {', '.join(light)}" if light else ""


def r015(r: _Recipe) -> str:
    # The swarm secret is <stack>_<name>_<version> and swarm names cap at 64 characters;
    # stack names take most of that, so secret names must stay short (12 characters).
    bad = [k for d in r.composes.values() for k in (d.get("secrets") or {}) if len(k) > 12]
    return f"longer than 12 characters: {', '.join(bad)}" if bad else ""


def r016(r: _Recipe) -> str:
    app = (r.main.get("services") or {}).get("app") or {}
    return "" if r.deploy_labels(app) else "service app has no deploy.labels"


RULES: tuple[tuple[str, str, str, Callable[[_Recipe], str | None]], ...] = (
    ("R001", "warn", "compose config has expected version", r001),
    ("R002", "warn", "healthcheck enabled for all services", r002),
    ("R003", "warn", "all images use a tag", r003),
    ("R004", "warn", "no unstable tags", r004),
    ("R005", "warn", "tags use semver-like format", r005),
    ("R006", "warn", "has published version", r006),
    ("R007", "warn", "README.md metadata filled in", r007),
    ("R008", "error", ".env.sample provided", r008),
    ("R009", "error", "has a service named app", r009),
    ("R010", "error", "traefik routing enabled", r010),
    ("R011", "error", "all services have images", r011),
    ("R012", "error", "config version are vendored", r012),
    ("R013", "error", "git.coopcloud.tech repo exists", r013),
    ("R014", "error", "only annotated tags used for recipe version", r014),
    ("R015", "warn", "long secret names", r015),
    ("R016", "error", "deploy labels stanza present", r016),
)


def lint(path: Path, tags: Sequence[Tag]) -> list[Finding]:
    """The findings of every rule on the recipe checkout at ``path``, whose git tags are
    ``tags`` (none outside a git repo)."""
    recipe = _Recipe(path, tags)
    findings = []
    for rule, severity, description, check in RULES:
        problem = check(recipe)
        status = "skip" if problem is None else ("fail" if problem else "pass")
        findings.append(Finding(rule, severity, description, status, problem or ""))
    return findings


def summary(findings: list[Finding]) -> dict[str, Any]:
    """The ``lint`` block of results.json."""
    errors = [f.rule for f in findings if f.severity == "error" and f.status == "fail"]
    return {
        "status": "fail" if errors else "pass",
        "errors": errors,
        "warnings": [f.rule for f in findings if f.severity == "warn" and f.status == "fail"],
        "rules": [f.__dict__ for f in findings],
    }


def render_table(findings: list[Finding]) -> str:
    rows = [f"{'rule':5} {'severity':8} {'status':6} description", "-" * 72]
    for f in findings:
        detail = f" — {f.detail}" if f.detail else ""
        rows.append(f"{f.rule:5} {f.severity:8} {f.status:6} {f.description}{detail}")
    return "\n".join(rows)
