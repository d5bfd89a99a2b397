# shellcheck shell=bash
# Shared by dev-up.sh and dev-down.sh: locations, the env file and a
# Compose wrapper bound to the demo project. Source it; do not run it.

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
DEMO_DIR="$ROOT/demo"
# TUNER_ENV_FILE lets tests and second stacks use their own ports and project.
ENV_FILE=${TUNER_ENV_FILE:-$DEMO_DIR/.env}

die() { echo "${0##*/}: $*" >&2; exit 1; }

# Value of KEY in the env file (last assignment wins, as in compose).
env_value() {
  local key=$1
  sed -n "s/^[[:space:]]*$key=//p" "$ENV_FILE" | tail -n 1 | sed -e 's/^"\(.*\)"$/\1/' -e "s/^'\(.*\)'$/\1/"
}

project_name() {
  local name=""
  [ -f "$ENV_FILE" ] && name=$(env_value COMPOSE_PROJECT_NAME)
  # docker-compose 1.29 lowercases project names itself; do the same so
  # label filters match.
  echo "${name:-tuner-demo}" | tr '[:upper:]' '[:lower:]'
}

# The Compose command, chosen once as tuner chooses it: TUNER_COMPOSE (an
# argv split on spaces, like compose.command in tuner.yaml), else the v2
# plugin when `docker compose version` answers, else docker-compose (v1).
COMPOSE=()
compose_command() {
  if [ -n "${TUNER_COMPOSE:-}" ]; then
    read -r -a COMPOSE <<<"$TUNER_COMPOSE"
  elif docker compose version >/dev/null 2>&1; then
    COMPOSE=(docker compose)
  else
    COMPOSE=(docker-compose)
  fi
}

# Compose for the demo project, from the demo directory so that the
# override file (written by tuner) is merged automatically.
dc() {
  [ ${#COMPOSE[@]} -gt 0 ] || compose_command
  (cd "$DEMO_DIR" && "${COMPOSE[@]}" --env-file "$ENV_FILE" -p "$(project_name)" "$@")
}

require_tools() {
  command -v docker >/dev/null || die "docker CLI not found; run scripts/setup.sh"
  compose_command
  "${COMPOSE[@]}" version >/dev/null 2>&1 ||
    die "${COMPOSE[*]} not found or not working; install Compose (scripts/setup.sh installs docker-compose) or set TUNER_COMPOSE"
  docker version --format '{{.Server.Version}}' >/dev/null 2>&1 ||
    die "the Docker daemon does not answer; run scripts/setup.sh (it starts dockerd)"
}
