#!/usr/bin/env bash
# Deploy-swap benchmark: the real `tuner deploy` (blue-green through
# HAProxy) vs naive recreate vs Docker Swarm start-first, in one run;
# writes its section of BENCHMARKS.md.
#
#   bench/run.sh                      # 5 runs of each method
#   TUNER_BENCH_RUNS=9 bench/run.sh
#   BENCH_SWARM=0 bench/run.sh       # skip Swarm (it joins this engine to
#                                     # a swarm, which disconnects every
#                                     # container on it from its networks)
#   TUNER_BENCH_METHODS=tuner,naive bench/run.sh   # the same, by name
#   TUNER_BENCH_METHODS=tuner,router,router-docker,naive,swarm bench/run.sh
#     # also the harness-driven HaproxyRouter swap, for reference
#
# Needs docker, /usr/sbin/haproxy, /bin/busybox. All traffic is to
# 127.0.0.1. Swarm: initialised with --advertise-addr 127.0.0.1 only if the
# node is not in a swarm, and then left (and docker_gwbridge removed) at the
# end, also on failure. The harness is the ignored test `bench_deploy_swap`
# (bench/deploy_swap.rs, compiled into tests/haproxy.rs).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=bench/lib/section.sh
source bench/lib/section.sh

runs=${TUNER_BENCH_RUNS:-5}
if [ "${BENCH_SWARM:-1}" = 0 ]; then
  methods=${TUNER_BENCH_METHODS:-tuner,naive}
else
  methods=${TUNER_BENCH_METHODS:-tuner,naive,swarm}
fi
mkdir -p target/bench
table=target/bench/deploy_swap.md
log=target/bench/deploy_swap.log
rm -f "$table"

cmd="cargo build --release --bin tuner && TUNER_BENCH_RUNS=$runs TUNER_BENCH_METHODS=$methods cargo test --test haproxy bench_deploy_swap -- --ignored --nocapture"
started=$(date -u '+%Y-%m-%d %H:%M UTC')
load_before=$(cut -d' ' -f1-3 /proc/loadavg)

# Build first, so compile time is not mixed with the measurements. The
# `tuner` method times the release binary.
cargo build --release --bin tuner
cargo test --test haproxy --no-run >/dev/null
TUNER_BENCH_RUNS=$runs TUNER_BENCH_METHODS=$methods TUNER_BENCH_OUT=$table \
  cargo test --test haproxy bench_deploy_swap -- --ignored --nocapture 2>&1 | tee "$log"
[ -s "$table" ] || { echo "bench: no results in $table (see $log)" >&2; exit 1; }

load_after=$(cut -d' ' -f1-3 /proc/loadavg)
swarm_after=$(docker info --format '{{.Swarm.LocalNodeState}}')

section=target/bench/deploy_swap.section.md
{
  echo "## Re-sizing a container: blue-green swap vs naive recreate vs Swarm"
  echo
  echo "- Methods this run: $methods (Swarm joins the engine to a swarm, which disconnects every container on it from its networks: \`BENCH_SWARM=0\` leaves it out)."
  echo
  echo "- Date: $started; machine: $(nproc) cores, Docker $(docker version --format '{{.Server.Version}}'), $(haproxy -v | head -1 | cut -d' ' -f1-3)."
  echo "- Load average before / after: $load_before / $load_after (other jobs share this machine: compare rows of one run, not runs across days)."
  echo "- Command: \`bench/run.sh\` = \`$cmd\`"
  echo "- Service: busybox httpd (\`tuner-test/haproxy-web:1\`, built locally with \`docker import\`), Docker HEALTHCHECK every 1 s (healthy about 1 s after start); limits alternate 1.0 CPU/128M and 0.5 CPU/64M."
  echo "- Load: 32 workers, a new TCP connection per request (HTTP/1.0 GET), paced to 400 req/s total, from 0.5 s before to 0.5 s after each swap; failed = connect error, non-200, timeout or body shorter than Content-Length."
  echo
  cat "$table"
  echo
  echo "How each row is measured:"
  echo
  echo "- **\`tuner deploy\`**: \`target/release/tuner --config <tmp>/tuner.yaml --output json deploy <container> <cpu> <mem> --health-timeout 30s --health-interval 1s --drain 10s\`, with \`deploy.router: {kind: haproxy, haproxy: {socket: <harness admin socket>, backend: app}}\` (default checks: inter 500ms, fastinter 100ms, downinter 100ms, rise 1, fall 2; state polled every 50 ms). **Time = the CLI's wall time**, what a user waits for: process start, Docker connect, plan with HAProxy preflight, the whole swap *including the drain*, rename/persist/verify. The notes give the time until green takes traffic and the drain (blue's in-flight requests, included in the wall time, not subtracted), from tuner's per-phase JSON report. Order: create+start green -> \`add server\` standby at weight 0 with checks -> green's own healthcheck run through \`docker exec\` every 100 ms passes (or Docker says healthy) -> HAProxy UP+L7OK -> weight 1 -> drain blue (until two readings of no session, 50 ms apart) -> MAINT -> \`rm -f\` blue -> blue's server re-pointed at green, standby deleted -> rename green to blue's name -> verify limits. Load goes through HAProxy's frontend."
  echo "- **harness-driven HaproxyRouter** rows (only with \`TUNER_BENCH_METHODS\` including \`router\`/\`router-docker\`): the same order driven by the harness through the \`Router\` trait and the docker CLI."
  echo "- **naive**: \`docker rm -f\` + \`docker run\` with the new limits on the same published port, until Docker reports healthy; the load goes straight to the published port, so every failure is downtime. Its load rate is lower because requests accepted by docker-proxy for a container that is not serving yet hang until the 5 s request timeout (counted as failures)."
  echo "- **Swarm**: single-node swarm (\`docker swarm init --advertise-addr 127.0.0.1\`), service with \`--endpoint-mode dnsrr\`; wall time of the blocking \`docker service update --update-order start-first --update-monitor 1s --limit-cpu .. --limit-memory ..\`. The routing mesh cannot work here (no IPVS) and a dnsrr service is reachable only from inside its overlay, so no failures can be counted from 127.0.0.1; the CLI also returns before the old task is gone. Swarm state after the run: $swarm_after."
  echo
  echo "Per-run lines (\`$log\`):"
  echo
  echo '```'
  grep -E "^(tuner|router|router-docker|naive|swarm) " "$log" || true
  echo '```'
} >"$section"
write_section deploy-swap "$section"
echo "bench: wrote the deploy-swap section of BENCHMARKS.md"
