"""The site's colours and badges, without a browser: statuses readable at WCAG AA."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from harness.reports import site

TEMPLATES = Path(site.__file__).parent / "templates"


def _luminance(colour: str) -> float:
    channels = [int(colour.lstrip("#")[i : i + 2], 16) / 255 for i in (0, 2, 4)]
    linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def contrast(a: str, b: str) -> float:
    light, dark = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (light + 0.05) / (dark + 0.05)


@pytest.mark.parametrize("status", ["pass", "fail", "skip", "unver", "running"])
def test_each_status_colour_pair_meets_wcag_aa(status: str) -> None:
    css = (TEMPLATES / "base.html.j2").read_text()
    rule = re.search(rf"\.{status} \{{ background: (#\w+); color: (#\w+); \}}", css)
    assert rule is not None, status
    assert contrast(rule[1], rule[2]) >= 4.5


@pytest.mark.parametrize("level", range(6))
def test_badges_and_card_levels_are_readable(level: int) -> None:
    colour = site._COLOUR[level]
    assert contrast(colour, "#ffffff") >= 4.5  # white on the badge; the card's text on white
    svg = site.badge(level)
    assert f"level {level}" in svg
    assert f'aria-label="cc-ci: level {level} of 5"' in svg


def test_contrast_is_computed_as_wcag_defines_it() -> None:
    assert round(contrast("#000000", "#ffffff"), 1) == 21.0
    assert round(contrast("#767676", "#ffffff"), 2) == 4.54


def test_the_public_copy_of_a_deploy_file_hides_secret_shaped_values(tmp_path: Path) -> None:
    run = tmp_path / "runs" / "hub-20261124-000000-abc123"
    run.mkdir(parents=True)
    (run / "op_state.json").write_text("{}")
    (run / "results.json").write_text(
        '{"recipe": "hub", "rungs": {}, "level": 0, "started": "2026-11-24T00:00:00+00:00"}'
    )
    (run / "deploy-hub-1.yml").write_text(
        "services:\n  app:\n    environment:\n"
        "      OAUTH_CLIENT_SECRET: s3cr3t-from-the-idp\n      PUBLIC_URL: http://x\n"
    )
    built = site.build(tmp_path / "runs", tmp_path / "site")
    assert built.runs == 1
    shown = (tmp_path / "site" / "runs" / run.name / "deploy-hub-1.yml").read_text()
    assert "s3cr3t-from-the-idp" not in shown
    assert "OAUTH_CLIENT_SECRET: '***'" in shown
    assert "PUBLIC_URL: http://x" in shown


def test_a_site_of_an_older_format_is_rebuilt_whole(tmp_path: Path) -> None:
    run = tmp_path / "runs" / "hub-20261124-000000-abc123"
    run.mkdir(parents=True)
    (run / "op_state.json").write_text("{}")
    (run / "results.json").write_text('{"recipe": "hub", "rungs": {}, "level": 0}')
    out = tmp_path / "site"
    assert (site.build(tmp_path / "runs", out).pages, site.build(tmp_path / "runs", out).pages) == (
        1,
        0,
    )
    (out / "site-format").write_text("1\n")  # as an older cc-ci left it
    assert site.build(tmp_path / "runs", out).pages == 1
    assert (out / "site-format").read_text() == f"{site.SITE_FORMAT}\n"
    (run / "deploy-hub-1.yml").write_text("services: {}\n")  # a deploy file is shown too
    assert site.build(tmp_path / "runs", out).pages == 1
