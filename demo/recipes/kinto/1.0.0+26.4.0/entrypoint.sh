#!/bin/sh
# Build kinto's database URLs from the swarm secrets, wait for the database, bring the
# schema up to date and serve — migrate and serve in one Python process, so kinto is
# imported once. The wait is a bare socket connect (a few ms of CPU a try): the database
# listens on TCP only once initialised, and a `kinto migrate` per try costs a second.
set -eu
url="postgresql+psycopg2://kinto:$(cat /run/secrets/db_password)@db:5432/kinto"
export KINTO_STORAGE_URL="$url" KINTO_PERMISSION_URL="$url"
KINTO_USERID_HMAC_SECRET=$(cat /run/secrets/hmac_secret)
export KINTO_USERID_HMAC_SECRET
exec python3 - <<'PY'
import socket, sys, time

deadline = time.monotonic() + 60
while True:
    try:
        socket.create_connection(("db", 5432), timeout=1).close()
        break
    except OSError:
        if time.monotonic() > deadline:
            sys.exit("entrypoint: database never became reachable")
        time.sleep(0.25)

from kinto.__main__ import main

ini = ["--ini", "/etc/kinto/kinto.ini"]
if main(["migrate", *ini]):
    sys.exit("entrypoint: kinto migrate failed")
sys.exit(main(["start", *ini]))
PY
