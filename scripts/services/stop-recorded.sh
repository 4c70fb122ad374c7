#!/usr/bin/env bash
# stop-recorded.sh - what every stop-*.sh does: stop only the processes whose PIDs the matching
# start-*.sh recorded under STATE/pids, and only while their command line still matches
# PATTERN (a PID reused by another program is left alone). ORDER names the pid files to stop
# first (clients before the servers they talk to); any other recorded one follows.
#   stop-recorded.sh ME STATE PATTERN "ORDER..." [--purge]
#   --purge also deletes STATE (never /, /var, /var/tmp, /tmp or $HOME).
set -uo pipefail
ME=$1 STATE=$2 PATTERN=$3
read -r -a ORDER <<<"$4"
shift 4
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
            echo "$ME: $name (pid $pid) needed SIGKILL" >&2
        else
            echo "$ME: stopped $name (pid $pid)" >&2
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
        /|/var|/var/tmp|/tmp|"$HOME") echo "$ME: refusing to delete $STATE" >&2; rc=1 ;;
        *) rm -rf "$STATE" && echo "$ME: removed $STATE" >&2 ;;
    esac
fi
exit $rc
