#!/bin/sh
set -eu
password=${POSTGRES_PASSWORD:-}
[ -n "${POSTGRES_PASSWORD_FILE:-}" ] && password=$(cat "$POSTGRES_PASSWORD_FILE")
user=${POSTGRES_USER:-postgres}
db=${POSTGRES_DB:-$user}
mkdir -p "$PGDATA" /run/postgresql
chown -R postgres:postgres "$PGDATA" /run/postgresql
chmod 700 "$PGDATA"
if [ ! -s "$PGDATA/PG_VERSION" ]; then
  pwfile=$(mktemp); printf '%s' "$password" >"$pwfile"; chown postgres "$pwfile"
  su postgres -c "initdb -D '$PGDATA' -U '$user' --pwfile='$pwfile' --encoding=UTF8 --locale=C.UTF-8 --auth-host=scram-sha-256 --auth-local=trust" >/dev/null
  rm -f "$pwfile"
  echo "host all all all scram-sha-256" >>"$PGDATA/pg_hba.conf"
  su postgres -c "pg_ctl -D '$PGDATA' -o '-c listen_addresses=' -w start" >/dev/null
  [ "$db" = postgres ] || su postgres -c "createdb -U '$user' '$db'"
  su postgres -c "pg_ctl -D '$PGDATA' -m fast -w stop" >/dev/null
  echo "docker-entrypoint: initialised $PGDATA (user $user, database $db)"
fi
# The server replaces this shell as PID 1 (setpriv execs, su would fork and stay): the
# stop signal reaches PostgreSQL itself. Under su it got SIGTERM, then SIGKILL 2 s later.
exec setpriv --reuid=postgres --regid=postgres --init-groups postgres -D "$PGDATA" -c listen_addresses='*'
