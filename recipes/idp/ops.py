"""What the recipes that depend on the identity provider get: its issuer (as browsers reach
it), its client, and a test user (its login page takes any user name and password)."""

from urllib.parse import urlsplit


def provide(ctx):
    port = urlsplit(ctx.base_url).port
    issuer = f"http://{ctx.domain}:{port}" if port else ctx.base_url
    secret = ctx.exec("app", ["cat", "/run/secrets/client_secret"]).stdout.strip()
    return {
        "issuer": issuer,
        "authorize_url": issuer + "/auth",
        "client_id": ctx.env.get("CLIENT_ID", "jupyterhub"),
        "client_secret": secret,
        "username": "alice",
        "password": "any password will do",
    }
