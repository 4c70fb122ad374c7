#!/usr/bin/env bash
# The long crash-torture run (issue 15): `glint serve` under a writer load, killed with SIGKILL at
# random instants, restarted and checked against the clients' log every round (see
# tests/integration/torture.rs). scripts/test.sh runs a short version; this one runs
# ROUNDS rounds (default 100) with uploads up to MAX_MIB MiB (default 50) and prints the figures.
# Usage: scripts/torture.sh [ROUNDS] [MAX_MIB]
set -euo pipefail
cd "$(dirname "$0")/.."
export GLINT_TORTURE_ROUNDS=${1:-100}
export GLINT_TORTURE_MAX_MIB=${2:-50}
exec cargo test --locked --test integration torture:: -- --nocapture --test-threads 1
