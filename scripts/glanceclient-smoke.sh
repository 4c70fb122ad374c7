#!/usr/bin/env bash
# Smoke tests of glint with the real OpenStack clients: installs python-glanceclient 2.17.1 (the
# last release with the v1 API; it has v2 too) and python-openstackclient (the `openstack` CLI on
# openstacksdk) into .venv if they are not there, starts `glint serve` on free loopback ports
# over a temporary data directory, and runs the given smoke script against it (default
# scripts/glanceclient_smoke.py, v1; scripts/v2_clients_smoke.py drives v2). The server is
# always stopped. Exits non-zero on any failure.
#
#   scripts/glanceclient-smoke.sh [SCRIPT]   # builds target/debug/glint if GLINT_BIN is unset
#   GLINT_BIN=/path/to/glint scripts/glanceclient-smoke.sh scripts/v2_clients_smoke.py
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$root/.venv"
glanceclient_version="2.17.1"
openstackclient_version="10.5.0"
smoke_script="${1:-$root/scripts/glanceclient_smoke.py}"

log() { echo "glanceclient-smoke: $*" >&2; }

installed_version() {
    "$venv/bin/python" - "$1" <<'EOF' 2>/dev/null
import importlib.metadata, sys
print(importlib.metadata.version(sys.argv[1]))
EOF
}

# The v1 and v2 smoke tests run in parallel: one of them makes and fills the venv at a time.
exec 9>"$root/.venv.lock"
flock 9
if [[ ! -x "$venv/bin/python" ]]; then
    log "creating $venv"
    python3 -m venv "$venv"
fi
if [[ "$(installed_version python-glanceclient || true)" != "$glanceclient_version" ||
      "$(installed_version python-openstackclient || true)" != "$openstackclient_version" ]]; then
    log "installing python-glanceclient==$glanceclient_version and" \
        "python-openstackclient==$openstackclient_version into $venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check \
        "python-glanceclient==$glanceclient_version" \
        "python-openstackclient==$openstackclient_version"
fi

flock -u 9

glint="${GLINT_BIN:-}"
if [[ -z "$glint" ]]; then
    log "building glint"
    (cd "$root" && cargo build --quiet --bin glint)
    glint="${CARGO_TARGET_DIR:-$root/target}/debug/glint"
fi

work="$(mktemp -d)"
server_pid=""
stop_server() {
    if [[ -n "$server_pid" ]] && kill -0 "$server_pid" 2>/dev/null; then
        kill -TERM "$server_pid" 2>/dev/null || true
        for _ in $(seq 50); do
            kill -0 "$server_pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap stop_server EXIT

: >"$work/server.log"
# Every inherited GLINT_* setting is dropped so the server runs with its defaults; a test that
# wants settings passes them as SMOKE_GLINT_* (e.g. SMOKE_GLINT_FLAVOR=keystone).
server_env=()
while IFS='=' read -r name value; do
    [[ $name == SMOKE_GLINT_* ]] && server_env+=("${name#SMOKE_}=$value")
done < <(env)
env $(env | sed -n 's/^\(GLINT_[A-Z_]*\)=.*/-u \1/p') "${server_env[@]}" \
    "$glint" serve --bind-host 127.0.0.1 --api-port 0 --registry-port 0 \
    --data-dir "$work/data" 2>"$work/server.log" &
server_pid=$!

endpoint=""
for _ in $(seq 300); do
    endpoint="$(sed -n 's/^glint: api listening on \(http:[^ ]*\).*/\1/p' "$work/server.log" || true)"
    [[ -n "$endpoint" ]] && break
    if ! kill -0 "$server_pid" 2>/dev/null; then
        log "glint serve exited before listening:"
        cat "$work/server.log" >&2
        exit 1
    fi
    sleep 0.1
done
if [[ -z "$endpoint" ]]; then
    log "glint serve did not listen within 30 s:"
    cat "$work/server.log" >&2
    exit 1
fi
log "glint serve listening at $endpoint"

if ! PATH="$venv/bin:$PATH" "$venv/bin/python" "$smoke_script" "$endpoint"; then
    log "FAILED; server log:"
    cat "$work/server.log" >&2
    exit 1
fi
