#!/usr/bin/env bash
# start-varnish.sh - make Varnish (Debian's varnish) ready for the cache tests and bench.
# The backend (glint) is started by each test on a free port, so the daemon is not started
# here: each test starts its own varnishd in the foreground on 127.0.0.1 with
# proxies/glint.vcl naming that test's backend, a work dir under $VARNISH_STATE_DIR/runs, its
# PID recorded in $VARNISH_STATE_DIR/pids, and stops it by that PID when it ends.
# This script installs varnish (and curl) when missing, checks that the project's VCL compiles
# (varnishd needs a C compiler for that), and prints only `export VAR=...` lines:
#
#   out=$(/path/to/start-varnish.sh) && eval "$out"
#
# Idempotent; a second run only checks and prints the exports again.
# stop-varnish.sh stops any varnishd a test left behind (by recorded PID only).
# Knobs: VARNISH_STATE_DIR (default /var/tmp/glance-test-services/varnish).
set -euo pipefail

me=start-varnish
log() { printf '%s: %s\n' "$me" "$*" >&2; }
die() { printf '%s: ERROR: %s\n' "$me" "$*" >&2; exit 1; }

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
STATE=${VARNISH_STATE_DIR:-/var/tmp/glance-test-services/varnish}
VCL=$here/proxies/glint.vcl
[[ -r $VCL ]] || die "$VCL is missing"

if ! command -v varnishd >/dev/null && [[ ! -x /usr/sbin/varnishd ]] || ! command -v curl >/dev/null; then
    ((EUID == 0)) || die "varnish/curl missing; run as root or: sudo apt-get install -y --no-install-recommends varnish curl"
    log "installing varnish (apt)"
    export DEBIAN_FRONTEND=noninteractive
    # Debian's package would start a varnishd service where services may start: the tests
    # start their own, so none is wanted (policy-rc.d keeps it off in containers).
    if ! apt-get install -y -q --no-install-recommends varnish curl >&2; then
        apt-get update -q >&2 || die "apt-get update failed"
        apt-get install -y -q --no-install-recommends varnish curl >&2 || die "apt-get install varnish failed"
    fi
fi
VARNISHD=$(command -v varnishd || echo /usr/sbin/varnishd)
[[ -x $VARNISHD ]] || die "varnishd not found after install"

mkdir -p "$STATE/pids" "$STATE/runs"
# Compile the VCL once (varnishd -C): a missing C compiler or a VCL error fails here, loudly.
sed -e 's/@BACKEND_HOST@/127.0.0.1/' -e 's/@BACKEND_PORT@/9292/' "$VCL" >"$STATE/check.vcl"
if ! out=$("$VARNISHD" -C -f "$STATE/check.vcl" -n "$STATE/runs/check" 2>&1 >/dev/null); then
    printf '%s\n' "$out" | tail -n 20 >&2
    die "varnishd cannot compile $VCL"
fi
rm -rf "$STATE/runs/check"

cat >"$STATE/env.sh" <<EOT
export GLINT_TEST_VARNISHD=$VARNISHD
export GLINT_TEST_VARNISH_VCL=$VCL
export VARNISH_STATE_DIR=$STATE
EOT
log "$("$VARNISHD" -V 2>&1 | head -n 1); the tests start it per test (state in $STATE)"
cat "$STATE/env.sh"
