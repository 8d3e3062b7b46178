#!/usr/bin/env bash
# Quick start: install, build and run a single-node broker with embedded defaults
# (Kafka on localhost:9092, admin/metrics HTTP on :9644, data in ./data).
# Extra arguments go to `raftka start`, e.g. scripts/start.sh --log.level=debug
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/ensure-tools.sh
ensure_node_modules
build_all
# The broker's V8 flags, glibc malloc settings and libuv pool size, as packages/cli/src/node-flags.ts
# defines them and says why (the broker warns when one is missing); values already in the environment win.
eval "$(node scripts/lib/broker-launch.mjs --shell)"
exec node "${BROKER_NODE_FLAGS[@]}" packages/cli/dist/main.js start "$@"
