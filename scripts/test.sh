#!/usr/bin/env bash
# The one test command: installs and starts whatever the tests need (idempotently), then runs
# every test. The servers' scripts are the project's own, in scripts/services (GLINT_SERVICES_DIR
# points elsewhere if wanted).
# Usage: scripts/test.sh [extra cargo test args]
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v cargo >/dev/null 2>&1; then
    echo "scripts/test.sh: cargo is not installed; install Rust with rustup (https://rustup.rs)" >&2
    exit 1
fi

# The disk image inspector is tested against images made by the real qemu-img.
if ! command -v qemu-img >/dev/null 2>&1; then
    echo "== installing qemu-utils (qemu-img)" >&2
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq qemu-utils >/dev/null
fi

# The proxy tests resume downloads with curl -C -.
if ! command -v curl >/dev/null 2>&1; then
    echo "== installing curl" >&2
    apt-get update -qq && apt-get install -y -qq curl >/dev/null
fi

# The https store test makes its throwaway CA with the openssl command.
if ! command -v openssl >/dev/null 2>&1; then
    echo "== installing openssl" >&2
    apt-get update -qq && apt-get install -y -qq openssl >/dev/null
fi

services=${GLINT_SERVICES_DIR:-scripts/services}
if [ ! -d "$services" ]; then
    echo "scripts/test.sh: $services not found; the tests need its Keystone, S3, Swift and HTTP servers" >&2
    exit 1
fi

# Stop the servers again when done (they are found by the PIDs their scripts recorded), unless
# GLINT_KEEP_SERVICES=1 keeps them for the next run.
stop_services() {
    if [ "${GLINT_KEEP_SERVICES:-0}" != 1 ]; then
        for service in s3 swift http keystone varnish squid; do
            "$services/stop-$service.sh" >/dev/null 2>&1 || true
        done
    fi
}
trap stop_services EXIT

# A real Keystone, S3 (Ceph radosgw), Swift (tempauth, and Keystone on a second proxy) and nginx
# on loopback. Keystone comes first: start-swift.sh registers Swift in it (it would start it
# itself otherwise). Varnish and Squid are only installed and checked here: each proxy test
# starts its own in front of its own glint. A server that cannot start fails the run here,
# loudly: store tests are never skipped silently.
for service in keystone s3 swift http varnish squid; do
    echo "== starting the $service test server" >&2
    if ! out=$("$services/start-$service.sh"); then
        echo "scripts/test.sh: the $service test server did not start (see above)" >&2
        exit 1
    fi
    eval "$out"
done
export GLINT_REQUIRE_STORES=1

echo "== cargo test (unit, integration and doc tests)" >&2
cargo test --locked "$@"
