#!/usr/bin/env bash
# `tuner tune` against PGTune and timescaledb-tune on their own ground, in
# one run: a host PostgreSQL 15 under pgbench's TPC-B-like load, measured
# for WAL bytes per transaction, TPS and p95 latency with
#   defaults | what `tuner tune` kept | PGTune's full output (4 GB, 2 CPUs,
#   OLTP, SSD) | timescaledb-tune's output (same resources)
# each from the same pgbench data (a copy of one initialised data dir), a
# CHECKPOINT, a warm-up and a measured window. The tuner row first runs the
# real target/release/tuner (baseline, then tune) against a real
# prometheus-postgres-exporter and Prometheus, under the same load, starting
# from the defaults; then what it kept is measured like the others.
#
#   bench/tune_vs_pgtune.sh                 # ~60 min on 2 cores
#   TUNER_BENCH_WINDOW=60 TUNER_BENCH_SCALE=5 bench/tune_vs_pgtune.sh   # smoke run
#
# Settings (environment): TUNER_BENCH_SCALE (50), TUNER_BENCH_WARMUP (60 s),
# TUNER_BENCH_WINDOW (600 s: two of PGTune's 5-minute checkpoint cycles),
# TUNER_BENCH_PLAN (the run order, comma separated:
# defaults,tuner,pgtune,timescaledb; more defaults runs, or pgtune_wal for
# PGTune's 3 WAL lines alone, may be added; repeat `tuner,pgtune` pairs for
# min / median / max of their ratios), TUNER_BENCH_OBSERVE (90 s) /
# TUNER_BENCH_SETTLE (20 s) / TUNER_BENCH_CYCLES (5) for `tuner tune`,
# TUNER_BENCH_OBJECTIVE ('<= 0.15x baseline' for WAL per transaction, read
# by the tuner over a 90 s window from a CHECKPOINT: an 85% cut, which
# PGTune's own settings reach only over longer windows),
# TUNER_BENCH_OUT (bench/TUNE_RESULTS.md).
#
# Everything listens on 127.0.0.1 only, lives in one temp dir and is stopped
# and removed on exit. Raw per-run files are kept in target/bench/tune/.
# Needs root (PostgreSQL runs as the `postgres` user through runuser) or to
# be run as a user that may run PostgreSQL itself.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)

PGBIN=/usr/lib/postgresql/15/bin
# Scale 50 (~750 MB, as in REFERENCE.md): at scale 20 and the ~1,700 TPS a
# busy 2-core host gives, the defaults write too little WAL to reach the
# max_wal_size=1GB trigger within a window, so every configuration would see
# the same timed checkpoint spacing and nothing would be compared.
scale=${TUNER_BENCH_SCALE:-50}
warmup=${TUNER_BENCH_WARMUP:-60}
window=${TUNER_BENCH_WINDOW:-600}
plan=${TUNER_BENCH_PLAN:-defaults,tuner,pgtune,timescaledb}
observe=${TUNER_BENCH_OBSERVE:-90}
settle=${TUNER_BENCH_SETTLE:-20}
cycles=${TUNER_BENCH_CYCLES:-5}
objective=${TUNER_BENCH_OBJECTIVE:-<= 0.15x baseline}
out=${TUNER_BENCH_OUT:-bench/TUNE_RESULTS.md}
clients=8
threads=2
sample_every=5
tuner=$repo/target/release/tuner
analyze=$repo/bench/tune/analyze.py

# PGTune for 4 GB RAM, 2 CPUs, OLTP, SSD, PostgreSQL 15 (REFERENCE.md).
pgtune_full="max_connections=300
shared_buffers=1GB
effective_cache_size=3GB
maintenance_work_mem=256MB
checkpoint_completion_target=0.9
wal_buffers=16MB
default_statistics_target=100
random_page_cost=1.1
effective_io_concurrency=200
work_mem=4MB
huge_pages=off
jit=off
wal_compression=lz4
min_wal_size=2GB
max_wal_size=8GB"
# timescaledb-tune, default profile, 4 GB, 2 CPUs, PG 15, without the
# TimescaleDB-only lines (REFERENCE.md: computed from its formulas, as
# Debian packages no timescaledb-tools).
timescaledb="shared_buffers=1GB
effective_cache_size=3GB
maintenance_work_mem=512MB
work_mem=32MB
max_worker_processes=21
max_parallel_workers_per_gather=1
max_parallel_workers=2
wal_buffers=16MB
min_wal_size=512MB
max_wal_size=1GB
default_statistics_target=100
checkpoint_completion_target=0.9
max_connections=50
max_locks_per_transaction=128
autovacuum_max_workers=10
autovacuum_naptime=10s
default_toast_compression=lz4
jit=off
effective_io_concurrency=256
random_page_cost=1.1"
pgtune_wal="wal_compression=lz4
min_wal_size=2GB
max_wal_size=8GB"

for bin in "$PGBIN/postgres" "$PGBIN/pgbench" prometheus prometheus-postgres-exporter curl python3; do
  command -v "$bin" >/dev/null || { echo "bench: $bin not found (make setup installs it)" >&2; exit 1; }
done
[ -x "$tuner" ] || { echo "bench: $tuner missing: run cargo build --release" >&2; exit 1; }

results=$repo/target/bench/tune
rm -rf "$results"
mkdir -p "$results"
tmp=$(mktemp -d /tmp/tunebench.XXXXXX)
chmod 755 "$tmp"
pgdir=$tmp/pg
data=$pgdir/data
mkdir -p "$pgdir"

if [ "$(id -u)" -eq 0 ]; then
  chown postgres: "$pgdir"
  as_pg() { runuser -u postgres -- "$@"; }
  as_pg_prefix="runuser -u postgres -- "
else
  as_pg() { "$@"; }
  as_pg_prefix=""
fi

bg_pids=()
cleanup() {
  local rc=$?
  set +e
  local p
  for p in "${bg_pids[@]}"; do
    kill "$p" 2>/dev/null
  done
  for p in "${bg_pids[@]}"; do
    wait "$p" 2>/dev/null
  done
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
now() { date +%s.%N; }
log() { echo "bench $(date -u +%H:%M:%S): $*" >&2; }

pg_port=$(free_port)
psql_q() {
  "$PGBIN/psql" -h 127.0.0.1 -p "$pg_port" -U postgres -d "${2:-bench}" -XAtq -v ON_ERROR_STOP=1 -c "$1"
}
pg_start() {
  as_pg "$PGBIN/pg_ctl" -D "$data" -l "$1" -w -t 120 start >/dev/null
}
pg_stop() {
  as_pg "$PGBIN/pg_ctl" -D "$data" -m fast -w -t 120 stop >/dev/null
}

# --- one initialised data dir, copied for every run ------------------------
log "initdb + pgbench -i -s $scale (port $pg_port)"
as_pg "$PGBIN/initdb" -D "$pgdir/template" -U postgres -A trust -E UTF8 --no-instructions >"$tmp/initdb.log"
cat >>"$pgdir/template/postgresql.conf" <<EOF
listen_addresses = '127.0.0.1'
port = $pg_port
unix_socket_directories = '$pgdir'
log_line_prefix = '%m [%p] '
log_timezone = 'UTC'
log_checkpoints = on
EOF
data=$pgdir/template
pg_start "$pgdir/template.log"
psql_q "CREATE DATABASE bench" postgres
"$PGBIN/pgbench" -h 127.0.0.1 -p "$pg_port" -U postgres -i -q -s "$scale" bench >"$tmp/pgbench-init.log" 2>&1
pg_stop
data=$pgdir/data

restore_data() {
  if [ -f "$data/postmaster.pid" ]; then pg_stop; fi
  rm -rf "$data"
  cp -a "$pgdir/template" "$data"
}

# --- monitoring: the exporter (with the WAL counter) and Prometheus --------
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
  scrape_interval: 2s
  evaluation_interval: 2s
scrape_configs:
  - job_name: postgres-exporter
    static_configs:
      - targets: ['127.0.0.1:$exporter_port']
EOF
prometheus --config.file="$tmp/prometheus.yml" --storage.tsdb.path="$tmp/prom" \
  --web.listen-address="127.0.0.1:$prom_port" >/dev/null 2>"$tmp/prometheus.log" &
bg_pids+=("$!")
prom=http://127.0.0.1:$prom_port

# --- applying a configuration ----------------------------------------------
# $1: name=value lines. Fresh data, ALTER SYSTEM SET each, then a restart so
# every configuration gets a clean start. Prints "changed<TAB>restarts<TAB>list".
configure() {
  local settings=$1 runlog=$2 name value changed=0 restarts=0 list="" before after ctx
  restore_data
  pg_start "$runlog"
  while IFS='=' read -r name value; do
    [ -n "$name" ] || continue
    before=$(psql_q "SELECT setting FROM pg_settings WHERE name = '$name'")
    ctx=$(psql_q "SELECT context FROM pg_settings WHERE name = '$name'")
    psql_q "ALTER SYSTEM SET $name = '$value'"
    echo "$name|$before|$ctx" >>"$tmp/configure.$$"
  done <<<"$settings"
  pg_stop
  pg_start "$runlog"
  if [ -f "$tmp/configure.$$" ]; then
    while IFS='|' read -r name before ctx; do
      after=$(psql_q "SELECT setting FROM pg_settings WHERE name = '$name'")
      if [ "$after" != "$before" ]; then
        changed=$((changed + 1))
        list="$list${list:+, }$name=$(grep "^$name=" <<<"$settings" | head -n 1 | cut -d= -f2-)"
        if [ "$ctx" = postmaster ]; then restarts=$((restarts + 1)); fi
      fi
    done <"$tmp/configure.$$"
    rm -f "$tmp/configure.$$"
  fi
  printf '%s\t%s\t%s\n' "$changed" "$restarts" "$list"
}

sample_sql="SELECT extract(epoch FROM clock_timestamp()), pg_current_wal_lsn() - '0/0',
  (SELECT checkpoints_timed + checkpoints_req FROM pg_stat_bgwriter),
  (SELECT xact_commit FROM pg_stat_database WHERE datname = 'bench'),
  (SELECT redo_lsn - '0/0' FROM pg_control_checkpoint()),
  (SELECT extract(epoch FROM checkpoint_time) FROM pg_control_checkpoint()),
  (SELECT wal_fpi FROM pg_stat_wal), (SELECT wal_records FROM pg_stat_wal)"
sample() { psql_q "$sample_sql" | tr '|' '\t' >>"$1"; }

# --- one measured run --------------------------------------------------------
n_run=0
measure() {
  local config=$1 settings=$2 rundir conf pid i max
  n_run=$((n_run + 1))
  rundir=$results/$n_run-$config
  mkdir -p "$rundir"
  log "run $n_run: $config"
  # The server writes its log where the postgres user may write; copied after.
  conf=$(configure "$settings" "$pgdir/run-$n_run.log")
  psql_q "CHECKPOINT"
  sample "$rundir/samples.tsv"
  (cd "$rundir" && exec "$PGBIN/pgbench" -h 127.0.0.1 -p "$pg_port" -U postgres -c "$clients" -j "$threads" \
    -M prepared -T $((warmup + window)) -l bench >pgbench.out 2>&1) &
  pid=$!
  bg_pids+=("$pid")
  max=$(((warmup + window) / sample_every + 10))
  for ((i = 0; i < max; i++)); do
    sleep "$sample_every"
    kill -0 "$pid" 2>/dev/null || break
    sample "$rundir/samples.tsv"
  done
  wait "$pid" || { log "pgbench failed: $(tail -n 3 "$rundir/pgbench.out")"; exit 1; }
  sample "$rundir/samples.tsv"
  cp "$pgdir/run-$n_run.log" "$rundir/server.log"
  python3 "$analyze" run "$rundir" "$warmup" "$window" >"$rundir/result.json"
  printf '%s\t%s\t%s\t%s\n' "$n_run" "$config" "$rundir" "$conf" >>"$results/runs.tsv"
  # The per-transaction logs are large; the figures are in result.json.
  rm -f "$rundir"/pgbench_log.*
  log "run $n_run: $(head -c 400 "$rundir/result.json")"
}

# --- tuner: baseline at the defaults, then tune, under the same load --------
tuner_settings=""
n_tune=0
tune_phase() {
  local tdir pid rc t0 t1 budget history i
  n_tune=$((n_tune + 1))
  # One dir per tuner run: a plan may repeat `tuner` for min/median/max.
  tdir=$results/tuner-run-$n_tune
  mkdir -p "$tdir"
  log "tuner ($n_tune): start from the defaults"
  restore_data
  pg_start "$pgdir/tuner.log"
  psql_q "CHECKPOINT"
  cat >"$tmp/restart.sh" <<EOF
#!/bin/sh
D='$data'
pid=\$(head -n 1 "\$D/postmaster.pid" 2>/dev/null)
if [ -n "\$pid" ] && kill -0 "\$pid" 2>/dev/null; then
  kill -INT "\$pid"
  i=0
  while kill -0 "\$pid" 2>/dev/null && [ \$i -lt 1200 ]; do sleep 0.1; i=\$((i + 1)); done
fi
exec ${as_pg_prefix}$PGBIN/pg_ctl -D "\$D" -l '$pgdir/tuner.log' -w -t 60 start
EOF
  chmod 755 "$tmp/restart.sh"
  cat >"$tdir/tuner.yaml" <<EOF
# Written by bench/tune_vs_pgtune.sh for one bench run.
prometheus:
  url: $prom
  timeout: 5s
postgres:
  dsn: postgresql://postgres@127.0.0.1:$pg_port/bench
  connect_timeout: 5s
profile: bench
paths:
  baseline: baseline.yaml
  changelog: CHANGELOG_TUNING.md
  tuning_log: tuning.log
  state_dir: .tuner
  backups_dir: backups
  levers: $repo/config/levers.yaml
metrics:
  wal_per_txn:
    description: WAL bytes per committed transaction of the bench database
    query: sum(rate(pg_wal_lsn_bytes[30s])) / sum(rate(pg_stat_database_xact_commit{datname="bench"}[30s]))
    unit: bytes
    window: ${observe}s
    symptom: high_wal_rate
tune:
  observe: ${observe}s
  settle: ${settle}s
  sample_interval: 5s
  restarter:
    argv: ["$tmp/restart.sh"]
    data_dir: $data
    timeout: 120s
profiles:
  bench:
    wal_per_txn: "$objective"
EOF
  # Long enough for the history, the baseline and every cycle; killed after.
  history=$((observe + 40))
  # Per cycle: settle + observe, and as much again to re-measure after a
  # rollback; plus the before-window from a CHECKPOINT.
  budget=$((cycles * (2 * (settle + observe) + 30) + observe + 120))
  (exec "$PGBIN/pgbench" -h 127.0.0.1 -p "$pg_port" -U postgres -c "$clients" -j "$threads" \
    -M prepared -T $((history + budget + 60)) bench >"$tdir/pgbench.out" 2>&1) &
  pid=$!
  bg_pids+=("$pid")
  log "tuner: ${history}s of load before the baseline, so Prometheus has the history"
  sleep "$history"
  for ((i = 0; i < 30; i++)); do
    curl -sf --max-time 2 -G "$prom/api/v1/query" --data-urlencode 'query=pg_wal_lsn_bytes' | grep -q '"value"' && break
    sleep 2
  done
  (cd "$tdir" && "$tuner" --config tuner.yaml baseline) >"$tdir/baseline.out" 2>&1 ||
    { log "tuner baseline failed: $(cat "$tdir/baseline.out")"; exit 1; }
  log "tuner: baseline taken; tune --max-cycles $cycles (at most ${budget}s)"
  t0=$(now)
  rc=0
  (cd "$tdir" && timeout "$budget" "$tuner" --config tuner.yaml tune --max-cycles "$cycles") >"$tdir/tune.out" 2>"$tdir/tune.err" || rc=$?
  t1=$(now)
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  echo "$rc" >"$tdir/tune.rc"
  python3 -c "import sys; print(round(float(sys.argv[2]) - float(sys.argv[1])))" "$t0" "$t1" >"$tdir/tune.secs"
  log "tuner: tune exited $rc after $(cat "$tdir/tune.secs")s"
  # What tuner kept: its ALTER SYSTEM lines in postgresql.auto.conf.
  tuner_settings=$(sed -n "s/^\([a-z_0-9]*\) = '\(.*\)'$/\1=\2/p" "$data/postgresql.auto.conf")
  printf '%s\n' "$tuner_settings" >"$tdir/kept.txt"
  pg_stop
  cp "$pgdir/tuner.log" "$tdir/server.log"
}

started=$(date -u '+%Y-%m-%d %H:%M UTC')
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
IFS=',' read -r -a steps <<<"$plan"
for step in "${steps[@]}"; do
  case $step in
    defaults) measure defaults "" ;;
    pgtune) measure pgtune "$pgtune_full" ;;
    pgtune_wal) measure pgtune_wal "$pgtune_wal" ;;
    timescaledb) measure timescaledb "$timescaledb" ;;
    tuner)
      tune_phase
      measure tuner "$tuner_settings"
      ;;
    *) echo "bench: unknown step '$step' in TUNER_BENCH_PLAN" >&2; exit 2 ;;
  esac
done
load_after=$(cut -d' ' -f1-3 /proc/loadavg)

# --- report --------------------------------------------------------------------
cycles_run() { grep -cE '^│ cycle [0-9]+ ' "$1/tune.out" || true; }
kept_list() { paste -sd' ' "$1/kept.txt" | sed 's/^$/nothing/'; }
{
  echo "# \`tuner tune\` vs PGTune and timescaledb-tune: WAL per transaction under pgbench"
  echo
  echo "- Date: $started; machine: $(nproc) cores, $(free -g | awk '/^Mem:/ {print $2}') GB RAM, $("$PGBIN/postgres" --version), load average before / after: $load_before / $load_after (other jobs share this machine: compare rows of one run)."
  echo "- Command: \`bench/tune_vs_pgtune.sh\` (scale $scale, warm-up ${warmup}s, window ${window}s, order: $plan)."
  echo "- Data: \`pgbench -i -s $scale\` once; every run starts from a copy of that data dir, ALTER SYSTEM SET, a restart, \`CHECKPOINT\`; load \`pgbench -c $clients -j $threads -M prepared -T $((warmup + window)) -l\` (every transaction logged)."
  echo "- WAL B/txn over the run = WAL from the opening CHECKPOINT's redo LSN to the end / transactions in that time: every configuration starts from the same state and runs the same time, so the full-page-image burst after a checkpoint counts once whatever the spacing; windows shorter than a checkpoint cycle flatter long spacing (REFERENCE.md), and this figure partly corrects it. Measured window = after the warm-up, between two ${sample_every}s samples of \`pg_current_wal_lsn()\`. Whole cycles = between successive checkpoints' redo LSNs (\`pg_control_checkpoint()\`), transactions between their logged starts."
  echo
  python3 "$analyze" report "$results"
  echo
  if ((n_tune > 0)); then
    echo "## The tuner runs"
    echo
    echo "- Objective: \`wal_per_txn $objective\` (profile \`bench\`), metric \`sum(rate(pg_wal_lsn_bytes[30s])) / sum(rate(pg_stat_database_xact_commit{datname=\"bench\"}[30s]))\`; levers: the shipped \`config/levers.yaml\`; \`tune: observe ${observe}s, settle ${settle}s, sample_interval 5s\`; restarter: an argv script (pg_ctl)."
    echo "- Each: ${observe}s+40s of load for Prometheus' history, \`tuner baseline\`, then \`tuner tune --max-cycles $cycles\` from the defaults, under the same load."
    echo
    echo "| tuner run | exit code | wall time to the end, s | cycles | outcome | kept (postgresql.auto.conf) |"
    echo "|---|---|---|---|---|---|"
    for ((i = 1; i <= n_tune; i++)); do
      tdir=$results/tuner-run-$i
      [ -f "$tdir/tune.rc" ] || continue
      echo "| $i | $(cat "$tdir/tune.rc") | $(cat "$tdir/tune.secs") | $(cycles_run "$tdir") | $(tail -n 1 "$tdir/tune.out") | $(kept_list "$tdir") |"
    done
    echo
    tdir=$results/tuner-run-$n_tune
    echo "The last tuner run in full."
    echo
    echo "\`tuner baseline\`:"
    echo
    echo '```'
    cat "$tdir/baseline.out"
    echo '```'
    echo
    echo "\`tuner tune\` output:"
    echo
    echo '```'
    cat "$tdir/tune.out"
    tail -n 20 "$tdir/tune.err"
    echo '```'
    echo
    echo "CHANGELOG_TUNING.md:"
    echo
    echo '```'
    cat "$tdir/CHANGELOG_TUNING.md" 2>/dev/null || echo "(none written)"
    echo '```'
  fi
} >"$out"
log "wrote $out (raw files in $results)"
