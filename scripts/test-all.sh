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

step "all suites passed in $((SECONDS - started)) s"
