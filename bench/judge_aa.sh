#!/usr/bin/env bash
# An A/A test of `tuner tune`'s judge under a real load: 20 changes that
# cannot matter to the workload (settings pgbench never touches: timeouts,
# logging thresholds, planner limits for joins it never makes, and
# commit_siblings, which acts only with commit_delay (0 here), and
# max_wal_size 1GB -> 4GB, which no window opened by a CHECKPOINT reaches),
# then one that does (wal_compression=lz4), in one `tuner tune` run against
# a host PostgreSQL 15 under a closed-loop `pgbench -c 8 -j 2` load, with the
# real prometheus-postgres-exporter and Prometheus. Reports how many of the
# 20 were judged anything but `no_effect` (the target: at most 1), and
# whether lz4's real cut in WAL per transaction was still kept.
#
#   bench/judge_aa.sh          # ~25 min on 2 cores
#
# Settings (environment): TUNER_BENCH_SCALE (10), TUNER_BENCH_OBSERVE (15 s),
# TUNER_BENCH_SETTLE (6 s): the windows of tests/tune_real*.rs, the shortest
# the judge works with (3 independent readings of a 5 s rate() a window).
#
# Everything listens on 127.0.0.1 only (never the demo stack), lives in one
# temp dir and is stopped and removed on exit; raw files stay in
# target/bench/judge_aa/. Needs root (PostgreSQL runs as `postgres` through
# runuser) or a user that may run PostgreSQL itself.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
# shellcheck source=bench/lib/section.sh
. bench/lib/section.sh

PGBIN=/usr/lib/postgresql/15/bin
scale=${TUNER_BENCH_SCALE:-10}
observe=${TUNER_BENCH_OBSERVE:-15}
settle=${TUNER_BENCH_SETTLE:-6}
tuner=${TUNER_BIN:-$repo/target/debug/tuner}

for bin in "$PGBIN/postgres" "$PGBIN/pgbench" prometheus prometheus-postgres-exporter curl python3; do
  command -v "$bin" >/dev/null || { echo "bench: $bin not found (make setup installs it)" >&2; exit 1; }
done
[ -x "$tuner" ] || { echo "bench: $tuner missing: run cargo build" >&2; exit 1; }

results=$repo/target/bench/judge_aa
rm -rf "$results"
mkdir -p "$results"
tmp=$(mktemp -d /tmp/judgeaa.XXXXXX)
chmod 755 "$tmp"
data=$tmp/pg/data
mkdir -p "$tmp/pg"
if [ "$(id -u)" -eq 0 ]; then
  chown postgres: "$tmp/pg"
  as_pg() { runuser -u postgres -- "$@"; }
else
  as_pg() { "$@"; }
fi

bg_pids=()
cleanup() {
  local rc=$? p
  set +e
  for p in "${bg_pids[@]}"; do kill "$p" 2>/dev/null; done
  for p in "${bg_pids[@]}"; do wait "$p" 2>/dev/null; done
  if [ -f "$data/postmaster.pid" ]; then
    as_pg "$PGBIN/pg_ctl" -D "$data" -m immediate -w -t 30 stop >/dev/null 2>&1
  fi
  rm -rf "$tmp"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
log() { echo "bench $(date -u +%H:%M:%S): $*" >&2; }

pg_port=$(free_port)
log "initdb + pgbench -i -s $scale (port $pg_port)"
as_pg "$PGBIN/initdb" -D "$data" -U postgres -A trust -E UTF8 --no-instructions >"$tmp/initdb.log"
cat >>"$data/postgresql.conf" <<EOF
listen_addresses = '127.0.0.1'
port = $pg_port
unix_socket_directories = '$tmp/pg'
log_checkpoints = on
EOF
as_pg "$PGBIN/pg_ctl" -D "$data" -l "$tmp/pg/server.log" -w -t 120 start >/dev/null
"$PGBIN/psql" -h 127.0.0.1 -p "$pg_port" -U postgres -XAtq -c "CREATE DATABASE bench" postgres
"$PGBIN/pgbench" -h 127.0.0.1 -p "$pg_port" -U postgres -i -q -s "$scale" bench >"$tmp/pgbench-init.log" 2>&1

exporter_port=$(free_port)
cat >"$tmp/queries.yaml" <<'EOF'
pg_wal:
  query: "SELECT (pg_current_wal_lsn() - '0/0')::float8 AS lsn_bytes"
  master: true
  metrics:
    - lsn_bytes:
        usage: "COUNTER"
        description: "WAL insert position in bytes"
EOF
DATA_SOURCE_NAME="postgresql://postgres@127.0.0.1:$pg_port/bench?sslmode=disable" \
  prometheus-postgres-exporter --web.listen-address="127.0.0.1:$exporter_port" \
  --extend.query-path="$tmp/queries.yaml" >/dev/null 2>"$tmp/exporter.log" &
bg_pids+=("$!")
prom_port=$(free_port)
cat >"$tmp/prometheus.yml" <<EOF
global:
  scrape_interval: 1s
scrape_configs:
  - job_name: postgres-exporter
    static_configs:
      - targets: ['127.0.0.1:$exporter_port']
EOF
prometheus --config.file="$tmp/prometheus.yml" --storage.tsdb.path="$tmp/prom" \
  --web.listen-address="127.0.0.1:$prom_port" >/dev/null 2>"$tmp/prometheus.log" &
bg_pids+=("$!")

# 20 no-op levers (cost low, tried first, in this order), then lz4.
noops="log_min_duration_statement=1h statement_timeout=1h lock_timeout=1h
idle_in_transaction_session_timeout=1h idle_session_timeout=1h deadlock_timeout=2s
log_autovacuum_min_duration=1h log_temp_files=1GB temp_file_limit=10GB
tcp_keepalives_idle=600 bytea_output=escape commit_siblings=10
cursor_tuple_fraction=0.2 geqo_threshold=14 from_collapse_limit=10
join_collapse_limit=10 checkpoint_warning=1min max_wal_size=4GB
archive_timeout=1h log_checkpoints=off"
{
  echo "levers:"
  for nv in $noops; do
    name=${nv%%=*} value=${nv#*=}
    printf '  noop_%s:\n    kind: postgres\n    parameter: %s\n    cost: low\n    symptoms: [high_wal_rate]\n    values: ["%s"]\n' \
      "$name" "$name" "$value"
  done
  printf '  wal_compression:\n    kind: postgres\n    parameter: wal_compression\n    cost: high\n    symptoms: [high_wal_rate]\n    values: ["lz4"]\n'
} >"$results/levers.yaml"
n_levers=$(grep -cE "^  [A-Za-z_]+:$" "$results/levers.yaml")

cat >"$results/tuner.yaml" <<EOF
# Written by bench/judge_aa.sh.
prometheus:
  url: http://127.0.0.1:$prom_port
  timeout: 5s
postgres:
  dsn: postgresql://postgres@127.0.0.1:$pg_port/bench
profile: bench
paths:
  baseline: baseline.yaml
  levers: levers.yaml
metrics:
  wal_rate:
    query: sum(rate(pg_wal_lsn_bytes[5s]))
    unit: bytes_per_second
    window: 30s
    symptom: high_wal_rate
    per: transaction
profiles:
  bench:
    # Unreachable on purpose: every lever is tried.
    wal_rate: "<= 1000"
tune:
  observe: ${observe}s
  settle: ${settle}s
  sample_interval: 1s
EOF

# Per cycle: after-window and re-measurement, each settle + CHECKPOINT +
# lookback + observe; plus two before-windows in the first cycle.
budget=$((n_levers * 2 * (settle + observe + 15) + 4 * observe + 120))
log "pgbench -c 8 -j 2 for at most $((budget + 30))s; tuner tune --max-cycles $n_levers"
(exec "$PGBIN/pgbench" -h 127.0.0.1 -p "$pg_port" -U postgres -c 8 -j 2 -T $((budget + 30)) bench \
  >"$results/pgbench.out" 2>&1) &
pgbench_pid=$!
bg_pids+=("$pgbench_pid")
sleep 10
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
started=$(date -u '+%Y-%m-%d %H:%M UTC')
t0=$(date +%s)
rc=0
(cd "$results" && timeout "$budget" "$tuner" --config tuner.yaml --output json tune --max-cycles "$n_levers") \
  >"$results/report.json" 2>"$results/tune.err" || rc=$?
secs=$(($(date +%s) - t0))
load_after=$(cut -d' ' -f1-3 /proc/loadavg)
kill "$pgbench_pid" 2>/dev/null || true
log "tune exited $rc after ${secs}s"
cp "$tmp/pg/server.log" "$results/server.log" 2>/dev/null || true

section=$(mktemp)
python3 - "$results/report.json" >"$section" <<EOF
import json, sys
report = json.load(open(sys.argv[1]))
cycles = report["cycles"]
noop = [c for c in cycles if c["lever"].startswith("noop_")]
real = [c for c in cycles if c["lever"] == "wal_compression"]
moved = [c for c in noop if c["verdict"] != "no_effect"]
def pct(c):
    b, a = c.get("goal_before"), c.get("goal_after")
    return f"{(a - b) / b * 100:+.1f}%" if b and a is not None else "-"
def tps(c):
    t = c.get("throughput") or {}
    if "before" not in t:
        return "-"
    return f"{t['before']:.0f} → {t['after']:.0f} ({t['movement']})"
print("## The judge's A/A test: no-op changes under a real pgbench load")
print()
print(f"- Date: $started; machine: $(nproc) cores, load average before / after: $load_before / $load_after (other jobs share this machine).")
print("- Command: \`bench/judge_aa.sh\` (PostgreSQL 15 of its own on a free port, \`pgbench -i -s $scale\`, load \`pgbench -c 8 -j 2\`; prometheus-postgres-exporter and Prometheus scraping every 1 s; \`wal_rate = sum(rate(pg_wal_lsn_bytes[5s]))\`, \`per: transaction\`, objective \`<= 1000\` so every lever is tried; \`tune: observe ${observe}s, settle ${settle}s, sample_interval 1s\`; \`tuner tune --max-cycles $n_levers\`, exit code $rc after ${secs} s).")
print(f"- **{len(moved)} of {len(noop)} no-op changes were judged anything but \`no_effect\`** (target: at most 1 in 20)" + (": " + ", ".join(f"{c['lever'][5:]} {c['verdict']}" for c in moved) if moved else "") + ".")
if real:
    r = real[0]
    print(f"- The real change, \`wal_compression=lz4\`, in the same run: **{r['verdict']}**, {'kept' if r['kept'] else 'rolled back'}; WAL per transaction {pct(r)} ({r.get('evidence') or r['reason']}).")
else:
    print("- The real change, \`wal_compression=lz4\`, was not reached.")
print()
print("| cycle | change | verdict | WAL per transaction | throughput, tx/s |")
print("|---|---|---|---|---|")
for c in cycles:
    print(f"| {c['cycle']} | {c['assignment']} | {c['verdict']} | {pct(c)} | {tps(c)} |")
EOF
cat "$section"
write_section judge-aa "$section"
rm -f "$section"
