"""JupyterHub logging users in over OpenID Connect, with the demo identity provider
(``idp``) provisioned first: the browser logs in through the provider's own login page and
lands on the hub logged in; the hub's state survives the upgrade and a restore.

The browser reaches the hub on loopback at its host port (the provider's client is a
native one: a loopback redirect on any port) and the provider by its domain; the hub calls
the provider's token and userinfo endpoints on the provider's network.
"""

DEPS = ("idp",)
HEALTH_PATH = "/hub/health"


def EXTRA_ENV(ctx):
    idp = ctx.deps["idp"]
    return {
        "PUBLIC_URL": ctx.base_url,
        "OAUTH_CLIENT_ID": idp["client_id"],
        "OAUTH_CLIENT_SECRET": idp["client_secret"],
        "OAUTH_AUTHORIZE_URL": idp["authorize_url"],
        "OAUTH_TOKEN_URL": idp["internal_url"] + "/token",
        "OAUTH_USERDATA_URL": idp["internal_url"] + "/me",
    }
