#!/usr/bin/env bash
# Cache bench (issue 14): CLIENTS (10) curl clients download the same SIZE_MIB (1 GiB) public
# image at once, straight from `glint serve` and through Varnish (scripts/services/proxies/
# glint.vcl, the README's VCL) with a cold cache, then again through the warm cache. For each run
# it prints the wall time (from the first client's start to the last one's end), glint's CPU
# seconds (utime+stime from /proc/PID/stat, before and after) and how many data answers glint
# sent (its /metrics), side by side. Every client's byte count is checked, and the first one's MD5.
# Every file and process the script made is removed on exit.
#
# Usage: benches/cache/run.sh
# Environment (all optional):
#   SIZE_MIB=1024          image size
#   CLIENTS=10             concurrent downloads
#   SHM_DIR=/dev/shm       tmpfs for the source file
#   DATA_PARENT=${TMPDIR:-/tmp}   glint's data dir and the logs
#   GLINT_BIN=path/to/glint       measure this build instead of building the tree
# Units: MB/s = 10^6 bytes/s; MiB = 2^20 bytes.
set -eEuo pipefail
trap 'say "failed at line $LINENO: $BASH_COMMAND"' ERR

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
SIZE_MIB=${SIZE_MIB:-1024}
CLIENTS=${CLIENTS:-10}
SHM_DIR=${SHM_DIR:-/dev/shm}
DATA_PARENT=${DATA_PARENT:-${TMPDIR:-/tmp}}
GLINT_BIN=${GLINT_BIN:-}

say() { printf 'cache/run.sh: %s\n' "$*" >&2; }
die() { say "FAILED: $*"; exit 1; }
# shellcheck source=benches/lib.sh
. "$here/../lib.sh"

[[ $SIZE_MIB =~ ^[1-9][0-9]*$ && $CLIENTS =~ ^[1-9][0-9]*$ ]] ||
    die "SIZE_MIB and CLIENTS must be positive integers"
size_bytes=$((SIZE_MIB * 1024 * 1024))
clk_tck=$(getconf CLK_TCK)

pids=()
failures=()
work=""
src=""
cleanup() {
    local pid
    for pid in "${pids[@]}"; do stop_pid "$pid"; done
    [ -n "$src" ] && rm -f "$src"
    [ -n "$work" ] && rm -rf "$work"
    [ -n "${pid_file:-}" ] && rm -f "$pid_file"
    return 0
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

for tool in curl awk md5sum getconf; do
    command -v "$tool" >/dev/null || die "$tool is required"
done
cd "$root"
if [ -n "$GLINT_BIN" ]; then
    [ -x "$GLINT_BIN" ] || die "GLINT_BIN=$GLINT_BIN is not executable"
    glint=$GLINT_BIN
else
    say "building (release)"
    cargo build --release --bin glint
    glint=${CARGO_TARGET_DIR:-$root/target}/release/glint
fi
out=$("$root/scripts/services/start-varnish.sh") || die "start-varnish.sh failed"
eval "$out"

mkdir -p "$DATA_PARENT"
work=$(mktemp -d "$DATA_PARENT/glint-cache-bench.XXXXXX")
if [ -d "$SHM_DIR" ] && [ "$(free_mib "$SHM_DIR")" -ge $((SIZE_MIB * 2 + 256)) ]; then
    src=$SHM_DIR/glint-cache-bench-$$.bin
else
    src=$work/source.bin
fi
say "writing $SIZE_MIB MiB of random data to $src"
head -c "$size_bytes" /dev/urandom >"$src"
src_md5=$(md5sum "$src" | cut -d' ' -f1)

# --- glint ----------------------------------------------------------------------------------------
"$glint" serve --bind-host 127.0.0.1 --api-port 0 --registry-port 0 --data-dir "$work/data" \
    >"$work/glint.log" 2>&1 &
glint_pid=$!
pids+=("$glint_pid")
api=$(wait_for_url "$work/glint.log" "api listening" "$glint_pid")
say "glint (pid $glint_pid) at $api; uploading the image"
id=$(curl -sS -f -X POST "$api/v1/images" -H 'Content-Type: application/octet-stream' -H 'Expect:' \
    -H 'x-image-meta-name: cache-bench' -H 'x-image-meta-disk_format: raw' \
    -H 'x-image-meta-container_format: bare' -H 'x-image-meta-is_public: True' \
    -T "$src" | sed -n 's/.*"id": *"\([0-9a-f-]*\)".*/\1/p')
[ -n "$id" ] || die "the upload gave no image id"
rm -f "$src"
src=""

# --- Varnish --------------------------------------------------------------------------------------
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
backend=${api#http://}
sed -e "s/@BACKEND_HOST@/${backend%:*}/" -e "s/@BACKEND_PORT@/${backend##*:}/" \
    "$GLINT_TEST_VARNISH_VCL" >"$work/glint.vcl"
"$GLINT_TEST_VARNISHD" -F -j none -T none -a "127.0.0.1:$port" -f "$work/glint.vcl" \
    -n "$work/varnish" -s "malloc,$((SIZE_MIB + 256))m" >"$work/varnish.log" 2>&1 &
varnish_pid=$!
pids+=("$varnish_pid")
pid_file=$VARNISH_STATE_DIR/pids/bench-$$.pid
echo "$varnish_pid" >"$pid_file"
for _ in $(seq 100); do
    curl -s -o /dev/null -f "http://127.0.0.1:$port/healthcheck" && break
    kill -0 "$varnish_pid" 2>/dev/null || { cat "$work/varnish.log" >&2; die "varnishd died"; }
    sleep 0.1
done
proxy=http://127.0.0.1:$port

# --- runs -----------------------------------------------------------------------------------------
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
data_answers() {
    curl -s "$api/metrics" |
        awk '/^glint_http_requests_total\{.*route="v1.download",method="GET",status="(200|206)"\}/ { n += $2 } END { print n + 0 }'
}
declare -A wall cpu answers
# run NAME BASE: CLIENTS parallel downloads of the image from BASE.
run() {
    local name=$1 base=$2 i t0 t1 c0 c1 a0 bytes
    say "$name: $CLIENTS clients"
    a0=$(data_answers)
    c0=$(cpu_ticks "$glint_pid")
    t0=$(date +%s.%N)
    curl -sS -f -o - "$base/v1/images/$id" | md5sum | cut -d' ' -f1 >"$work/md5.$name" &
    local clients=($!)
    for i in $(seq 2 "$CLIENTS"); do
        curl -sS -f -o /dev/null -w '%{size_download}\n' "$base/v1/images/$id" >"$work/bytes.$name.$i" &
        clients+=($!)
    done
    for i in "${clients[@]}"; do wait "$i" || die "$name: a client failed"; done
    t1=$(date +%s.%N)
    c1=$(cpu_ticks "$glint_pid")
    [ "$(cat "$work/md5.$name")" = "$src_md5" ] || die "$name: the download's MD5 differs"
    for i in $(seq 2 "$CLIENTS"); do
        bytes=$(cat "$work/bytes.$name.$i")
        [ "$bytes" = "$size_bytes" ] || die "$name: client $i got $bytes bytes"
    done
    wall[$name]=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }')
    cpu[$name]=$(awk -v t=$((c1 - c0)) -v hz="$clk_tck" 'BEGIN { printf "%.2f", t / hz }')
    answers[$name]=$(($(data_answers) - a0))
}
run direct "$api"
run varnish-cold "$proxy"
run varnish-warm "$proxy"

total=$((size_bytes * CLIENTS))
printf '\n%s clients x %s MiB (load %s):\n' "$CLIENTS" "$SIZE_MIB" "$(load)"
printf '%-14s %9s %12s %10s %14s\n' run "wall s" "aggregate" "glint CPU-s" "glint answers"
for name in direct varnish-cold varnish-warm; do
    printf '%-14s %9s %7s MB/s %10s %14s\n' "$name" "${wall[$name]}" \
        "$(mbps "$total" "${wall[$name]}")" "${cpu[$name]}" "${answers[$name]}"
done
[ ${#failures[@]} -eq 0 ] || { printf '%s\n' "${failures[@]}" >&2; exit 1; }
