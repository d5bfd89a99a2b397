#!/bin/sh
# First start: initdb into the (empty) volume, open it to the network with
# password auth, create $POSTGRES_DB. Every start: exec postgres as PID 1 so
# it receives the stop signal itself. Extra args are passed to postgres
# (compose `command: ["-c", "name=value"]`).
#
# Only settings that must never be tuned go into postgresql.conf here; tuning
# happens through ALTER SYSTEM (postgresql.auto.conf), which command-line -c
# options would override.
set -eu

: "${PGDATA:=/var/lib/postgresql/data}"
: "${POSTGRES_DB:=app}"

if [ ! -s "$PGDATA/PG_VERSION" ]; then
  if [ -z "${POSTGRES_PASSWORD:-}" ]; then
    echo "entrypoint: POSTGRES_PASSWORD must be set for the first start (it becomes the postgres user's password)" >&2
    exit 1
  fi
  case "$POSTGRES_DB" in
    *[!a-z0-9_]* | "" | [0-9]*)
      echo "entrypoint: POSTGRES_DB='$POSTGRES_DB' must match [a-z_][a-z0-9_]*" >&2
      exit 1 ;;
  esac
  echo "entrypoint: initialising $PGDATA"
  pwfile="$PGDATA/../.pwfile.$$"
  umask 077
  printf '%s\n' "$POSTGRES_PASSWORD" > "$pwfile"
  initdb -D "$PGDATA" -U postgres --pwfile="$pwfile" \
    --auth-local=trust --auth-host=scram-sha-256 \
    --encoding=UTF8 --locale=C.UTF-8 >/dev/null
  rm -f "$pwfile"
  cat >> "$PGDATA/postgresql.conf" <<CONF

# Added by the local/postgres:15 entrypoint.
listen_addresses = '*'
# llvmjit is not in the image.
jit = off
# Site settings mounted by the deployment (the demo mounts a WAL-heavy
# starting point there). ALTER SYSTEM still overrides them.
include_if_exists = '/etc/postgresql/site.conf'
CONF
  echo "host all all all scram-sha-256" >> "$PGDATA/pg_hba.conf"
  if [ "$POSTGRES_DB" != postgres ]; then
    echo "CREATE DATABASE $POSTGRES_DB;" | postgres --single -D "$PGDATA" postgres >/dev/null
  fi
  echo "entrypoint: initialised; database '$POSTGRES_DB' ready"
fi

exec postgres -D "$PGDATA" "$@"
