#!/usr/bin/env bash
# The whole test suite, as CI runs it: installs what is missing, builds, lints, then runs every suite.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/ensure-tools.sh
started=$SECONDS
step() { log "== $1 ($((SECONDS - started)) s elapsed)"; }

ensure_test_packages
ensure_node_modules
build_all

step "lint and type-check tests"
pnpm -s lint

step "unit tests"
pnpm -s test:unit

step "end-to-end tests"
pnpm -s test:e2e

step "python end-to-end tests (kafka-python, confluent-kafka, kcat)"
# Debian's interpreter: the client libraries are Debian packages, not in the pyenv python3 first on PATH.
/usr/bin/python3 -m pytest tests/e2e/python

step "all suites passed in $((SECONDS - started)) s"
