"""The demo hub: its state in /srv/jupyterhub, users from the OpenID Connect provider named
by the environment (the browser-facing authorize URL, the token and userinfo URLs the hub
calls on the provider's network, the client), landing on the hub's home page."""

import os

c = get_config()  # noqa: F821 (JupyterHub's config loader defines it)
c.JupyterHub.bind_url = "http://:8000"
c.JupyterHub.db_url = "sqlite:////srv/jupyterhub/jupyterhub.sqlite"
c.JupyterHub.cookie_secret_file = "/srv/jupyterhub/jupyterhub_cookie_secret"
c.JupyterHub.upgrade_db = True
c.JupyterHub.default_url = "/hub/home"
c.JupyterHub.authenticator_class = "generic-oauth"
c.GenericOAuthenticator.login_service = "the cc-ci identity provider"
c.GenericOAuthenticator.client_id = os.environ["OAUTH_CLIENT_ID"]
c.GenericOAuthenticator.client_secret = os.environ["OAUTH_CLIENT_SECRET"]
c.GenericOAuthenticator.oauth_callback_url = os.environ["PUBLIC_URL"] + "/hub/oauth_callback"
c.GenericOAuthenticator.authorize_url = os.environ["OAUTH_AUTHORIZE_URL"]
c.GenericOAuthenticator.token_url = os.environ["OAUTH_TOKEN_URL"]
c.GenericOAuthenticator.userdata_url = os.environ["OAUTH_USERDATA_URL"]
c.GenericOAuthenticator.scope = ["openid", "profile"]
c.GenericOAuthenticator.username_claim = "preferred_username"
c.GenericOAuthenticator.allow_all = True
