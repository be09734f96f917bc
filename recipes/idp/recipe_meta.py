"""The demo identity provider (node's oidc-provider): a dependency of the recipes that log
users in over OpenID Connect (``DEPS = ("idp",)``); ``ops.py`` ``provide`` gives them its
client and a test user.

Its issuer is the URL browsers use: its domain, at its host port on the local platform.
"""

from urllib.parse import urlsplit

HEALTH_PATH = "/.well-known/openid-configuration"
TIERS = ("install",)  # a stateless provider: no data to upgrade, back up or restore
EXPECTED_NA = {
    "upgrade": "one release",
    "backup_restore": "stateless: nothing to back up",
    "custom": "exercised by the recipes that depend on it",
}


def browser_url(ctx):
    """The provider as a browser reaches it: by its domain (on the local platform, at the
    host port; *.localhost is loopback)."""
    port = urlsplit(ctx.base_url).port
    return f"http://{ctx.domain}:{port}" if port else ctx.base_url


def EXTRA_ENV(ctx):
    return {"ISSUER": browser_url(ctx)}
