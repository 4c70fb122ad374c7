#!/usr/bin/env bash
# start-squid.sh - make Squid (Debian's squid) ready for the cache tests. As with Varnish
# (start-varnish.sh), each test starts its own `squid -N` on 127.0.0.1 in front of its own
# glint, from proxies/squid.conf, with a state dir under $SQUID_STATE_DIR/runs, its PID recorded
# in $SQUID_STATE_DIR/pids, and stops it by that PID when it ends. This script installs squid
# (and curl) when missing, checks that the project's config parses, and prints only
# `export VAR=...` lines:
#
#   out=$(/path/to/start-squid.sh) && eval "$out"
#
# Squid will not run its workers as root: started by root it switches to the package's
# `proxy` user (GLINT_TEST_SQUID_USER), so the run dirs are made for that user.
# Idempotent; stop-squid.sh stops any squid a test left behind (by recorded PID only).
# Knobs: SQUID_STATE_DIR (default /var/tmp/glance-test-services/squid).
set -euo pipefail

me=start-squid
log() { printf '%s: %s\n' "$me" "$*" >&2; }
die() { printf '%s: ERROR: %s\n' "$me" "$*" >&2; exit 1; }

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
STATE=${SQUID_STATE_DIR:-/var/tmp/glance-test-services/squid}
CONF=$here/proxies/squid.conf
[[ -r $CONF ]] || die "$CONF is missing"

if ! command -v squid >/dev/null && [[ ! -x /usr/sbin/squid ]] || ! command -v curl >/dev/null; then
    ((EUID == 0)) || die "squid/curl missing; run as root or: sudo apt-get install -y --no-install-recommends squid curl"
    log "installing squid (apt)"
    export DEBIAN_FRONTEND=noninteractive
    if ! apt-get install -y -q --no-install-recommends squid curl >&2; then
        apt-get update -q >&2 || die "apt-get update failed"
        apt-get install -y -q --no-install-recommends squid curl >&2 || die "apt-get install squid failed"
    fi
fi
SQUID=$(command -v squid || echo /usr/sbin/squid)
[[ -x $SQUID ]] || die "squid not found after install"
user=""
if ((EUID == 0)); then
    id proxy >/dev/null 2>&1 || die "user 'proxy' (Debian's squid user) is missing"
    user=proxy
fi

# The runs are made by the tests inside this dir: every level must be traversable by $user.
mkdir -p "$STATE/pids" "$STATE/runs"
chmod 755 "$STATE" "$STATE/runs"
check=$STATE/runs/check
mkdir -p "$check"
sed -e 's/@BACKEND_HOST@/127.0.0.1/' -e 's/@BACKEND_PORT@/9292/' -e 's/@LISTEN_PORT@/3128/g' \
    -e 's/@CACHE_MB@/64/' -e 's/@MAX_OBJECT_MB@/64/' -e "s#@STATE@#$check#g" "$CONF" >"$check/squid.conf"
if ! out=$("$SQUID" -k parse -f "$check/squid.conf" 2>&1); then
    printf '%s\n' "$out" | tail -n 20 >&2
    die "squid rejects $CONF"
fi
rm -rf "$check"

cat >"$STATE/env.sh" <<EOT
export GLINT_TEST_SQUID=$SQUID
export GLINT_TEST_SQUID_CONF=$CONF
export GLINT_TEST_SQUID_USER=$user
export SQUID_STATE_DIR=$STATE
EOT
log "$("$SQUID" -v | head -n 1); the tests start it per test (state in $STATE)"
cat "$STATE/env.sh"
