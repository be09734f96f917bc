"""The PR card: a run's summary as a PNG (recipe, ref, level, the rung row, a thumbnail of
its screenshot), rendered by chromium from an HTML template and kept in the run dir as
``card.png``, for the ``!testme`` comment to embed."""

from __future__ import annotations

import base64
import threading
from pathlib import Path

from playwright.sync_api import ViewportSize, sync_playwright

from harness.chromium import launch_for_own_pages
from harness.reports.results import RUNGS, read
from harness.reports.site import _COLOUR, _environment, _Run

__all__ = ["render"]

_LABELS = {r: r.replace("backup_restore", "backup") for r in RUNGS}
_SIZE: ViewportSize = {"width": 800, "height": 418}


def render(run_dir: Path) -> Path:
    """Render ``run_dir/card.png``, with a chromium of its own in a thread of its own: callable
    from any thread, also one where a sync Playwright already runs."""
    failed: list[BaseException] = []

    def work() -> None:
        try:
            _render(run_dir)
        except BaseException as exc:
            failed.append(exc)

    thread = threading.Thread(target=work, name="card")
    thread.start()
    thread.join()
    if failed:
        raise failed[0]
    return run_dir / "card.png"


def _render(run_dir: Path) -> None:
    run = _Run(run_dir.name, run_dir, read(run_dir))
    view = run.view()
    shot = run_dir / "screenshot.png"
    screenshot = (
        "data:image/png;base64," + base64.b64encode(shot.read_bytes()).decode()
        if shot.is_file()
        else ""
    )
    html = (
        _environment()
        .get_template("card.html.j2")
        .render(
            run=view,
            rungs=RUNGS,
            labels=_LABELS,
            screenshot=screenshot,
            colour=_COLOUR.get(int(view["level"]), "#555"),
        )
    )
    out = run_dir / "card.png"
    with sync_playwright() as playwright:
        browser = launch_for_own_pages(playwright.chromium)
        try:
            page = browser.new_page(viewport=_SIZE)
            page.set_content(html, wait_until="load")
            page.screenshot(path=str(out))
        finally:
            browser.close()
