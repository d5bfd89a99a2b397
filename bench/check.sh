#!/usr/bin/env bash
# `tuner check` on k6 `--out json` streams of 10, 100 and 1,000 MB (and the
# 100 MB one gzipped): wall time and peak RSS of the release binary over N
# runs, beside a short Python reference (bench/lib/k6_percentile.py: every
# http_req_duration sample, sorted, interpolated) computing the same p95 and
# p99 in the same run. The streams are generated (bench/lib/k6_stream.py,
# seeded) under target/bench/check/ and deleted afterwards.
# Writes the check section of BENCHMARKS.md; raw lines in
# target/bench/check/check.log.
#
#   bench/check.sh                   # 5 runs of each
#   TUNER_BENCH_CHECK_RUNS=9 TUNER_BENCH_CHECK_SIZES="10 100" bench/check.sh
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
# shellcheck source=bench/lib/section.sh
source bench/lib/section.sh

runs=${TUNER_BENCH_CHECK_RUNS:-5}
sizes=${TUNER_BENCH_CHECK_SIZES:-10 100 1000}
[[ "$runs" =~ ^[1-9][0-9]*$ ]] || { echo "bench: TUNER_BENCH_CHECK_RUNS must be a positive number, got '$runs'" >&2; exit 2; }
for mb in $sizes; do
  [[ "$mb" =~ ^[1-9][0-9]*$ ]] || { echo "bench: TUNER_BENCH_CHECK_SIZES must list sizes in MB, got '$mb'" >&2; exit 2; }
done
out=$root/target/bench/check
mkdir -p "$out"
tuner=$root/target/release/tuner
log=$out/check.log
: >"$log"
cleanup() { rm -f "$out"/stream-*.json "$out"/stream-*.json.gz; }
trap cleanup EXIT

now_ns() { date +%s%N; }
secs() { awk -v ns="$1" 'BEGIN { printf "%.3f\n", ns / 1e9 }'; }
# min / median / max of numbers on stdin, one per line.
spread() { sort -g | awk '{ v[NR] = $1 } END { m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2; printf "%s / %s / %s", v[1], m, v[NR] }'; }
median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
# Peak RSS in MB from a `/usr/bin/time -v` report.
rss_mb() { awk -F': ' '/Maximum resident set size/ { printf "%.1f\n", $2 / 1024 }' "$1"; }

cargo build --release --bin tuner

budget=$out/budget.yaml
cat >"$budget" <<'EOF'
# bench/check.sh: seed 004's budget on the raw stream.
objectives:
  p95_latency:
    metric: latency
    stat: p95
    critical: "> 1s"
  p99_latency:
    metric: latency
    stat: p99
    critical: "> 2s"
  error_rate:
    metric: error_rate
    critical: "> 5%"
  throughput:
    metric: throughput
    critical: "< 10/s"
EOF

started=$(date -u '+%Y-%m-%d %H:%M UTC')
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
rows=()
# One file at a time, so at most 1 GB sits on disk.
files=()
for mb in $sizes; do
  files+=("$mb")
  if [ "$mb" = 100 ]; then files+=("100gz"); fi
done

for item in "${files[@]}"; do
  mb=${item%gz}
  stream=$out/stream-$mb.json
  if [ ! -f "$stream" ]; then
    echo "bench: generating a ${mb} MB k6 stream" | tee -a "$log"
    python3 bench/lib/k6_stream.py "$mb" >"$stream"
  fi
  input=$stream
  label="$mb MB"
  if [ "$item" != "$mb" ]; then
    gzip -1 -c "$stream" >"$stream.gz"
    input=$stream.gz
    label="$mb MB, gzipped ($(du -m "$input" | cut -f1) MB on disk)"
  fi
  bytes=$(stat -c %s "$stream")
  : >"$out/t_s"; : >"$out/t_rss"; : >"$out/p_s"; : >"$out/p_rss"
  # One unmeasured run of each warms the page cache.
  "$tuner" check "$input" --budget "$budget" >/dev/null || true
  python3 bench/lib/k6_percentile.py "$stream" >/dev/null
  for ((i = 1; i <= runs; i++)); do
    # Interleaved, so both see the same host load.
    a=$(now_ns)
    rc=0
    /usr/bin/time -v -o "$out/time_t" "$tuner" --output json check "$input" --budget "$budget" >"$out/last.json" 2>"$out/last.err" || rc=$?
    b=$(now_ns)
    if [ "$rc" -ne 0 ] && [ "$rc" -ne 3 ]; then
      echo "bench: tuner check failed with exit $rc:" >&2
      cat "$out/last.err" >&2
      exit 1
    fi
    /usr/bin/time -v -o "$out/time_p" python3 bench/lib/k6_percentile.py "$stream" >"$out/ref.txt"
    c=$(now_ns)
    secs $((b - a)) >>"$out/t_s"; rss_mb "$out/time_t" >>"$out/t_rss"
    secs $((c - b)) >>"$out/p_s"; rss_mb "$out/time_p" >>"$out/p_rss"
    echo "$label run $i: tuner check $(secs $((b - a))) s, peak RSS $(rss_mb "$out/time_t") MB; python reference $(secs $((c - b))) s, peak RSS $(rss_mb "$out/time_p") MB" | tee -a "$log"
  done
  read -r ref95 ref99 refn <"$out/ref.txt"
  read -r t95 t99 tn note < <(python3 -c '
import json, sys
r = {x["name"]: x for x in json.load(open(sys.argv[1]))["results"]}
p95, p99 = r["p95_latency"], r["p99_latency"]
method = "sketch" if p95["note"] else "exact"
print("%.6f %.6f %d %s" % (p95["value"], p99["value"], p95["samples"], method))
' "$out/last.json")
  echo "$label: p95 tuner $t95 / reference $ref95, p99 tuner $t99 / reference $ref99, samples $tn / $refn ($note)" | tee -a "$log"
  diff95=$(awk -v a="$t95" -v b="$ref95" 'BEGIN { printf "%+.3f%%", (a - b) / b * 100 }')
  diff99=$(awk -v a="$t99" -v b="$ref99" 'BEGIN { printf "%+.3f%%", (a - b) / b * 100 }')
  mbps=$(median <"$out/t_s" | awk -v bytes="$bytes" '{ printf "%.0f", bytes / 1e6 / $1 }')
  speedup=$(paste "$out/p_s" "$out/t_s" | awk '{ printf "%.1f\n", $1 / $2 }' | median)
  rows+=("| $label | $(spread <"$out/t_s") s | $mbps MB/s | $(spread <"$out/t_rss") MB | $(spread <"$out/p_s") s | $(spread <"$out/p_rss") MB | ${speedup}x | $t95 / $ref95 ($diff95) | $t99 / $ref99 ($diff99) | $tn, $note |")
  if [ "$item" = "$mb" ] && [[ " ${files[*]} " != *" ${mb}gz "* ]]; then rm -f "$stream"; fi
  if [ "$item" != "$mb" ]; then rm -f "$stream" "$stream.gz"; fi
done
load_after=$(cut -d' ' -f1-3 /proc/loadavg)

section=$out/section.md
{
  echo "## \`tuner check\` on a k6 \`--out json\` stream"
  echo
  echo "- Date: $started; machine: $(nproc) cores, shared with other jobs; load average before / after: $load_before / $load_after (compare rows of one run)."
  echo "- Command: \`bench/check.sh\` (TUNER_BENCH_CHECK_RUNS=$runs), run by \`make bench\`: \`tuner check STREAM --budget <p95, p99, error_rate, throughput>\` (release build) and \`python3 bench/lib/k6_percentile.py STREAM\` interleaved, $runs runs each after one warm-up run (files in the page cache)."
  echo "- Streams: \`bench/lib/k6_stream.py SIZE_MB\`, seeded: k6's documented line shapes, 13 samples per request with k6's HTTP tags, log-normal durations, 2% failed; generated for the run and deleted after it."
  echo
  echo "| stream | \`tuner check\` wall min / median / max | median read rate | peak RSS min / median / max | Python reference wall | Python peak RSS | reference / tuner time (median) | p95 ms tuner / reference | p99 ms tuner / reference | samples, method |"
  echo "|---|---|---|---|---|---|---|---|---|---|"
  printf '%s\n' "${rows[@]}"
  echo
  echo "Wall time is taken around \`/usr/bin/time -v\` (peak RSS is its \"Maximum resident set size\"). \`tuner check\` reads the stream in one pass, skips sample lines of metrics no objective reads by their name, and keeps every objective's samples exactly up to 131,072, then in a logarithmic sketch whose percentiles are within 0.1% of the exact ones: the p95/p99 columns show that difference against the exact reference. The Python reference parses only the \`http_req_duration\` lines (a substring filter before \`json.loads\`) and holds every value in memory, so its RSS grows with the file. Per-run lines: \`target/bench/check/check.log\`."
} >"$section"
write_section check "$section"
echo "bench: wrote the check section of BENCHMARKS.md"
