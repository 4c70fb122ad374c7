#!/usr/bin/env bash
# Measures the Registry API over HTTP: seeds N images, starts `glint registry` and the minimal
# hyper baseline (examples/minimal_hyper.rs) on loopback, runs wrk against both, and prints the
# req/s of each, the ratio GET /images/{id} / baseline, and glint's RSS once open and at its peak
# (VmHWM) under that load, against the 64 MiB goal. Both servers are stopped on exit.
#
# Usage: benches/wrk/run.sh
# Environment (all optional):
#   N=1000000        images to seed
#   DURATION=15s     length of each measured wrk run (each is preceded by a WARMUP run)
#   WARMUP=5s
#   THREADS=2 CONNECTIONS=64   wrk -t / -c
#   DATA_DIR=DIR     keep the seeded data here and reuse it next time (same N); default: a temp
#                    dir removed on exit
#   BUILD=0          skip `cargo build` and use the last release build
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
N=${N:-1000000}
DURATION=${DURATION:-15s}
WARMUP=${WARMUP:-5s}
THREADS=${THREADS:-2}
CONNECTIONS=${CONNECTIONS:-64}

say() { printf 'wrk/run.sh: %s\n' "$*" >&2; }
# shellcheck source=benches/lib.sh
. "$here/../lib.sh"

work=$(mktemp -d "${TMPDIR:-/tmp}/glint-wrk.XXXXXX")
pids=()
cleanup() {
    local pid
    for pid in "${pids[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    for pid in "${pids[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --- build and tools -------------------------------------------------------------------------
cd "$root"
if [ "${BUILD:-1}" != 0 ]; then
    say "building (release)"
    cargo build --release --examples --bin glint
fi
bin=${CARGO_TARGET_DIR:-$root/target}/release

if ! command -v wrk >/dev/null; then
    say "installing wrk"
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get install -y wrk || { $sudo apt-get update && $sudo apt-get install -y wrk; }
fi

# --- seed ------------------------------------------------------------------------------------
data=${DATA_DIR:-$work/data}
mkdir -p "$data"
if [ -f "$data/seed.txt" ] && grep -qx "count=$N" "$data/seed.txt"; then
    say "reusing the $N images seeded in $data"
else
    [ ! -e "$data/registry" ] || { say "$data/registry exists but was not seeded with N=$N"; exit 1; }
    say "seeding $N images into $data"
    "$bin/examples/seed_registry" --data-dir "$data" --count "$N" --ids-file "$data/ids.txt" \
        >"$data/seed.out"
    { cat "$data/seed.out"; echo "count=$N"; } >"$data/seed.txt"
fi
id=$(sed -n 's/^id=//p' "$data/seed.txt")
name=$(sed -n 's/^name=//p' "$data/seed.txt")

# --- servers ---------------------------------------------------------------------------------

say "starting glint registry and minimal_hyper on 127.0.0.1"
started=$(date +%s.%N)
"$bin/glint" registry --bind-host 127.0.0.1 --registry-port 0 --data-dir "$data" \
    2>"$work/glint.log" &
pids+=($!)
registry_url=$(wait_for_url "$work/glint.log" "listening on" "${pids[-1]}" 300)
rss_open=$(awk '/^VmRSS/ { print $2 }' "/proc/${pids[-1]}/status")
say "glint registry at $registry_url (ready $(awk -v s="$started" -v e="$(date +%s.%N)" 'BEGIN { printf "%.1f", e - s }') s after start)"
"$bin/examples/minimal_hyper" --port 0 2>"$work/baseline.log" &
pids+=($!)
baseline_url=$(wait_for_url "$work/baseline.log" "listening on" "${pids[-1]}")
say "minimal_hyper at $baseline_url"

# Sanity: both answer 200 with bodies of about the same size, and the name matches 10 images.
body_size() { curl -fsS -o /dev/null -w '%{size_download}' "$1"; }
say "body bytes: registry GET /images/{id} $(body_size "$registry_url/images/$id"), baseline $(body_size "$baseline_url/images/$id")"
hits=$(curl -fsS "$registry_url/images/detail?name=$name" | grep -o '"checksum"' | wc -l)
say "GET /images/detail?name=$name returns $hits images"

# --- measure ---------------------------------------------------------------------------------
declare -A rps cpu
clk_tck=$(getconf CLK_TCK)
# CPU time (user + system, in clock ticks) process $1 has used so far.
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
# run_wrk LABEL PID URL [LUA]: a warm-up run, then the measured run; records Requests/sec and the
# server's CPU time per request. On a shared 2-core machine req/s swings with whatever else runs;
# CPU µs per request is the steadier figure.
run_wrk() {
    local label=$1 pid=$2 url=$3 script=${4:-} args=(-t"$THREADS" -c"$CONNECTIONS") before after
    [ -z "$script" ] || args+=(-s "$here/$script")
    GLINT_IDS_FILE="$data/ids.txt" wrk "${args[@]}" -d"$WARMUP" "$url" >/dev/null
    say "wrk ${args[*]} -d$DURATION --latency $url   [$label]"
    before=$(cpu_ticks "$pid")
    GLINT_IDS_FILE="$data/ids.txt" wrk "${args[@]}" -d"$DURATION" --latency "$url" \
        | tee "$work/$label.txt"
    after=$(cpu_ticks "$pid")
    if grep -q "Non-2xx" "$work/$label.txt"; then
        say "$label: some responses were not 2xx"
        exit 1
    fi
    rps[$label]=$(awk '/^Requests\/sec:/ { print $2 }' "$work/$label.txt")
    cpu[$label]=$(awk -v t=$((after - before)) -v hz="$clk_tck" \
        '/requests in/ { printf "%.1f", t / hz * 1e6 / $1 }' "$work/$label.txt")
    say "$label: server CPU ${cpu[$label]} µs per request"
}

registry_pid=${pids[0]}
baseline_pid=${pids[1]}
run_wrk baseline "$baseline_pid" "$baseline_url/images/$id"
run_wrk get_by_id "$registry_pid" "$registry_url/images/$id"
run_wrk baseline_ids "$baseline_pid" "$baseline_url/" ids.lua
run_wrk get_by_id_ids "$registry_pid" "$registry_url/" ids.lua
run_wrk detail_name "$registry_pid" "$registry_url/images/detail?name=$name"

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f%%", 100 * a / b }'; }
echo
echo "== glint registry over HTTP, $N images, wrk -t$THREADS -c$CONNECTIONS -d$DURATION, $(nproc) CPUs =="
echo "(load average now: $(cut -d' ' -f1-3 /proc/loadavg); other processes on the machine skew every figure)"
row() { printf '%-44s %10s req/s %8s µs CPU/req\n' "$1" "${rps[$2]}" "${cpu[$2]}"; }
row "minimal hyper baseline (one path)" baseline
row "GET /images/{id} (one id)" get_by_id
row "minimal hyper baseline (ids.lua paths)" baseline_ids
row "GET /images/{id} (10 000 ids, ids.lua)" get_by_id_ids
row "GET /images/detail?name=$name (10 hits)" detail_name
echo "ratio get_by_id / baseline (one id):      $(ratio "${rps[get_by_id]}" "${rps[baseline]}")   (target >= 60%)"
echo "ratio get_by_id / baseline (10 000 ids):  $(ratio "${rps[get_by_id_ids]}" "${rps[baseline_ids]}")   (target >= 60%)"
echo "ratio detail?name / baseline:             $(ratio "${rps[detail_name]}" "${rps[baseline]}")"
peak_kib=$(awk '/^VmHWM/ { print $2 }' "/proc/$registry_pid/status")
echo "glint registry RSS: $((rss_open / 1024)) MiB once open, peak $((peak_kib / 1024)) MiB under the runs above   (target <= 64 MiB)"
echo "CPU per request, baseline / get_by_id:    $(ratio "${cpu[baseline]}" "${cpu[get_by_id]}") (one id), $(ratio "${cpu[baseline_ids]}" "${cpu[get_by_id_ids]}") (10 000 ids)"
