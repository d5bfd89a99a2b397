#!/usr/bin/env bash
# Builds the demo stack's local images (no registry exists here): each one is
# `FROM scratch` + `ADD rootfs.tar /`, its root filesystem assembled from the
# host's Debian binaries, every `ldd` dependency and the ELF interpreter.
#
# An image is rebuilt only when its inputs changed: a hash of the host files
# (path, size, mtime), of images/<name>/ and of this script is stored as the
# image label `tuner.inputs` and compared on the next run.
#
# Usage: scripts/images.sh [--force] [--list] [name...]
#   names: web postgres postgres-exporter node-exporter prometheus alertmanager webhook loadgen haproxy
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# Where cargo puts its builds (CARGO_TARGET_DIR when the user set one).
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
SELF="$ROOT/scripts/images.sh"
BUILD="$ROOT/build/images"
ALL=(web postgres postgres-exporter node-exporter prometheus alertmanager webhook loadgen haproxy)
BUSYBOX_APPLETS=(sh ash cat chmod cp date echo env false grep head hostname httpd id kill ls mkdir
  mktemp mv nc nslookup ps pwd rm sed sleep tail test true uname wc wget)

die() { echo "images: $*" >&2; exit 1; }
log() { echo "images: $*"; }

tag_of() {
  case "$1" in
    postgres) echo local/postgres:15 ;;
    *) echo "local/$1:latest" ;;
  esac
}

# Host paths that go into each image, one per line. Directories are copied whole.
paths_of() {
  local pgbin=/usr/lib/postgresql/15/bin pglib=/usr/lib/postgresql/15/lib
  case "$1" in
    web | webhook) ;;
    postgres)
      local b
      for b in postgres initdb pg_ctl pg_isready psql pg_controldata pg_dump pg_dumpall pg_restore \
        pg_basebackup pg_resetwal pgbench; do
        echo "$pgbin/$b"
      done
      # llvmjit pulls in ~100 MB of libLLVM; the entrypoint sets jit = off instead.
      find "$pglib" -maxdepth 1 -name '*.so' ! -name 'llvmjit*' | sort
      echo /usr/share/postgresql/15
      echo /usr/share/zoneinfo
      echo /usr/lib/locale/C.utf8
      ;;
    postgres-exporter) echo /usr/bin/prometheus-postgres-exporter ;;
    node-exporter) echo /usr/bin/prometheus-node-exporter ;;
    prometheus) echo /usr/bin/prometheus; echo /usr/bin/promtool ;;
    alertmanager) echo /usr/bin/prometheus-alertmanager; echo /usr/share/prometheus/alertmanager ;;
    loadgen) echo "$TARGET_DIR/release/examples/loadgen" ;;
    haproxy) echo /usr/sbin/haproxy ;;
    *) die "unknown image '$1' (known: ${ALL[*]})" ;;
  esac
}

package_of() {
  case "$1" in
    /usr/lib/postgresql/* | /usr/share/postgresql/*) echo postgresql-15 ;;
    /usr/bin/prometheus-postgres-exporter) echo prometheus-postgres-exporter ;;
    /usr/bin/prometheus-node-exporter) echo prometheus-node-exporter ;;
    /usr/bin/prometheus | /usr/bin/promtool) echo prometheus ;;
    /usr/bin/prometheus-alertmanager | /usr/share/prometheus/alertmanager) echo prometheus-alertmanager ;;
    /bin/busybox) echo busybox-static ;;
    /usr/sbin/haproxy) echo haproxy ;;
    *) echo "" ;;
  esac
}

is_elf() { [ -f "$1" ] && [ "$(head -c 4 "$1" | od -An -c | tr -d ' ')" = '177ELF' ]; }

# Shared libraries (and the ELF interpreter) a binary needs, by absolute path.
elf_deps() {
  local out
  # ldd exits non-zero for static binaries; that is not an error here.
  out=$(ldd "$1" 2>/dev/null) || return 0
  if grep -q 'not found' <<<"$out"; then
    die "$1 needs libraries that are not installed: $(grep 'not found' <<<"$out" | awk '{print $1}' | tr '\n' ' ')"
  fi
  awk '$2 == "=>" && $3 ~ /^\// {print $3} $1 ~ /^\// {print $1}' <<<"$out"
}

# Everything to copy from the host for one image, sorted and unique.
file_list() {
  local name=$1 p
  {
    while IFS= read -r p; do
      [ -n "$p" ] || continue
      if [ ! -e "$p" ]; then
        local pkg
        pkg=$(package_of "$p")
        if [ "$name" = loadgen ]; then
          die "$p is missing; build it with: cargo build --release --example loadgen"
        fi
        die "$p is missing${pkg:+ (package $pkg)}; run scripts/setup.sh"
      fi
      echo "$p"
      if is_elf "$p"; then elf_deps "$p"; fi
    done < <(paths_of "$name")
  } | sort -u
}

inputs_hash() {
  local name=$1 list=$2
  {
    echo "image $name $(tag_of "$name")"
    # Directories are listed file by file so an upgrade inside them counts.
    while IFS= read -r p; do
      find -L "$p" \( -type f -o -type d \) -printf '%p %s %T@\n' 2>/dev/null
    done <"$list"
    stat -L -c '%n %s %Y' /bin/busybox
    (cd "$ROOT/images/$name" && find . -type f -print0 | sort -z | xargs -0 sha256sum)
    sha256sum <"$SELF"
  } | sha256sum | cut -c1-32
}

current_hash() {
  docker image inspect -f '{{ index .Config.Labels "tuner.inputs" }}' "$1" 2>/dev/null || true
}

# Files placed in the root filesystem beyond host copies, and their owners.
# Prints "uid path" for paths that must belong to a non-root user.
customise() {
  local name=$1 root=$2
  case "$name" in
    web)
      mkdir -p "$root/www"
      cp "$ROOT/images/web/www/"* "$root/www/"
      chmod 0644 "$root/www/"*
      ;;
    postgres)
      mkdir -p "$root/usr/local/bin" "$root/var/lib/postgresql/data" "$root/var/run/postgresql"
      install -m 0755 "$ROOT/images/postgres/docker-entrypoint.sh" "$root/usr/local/bin/docker-entrypoint.sh"
      # initdb refuses a data directory others can read.
      chmod 0700 "$root/var/lib/postgresql/data"
      chmod 0775 "$root/var/run/postgresql"
      echo "999 var/lib/postgresql"
      echo "999 var/run/postgresql"
      ;;
    prometheus)
      mkdir -p "$root/prometheus" "$root/etc/prometheus"
      echo "65534 prometheus"
      ;;
    alertmanager)
      mkdir -p "$root/alertmanager" "$root/etc/alertmanager"
      echo "65534 alertmanager"
      ;;
    webhook)
      mkdir -p "$root/www/cgi-bin"
      install -m 0755 "$ROOT/images/webhook/hook" "$root/www/cgi-bin/hook"
      echo ok >"$root/www/healthz"
      chmod 0644 "$root/www/healthz"
      ;;
    haproxy)
      # The config comes from the stack; the socket directory is a mount.
      mkdir -p "$root/usr/local/etc/haproxy" "$root/run/haproxy-admin" "$root/var/lib/haproxy"
      ;;
    loadgen)
      mkdir -p "$root/usr/local/bin"
      install -m 0755 "$TARGET_DIR/release/examples/loadgen" "$root/usr/local/bin/loadgen"
      ;;
  esac
}

assemble() {
  local name=$1 list=$2 dir=$3
  local root="$dir/root" ctx="$dir/ctx"
  rm -rf "$root" "$ctx"
  mkdir -p "$root" "$ctx"

  # tar -h dereferences the usr-merge symlinks (/lib -> usr/lib); `cp --parents`
  # fails on them here and leaves 0700 parent directories.
  # The loadgen binary is installed by customise(), not at its build path.
  sed 's#^/##' "$list" | { grep -vxF "${TARGET_DIR#/}/release/examples/loadgen" || true; } >"$dir/files.rel"
  if [ -s "$dir/files.rel" ]; then
    tar -C / -chf - --exclude=usr/share/postgresql/15/man -T "$dir/files.rel" | tar -xf - -C "$root"
  fi

  mkdir -p "$root/bin" "$root/etc" "$root/tmp"
  chmod 1777 "$root/tmp"
  install -m 0755 /bin/busybox "$root/bin/busybox"
  local a
  for a in "${BUSYBOX_APPLETS[@]}"; do ln -sf busybox "$root/bin/$a"; done
  printf '%s\n' 'root:x:0:0:root:/root:/bin/sh' 'postgres:x:999:999:PostgreSQL:/var/lib/postgresql:/bin/sh' \
    'nobody:x:65534:65534:nobody:/nonexistent:/bin/false' >"$root/etc/passwd"
  printf '%s\n' 'root:x:0:' 'postgres:x:999:' 'nogroup:x:65534:' >"$root/etc/group"
  printf 'hosts: files dns\n' >"$root/etc/nsswitch.conf"

  local owned
  owned=$(customise "$name" "$root")

  # Everything belongs to root except the listed paths, which are appended
  # with their owner; that works whether or not this script runs as root.
  local excludes=() uid path
  while read -r uid path; do
    [ -n "${path:-}" ] && excludes+=("--exclude=./$path")
  done <<<"$owned"
  tar --numeric-owner --owner=0 --group=0 "${excludes[@]}" -C "$root" -cf "$ctx/rootfs.tar" .
  while read -r uid path; do
    [ -n "${path:-}" ] || continue
    tar --numeric-owner --owner="$uid" --group="$uid" -C "$root" -rf "$ctx/rootfs.tar" "./$path"
  done <<<"$owned"
  cp "$ROOT/images/$name/Dockerfile" "$ctx/Dockerfile"
}

build_one() {
  local name=$1 force=$2
  local tag dir list hash have old
  tag=$(tag_of "$name")
  dir="$BUILD/$name"
  mkdir -p "$dir"
  list="$dir/files.list"
  file_list "$name" >"$list"
  hash=$(inputs_hash "$name" "$list")
  have=$(current_hash "$tag")
  if [ "$force" = 0 ] && [ "$have" = "$hash" ]; then
    log "$tag up to date"
    return 0
  fi
  if [ -n "$have" ]; then log "building $tag (inputs changed)"; else log "building $tag (not built yet)"; fi
  local started=$SECONDS
  assemble "$name" "$list" "$dir"
  old=$(docker image inspect -f '{{.Id}}' "$tag" 2>/dev/null || true)
  # The legacy builder is the one that works here (no buildx); its
  # deprecation notice is noise.
  if ! DOCKER_BUILDKIT=0 docker build -q --label "tuner.inputs=$hash" -t "$tag" "$dir/ctx" >"$dir/build.out" 2>&1; then
    cat "$dir/build.out" >&2
    die "docker build of $tag failed (context $dir/ctx)"
  fi
  local new
  new=$(docker image inspect -f '{{.Id}}' "$tag")
  if [ -n "$old" ] && [ "$old" != "$new" ]; then
    # Drop the superseded image unless a container still uses it.
    docker image rm "$old" >/dev/null 2>&1 || true
  fi
  local size
  size=$(docker image inspect -f '{{.Size}}' "$tag")
  rm -rf "$dir/root"
  log "built $tag ($((size / 1000000)) MB, $((SECONDS - started)) s)"
}

main() {
  local force=0 names=()
  while [ $# -gt 0 ]; do
    case "$1" in
      --force) force=1 ;;
      --list) printf '%s\n' "${ALL[@]}"; return 0 ;;
      -h | --help) sed -n '2,12p' "$SELF" | sed 's/^# \{0,1\}//'; return 0 ;;
      -*) die "unknown option $1" ;;
      *) names+=("$1") ;;
    esac
    shift
  done
  [ ${#names[@]} -gt 0 ] || names=("${ALL[@]}")

  command -v docker >/dev/null || die "docker CLI not found; run scripts/setup.sh"
  docker version --format '{{.Server.Version}}' >/dev/null 2>&1 ||
    die "the Docker daemon does not answer; run scripts/setup.sh (starts dockerd)"
  [ -x /bin/busybox ] || die "/bin/busybox missing (package busybox-static); run scripts/setup.sh"
  umask 022

  # dev-up and test runs may call this at the same time; they would assemble
  # into the same build directories.
  mkdir -p "$BUILD"
  exec 9>"$BUILD/.lock"
  if ! flock -n 9; then
    log "waiting for another images.sh run to finish"
    flock -w 900 9 || die "another images.sh run held $BUILD/.lock for 15 minutes"
  fi

  local n
  for n in "${names[@]}"; do
    if [ "$n" = loadgen ]; then
      command -v cargo >/dev/null || die "cargo not found; it builds the loadgen binary"
      # A no-op when the binary is current; relinks after a source change.
      cargo build --quiet --release --example loadgen --manifest-path "$ROOT/Cargo.toml" ||
        die "cargo build --release --example loadgen failed"
    fi
    build_one "$n" "$force"
  done
  # Superseded images that were still in use when rebuilt are dangling once
  # their containers are recreated; only ours carry the tuner.inputs label.
  docker image prune -f --filter label=tuner.inputs >/dev/null 2>&1 || true
}

main "$@"
