"""Kinto's REST API on the live app: write records, read them back, keep them private."""

import uuid

ALICE = ("alice", "alice-passphrase")
BOB = ("bob", "bob-passphrase")


def test_a_record_written_is_read_back(app):
    bucket = f"notes-{uuid.uuid4().hex[:8]}"
    assert app.request("PUT", f"/v1/buckets/{bucket}", auth=ALICE).status_code in (200, 201)
    collection = f"/v1/buckets/{bucket}/collections/todo"
    assert app.request("PUT", collection, auth=ALICE).status_code in (200, 201)
    created = app.request(
        "POST", f"{collection}/records", auth=ALICE, json={"data": {"text": "water the plants"}}
    )
    assert created.status_code == 201, created.text
    record_id = created.json()["data"]["id"]
    read = app.get(f"{collection}/records/{record_id}", auth=ALICE)
    assert read.status_code == 200
    assert read.json()["data"]["text"] == "water the plants"


def test_another_account_cannot_read_it(app):
    bucket = f"private-{uuid.uuid4().hex[:8]}"
    assert app.request("PUT", f"/v1/buckets/{bucket}", auth=ALICE).status_code in (200, 201)
    assert app.get(f"/v1/buckets/{bucket}", auth=BOB).status_code in (401, 403)
