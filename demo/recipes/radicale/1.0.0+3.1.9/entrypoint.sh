#!/bin/sh
# The admin account's password is the swarm secret; radicale reads it from an htpasswd file.
set -eu
mkdir -p /run/radicale /data/collections
printf 'admin:%s\n' "$(cat /run/secrets/admin_pass)" >/run/radicale/users
exec radicale --config /etc/radicale/config "$@"
