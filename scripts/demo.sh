#!/usr/bin/env bash
# The tour `make demo` gives, on the running demo stack (make dev-up):
# health, baseline, status, a short real tuning run, a blue-green re-size of
# the stateless `grafana` service and its rollback, then the final status.
#
# The demo database starts WAL-heavy (demo/postgres/site.conf), and the
# `demo` SLA profile asks for half the baseline's WAL rate, so tuning has a
# real problem to solve with short windows (90 s observed per change: 18
# samples at the 5 s interval, so enough pair up by transactions since the
# CHECKPOINT; at 45 s the 9 samples fell back to pairing by time). The judge
# tests only readings one query lookback apart (README, "Verdicts are
# calibrated"): 90 s holds 3 of wal_rate's 30 s and 2 of the 1 m guards';
# 60 s held 1 of the guards', and they would be inconclusive.
#
# Env: DEMO_OBSERVE (default 90s), DEMO_SETTLE (30s), DEMO_CYCLES (4).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
TUNER=target/release/tuner
observe=${DEMO_OBSERVE:-90s}
settle=${DEMO_SETTLE:-30s}
cycles=${DEMO_CYCLES:-4}

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

# Exit 3 (an objective violated) is a result to show, not a failure.
run() {
  local rc=0
  "$@" || rc=$?
  if [ "$rc" -ne 0 ] && [ "$rc" -ne 3 ]; then
    echo "demo: '$*' failed with exit $rc" >&2
    exit "$rc"
  fi
}

step "health: Prometheus, its scrape targets, PostgreSQL, Docker"
$TUNER status --health

step "tuner resources --dry-run (host score and tier, limits per service, PostgreSQL settings; nothing written)"
$TUNER resources --dry-run

step "back to the demo's starting point (undo tuning kept by an earlier demo)"
# --yes: the demo undoes its own earlier tuning without asking
$TUNER rollback --all --yes
# A demo stopped between its deploy and the rollback leaves grafana at the
# deploy's 1.5 CPUs; put it back on demo/docker-compose.yml's limits so the
# deploy below really swaps (it would otherwise have nothing to do).
# shellcheck source=scripts/lib/demo.sh
source scripts/lib/demo.sh
grafana_id=$(docker ps -q --filter "label=com.docker.compose.project=$(project_name)" --filter label=com.docker.compose.service=grafana | head -n 1)
if [ -n "$grafana_id" ] && [ "$(docker inspect -f '{{.HostConfig.NanoCpus}}' "$grafana_id")" = 1500000000 ]; then
  $TUNER deploy grafana 0.5 256M --health-interval 1s
fi

# rate() needs a few scrapes, and a baseline wants a minute of steady load.
step "warming up: a minute of load before the baseline"
prom="http://127.0.0.1:$(sed -n 's/^PROM_PORT=//p' demo/.env | tail -n 1)"
# Every wait says what it waits for, at least every 10 s.
echo "  waiting until Prometheus has a WAL rate (up to 120 s)"
waited=0
until curl -sf --max-time 2 "$prom/api/v1/query" --data-urlencode 'query=sum(rate(pg_wal_lsn_bytes[30s]))' | grep -q '"value"'; do
  if [ "$waited" -ge 120 ]; then
    echo "  no WAL rate after 120 s; going on (baseline will name what is missing)" >&2
    break
  fi
  if [ "$waited" -gt 0 ] && [ $((waited % 10)) -eq 0 ]; then
    printf '  still no WAL rate (%ss)\n' "$waited"
  fi
  sleep 2
  waited=$((waited + 2))
done
for left in 60 50 40 30 20 10; do
  printf '  %ss left\n' "$left"
  sleep 10
done

step "tuner baseline"
$TUNER baseline

step "tuner watch --once (usage vs limits from the cgroup files; acts after 3 checks in a row)"
$TUNER watch --once

step "tuner status"
run $TUNER status

step "tuner tune --dry-run (profile demo: WAL rate <= 0.5x baseline)"
run $TUNER --profile demo tune --dry-run --observe "$observe" --settle "$settle"

# --yes: the demo's own database may be restarted for postmaster settings
# without stopping the tour to ask (an unattended run would skip them).
tune_started=$(date -u +%Y-%m-%dT%H:%M:%SZ)
step "tuner tune --max-cycles $cycles --observe $observe --settle $settle --yes"
run $TUNER --profile demo tune --max-cycles "$cycles" --observe "$observe" --settle "$settle" --yes
echo
echo "audit trail: CHANGELOG_TUNING.md (tail below), tuning.log (one JSON line per sample)"
if [ -f CHANGELOG_TUNING.md ]; then
  tail -n 12 CHANGELOG_TUNING.md
else
  echo "(no change was made: CHANGELOG_TUNING.md is written by the first one)"
fi

step "tuner deploy grafana 1.5 768M --dry-run"
$TUNER deploy grafana 1.5 768M --dry-run

# A probe of grafana's published port (HAProxy's, demo/haproxy) runs through
# the whole swap: what a user of the service sees.
grafana_port=$(sed -n 's/^GRAFANA_PORT=//p' demo/.env | tail -n 1)
probe_file=$(mktemp)
probe_stop=$(mktemp -u)
probe() {
  local sent=0 failed=0
  while [ ! -e "$probe_stop" ] && [ "$sent" -lt 20000 ]; do
    sent=$((sent + 1))
    curl -sf --max-time 2 -o /dev/null "http://127.0.0.1:$grafana_port/healthz" || failed=$((failed + 1))
  done
  echo "$sent $failed" >"$probe_file"
}

step "tuner deploy grafana 1.5 768M (blue-green through HAProxy, probing 127.0.0.1:$grafana_port)"
probe &
probe_pid=$!
sleep 1
$TUNER deploy grafana 1.5 768M --health-interval 1s
sleep 1
touch "$probe_stop"
wait "$probe_pid"
read -r sent failed <"$probe_file"
rm -f "$probe_file" "$probe_stop"
echo "probe of the published port 127.0.0.1:$grafana_port during the deploy: $sent requests sent, failed: $failed"
if [ "$failed" -ne 0 ]; then
  echo "demo: the published port failed $failed requests during the deploy" >&2
  exit 1
fi

step "tuner deploy status grafana"
$TUNER deploy status grafana

step "tuner deploy rollback grafana (back to the previous limits, same path)"
$TUNER deploy rollback grafana --health-interval 1s

step "tuner status"
run $TUNER status

step "tuner report (this run: plots, changelog, deploys)"
$TUNER --profile demo report --since "$tune_started" --file tuning-report.html
echo "report: $ROOT/tuning-report.html (open it in a browser; it needs no network)"
