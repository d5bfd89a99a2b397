#!/usr/bin/env bash
# Starts the demo stack and waits until every service is healthy.
#   - builds missing or outdated local images (scripts/images.sh)
#   - writes demo/.env if it is missing (scripts/dev-env.sh)
#   - compose up -d (v2 plugin or docker-compose, see lib/demo.sh), then one progress line per change until healthy
# On timeout it prints `compose ps` and the logs of the services that
# are not healthy, and exits 1.
#
# Env: DEV_UP_TIMEOUT (seconds, default 180), SKIP_IMAGES=1 to skip the image
# check, TUNER_ENV_FILE to use another env file (and so another project).
set -euo pipefail

# shellcheck source=scripts/lib/demo.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/demo.sh"

timeout=${DEV_UP_TIMEOUT:-180}
[[ "$timeout" =~ ^[0-9]+$ ]] || die "DEV_UP_TIMEOUT must be whole seconds, got '$timeout'"

require_tools
if [ ! -f "$ENV_FILE" ]; then
  "$ROOT/scripts/dev-env.sh" --env-file "$ENV_FILE"
fi
if [ "${SKIP_IMAGES:-0}" != 1 ]; then
  "$ROOT/scripts/images.sh"
fi
project=$(project_name)

# A port taken by something other than this project would make docker-proxy
# fail half-way through `up`; say which one and how to fix it instead.
for key in PG_PORT PROM_PORT GRAFANA_PORT; do
  port=$(env_value "$key")
  [[ "$port" =~ ^[0-9]+$ ]] || die "$key in $ENV_FILE is '$port', not a port number"
  if ss -Htln "sport = :$port" 2>/dev/null | grep -q . &&
    ! docker ps --filter "label=com.docker.compose.project=$project" --format '{{.Ports}}' | grep -q ":$port->"; then
    die "port $port ($key in $ENV_FILE) is already in use by another process; free it, or delete $ENV_FILE to pick new ports"
  fi
done

# node-exporter's textfile collector reads tuner's metrics from here; made
# now so it belongs to this user, not to root through Docker's bind mount.
mkdir -p "$ROOT/.tuner/textfile" "$ROOT/.tuner/haproxy"
# HAProxy's server-state file holds the addresses of the last deploy; a
# stack started again has other ones (HAProxy then resolves grafana anew).
if [ -z "$(dc ps -q haproxy 2>/dev/null)" ]; then
  rm -f "$ROOT/.tuner/haproxy/server-state"
fi

PSQL=/usr/lib/postgresql/15/bin/psql

# The data volume keeps the password it was made with; a new env file (a
# second clone, a deleted demo/.env) brings another one, and the app and
# the exporter could not log in while every container looks healthy. Local
# socket connections are trusted inside the container, so the volume's
# password is set to the env file's: the env file stays the one source.
sync_password() {
  local pg pw
  pg=$(dc ps -q postgres 2>/dev/null | head -n 1)
  [ -n "$pg" ] || return 0
  pw=$(env_value POSTGRES_PASSWORD)
  if docker exec -e PGPASSWORD="$pw" "$pg" "$PSQL" -h 127.0.0.1 -U postgres -d app -Atqc 'select 1' >/dev/null 2>&1; then
    return 0
  fi
  echo "dev-up: the PostgreSQL volume was made with another password than POSTGRES_PASSWORD in $ENV_FILE; setting the database's password to the env file's"
  if ! docker exec -i "$pg" "$PSQL" -U postgres -d postgres -v ON_ERROR_STOP=1 -Atq -v pw="$pw" \
    <<<"ALTER USER postgres PASSWORD :'pw';" >/dev/null; then
    die "could not set the password of the existing volume; put the old POSTGRES_PASSWORD back in $ENV_FILE, or start with an empty database: make dev-down VOLUMES=1 && make dev-up (deletes the demo's data)"
  fi
}

# One metric of a service's /metrics page, read inside its container.
metric_of() {
  local id
  id=$(dc ps -q "$1" 2>/dev/null | head -n 1)
  [ -n "$id" ] || return 0
  docker exec "$id" /bin/wget -q -O - "http://127.0.0.1:$2/metrics" 2>/dev/null |
    awk -v name="$3" '$1 == name { print $2; exit }'
}

# Healthy containers are not enough: the exporter must see the database
# (`pg_up 1`) and the writer app must have connected workers, or Prometheus
# has no WAL or latency data and `tuner baseline` writes empty baselines.
wait_db_clients() {
  local pg_up workers deadline=$((SECONDS + 60))
  while :; do
    pg_up=$(metric_of postgres-exporter 9187 pg_up)
    workers=$(metric_of app 8000 loadgen_connected_workers)
    if [ "${pg_up:-0}" = 1 ] && awk -v w="${workers:-0}" 'BEGIN { exit !(w > 0) }'; then
      return 0
    fi
    if [ "$SECONDS" -ge "$deadline" ]; then
      echo "dev-up: postgres-exporter pg_up=${pg_up:-none}, app loadgen_connected_workers=${workers:-none}" >&2
      dc logs --no-color --tail 20 app postgres-exporter >&2 || true
      die "the app or the exporter cannot reach PostgreSQL (see above); check POSTGRES_PASSWORD in $ENV_FILE, or start with an empty database: make dev-down VOLUMES=1 && make dev-up (deletes the demo's data)"
    fi
    sleep 1
  done
}

echo "dev-up: starting project $project ($ENV_FILE)"
started=$SECONDS
if ! dc up -d --no-build --remove-orphans; then
  dc ps >&2 || true
  die "${COMPOSE[*]} up failed (see above)"
fi

mapfile -t services < <(dc config --services)

# `docker swarm init/leave` on this engine disconnects running containers from
# their networks (ports unpublished, names unresolvable) while compose still
# calls them up-to-date. Recreate any container left without a network.
detached=()
for svc in "${services[@]}"; do
  id=$(dc ps -q "$svc" 2>/dev/null | head -n 1)
  [ -n "$id" ] || continue
  nets=$(docker inspect -f '{{len .NetworkSettings.Networks}}' "$id" 2>/dev/null || echo 1)
  [ "$nets" = 0 ] && detached+=("$svc")
done
if [ ${#detached[@]} -gt 0 ]; then
  echo "dev-up: ${detached[*]} lost their network (docker swarm init/leave?); recreating"
  dc up -d --no-build --force-recreate "${detached[@]}" || die "could not recreate ${detached[*]}"
fi
last=""
last_print=0
while :; do
  states=()
  ready=1
  failed=()
  for svc in "${services[@]}"; do
    id=$(dc ps -q "$svc" 2>/dev/null | head -n 1)
    if [ -z "$id" ]; then
      state=missing
    else
      state=$(docker inspect -f '{{.State.Status}}{{if .State.Health}}/{{.State.Health.Status}}{{end}}' "$id" 2>/dev/null || echo gone)
    fi
    case "$state" in
      running/healthy) label=healthy ;;
      running) label=running ;; # no healthcheck: running is as good as it gets
      running/starting) label=starting; ready=0 ;;
      running/unhealthy) label=unhealthy; ready=0 ;;
      exited* | dead* | gone | missing) label=${state%%/*}; ready=0; failed+=("$svc") ;;
      *) label=${state%%/*}; ready=0 ;;
    esac
    states+=("$svc $label")
  done
  elapsed=$((SECONDS - started))
  line=$(printf '%s, ' "${states[@]}")
  line=${line%, }
  # One line when something changes, else a heartbeat every 10 s.
  if [ "$line" != "$last" ] || [ $((elapsed - last_print)) -ge 10 ]; then
    echo "waiting: $line (${elapsed}s)"
    last=$line
    last_print=$elapsed
  fi
  if [ "$ready" = 1 ]; then
    sync_password
    wait_db_clients
    elapsed=$((SECONDS - started))
    echo "dev-up: all ${#services[@]} services healthy in ${elapsed}s; the app and the exporter reach the database"
    echo "dev-up: PostgreSQL 127.0.0.1:$(env_value PG_PORT), Prometheus http://127.0.0.1:$(env_value PROM_PORT), grafana http://127.0.0.1:$(env_value GRAFANA_PORT)"
    exit 0
  fi
  if [ ${#failed[@]} -gt 0 ] || [ "$elapsed" -ge "$timeout" ]; then
    if [ ${#failed[@]} -gt 0 ]; then
      echo "dev-up: service(s) stopped: ${failed[*]}" >&2
    else
      echo "dev-up: not healthy after ${timeout}s (DEV_UP_TIMEOUT)" >&2
    fi
    dc ps >&2 || true
    for s in "${states[@]}"; do
      svc=${s%% *}
      [ "${s#* }" = healthy ] && continue
      echo "---- logs of $svc (last 40 lines) ----" >&2
      dc logs --no-color --tail 40 "$svc" >&2 || true
    done
    die "the demo stack did not become healthy; fix the service above, then rerun make dev-up"
  fi
  sleep 1
done
