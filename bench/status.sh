#!/usr/bin/env bash
# The walking skeleton's two numbers, on a real demo stack of its own
# (project tuner-bench, its own ports and volumes; demo/.env is not touched):
#   1. `make dev-up` from no images: the local images removed, then built
#      (scripts/images.sh) and the stack started until every service is
#      healthy (scripts/dev-up.sh), each part timed;
#   2. `tuner status` against that stack under the writer app's load: wall
#      time and peak RSS of the release binary over N runs, against the same
#      four queries sent by curl one after another, measured in the same run.
# Writes the status section of BENCHMARKS.md; raw lines in target/bench/status/.
#
#   bench/status.sh            # 3 dev-ups from no images, 20 status runs
#   TUNER_BENCH_DEVUP_RUNS=1 TUNER_BENCH_STATUS_RUNS=50 bench/status.sh
#
# The image tags are shared with the demo stack: a running demo keeps its
# containers (the tags are removed, the images stay until they are unused),
# and its next `make dev-up` recreates them from the rebuilt images.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
# shellcheck source=bench/lib/section.sh
source bench/lib/section.sh

runs=${TUNER_BENCH_STATUS_RUNS:-20}
devups=${TUNER_BENCH_DEVUP_RUNS:-3}
for n in "$runs" "$devups"; do
  [[ "$n" =~ ^[1-9][0-9]*$ ]] || { echo "bench: TUNER_BENCH_STATUS_RUNS and TUNER_BENCH_DEVUP_RUNS must be positive numbers, got '$n'" >&2; exit 2; }
done
out=$root/target/bench/status
mkdir -p "$out"
export TUNER_ENV_FILE=$out/stack.env
tuner=$root/target/release/tuner
log=$out/status.log
: >"$log"

now_ns() { date +%s%N; }
ms() { awk -v ns="$1" 'BEGIN { printf "%.1f\n", ns / 1e6 }'; }
secs() { awk -v ns="$1" 'BEGIN { printf "%.1f\n", ns / 1e9 }'; }
# min / median / max of numbers on stdin, one per line.
spread() { sort -g | awk '{ v[NR] = $1 } END { m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2; printf "%s / %s / %s", v[1], m, v[NR] }'; }

cleanup() { scripts/dev-down.sh --volumes >/dev/null 2>&1 || true; }
trap cleanup EXIT

# Compile first: building Rust is not part of `make dev-up`, and the loadgen
# image packs the release example.
cargo build --release --bin tuner --example loadgen
scripts/dev-env.sh --force --env-file "$TUNER_ENV_FILE" --project tuner-bench

started=$(date -u '+%Y-%m-%d %H:%M UTC')
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
mapfile -t names < <(scripts/images.sh --list)
: >"$out/images_s"; : >"$out/up_s"; : >"$out/devup_s"
for ((i = 1; i <= devups; i++)); do
  # Nothing left from before: no containers, volumes, images or rootfs.
  scripts/dev-down.sh --volumes
  for name in "${names[@]}"; do
    case "$name" in postgres) tag=local/postgres:15 ;; *) tag=local/$name:latest ;; esac
    docker image rm -f "$tag" >/dev/null 2>&1 || true
  done
  rm -rf build/images
  t0=$(now_ns)
  scripts/images.sh | tee -a "$log"
  t1=$(now_ns)
  SKIP_IMAGES=1 scripts/dev-up.sh | tee -a "$log"
  t2=$(now_ns)
  secs $((t1 - t0)) >>"$out/images_s"
  secs $((t2 - t1)) >>"$out/up_s"
  secs $((t2 - t0)) >>"$out/devup_s"
  echo "dev-up $i from no images: images $(secs $((t1 - t0))) s, up to healthy $(secs $((t2 - t1))) s" | tee -a "$log"
done

# The shipped config, pointed at this stack: its env file, and its own
# baseline and state under target/ so a user's files are never touched.
sed -e "s#env_file: ../demo/.env#env_file: $TUNER_ENV_FILE#" \
  -e "s#project_dir: ../demo#project_dir: $root/demo#" \
  -e "s#levers: levers.yaml#levers: $root/config/levers.yaml#" \
  config/tuner.yaml >"$out/tuner.yaml"
config=$out/tuner.yaml
prom=http://127.0.0.1:$(sed -n 's/^PROM_PORT=//p' "$TUNER_ENV_FILE" | tail -n 1)
mapfile -t queries < <(sed -n 's/^    query: //p' config/tuner.yaml)

# rate() over 1m needs a minute of scrapes before every metric has a value.
echo "bench: waiting 75 s for the writer app's load to show in every rate()"
sleep 75
"$tuner" --config "$config" baseline >>"$log"

status_once() {
  local rc=0
  /usr/bin/time -f '%M' -o "$out/rss" "$tuner" --config "$config" status >"$out/last_status.txt" 2>&1 || rc=$?
  # 3 = an objective is violated: still a complete status report.
  if [ "$rc" -ne 0 ] && [ "$rc" -ne 3 ]; then
    echo "bench: tuner status failed with exit $rc:" >&2
    cat "$out/last_status.txt" >&2
    exit 1
  fi
}
curl_once() {
  local q
  for q in "${queries[@]}"; do
    curl -sf --max-time 10 "$prom/api/v1/query" --data-urlencode "query=$q" >/dev/null
  done
}

# One unmeasured run of each warms the page cache and Prometheus.
status_once
curl_once
: >"$out/status_ms"; : >"$out/status_rss_kb"; : >"$out/curl_ms"
for ((i = 1; i <= runs; i++)); do
  # Interleaved, so both see the same host load.
  a=$(now_ns); status_once; b=$(now_ns)
  curl_once; c=$(now_ns)
  ms $((b - a)) >>"$out/status_ms"
  cat "$out/rss" >>"$out/status_rss_kb"
  ms $((c - b)) >>"$out/curl_ms"
  echo "run $i: tuner status $(ms $((b - a))) ms, peak RSS $(cat "$out/rss") kB; curl x${#queries[@]} $(ms $((c - b))) ms" | tee -a "$log"
done
load_after=$(cut -d' ' -f1-3 /proc/loadavg)

status_spread=$(spread <"$out/status_ms")
curl_spread=$(spread <"$out/curl_ms")
rss_spread=$(awk '{ printf "%.1f\n", $1 / 1024 }' "$out/status_rss_kb" | spread)
ratio=$(paste "$out/status_ms" "$out/curl_ms" | awk '{ printf "%.2f\n", $1 / $2 }' | spread)

section=$out/section.md
{
  echo "## \`tuner status\` and \`make dev-up\` from no images"
  echo
  echo "- Date: $started; machine: $(nproc) cores, Docker $(docker version --format '{{.Server.Version}}'); load average before / after: $load_before / $load_after."
  echo "- Command: \`bench/status.sh\` (TUNER_BENCH_STATUS_RUNS=$runs TUNER_BENCH_DEVUP_RUNS=$devups), run by \`make bench\`. Its own Compose project (\`tuner-bench\`) from \`demo/docker-compose.yml\`, under the demo writer app's load."
  echo
  echo "| what | min / median / max | target |"
  echo "|---|---|---|"
  echo "| \`tuner status\` wall time (release build, $runs runs) | $status_spread ms | median <= 50 ms |"
  echo "| \`tuner status\` peak RSS | $rss_spread MB | <= 20 MB |"
  echo "| peer: the same ${#queries[@]} queries by \`curl\`, one after another | $curl_spread ms | |"
  echo "| tuner / curl, per run | $ratio | |"
  echo "| \`make dev-up\` with no images ($devups runs): build the images | $(spread <"$out/images_s") s | |"
  echo "| \`make dev-up\` with no images: \`docker-compose up\` to all healthy | $(spread <"$out/up_s") s | |"
  echo "| \`make dev-up\` with no images, total | $(spread <"$out/devup_s") s | |"
  echo
  echo "Wall time is taken around \`/usr/bin/time -f %M tuner --config <bench config> status\` (so it includes that wrapper's fork and exec); \`tuner status\` reads the config, loads the baseline and runs the four PromQL queries concurrently. The curl peer runs the same queries as separate processes, as a shell script would. The Rust build is not in the dev-up time (the loadgen image packs the release example, compiled first). Per-run lines: \`target/bench/status/status.log\`."
} >"$section"
write_section status "$section"
echo "bench: wrote the status section of BENCHMARKS.md"
