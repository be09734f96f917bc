"""Kinto on PostgreSQL: healthy when its heartbeat says storage and permissions answer.

The data that must survive the upgrade and come back from a backup is a real record in a
real bucket. The bucket is readable by everyone: a restore into a fresh stack has a new
HMAC secret, so account ids differ there, and the data must still be found.
"""

HEALTH_PATH = "/v1/__heartbeat__"
_SEED = ("ccci-seed", "seed-passphrase")
_RECORD = "/v1/buckets/ccci/collections/seeded/records/survivor"


def READY_PROBE(ctx):
    # The root endpoint lists the server's capabilities once the app is fully up.
    return "capabilities" in ctx.get("/v1/").json()


def SEED_DATA(ctx):
    bucket = {"permissions": {"read": ["system.Everyone"]}}
    made = ctx.request("PUT", "/v1/buckets/ccci", json=bucket, auth=_SEED)
    assert made.status_code < 300, f"bucket: {made.status_code} {made.text[:300]}"
    ctx.request("PUT", "/v1/buckets/ccci/collections/seeded", auth=_SEED).raise_for_status()
    ctx.request("PUT", _RECORD, json={"data": {"op": ctx.op}}, auth=_SEED).raise_for_status()


def VERIFY_DATA(ctx):
    answer = ctx.get(_RECORD)
    assert answer.status_code == 200, f"seeded record: {answer.status_code} {answer.text[:200]}"
    return "op" in answer.json()["data"]
