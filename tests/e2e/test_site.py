"""The dashboard of real runs, opened in real chromium: every recipe and level in the
matrix, every local link and image resolving, a failed rung's reason, no script error."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from urllib.parse import urldefrag, urljoin

import pytest
from playwright.sync_api import Page

from harness.chromium import launch_for_own_pages
from harness.lifecycle.browser import browser as shared_browser
from harness.reports.site import build
from tests.conftest import WEB_APP, Workspace

pytestmark = pytest.mark.e2e

PRIVILEGED = WEB_APP.replace(
    "    networks: [proxy]\n", "    networks: [proxy]\n    privileged: true\n"
)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Real runs: webapp (passes install and upgrade) and refused (the policy refuses its
    install), twice each; and the site built from them."""
    workspace = Workspace(tmp_path_factory.mktemp("site"))
    workspace.recipe("webapp", [("1.0.0+1", WEB_APP), ("1.0.1+1", WEB_APP)])
    workspace.recipe("refused", [("1.0.0+1", PRIVILEGED)])
    for _ in range(2):
        session = workspace.pytest("recipes/webapp", "recipes/refused")
        assert session.results(), session.output
    # In a log (no TTY): the customization blocks come first, then a plain line per step.
    assert session.output.index("cc-ci customization of webapp") < session.output.index(
        "recipes/webapp"
    )
    assert "cc-ci: webapp install: deploying\n" in session.output
    assert "cc-ci: webapp upgrade: converging 1/1 services\n" in session.output
    out = workspace.root / "site"
    done = subprocess.run(
        [sys.executable, "-m", "harness.cli", "report", str(workspace.runs_dir), str(out)],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "4 runs (4 pages written, 0 up to date)" in done.stdout, done.stdout
    return out


def _crawl(page: Page, start: str) -> tuple[set[str], list[str]]:
    """Every page reachable from ``start`` inside the site, and what failed on the way."""
    seen, todo, problems = set(), [start], []
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    while todo:
        url = todo.pop()
        if url in seen:
            continue
        seen.add(url)
        page.goto(url)
        for img in page.locator("img").all():
            src = img.get_attribute("src") or ""
            if img.evaluate("i => i.naturalWidth") == 0:
                problems.append(f"{url}: image {src} does not load")
            if not img.get_attribute("alt"):
                problems.append(f"{url}: image {src} has no alt text")
        for href in page.locator("a").evaluate_all("as => as.map(a => a.getAttribute('href'))"):
            target = urldefrag(urljoin(url, href))[0]
            if not target.startswith("file://"):
                problems.append(f"{url}: link {href} leaves the site")
            elif target.endswith(".html"):
                todo.append(target)
            elif not Path(target.removeprefix("file://")).is_file():
                problems.append(f"{url}: link {href} does not resolve")
    return seen, problems + errors


def test_the_site_shows_every_recipe_and_every_link_resolves(site: Path) -> None:
    # A person's chromium opening the site from disk, as root: the run's own browser is
    # sandboxed as another user, which cannot read this session's temp dirs.
    reader = launch_for_own_pages(shared_browser().browser_type)
    page = reader.new_page()
    try:
        index = (site / "index.html").as_uri()
        pages, problems = _crawl(page, index)
        assert problems == []
        assert len(pages) == 1 + 2 + 4  # index, two recipe pages, four run pages

        page.goto(index)
        rows = {row.locator("th").inner_text(): row for row in page.locator("tbody tr").all()}
        assert set(rows) == {"webapp", "refused"}
        assert rows["webapp"].locator("img").get_attribute("alt") == "level 2 of 5"
        assert rows["refused"].locator("img").get_attribute("alt") == "level 0 of 5"
        install = rows["refused"].locator("td.fail").first
        assert install.inner_text().startswith("✗ fail")  # a word and a symbol, not colour only
        assert "privileged" in install.inner_text()  # the reason, in text
        assert "privileged" in (install.get_attribute("title") or "")  # and on hover

        rows["webapp"].locator("a", has_text="2026").click()
        assert page.locator("h1").inner_text() == "webapp: level 2 of 5"
        shot = page.locator("img.screenshot")
        assert shot.evaluate("i => i.naturalWidth") > 100
        assert page.locator("svg[aria-label^='timeline']").count() == 1
        headings = page.locator("h2").all_inner_texts()
        assert {"Rungs", "Tiers", "Timeline", "Screenshot", "Customization", "Files"} <= set(
            headings
        )
    finally:
        reader.close()


def test_the_site_is_rebuilt_incrementally_and_leaves_no_partial_file(site: Path) -> None:
    runs_dir = site.parent / "runs"
    again = build(runs_dir, site)
    assert (again.pages, again.skipped) == (0, 4)
    newest = sorted(runs_dir.glob("webapp-*"))[-1]
    (newest / "results.json").touch()
    once = build(runs_dir, site)
    assert (once.pages, once.skipped) == (1, 3)
    assert [p for p in site.rglob(".*") if p.is_file()] == []  # written aside, renamed in
    # A site inside the runs dir (cc-ci run's own) is not read back as more runs.
    assert build(runs_dir, runs_dir / "site").runs == 4
    assert build(runs_dir, runs_dir / "elsewhere").runs == 4


def _screen(typescript: str) -> list[str]:
    """What a terminal shows of ``typescript``: backspaces move back, text overwrites."""
    lines: list[str] = []
    line: list[str] = []
    at = 0
    for char in re.sub(r"\x1b\[[0-9;]*m", "", typescript):
        if char == "\n":
            lines.append("".join(line).rstrip())
            line, at = [], 0
        elif char == "\r":
            at = 0
        elif char == "\b":
            at = max(at - 1, 0)
        else:
            line[at : at + 1] = [char]
            at += 1
    return [*lines, "".join(line).rstrip()]


def test_on_a_terminal_the_step_is_shown_in_place_and_erased(workspace: Workspace) -> None:
    workspace.recipe("webapp", [("1.0.0+1", WEB_APP)])
    argv = " ".join(workspace.argv("recipes/webapp", "--tiers", "install", "-q"))
    done = subprocess.run(
        ["script", "-qec", argv, "/dev/null"],
        cwd=workspace.root,
        capture_output=True,
        text=True,
        timeout=300,
    )
    typescript = done.stdout
    assert done.returncode == 0, typescript
    assert " [install: deploying]" in typescript  # shown, on the progress line
    assert "\b" in typescript
    screen = _screen(typescript)
    progress = next(line for line in screen if line.startswith("recipes/webapp"))
    assert re.fullmatch(r"recipes/webapp \.\.\s+\[100%\]", progress), screen
    assert not any("cc-ci: webapp install" in line for line in screen)  # no plain lines
