#!/usr/bin/env bash
# `tuner watch` at scale, in one run on this machine's engine:
#   1. N idle containers (default 50, names twatch-bench-*), the release
#      `tuner watch --interval 5s` over them for S seconds (default 60),
#      R times (default 3): peak and mean RSS, mean CPU (% of one core);
#   2. one check over the same N containers reading cgroup files (the
#      check's own time from `--once -o json`, and the whole process's wall
#      time), beside `docker stats --no-stream` for the same containers;
#   3. one cycle over 10 / 100 / 1,000 services against a real Prometheus
#      fed synthetic cAdvisor-style series through node_exporter's textfile
#      collector (the ignored test bench_watch_prometheus_cycle,
#      bench/watch_cycle.rs), with the queries per cycle counted by Prometheus.
# Writes the watch section of BENCHMARKS.md; raw numbers in target/bench/watch/.
#
#   bench/watch.sh
#   TUNER_BENCH_RUNS=5 TUNER_BENCH_SECONDS=120 TUNER_BENCH_CONTAINERS=50 bench/watch.sh
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
# shellcheck source=bench/lib/section.sh
source bench/lib/section.sh

runs=${TUNER_BENCH_RUNS:-3}
seconds=${TUNER_BENCH_SECONDS:-60}
count=${TUNER_BENCH_CONTAINERS:-50}
for n in "$runs" "$seconds" "$count"; do
  [[ "$n" =~ ^[1-9][0-9]*$ ]] || { echo "bench: TUNER_BENCH_RUNS, TUNER_BENCH_SECONDS and TUNER_BENCH_CONTAINERS must be positive numbers, got '$n'" >&2; exit 2; }
done
prefix=twatch-bench
image=$prefix/idle:1
out=$root/target/bench/watch
work=$out/stack
tuner=$root/target/release/tuner
mkdir -p "$out"
rm -rf "$work"; mkdir -p "$work"

spread() { sort -g | awk '{ v[NR] = $1 } END { m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2; printf "%s / %s / %s", v[1], m, v[NR] }'; }
now_ns() { date +%s%N; }
ms() { awk -v ns="$1" 'BEGIN { printf "%.1f\n", ns / 1e6 }'; }

cleanup() {
  docker ps -aq --filter "name=^$prefix-" | xargs -r docker rm -f >/dev/null 2>&1 || true
}
trap cleanup EXIT

cargo build --release --bin tuner

# A sleeping busybox: the smallest container the engine can run here.
if ! docker image inspect "$image" >/dev/null 2>&1; then
  rootfs=$(mktemp -d)
  mkdir -p "$rootfs/bin"
  cp /bin/busybox "$rootfs/bin/busybox" 2>/dev/null || cp /usr/bin/busybox "$rootfs/bin/busybox"
  tar -C "$rootfs" -cf "$rootfs.tar" .
  docker import -c 'CMD ["/bin/busybox","sleep","86400"]' "$rootfs.tar" "$image" >/dev/null
  rm -rf "$rootfs" "$rootfs.tar"
fi
cleanup
names=()
for ((i = 1; i <= count; i++)); do
  names+=("$prefix-$i")
  # At the policy's floors (0.1 CPU, 64M), so no adjustment disturbs the steady state.
  docker run -d --name "$prefix-$i" --label "com.docker.compose.project=$prefix" \
    --label "com.docker.compose.service=svc$i" --cpus 0.1 --memory 64m "$image" >/dev/null
done

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat >"$work/tuner.yaml" <<YAML
prometheus:
  url: http://127.0.0.1:1
postgres:
  dsn: postgres://nobody@127.0.0.1:1/none
profile: bench
metrics:
  up: {query: up, unit: ratio, window: 30s}
profiles:
  bench: {}
compose:
  project_dir: .
  project: $prefix
watch:
  interval: 5s
  listen: 127.0.0.1:$port
YAML
cfg=(--config "$work/tuner.yaml")
started=$(date -u '+%Y-%m-%d %H:%M UTC')
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
# Prime the state (first CPU readings), as a long-running watch would have it.
"$tuner" "${cfg[@]}" watch --once -o json >/dev/null

# 1. The daemon's footprint.
tck=$(getconf CLK_TCK)
: >"$out/rss_peak"; : >"$out/rss_mean"; : >"$out/cpu"
for ((r = 1; r <= runs; r++)); do
  "$tuner" "${cfg[@]}" watch -q >/dev/null 2>"$out/daemon.err" &
  pid=$!
  sleep 2
  read -r t0 < <(awk '{ print $14 + $15 }' "/proc/$pid/stat")
  s0=$(now_ns)
  : >"$out/rss.$r"
  for ((s = 0; s < seconds; s++)); do
    awk '/^VmRSS/ { print $2 }' "/proc/$pid/status" >>"$out/rss.$r"
    sleep 1
  done
  read -r t1 < <(awk '{ print $14 + $15 }' "/proc/$pid/stat")
  s1=$(now_ns)
  kill -TERM "$pid"; wait "$pid" || true
  sort -g "$out/rss.$r" | tail -n 1 | awk '{ printf "%.1f\n", $1 / 1024 }' >>"$out/rss_peak"
  awk '{ s += $1 } END { printf "%.1f\n", s / NR / 1024 }' "$out/rss.$r" >>"$out/rss_mean"
  awk -v a="$t0" -v b="$t1" -v t="$tck" -v ns="$((s1 - s0))" 'BEGIN { printf "%.3f\n", (b - a) / t / (ns / 1e9) * 100 }' >>"$out/cpu"
done

# 2. One check through cgroup files vs docker stats, same containers, same run.
: >"$out/check_ms"; : >"$out/process_ms"; : >"$out/stats_ms"
for ((r = 1; r <= runs; r++)); do
  a=$(now_ns)
  "$tuner" "${cfg[@]}" watch --once -o json >"$out/once.json"
  b=$(now_ns)
  python3 -c 'import json,sys; print(round(json.loads(open(sys.argv[1]).read().splitlines()[-1])["seconds"]*1000, 1))' "$out/once.json" >>"$out/check_ms"
  ms "$((b - a))" >>"$out/process_ms"
  a=$(now_ns)
  docker stats --no-stream "${names[@]}" >/dev/null
  b=$(now_ns)
  ms "$((b - a))" >>"$out/stats_ms"
done
# The last line is the check; the lines before it, one decision each.
rows=$(python3 -c 'import json,sys; print(len(json.loads(open(sys.argv[1]).read().splitlines()[-1])["rows"]))' "$out/once.json")

# 3. One cycle over up to 1,000 services from Prometheus.
TUNER_BENCH_RUNS=$((runs > 5 ? runs : 5)) TUNER_BENCH_OUT=$out/cycle.md \
  cargo test --release --test watch bench_watch_prometheus_cycle -- --ignored --nocapture >"$out/cycle.log" 2>&1 \
  || { cat "$out/cycle.log" >&2; exit 1; }
load_after=$(cut -d' ' -f1-3 /proc/loadavg)

section=$out/section.md
{
  echo "## tuner watch ($started)"
  echo
  echo "Command: \`bench/watch.sh\` (TUNER_BENCH_RUNS=$runs, TUNER_BENCH_SECONDS=$seconds, TUNER_BENCH_CONTAINERS=$count);"
  echo "$(nproc) CPUs, load average $load_before before, $load_after after (a shared machine). min / median / max over $runs runs."
  echo
  echo "Daemon: release \`tuner watch\` at a 5 s interval over $count idle containers ($rows read per check), cgroup source, $seconds s per run:"
  echo
  echo "| measure | value | target |"
  echo "|---|---|---|"
  echo "| peak RSS, MB | $(spread <"$out/rss_peak") | <= 15 |"
  echo "| mean RSS, MB | $(spread <"$out/rss_mean") | |"
  echo "| mean CPU, % of one core | $(spread <"$out/cpu") | <= 0.1 |"
  echo
  echo "One check over the same $count containers, same run:"
  echo
  echo "| reader | ms |"
  echo "|---|---|"
  echo "| tuner watch, cgroup files (the check itself) | $(spread <"$out/check_ms") |"
  echo "| tuner watch --once, whole process | $(spread <"$out/process_ms") |"
  echo "| docker stats --no-stream, same containers | $(spread <"$out/stats_ms") |"
  echo
  echo "One cycle (read + policy) against a real Prometheus, synthetic cAdvisor-style series via node_exporter's textfile collector (target: 1,000 services <= 250 ms, constant queries):"
  echo
  cat "$out/cycle.md"
} >"$section"
write_section watch "$section"
cat "$section"
