#!/usr/bin/env bash
# Installs what a fresh machine (Node 20, npm, root apt) lacks. Sourced by start.sh and test-all.sh.

log() { printf '\033[1m[raftka]\033[0m %s\n' "$*" >&2; }

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
    log "need root to run: $* (run as root or install sudo)"; return 1
  fi
}

ensure_pnpm() {
  if ! command -v pnpm >/dev/null 2>&1; then
    log "installing pnpm 10 with npm (corepack is not used: it fails offline)"
    as_root npm install -g pnpm@10 >/dev/null
  fi
}

# Debian packages the end-to-end suites drive: kcat, kafka-python (and its codecs), confluent-kafka, Prometheus, pytest.
ensure_test_packages() {
  # python3-snappy/-lz4/-zstandard: kafka-python's codecs for those compression types.
  local wanted=(kcat python3-kafka python3-confluent-kafka prometheus python3-pytest python3-snappy python3-lz4 python3-zstandard)
  local missing=()
  for pkg in "${wanted[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  log "installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  if ! as_root apt-get install -y -q "${missing[@]}" >/dev/null; then
    log "apt-get install failed; refreshing package lists and retrying"
    as_root apt-get update -q >/dev/null
    as_root apt-get install -y -q "${missing[@]}" >/dev/null
  fi
}

ensure_node_modules() {
  ensure_pnpm
  log "pnpm install"
  pnpm install --frozen-lockfile --reporter=append-only 2>&1 | grep -vE '^\s*$' | tail -n 3 >&2
}

build_all() {
  log "building (tsc -b)"
  pnpm -s build
}
