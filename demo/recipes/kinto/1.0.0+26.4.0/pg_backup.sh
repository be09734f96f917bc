#!/bin/sh
# The Co-op Cloud convention: `backup` dumps the database into the volume before
# backup-bot archives it; `restore` loads that dump back after the archive is restored.
set -eu
dump=/var/lib/postgresql/data/backup.sql
case "${1:-}" in
  backup)
    su postgres -c "pg_dump -U '$POSTGRES_USER' --clean --if-exists '$POSTGRES_DB'" >"$dump.tmp"
    mv "$dump.tmp" "$dump"
    ;;
  restore)
    su postgres -c "psql -q -v ON_ERROR_STOP=1 -U '$POSTGRES_USER' '$POSTGRES_DB'" <"$dump" >/dev/null
    rm -f "$dump"
    ;;
  *) echo "usage: $0 backup|restore" >&2; exit 2 ;;
esac
