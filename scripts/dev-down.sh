#!/usr/bin/env bash
# Stops the demo stack. Keeps the PostgreSQL and Prometheus volumes unless
# --volumes (or VOLUMES=1, as in `make dev-down VOLUMES=1`).
# Env: TUNER_ENV_FILE to stop another project than demo/.env's.
set -euo pipefail

# shellcheck source=scripts/lib/demo.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/demo.sh"

volumes=${VOLUMES:-0}
for arg in "$@"; do
  case "$arg" in
    --volumes | -v) volumes=1 ;;
    -h | --help) sed -n '2,4p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument $arg (only --volumes)" ;;
  esac
done

require_tools
if [ ! -f "$ENV_FILE" ]; then
  # Compose still interpolates the file on `down`; placeholders suffice there.
  tmp_env=$(mktemp)
  trap 'rm -f "$tmp_env"' EXIT
  printf '%s\n' COMPOSE_PROJECT_NAME=tuner-demo PG_PORT=1 PROM_PORT=1 GRAFANA_PORT=1 POSTGRES_PASSWORD=unused >"$tmp_env"
  ENV_FILE=$tmp_env
fi

project=$(project_name)
args=(down --remove-orphans)
if [ "$volumes" = 1 ]; then
  args+=(--volumes)
  echo "dev-down: stopping $project and removing its volumes (database contents are lost)"
else
  echo "dev-down: stopping $project (volumes kept; --volumes or VOLUMES=1 removes them)"
fi
dc "${args[@]}"
