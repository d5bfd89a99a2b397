#!/usr/bin/env bash
# Installs what tuner's tests and demo need, idempotently, from Debian's apt.
# Services are never started by package scripts (policy-rc.d), and no host
# PostgreSQL cluster is created: tests start their own servers.
set -euo pipefail

need_sudo() { if [ "$(id -u)" -ne 0 ]; then echo sudo; fi; }
SUDO=$(need_sudo)

# `scripts/setup.sh lint-tools` (run by `make lint`) installs only what the
# lint needs beyond apt: cargo-deny, built from crates.io (~10 min on 2
# cores the first time, so `make test` does not wait for it).
if [ "${1:-}" = lint-tools ]; then
  if command -v cargo-deny >/dev/null 2>&1; then
    echo "setup: cargo-deny $(cargo deny --version | awk '{print $2}') present"
  else
    echo "setup: installing cargo-deny from crates.io (a few minutes)"
    cargo install --locked cargo-deny
  fi
  exit 0
fi

packages=(
  postgresql-15 postgresql-client-15 curl
  prometheus prometheus-postgres-exporter prometheus-node-exporter
  busybox-static docker-compose haproxy socat ca-certificates curl iproute2 shellcheck
  # The HTTPS + basic-auth Prometheus of tests/prometheus_access.rs: a
  # private CA (openssl) and a bcrypt password hash (htpasswd -B).
  openssl apache2-utils
  libxml2-utils
  # tests/notify.rs starts a real Alertmanager; tests/report.rs renders the
  # HTML report in headless Chromium.
  prometheus-alertmanager chromium
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

docker_answers() { docker version --format '{{.Server.Version}}' >/dev/null 2>&1; }
if ! docker_answers && ! command -v dockerd >/dev/null 2>&1; then
  missing+=(docker.io)
fi

if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  # No host cluster: the demo runs Postgres in a container and tests start their own.
  $SUDO mkdir -p /etc/postgresql-common/createcluster.d
  echo "create_main_cluster = false" | $SUDO tee /etc/postgresql-common/createcluster.d/no-main-cluster.conf >/dev/null
  # Package scripts must not start prometheus, exporters or haproxy on shared ports.
  policy=/usr/sbin/policy-rc.d
  had_policy=0; [ -e "$policy" ] && had_policy=1
  if [ $had_policy -eq 0 ]; then
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$policy" >/dev/null
    $SUDO chmod +x "$policy"
  fi
  daemons="prometheus prometheus-postgres-exporter prometheus-node-exporter haproxy"
  # Processes of those names that run already (a user's, a test's, a container's) are not ours.
  running_before=" $(for svc in $daemons; do pgrep -x "$svc" || true; done | tr '\n' ' ') "
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  if [ $had_policy -eq 0 ]; then $SUDO rm -f "$policy"; fi
  # Debian's packages may still have started daemons through their init scripts (an existing
  # policy-rc.d may allow it); stop only those the install started, so they never squat on the
  # ports our tests and demo use.
  for svc in $daemons; do
    for pid in $(pgrep -x "$svc" || true); do
      case "$running_before" in *" $pid "*) ;; *) $SUDO kill "$pid" 2>/dev/null || true ;; esac
    done
  done
else
  echo "setup: all packages present"
fi

# Locust (tests/check.rs runs it headless against loopback) comes from PyPI.
LOCUST_VERSION=2.47.0
if ! python3 -c "import locust, sys; sys.exit(locust.__version__ != '$LOCUST_VERSION')" 2>/dev/null; then
  echo "setup: installing locust $LOCUST_VERSION from PyPI"
  python3 -m pip install --quiet --disable-pip-version-check "locust==$LOCUST_VERSION"
fi

if ! docker_answers; then
  echo "setup: starting dockerd, waiting up to 60 s for it to answer"
  $SUDO sh -c 'nohup dockerd >/var/log/dockerd.log 2>&1 &'
  for i in $(seq 1 60); do
    docker_answers && break
    [ $((i % 10)) -eq 0 ] && echo "setup: dockerd not answering yet (${i}s)"
    sleep 1
  done
  docker_answers || { echo "setup: dockerd did not answer within 60s; see /var/log/dockerd.log" >&2; exit 1; }
fi

echo "setup: docker $(docker version --format '{{.Server.Version}}')"

# The demo stack's images are built from the packages installed above.
if [ "${SETUP_SKIP_IMAGES:-0}" != 1 ]; then
  "$(dirname "${BASH_SOURCE[0]}")/images.sh"
fi
