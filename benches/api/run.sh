#!/usr/bin/env bash
# Benchmarks the Images API of `glint serve` (issue 3, "Tests and benchmarks"). One run measures:
#   wrk     request rates against glint and the minimal hyper baseline (examples/minimal_hyper.rs):
#           HEAD /v1/images/{id} with ab (wrk cannot time HEAD: see run_ab) against the baseline's
#           HEAD, and the ratio (target >= 60%); GET /v1/images/{id} of an active 0-byte image with
#           wrk (the same work as HEAD, with a body wrk can parse) against the baseline's GET;
#           GET /v1/images/detail with IMAGES images present (default page and ?limit=IMAGES);
#           GET /v2/images/{id} (target >= 60% of the baseline GET) and GET /v2/images?limit=25;
#           POST /v1/images metadata only (post.lua). POST runs last and a server that stops
#           answering is reported (thread states, gdb frames) instead of stalling the run.
#   stream  the references, measured in the same run: write speed of the data dir's filesystem
#           (dd of the upload file, fsync included), one core's MD5 speed (md5sum: the checksum
#           is one serial MD5, a ceiling for any upload) and loopback TCP bandwidth (curl <-> a peer
#           that costs nothing, loopback.py; plus python <-> python without curl); then a SIZE_MIB
#           upload through glint with curl (Content-Length, and chunked) and a download, next to
#           them (targets: upload >= 90% of min(disk, loopback), download >= 90% of loopback).
#   rss     the peak RSS of a fresh `glint serve` while a RSS_GIB image is uploaded (chunked, from
#           /dev/zero through a pipe) and then downloaded: VmHWM after each transfer, VmRSS
#           sampled during them (target <= 64 MiB).
# A summary table is printed at the end; the exit status is 1 if any step failed (a server that hung
# or ignored SIGTERM included). Every server and file this script made is removed on exit.
#
# Usage: benches/api/run.sh
# Environment (all optional):
#   PARTS="wrk stream rss"      which parts to run (e.g. PARTS=stream to repeat one part)
#   DURATION=15s WARMUP=3s      each wrk / ab run is a WARMUP run then a measured DURATION run
#   THREADS=2 CONNECTIONS=64    wrk -t / -c (and ab -c)
#   POST_CONNECTIONS=$CONNECTIONS   wrk -c of the POST run
#   IMAGES=100                  images present for GET /v1/images/detail
#   SIZE_MIB=1024               size of the streamed image and of the dd / loopback transfers
#   REPEAT=3                    transfers per streaming figure, interleaved (disk, loopback,
#                               glint, disk, ...); the best of each is used, all are printed
#   RSS_GIB=4                   size of the image of the rss part
#   DATA_PARENT=${TMPDIR:-/tmp} where the data dirs go: its filesystem is the one measured by dd
#   SHM_DIR=/dev/shm            a tmpfs for the upload source, so the client is not disk-bound
# Units: MB/s = 10^6 bytes/s; MiB = 2^20 bytes.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
PARTS=${PARTS:-wrk stream rss}
DURATION=${DURATION:-15s}
WARMUP=${WARMUP:-3s}
THREADS=${THREADS:-2}
CONNECTIONS=${CONNECTIONS:-64}
IMAGES=${IMAGES:-100}
SIZE_MIB=${SIZE_MIB:-1024}
REPEAT=${REPEAT:-3}
RSS_GIB=${RSS_GIB:-4}
DATA_PARENT=${DATA_PARENT:-${TMPDIR:-/tmp}}
SHM_DIR=${SHM_DIR:-/dev/shm}
RSS_TARGET_KIB=$((64 * 1024))

say() { printf 'api/run.sh: %s\n' "$*" >&2; }
die() { say "FAILED: $*"; exit 1; }
want() { [[ " $PARTS " == *" $1 "* ]]; }
# shellcheck source=benches/lib.sh
. "$here/../lib.sh"

for part in $PARTS; do
    case $part in wrk | stream | rss) ;; *) die "unknown part '$part' in PARTS (wrk stream rss)" ;; esac
done
[[ $SIZE_MIB =~ ^[1-9][0-9]*$ && $RSS_GIB =~ ^[1-9][0-9]*$ && $REPEAT =~ ^[1-9][0-9]*$ &&
    $IMAGES =~ ^[1-9][0-9]*$ ]] || die "SIZE_MIB, RSS_GIB, REPEAT and IMAGES must be positive integers"
size_bytes=$((SIZE_MIB * 1024 * 1024))
rss_bytes=$((RSS_GIB * 1024 * 1024 * 1024))

# --- clean-up: everything this script starts or creates is listed here -------------------------
work=""
src=""
pids=()
failures=()
cleanup() {
    local pid i
    for pid in "${pids[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    for i in $(seq 1 100); do
        for pid in "${pids[@]}"; do
            kill -0 "$pid" 2>/dev/null && break
            pid=""
        done
        [ -n "${pid:-}" ] || break
        sleep 0.1
    done
    for pid in "${pids[@]}"; do
        kill -9 "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    [ -z "$src" ] || rm -f "$src"
    [ -z "$work" ] || rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM



# --- build and tools -----------------------------------------------------------------------------
cd "$root"
say "building (release)"
cargo build --release --bin glint --examples
bin=${CARGO_TARGET_DIR:-$root/target}/release
[ -x "$bin/glint" ] || die "no $bin/glint after the build"

# wrk and ab (apache2-utils) for the request rates: installed if missing.
if want wrk; then
    missing=()
    command -v wrk >/dev/null || missing+=(wrk)
    command -v ab >/dev/null || missing+=(apache2-utils)
    if [ "${#missing[@]}" -gt 0 ]; then
        say "installing ${missing[*]}"
        sudo=""
        [ "$(id -u)" -eq 0 ] || sudo="sudo"
        $sudo apt-get update && $sudo apt-get install -y "${missing[@]}"
    fi
    command -v wrk >/dev/null || die "wrk is required"
    command -v ab >/dev/null || die "ab (apache2-utils) is required"
fi
for tool in curl python3 awk df dd; do
    command -v "$tool" >/dev/null || die "$tool is required"
done
if want wrk; then
    [ -x "$bin/examples/minimal_hyper" ] || die "no examples/minimal_hyper: the baseline is built from examples/minimal_hyper.rs"
fi

mkdir -p "$DATA_PARENT"
work=$(mktemp -d "$DATA_PARENT/glint-api-bench.XXXXXX")
say "data dirs under $work ($(df -P "$work" | awk 'NR == 2 { print $1 }'))"
df -h "$work" "$SHM_DIR" >&2

# --- servers -------------------------------------------------------------------------------------

# start NAME PATTERN CMD...: runs CMD in the background with stderr in $work/NAME.log; sets
# server_pid and server_url.
server_pid=""
server_url=""
start() {
    local name=$1 pattern=$2
    shift 2
    "$@" 2>"$work/$name.log" &
    server_pid=$!
    pids+=("$server_pid")
    server_url=$(wait_for_url "$work/$name.log" "$pattern" "$server_pid") ||
        die "$name did not start"
}

# start_glint NAME: a fresh `glint serve` on loopback with data dir $work/NAME; sets glint_pid,
# api_url, glint_data.
glint_pid=""
api_url=""
glint_data=""
start_glint() {
    glint_data="$work/$1"
    mkdir -p "$glint_data"
    start "$1" "api listening on" "$bin/glint" serve --bind-host 127.0.0.1 --api-port 0 \
        --registry-port 0 --data-dir "$glint_data"
    glint_pid=$server_pid
    api_url=$server_url
    say "glint serve (pid $glint_pid) api at $api_url, data in $glint_data"
}

# --- HTTP helpers --------------------------------------------------------------------------------
meta=(-H 'x-image-meta-disk_format: raw' -H 'x-image-meta-container_format: bare'
    -H 'x-image-meta-is_public: True')

# Prints "ID STATUS SIZE CHECKSUM" of the {"image": ...} JSON in file $1.
image_fields() {
    python3 -c 'import json, sys
i = json.load(open(sys.argv[1]))["image"]
print(i["id"], i["status"], i["size"], i.get("checksum") or "-")' "$1"
}

delete_image() {
    local code
    code=$(curl -sS -o /dev/null -w '%{http_code}' -X DELETE "$api_url/v1/images/$1") ||
        die "DELETE /v1/images/$1: curl failed"
    [ "$code" = 200 ] || die "DELETE /v1/images/$1 answered $code"
}

# min2 A B
min2() { awk -v a="$1" -v b="$2" 'BEGIN { print (a < b ? a : b) }'; }
# verdict VALUE OP TARGET: "ok" or "MISSED"
verdict() { awk -v v="$1" -v t="$3" -v op="$2" 'BEGIN { ok = (op == ">=") ? v >= t : v <= t; print (ok ? "ok" : "MISSED") }'; }

declare -A context      # load average when each part ran
summary_rows=()         # "label|value|reference|target|verdict"
row() { summary_rows+=("$1|$2|$3|$4|$5"); }

# =================================================================================================
# Part 1: request rates
# =================================================================================================
declare -A rps
# check_alive NAME PID URL: fails the step (and says why) unless the server answers within 10 s.
check_alive() {
    local name=$1 pid=$2 url=$3
    if ! curl -sS -m 10 -o /dev/null "$url" 2>/dev/null; then
        say "$name (pid $pid) no longer answers $url within 10 s; its threads:"
        describe_threads "$pid"
        return 1
    fi
}

# describe_threads PID: where each thread of PID waits (kernel wait channel), and with gdb the
# frames of glint and sled on every thread, so a hang is diagnosed from the output.
describe_threads() {
    local t
    for t in /proc/"$1"/task/*; do
        printf '  %s %s: %s\n' "${t##*/}" "$(cat "$t/comm" 2>/dev/null)" "$(cat "$t/wchan" 2>/dev/null)" >&2
    done
    if command -v gdb >/dev/null; then
        timeout 60 gdb -p "$1" -batch -ex 'thread apply all bt 40' 2>/dev/null |
            sed -E 's/ \(.*\) at / at /; s/^#[0-9]+ +(0x[0-9a-f]+ in )?/    /' |
            grep -E '^Thread|^    glint::|^    sled::(concurrency_control|pagecache::iobuf::(flush|make_stable_inner)|flusher::run|transaction::TransactionalTrees::stage)' |
            cut -c1-160 >&2 || true
    fi
}

# run_wrk LABEL URL [LUA]: a warm-up run, then the measured run; records Requests/sec in rps.
run_wrk() {
    local label=$1 url=$2 script=${3:-} args=(-t"$THREADS" -c"${WRK_CONNECTIONS:-$CONNECTIONS}") out
    [ -z "$script" ] || args+=(-s "$here/$script")
    out="$work/wrk-$label.txt"
    wrk "${args[@]}" -d"$WARMUP" "$url" >/dev/null || die "wrk warm-up of $label failed"
    say "wrk ${args[*]} -d$DURATION --latency $url   [$label] (load $(load))"
    wrk "${args[@]}" -d"$DURATION" --latency "$url" >"$out" || die "wrk $label failed"
    cat "$out"
    if grep -q "Non-2xx" "$out"; then
        die "$label: some responses were not 2xx"
    fi
    rps[$label]=$(awk '/^Requests\/sec:/ { printf "%.0f", $2 }' "$out")
    [ -n "${rps[$label]}" ] || die "$label: no Requests/sec in the wrk output"
    if grep -q "Socket errors" "$out"; then
        say "$label: $(grep 'Socket errors' "$out")"
    fi
}

# run_ab LABEL URL: HEAD requests with ApacheBench (keep-alive, HTTP/1.0), warm-up then measured.
# wrk cannot time HEAD: its parser is never told the request was HEAD, so it waits for the body
# that Content-Length announces (hyper keeps it on HEAD) or, without Content-Length, for EOF.
run_ab() {
    local label=$1 url=$2 out
    out="$work/ab-$label.txt"
    ab -q -k -i -c "$CONNECTIONS" -t "$warmup_s" -n 100000000 "$url" >/dev/null 2>&1 ||
        die "ab warm-up of $label failed"
    say "ab -k -i -c $CONNECTIONS -t $duration_s $url   [$label] (load $(load))"
    ab -q -k -i -c "$CONNECTIONS" -t "$duration_s" -n 100000000 "$url" >"$out" 2>&1 ||
        { cat "$out" >&2; die "ab $label failed"; }
    grep -E 'Complete requests|Failed requests|Non-2xx|Keep-Alive requests|Requests per second|Time per request|  (50|90|99)%' "$out"
    if grep -q "Non-2xx" "$out" || ! grep -qE '^Failed requests: +0$' "$out"; then
        die "$label: failed or non-2xx responses"
    fi
    rps[$label]=$(awk '/^Requests per second:/ { printf "%.0f", $4 }' "$out")
    [ -n "${rps[$label]}" ] || die "$label: no 'Requests per second' in the ab output"
}

# seconds DURATION: 15s -> 15, 2m -> 120 (for ab -t)
seconds() {
    case $1 in
        *s) echo "${1%s}" ;;
        *m) echo $((${1%m} * 60)) ;;
        *) echo "$1" ;;
    esac
}

part_wrk() {
    say "== part wrk (load $(load))"
    duration_s=$(seconds "$DURATION")
    warmup_s=$(seconds "$WARMUP")
    [[ $duration_s =~ ^[1-9][0-9]*$ && $warmup_s =~ ^[1-9][0-9]*$ ]] ||
        die "DURATION and WARMUP must be like 15s or 1m"
    start_glint wrk
    local glint=$glint_pid baseline i code id count
    start baseline "listening on" "$bin/examples/minimal_hyper" --port 0
    baseline=$server_pid
    local baseline_url=$server_url
    say "minimal_hyper (pid $baseline) at $baseline_url"

    say "creating $IMAGES images (metadata only, public, 3 properties) and one active 0-byte image"
    for i in $(seq 1 "$IMAGES"); do
        code=$(curl -sS -o "$work/create.json" -w '%{http_code}' -X POST "${meta[@]}" \
            -H "x-image-meta-name: bench-$i" -H 'x-image-meta-min_ram: 512' \
            -H 'x-image-meta-property-os_distro: ubuntu' \
            -H 'x-image-meta-property-os_version: 24.04' \
            -H 'x-image-meta-property-architecture: x86_64' \
            "$api_url/v1/images") || die "POST /v1/images: curl failed"
        [ "$code" = 201 ] || die "POST /v1/images answered $code: $(cat "$work/create.json")"
    done
    # The HEAD target: active, 0 bytes, so GET /v1/images/{id} is the same work as HEAD (load the
    # record, encode the x-image-meta-* headers) with an empty body that wrk can time.
    code=$(curl -sS -o "$work/create.json" -w '%{http_code}' -X POST "${meta[@]}" \
        -H 'x-image-meta-name: bench-head' -H 'x-image-meta-size: 0' \
        -H 'x-image-meta-property-os_distro: ubuntu' \
        -H 'x-image-meta-property-os_version: 24.04' \
        -H 'x-image-meta-property-architecture: x86_64' \
        "$api_url/v1/images") || die "POST /v1/images: curl failed"
    [ "$code" = 201 ] || die "POST /v1/images answered $code: $(cat "$work/create.json")"
    read -r id code _ <<<"$(image_fields "$work/create.json")"
    [ "$code" = active ] || die "the 0-byte image is $code, not active"

    # Sanity: the HEAD answers 200 with the metadata headers; detail lists images.
    code=$(curl -sS -I -o "$work/head.txt" -w '%{http_code}' "$api_url/v1/images/$id") ||
        die "HEAD /v1/images/$id: curl failed"
    [ "$code" = 200 ] || die "HEAD /v1/images/$id answered $code"
    say "HEAD /v1/images/$id: $(grep -ci '^x-image-meta' "$work/head.txt") x-image-meta headers, $(wc -c <"$work/head.txt") bytes of head, Content-Length: $(tr -d '\r' <"$work/head.txt" | awk -F': ' 'tolower($1) == "content-length" { print $2 }' | grep . || echo none)"
    curl -fsS -o "$work/detail.json" "$api_url/v1/images/detail" || die "GET /v1/images/detail failed"
    count=$(python3 -c 'import json, sys; print(len(json.load(open(sys.argv[1]))["images"]))' "$work/detail.json")
    say "GET /v1/images/detail returns $count images ($(wc -c <"$work/detail.json") bytes); ?limit=$IMAGES returns $(curl -fsS "$api_url/v1/images/detail?limit=$IMAGES" | python3 -c 'import json, sys; print(len(json.load(sys.stdin)["images"]))')"

    context[wrk]="load $(load) at start"
    run_wrk baseline_get "$baseline_url/v1/images/$id"
    run_wrk get_empty "$api_url/v1/images/$id"
    run_ab baseline_head "$baseline_url/v1/images/$id"
    run_ab head "$api_url/v1/images/$id"
    if grep -qi '^content-length:' "$work/head.txt"; then
        # Only possible when the HEAD response carries Content-Length: 0 (see run_ab).
        run_wrk head_wrk "$api_url/v1/images/$id" head.lua
    fi
    run_wrk detail "$api_url/v1/images/detail"
    run_wrk detail_all "$api_url/v1/images/detail?limit=$IMAGES"
    run_wrk v2_show "$api_url/v2/images/$id"
    run_wrk v2_list "$api_url/v2/images?limit=25"
    check_alive glint "$glint" "$api_url/v1/images/$id" || die "glint stopped answering during the read benchmarks"

    local r_head r_get post_ok=true
    r_head=$(pct "${rps[head]}" "${rps[baseline_head]}")
    r_get=$(pct "${rps[get_empty]}" "${rps[baseline_get]}")
    row "baseline GET (minimal hyper, wrk)" "${rps[baseline_get]} req/s" "" "" ""
    row "baseline HEAD (minimal hyper, ab)" "${rps[baseline_head]} req/s" "" "" ""
    row "HEAD /v1/images/{id} (ab)" "${rps[head]} req/s" "$r_head% of baseline HEAD (ab)" \
        ">= 60%" "$(verdict "$r_head" ">=" 60)"
    row "GET /v1/images/{id} 0 bytes (wrk)" "${rps[get_empty]} req/s" \
        "$r_get% of baseline GET (wrk); same work as HEAD" ">= 60%" "$(verdict "$r_get" ">=" 60)"
    if [ -n "${rps[head_wrk]:-}" ]; then
        r_head=$(pct "${rps[head_wrk]}" "${rps[baseline_get]}")
        row "HEAD /v1/images/{id} (wrk)" "${rps[head_wrk]} req/s" "$r_head% of baseline GET (wrk)" \
            ">= 60%" "$(verdict "$r_head" ">=" 60)"
    fi
    row "GET /v1/images/detail ($count imgs)" "${rps[detail]} req/s" \
        "$(pct "${rps[detail]}" "${rps[baseline_get]}")% of baseline GET" "" ""
    row "GET /v1/images/detail?limit=$IMAGES" "${rps[detail_all]} req/s" \
        "$(pct "${rps[detail_all]}" "${rps[baseline_get]}")% of baseline GET" "" ""
    local r_v2
    r_v2=$(pct "${rps[v2_show]}" "${rps[baseline_get]}")
    row "GET /v2/images/{id} (wrk)" "${rps[v2_show]} req/s" "$r_v2% of baseline GET (wrk)" \
        ">= 60%" "$(verdict "$r_v2" ">=" 60)"
    row "GET /v2/images?limit=25 (wrk)" "${rps[v2_list]} req/s" \
        "$(pct "${rps[v2_list]}" "${rps[baseline_get]}")% of baseline GET" "" ""

    # POST last: it writes. A server that stops answering is reported, and the run goes on.
    WRK_CONNECTIONS=${POST_CONNECTIONS:-$CONNECTIONS} run_wrk post "$api_url/v1/images" post.lua
    if ! check_alive glint "$glint" "$api_url/v1/images/$id"; then
        post_ok=false
        failures+=("glint hung during POST /v1/images with ${POST_CONNECTIONS:-$CONNECTIONS} connections (thread states above)")
    elif [ "${rps[post]}" -eq 0 ]; then
        post_ok=false
        failures+=("POST /v1/images: no request completed")
    fi
    if $post_ok; then
        row "POST /v1/images metadata (-c${POST_CONNECTIONS:-$CONNECTIONS})" "${rps[post]} req/s" \
            "$(pct "${rps[post]}" "${rps[baseline_get]}")% of baseline GET" "" ""
    else
        row "POST /v1/images metadata (-c${POST_CONNECTIONS:-$CONNECTIONS})" "${rps[post]} req/s" \
            "$(grep -E 'requests in' "$work/wrk-post.txt" | sed 's/^ *//'); then glint stopped answering" "" "HUNG"
    fi
    context[wrk]+=", $(load) at end"

    stop_pid "$baseline"
    stop_pid "$glint"
    rm -rf "$glint_data"
}

# =================================================================================================
# Part 2: disk, loopback, upload and download
# =================================================================================================
part_stream() {
    say "== part stream (load $(load))"
    local need have
    need=$((SIZE_MIB + 64))
    have=$(free_mib "$SHM_DIR")
    [ "$have" -ge "$need" ] || die "$SHM_DIR has $have MiB free, needs $need"
    need=$((3 * SIZE_MIB + 1024))
    have=$(free_mib "$work")
    [ "$have" -ge "$need" ] || die "$work has $have MiB free, needs $need"

    src=$(mktemp "$SHM_DIR/glint-api-bench.XXXXXX")
    say "writing $SIZE_MIB MiB of random data to $src"
    head -c "$size_bytes" /dev/urandom >"$src" || die "cannot write $src"
    local md5
    md5=$(md5sum "$src" | cut -d' ' -f1)

    start_glint stream
    local glint=$glint_pid lb
    start loopback "listening on" python3 "$here/loopback.py" serve "$src"
    lb=$server_pid
    local lb_url=$server_url
    say "loopback.py (pid $lb) at $lb_url"

    local disk=() hash=() lb_up=() lb_upc=() lb_down=() lb_raw=() up=() upc=() down=()
    local round out code bytes secs id fields keep=""
    context[stream]="load $(load) at start"
    for round in $(seq 1 "$REPEAT"); do
        say "round $round/$REPEAT (load $(load))"
        # Disk: the same bytes as the upload, from the same tmpfs file, written with the same
        # pattern (1 MiB writes, then fsync) into the data dir's filesystem.
        out=$(LC_ALL=C dd if="$src" of="$glint_data/ddtest" bs=1M conv=fsync 2>&1) ||
            die "dd failed: $out"
        secs=$(printf '%s\n' "$out" | awk -F', ' '/copied/ { split($3, a, " "); print a[1] }')
        rm -f "$glint_data/ddtest"
        disk+=("$(mbps "$size_bytes" "$secs")")
        say "  disk (dd bs=1M conv=fsync)          ${disk[-1]} MB/s"

        # MD5: every upload's checksum is one serial MD5 over all its bytes, so no upload can be
        # faster than one core hashes (coreutils md5sum of the same tmpfs file).
        secs=$( { TIMEFORMAT=%R; time md5sum "$src" >/dev/null; } 2>&1) || die "md5sum failed"
        hash+=("$(mbps "$size_bytes" "$secs")")
        say "  md5sum (one core)                   ${hash[-1]} MB/s"

        # Loopback upload: curl sends the tmpfs file to loopback.py, which discards it.
        out=$(curl -sS -H 'Expect:' -X POST -T "$src" -o "$work/lb.json" \
            -w '%{http_code} %{size_upload} %{time_total}' "$lb_url/") || die "loopback upload failed"
        read -r code bytes secs <<<"$out"
        grep -q "\"received\": $size_bytes, \"chunked\": false" "$work/lb.json" ||
            die "loopback upload: $(cat "$work/lb.json")"
        lb_up+=("$(mbps "$bytes" "$secs")")
        say "  loopback upload (curl -T)           ${lb_up[-1]} MB/s"
        out=$(curl -sS -H 'Expect:' -H 'Transfer-Encoding: chunked' -X POST -T "$src" \
            -o "$work/lb.json" -w '%{http_code} %{size_upload} %{time_total}' "$lb_url/") ||
            die "loopback chunked upload failed"
        read -r code bytes secs <<<"$out"
        grep -q "\"received\": $size_bytes, \"chunked\": true" "$work/lb.json" ||
            die "loopback chunked upload: $(cat "$work/lb.json")"
        lb_upc+=("$(mbps "$size_bytes" "$secs")")
        say "  loopback upload, chunked            ${lb_upc[-1]} MB/s"

        # glint upload, Content-Length then chunked. Every image but the first is deleted at once.
        for variant in cl chunked; do
            local te=()
            [ "$variant" = cl ] || te=(-H 'Transfer-Encoding: chunked')
            out=$(curl -sS -H 'Expect:' -X POST "${meta[@]}" "${te[@]}" \
                -H 'Content-Type: application/octet-stream' \
                -H "x-image-meta-name: bench-upload-$round-$variant" -T "$src" \
                -o "$work/up.json" -w '%{http_code} %{size_upload} %{time_total}' \
                "$api_url/v1/images") || die "glint upload ($variant) failed"
            read -r code bytes secs <<<"$out"
            [ "$code" = 201 ] || die "glint upload ($variant) answered $code: $(cat "$work/up.json")"
            fields=$(image_fields "$work/up.json")
            [ "$fields" = "${fields%% *} active $size_bytes $md5" ] ||
                die "glint upload ($variant): expected active $size_bytes $md5, got $fields"
            id=${fields%% *}
            if [ "$variant" = cl ]; then
                up+=("$(mbps "$size_bytes" "$secs")")
                say "  glint upload (Content-Length)       ${up[-1]} MB/s"
            else
                upc+=("$(mbps "$size_bytes" "$secs")")
                say "  glint upload (chunked)              ${upc[-1]} MB/s"
            fi
            if [ -z "$keep" ]; then keep=$id; else delete_image "$id"; fi
        done

        # Loopback download: loopback.py sends the tmpfs file with sendfile(2), curl receives.
        out=$(curl -sS -o /dev/null -w '%{http_code} %{size_download} %{time_total}' "$lb_url/x") ||
            die "loopback download failed"
        read -r code bytes secs <<<"$out"
        [ "$code $bytes" = "200 $size_bytes" ] || die "loopback download: $out"
        lb_down+=("$(mbps "$bytes" "$secs")")
        say "  loopback download (curl)           ${lb_down[-1]} MB/s"
        out=$(python3 "$here/loopback.py" fetch "$lb_url/x") || die "raw loopback fetch failed"
        read -r bytes secs <<<"$out"
        lb_raw+=("$(mbps "$bytes" "$secs")")
        say "  loopback download (python, no curl) ${lb_raw[-1]} MB/s"

        # glint download of the kept image (its file is in the page cache, as loopback.py's is).
        out=$(curl -sS -o /dev/null -w '%{http_code} %{size_download} %{time_total}' \
            "$api_url/v1/images/$keep") || die "glint download failed"
        read -r code bytes secs <<<"$out"
        [ "$code $bytes" = "200 $size_bytes" ] || die "glint download: $out"
        down+=("$(mbps "$bytes" "$secs")")
        say "  glint download                      ${down[-1]} MB/s"
    done
    context[stream]+=", $(load) at end"
    delete_image "$keep"
    stop_pid "$lb"
    stop_pid "$glint"
    rm -rf "$glint_data"
    rm -f "$src"
    src=""

    local b_disk b_up b_upc b_down b_raw ref ref_c r i p_up=() p_upc=() p_down=()
    b_disk=$(best "${disk[@]}")
    b_up=$(best "${lb_up[@]}")
    b_upc=$(best "${lb_upc[@]}")
    b_down=$(best "${lb_down[@]}")
    b_raw=$(best "${lb_raw[@]}")
    ref=$(min2 "$b_disk" "$b_up")
    ref_c=$(min2 "$b_disk" "$b_upc")
    # Paired ratios: each glint transfer against the references of the same round (seconds apart).
    for i in "${!up[@]}"; do
        p_up+=("$(pct "${up[i]}" "$(min2 "${disk[i]}" "${lb_up[i]}")")%")
        p_upc+=("$(pct "${upc[i]}" "$(min2 "${disk[i]}" "${lb_upc[i]}")")%")
        p_down+=("$(pct "${down[i]}" "${lb_down[i]}")%")
    done
    row "disk write (dd, fsync)" "$b_disk MB/s" "runs: ${disk[*]}" "" ""
    row "md5sum (the checksum's ceiling)" "$(best "${hash[@]}") MB/s" "runs: ${hash[*]}" "" ""
    row "loopback upload (curl -T -> sink)" "$b_up MB/s" "runs: ${lb_up[*]}" "" ""
    row "loopback upload chunked" "$b_upc MB/s" "runs: ${lb_upc[*]}" "" ""
    row "loopback download (sendfile -> curl)" "$b_down MB/s" "runs: ${lb_down[*]}" "" ""
    row "loopback download (no curl)" "$b_raw MB/s" "runs: ${lb_raw[*]}" "" ""
    r=$(pct "$(best "${up[@]}")" "$ref")
    row "glint upload ${SIZE_MIB} MiB (Content-Length)" "$(best "${up[@]}") MB/s" \
        "$r% of min(disk, loopback)=$ref, $(pct "$(best "${up[@]}")" "$(best "${hash[@]}")")% of md5sum; runs: ${up[*]}; per round: ${p_up[*]}" ">= 90%" "$(verdict "$r" ">=" 90)"
    r=$(pct "$(best "${upc[@]}")" "$ref_c")
    row "glint upload ${SIZE_MIB} MiB (chunked)" "$(best "${upc[@]}") MB/s" \
        "$r% of min(disk, loopback)=$ref_c; runs: ${upc[*]}; per round: ${p_upc[*]}" ">= 90%" "$(verdict "$r" ">=" 90)"
    r=$(pct "$(best "${down[@]}")" "$b_down")
    row "glint download ${SIZE_MIB} MiB" "$(best "${down[@]}") MB/s" \
        "$r% of loopback (curl), $(pct "$(best "${down[@]}")" "$b_raw")% of no-curl; runs: ${down[*]}; per round: ${p_down[*]}" \
        ">= 90%" "$(verdict "$r" ">=" 90)"
}

# =================================================================================================
# Part 3: peak RSS while streaming a big image
# =================================================================================================
# sample_rss PID OUT: appends VmRSS (KiB) of PID to OUT every 50 ms until killed.
sample_rss() {
    while kill -0 "$1" 2>/dev/null; do
        awk '/^VmRSS:/ { print $2 }' "/proc/$1/status" >>"$2" 2>/dev/null || true
        sleep 0.05
    done
}
status_kib() { awk -v k="$2:" '$1 == k { print $2 }' "/proc/$1/status"; }

part_rss() {
    say "== part rss (load $(load))"
    local need have
    need=$((RSS_GIB * 1024 + 1024))
    have=$(free_mib "$work")
    [ "$have" -ge "$need" ] || die "$work has $have MiB free, needs $need"
    start_glint rss
    local glint=$glint_pid sampler out code bytes secs fields id idle hwm_up hwm_down rss_up rss_down reset=false
    idle=$(status_kib "$glint" VmRSS)
    context[rss]="load $(load) at start"

    : >"$work/rss-up.samples"
    : >"$work/rss-down.samples"
    sample_rss "$glint" "$work/rss-up.samples" &
    sampler=$!
    pids+=("$sampler")
    say "uploading $RSS_GIB GiB (chunked, from /dev/zero through a pipe)"
    out=$(head -c "$rss_bytes" /dev/zero | curl -sS -H 'Expect:' -X POST "${meta[@]}" \
        -H 'Content-Type: application/octet-stream' -H 'x-image-meta-name: bench-rss' -T - \
        -o "$work/rss.json" -w '%{http_code} %{size_upload} %{time_total}' "$api_url/v1/images") ||
        die "the $RSS_GIB GiB upload failed"
    stop_pid "$sampler"
    read -r code bytes secs <<<"$out"
    [ "$code" = 201 ] || die "the $RSS_GIB GiB upload answered $code: $(cat "$work/rss.json")"
    fields=$(image_fields "$work/rss.json")
    id=${fields%% *}
    [ "$(cut -d' ' -f2-3 <<<"$fields")" = "active $rss_bytes" ] || die "after the upload: $fields"
    hwm_up=$(status_kib "$glint" VmHWM)
    rss_up=$({ status_kib "$glint" VmRSS; cat "$work/rss-up.samples"; } | sort -n | tail -n 1)
    say "upload $(mbps "$bytes" "$secs") MB/s; VmHWM $hwm_up KiB, sampled VmRSS max $rss_up KiB"
    # Writing 5 to clear_refs resets VmHWM, so the download's peak is measured on its own.
    if echo 5 >"/proc/$glint/clear_refs" 2>/dev/null; then reset=true; fi

    sample_rss "$glint" "$work/rss-down.samples" &
    sampler=$!
    pids+=("$sampler")
    out=$(curl -sS -o /dev/null -w '%{http_code} %{size_download} %{time_total}' \
        "$api_url/v1/images/$id") || die "the $RSS_GIB GiB download failed"
    stop_pid "$sampler"
    read -r code bytes secs <<<"$out"
    [ "$code $bytes" = "200 $rss_bytes" ] || die "the $RSS_GIB GiB download: $out"
    hwm_down=$(status_kib "$glint" VmHWM)
    rss_down=$({ status_kib "$glint" VmRSS; cat "$work/rss-down.samples"; } | sort -n | tail -n 1)
    say "download $(mbps "$bytes" "$secs") MB/s; VmHWM $hwm_down KiB$($reset && echo " (reset before the download)"), sampled VmRSS max $rss_down KiB"
    context[rss]+=", $(load) at end"
    delete_image "$id"
    stop_pid "$glint"
    rm -rf "$glint_data"

    local peak
    peak=$(best "$hwm_up" "$hwm_down")
    row "RSS idle (fresh glint serve)" "$((idle / 1024)) MiB" "$idle KiB" "" ""
    row "RSS peak, $RSS_GIB GiB upload" "$((hwm_up / 1024)) MiB" \
        "VmHWM $hwm_up KiB; sampled max $rss_up KiB ($(wc -l <"$work/rss-up.samples") samples)" \
        "<= 64 MiB" "$(verdict "$hwm_up" "<=" "$RSS_TARGET_KIB")"
    row "RSS peak, $RSS_GIB GiB download" "$((hwm_down / 1024)) MiB" \
        "VmHWM $hwm_down KiB$($reset || echo ' (not reset: includes the upload)'); sampled max $rss_down KiB ($(wc -l <"$work/rss-down.samples") samples)" \
        "<= 64 MiB" "$(verdict "$peak" "<=" "$RSS_TARGET_KIB")"
}

# =================================================================================================
say "machine: $(nproc) CPUs, load $(load); busiest processes:"
ps -eo pid,pcpu,comm --sort=-pcpu | head -n 6 >&2
started=$(date +%s)
want wrk && part_wrk
want stream && part_stream
want rss && part_rss

echo
echo "== glint Images API benchmarks: $(nproc) CPUs, $(date -u '+%Y-%m-%d %H:%M UTC'), $(($(date +%s) - started)) s =="
echo "wrk -t$THREADS -c$CONNECTIONS -d$DURATION (after a $WARMUP warm-up); streams of $SIZE_MIB MiB, best of $REPEAT; MB/s = 10^6 B/s"
echo "data dir filesystem: $(df -P "$work" | awk 'NR == 2 { print $1 }') ($(stat -f -c %T "$work")); upload source: $SHM_DIR ($(stat -f -c %T "$SHM_DIR"))"
for part in wrk stream rss; do
    [ -z "${context[$part]:-}" ] || echo "load average during $part: ${context[$part]}"
done
echo "(other processes on the machine skew every figure; compare figures of the same part)"
echo
printf '%-40s %-14s %-9s %-7s %s\n' "measure" "value" "target" "verdict" "reference / runs"
for r in "${summary_rows[@]}"; do
    IFS='|' read -r label value ref target verdict <<<"$r"
    printf '%-40s %-14s %-9s %-7s %s\n' "$label" "$value" "$target" "$verdict" "$ref"
done
if [ "${#failures[@]}" -gt 0 ]; then
    echo
    echo "FAILED steps:"
    printf '  - %s\n' "${failures[@]}"
    exit 1
fi
