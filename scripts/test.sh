#!/usr/bin/env bash
# The one test command: installs whatever the tests need (idempotently), then runs every test.
# Usage: scripts/test.sh [extra cargo test args]
set -euo pipefail
cd "$(dirname "$0")/.."

need() { command -v "$1" >/dev/null 2>&1; }

if ! need cargo; then
    echo "scripts/test.sh: cargo is not installed; install Rust with rustup (https://rustup.rs)" >&2
    exit 1
fi

echo "== cargo test (unit, integration and doc tests)" >&2
cargo test --locked "$@"
