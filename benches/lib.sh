# shellcheck shell=bash
# Helpers shared by the benchmark runners (benches/*/run.sh), sourced after the runner defines
# say(); stop_pid also uses the runner's arrays pids (processes it started) and failures.
# Units: MB/s = 10^6 bytes/s.

# The load averages (1, 5, 15 min).
load() { cut -d' ' -f1-3 /proc/loadavg; }

# free_mib PATH: free space of the filesystem holding PATH, in MiB.
free_mib() { df -Pk "$1" | awk 'NR == 2 { print int($4 / 1024) }'; }

# mbps BYTES SECONDS
mbps() { awk -v b="$1" -v s="$2" 'BEGIN { if (s <= 0) exit 1; printf "%.0f", b / s / 1e6 }'; }
# best N...: the largest
best() { printf '%s\n' "$@" | sort -n | tail -n 1; }
# pct A B: A / B as a percentage
pct() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", 100 * a / b }'; }

# stop_pid PID: stops one process the runner started and forgets it: SIGTERM, then SIGKILL after
# 40 s (glint drains in-flight requests for up to 30 s); a process that needed SIGKILL is a failure.
stop_pid() {
    local pid=$1 i kept=()
    kill "$pid" 2>/dev/null || true
    for i in $(seq 1 400); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        failures+=("process $pid ($(cat "/proc/$pid/comm" 2>/dev/null)) ignored SIGTERM for 40 s: killed")
        say "${failures[-1]}"
        kill -9 "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || true
    for i in "${pids[@]}"; do
        [ "$i" = "$pid" ] || kept+=("$i")
    done
    pids=("${kept[@]}")
}

# wait_for_url LOG PATTERN PID [SECONDS]: prints the first http:// URL of the line matching
# PATTERN in LOG once it appears (within SECONDS, default 60); fails if process PID dies first.
wait_for_url() {
    local log=$1 pattern=$2 pid=$3 seconds=${4:-60} i
    for i in $(seq 1 $((seconds * 10))); do
        if grep -q "$pattern" "$log" 2>/dev/null; then
            grep "$pattern" "$log" | grep -o 'http://[0-9.:]*' | head -n 1
            return 0
        fi
        kill -0 "$pid" 2>/dev/null || { cat "$log" >&2; say "process $pid died (log above)"; return 1; }
        sleep 0.1
    done
    say "process $pid did not report '$pattern' within $seconds s"
    return 1
}
