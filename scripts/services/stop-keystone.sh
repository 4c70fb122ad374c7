#!/usr/bin/env bash
# stop-keystone.sh - stop what start-keystone.sh started: only the processes whose PIDs
# it recorded under $KEYSTONE_STATE_DIR/pids (and only while they still look like ours:
# command line matching 'gunicorn').
#   stop-keystone.sh           stop, keep the state directory
#   stop-keystone.sh --purge   stop and delete the state directory
set -uo pipefail
STATE=${KEYSTONE_STATE_DIR:-/var/tmp/glance-test-services/keystone}
PATTERN='gunicorn'
ORDER=(keystone-short keystone)
rc=0

running() { # a live, non-zombie process
    [[ -r /proc/$1/stat ]] && [[ $(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -c1) != Z ]]
}

stop_one() { # $1 = pid file
    local f=$1 pid name
    pid=$(<"$f")
    name=$(basename "$f" .pid)
    if [[ $pid =~ ^[0-9]+$ ]] && running "$pid" &&
        tr '\0' ' ' <"/proc/$pid/cmdline" | grep -Eq "$PATTERN"; then
        kill "$pid" 2>/dev/null
        for _ in $(seq 100); do running "$pid" || break; sleep 0.1; done
        if running "$pid"; then
            kill -9 "$pid" 2>/dev/null
            echo "stop-keystone: $name (pid $pid) needed SIGKILL" >&2
        else
            echo "stop-keystone: stopped $name (pid $pid)" >&2
        fi
    fi
    rm -f "$f"
}

for name in "${ORDER[@]}"; do
    [[ -e $STATE/pids/$name.pid ]] && stop_one "$STATE/pids/$name.pid"
done
shopt -s nullglob
for f in "$STATE"/pids/*.pid; do stop_one "$f"; done
rm -f "$STATE/env.sh"
if [[ ${1:-} == --purge ]]; then
    case $STATE in
        /|/var|/var/tmp|/tmp|"$HOME") echo "stop-keystone: refusing to delete $STATE" >&2; rc=1 ;;
        *) rm -rf "$STATE" && echo "stop-keystone: removed $STATE" >&2 ;;
    esac
fi
exit $rc
