#!/bin/sh
# Build kinto's database URLs from the swarm secrets, bring the schema up to date, serve.
set -eu
url="postgresql+psycopg2://kinto:$(cat /run/secrets/db_password)@db:5432/kinto"
export KINTO_STORAGE_URL="$url" KINTO_PERMISSION_URL="$url"
KINTO_USERID_HMAC_SECRET=$(cat /run/secrets/hmac_secret)
export KINTO_USERID_HMAC_SECRET
tries=0
until kinto migrate --ini /etc/kinto/kinto.ini; do
  tries=$((tries + 1))
  [ "$tries" -lt 15 ] || { echo "entrypoint: database never became reachable" >&2; exit 1; }
  sleep 1
done
exec kinto start --ini /etc/kinto/kinto.ini
