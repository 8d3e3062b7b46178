#!/usr/bin/env bash
# Quick start: install, build and run a single-node broker with embedded defaults
# (Kafka on localhost:9092, admin/metrics HTTP on :9644, data in ./data).
# Extra arguments go to `raftka start`, e.g. scripts/start.sh --log-level debug
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/ensure-tools.sh
ensure_node_modules
build_all
# The broker's V8 flags, glibc malloc settings and libuv pool size (packages/cli/src/node-flags.ts says
# why; the broker warns when one is missing). Tunables already in GLIBC_TUNABLES come later and win, and a
# UV_THREADPOOL_SIZE already set is kept.
export GLIBC_TUNABLES="glibc.malloc.mmap_threshold=8388608:glibc.malloc.trim_threshold=67108864${GLIBC_TUNABLES:+:$GLIBC_TUNABLES}"
export UV_THREADPOOL_SIZE="${UV_THREADPOOL_SIZE:-16}"
exec node --initial-old-space-size=128 packages/cli/dist/main.js start "$@"
