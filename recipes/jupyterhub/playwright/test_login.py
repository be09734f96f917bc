"""A user logs in to JupyterHub through the identity provider's own login page, in
chromium, and lands on the hub logged in."""

import re

from playwright.sync_api import expect


def test_a_user_logs_in_through_the_identity_provider(page, app, deps):
    user = deps["idp"]
    page.goto(app.base_url + "/hub/oauth_login")  # the hub sends the browser to the provider
    expect(page).to_have_url(re.compile("^" + re.escape(user["issuer"]) + "/"))
    page.locator("input[name=login]").fill(user["username"])
    page.locator("input[name=password]").fill(user["password"])
    page.locator("button[type=submit]").click()
    page.locator("button[type=submit]").click()  # the provider's consent: Continue
    expect(page).to_have_url(re.compile(r"/hub/home$"))
    expect(page.locator("body")).to_contain_text(user["username"])
