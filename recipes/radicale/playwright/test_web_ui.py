"""Radicale's web UI in chromium: log in, create a calendar, find it over CalDAV."""

import uuid

from playwright.sync_api import expect


def test_log_in_and_create_a_calendar(app, page):
    secret = app.exec("app", ["cat", "/run/secrets/admin_pass"]).stdout.strip()
    name = f"Team {uuid.uuid4().hex[:6]}"
    page.goto("/.web/")
    page.locator("#loginscene input[data-name=user]").fill("admin")
    page.locator("#loginscene input[data-name=password]").fill(secret)
    page.locator("#loginscene button[type=submit]").click()
    page.locator("#collectionsscene a[data-name=new]").click()
    page.locator("#createcollectionscene input[data-name=displayname]").fill(name)
    page.locator("#createcollectionscene button[data-name=submit]").click()
    expect(page.locator("#collectionsscene")).to_contain_text(name)
    # Read it back through the server, not the page: the calendar really exists.
    listing = app.request("PROPFIND", "/admin/", auth=("admin", secret), headers={"Depth": "1"})
    assert listing.status_code == 207
    assert name in listing.text
