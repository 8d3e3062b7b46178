#!/usr/bin/env bash
# Broker benchmark (see scripts/bench/broker.mjs): installs librdkafka-dev if missing, builds the librdkafka
# load generator and the packages, then runs the benchmark once and prints its numbers.
#
#   bash scripts/bench/broker.sh [--records 200000] [--record-bytes 1024] [--partitions 8] [--half-rate-seconds 5] [--half-rate-warm-up-seconds 3]
#                                [--memory-limit 2GiB|none] [--json] [--cpu-prof DIR] [--broker-setting key=value ...]
#                                [--loadgen-setting key=value ...] [--split-cpus] [--bootstrap HOST:PORT [--broker-pid PID]]
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/lib/ensure-tools.sh

if ! dpkg-query -W -f='${Status}' librdkafka-dev 2>/dev/null | grep -q 'install ok installed'; then
  log "installing librdkafka-dev (the load generator links against librdkafka)"
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -q librdkafka-dev >/dev/null ||
    { as_root apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -q librdkafka-dev >/dev/null; }
fi
loadgen=node_modules/.cache/raftka-bench/loadgen
if [ ! -x "$loadgen" ] || [ scripts/bench/loadgen/loadgen.c -nt "$loadgen" ]; then
  log "building the load generator"
  mkdir -p "$(dirname "$loadgen")"
  gcc -O2 -Wall -o "$loadgen" scripts/bench/loadgen/loadgen.c -lrdkafka
fi
ensure_node_modules
build_all
exec node scripts/bench/broker.mjs --loadgen "$loadgen" "$@"
