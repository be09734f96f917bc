"""Kinto on PostgreSQL: healthy when its heartbeat says storage and permissions answer."""

HEALTH_PATH = "/v1/__heartbeat__"


def READY_PROBE(ctx):
    # The root endpoint lists the server's capabilities once the app is fully up.
    return "capabilities" in ctx.get("/v1/").json()
