#!/usr/bin/env bash
# Store benchmarks of glint (issue 4, "Benchmark"): a SIZE_MIB (1 GiB) image uploaded to and
# downloaded from each network store through `glint serve`, next to the same transfer done directly
# against the store server with curl in the same run. Target: glint >= 90% of the direct throughput,
# with flat memory.
#
#   s3     Ceph radosgw (scripts/services/start-s3.sh). Direct: curl --aws-sigv4 PUT of the file
#          (one sized PUT) and GET. Through glint: POST /v1/images with Content-Length (above the
#          multipart threshold: a multipart upload), POST chunked (size unknown: multipart too), GET.
#          Each S3_VARIANTS entry (threshold:part size, in MB) gets its own fresh glint.
#   swift  Swift all-in-one with tempauth (start-swift.sh). Direct: tempauth token, curl -T PUT of the
#          file and GET. Through glint: as for s3; each SWIFT_VARIANTS entry (large object size:
#          segment size, in MB) gets its own glint. Below the large-object size a sized upload is one
#          streamed PUT; at or above it, or chunked, it goes as segments plus a DLO manifest.
#   http   nginx (start-http.sh), read-only: direct GET of a file in HTTP_STORE_ROOT, and GET through
#          glint of an image registered with x-image-meta-location pointing at it.
# Every transfer is timed by curl (time_total: the whole request, up to the last byte of the answer,
# so a glint upload includes writing the last part and completing the multipart upload / manifest).
# Direct and glint transfers are interleaved, REPEAT times; the best run of each is compared and all
# runs are printed. For every glint transfer the script also records glint's CPU time (utime+stime
# from /proc/PID/stat) and its peak RSS (VmHWM, reset through /proc/PID/clear_refs before each
# transfer, so each figure is that transfer's own peak), plus the load average when it ran.
# The uploaded image's checksum is checked against the file's MD5 and every download's size.
# A summary table is printed at the end; the exit status is 1 if any step failed (a missed target
# is reported, not a failure). Every file, object, bucket, container and process the script made is
# removed on exit; the store servers are left running (other tests use them).
#
# Usage: benches/stores/run.sh
# Environment (all optional):
#   STORES="s3 swift http"          which stores to measure
#   SIZE_MIB=1024                   image size
#   REPEAT=3                        runs of each transfer (best used, all printed)
#   S3_VARIANTS="100:16 100:64"     S3 glint configs, THRESHOLD_MB:PART_MB
#                                   (s3_store_large_object_size:s3_store_large_object_chunk_size)
#   SWIFT_VARIANTS="5120:200 200:200"  Swift glint configs, LARGE_OBJECT_MB:SEGMENT_MB
#                                   (swift_store_large_object_size:..._chunk_size; 5120:200 are
#                                   Glance's defaults: a sized 1 GiB upload is then one PUT)
#   CHUNKED=1                       also upload chunked (Transfer-Encoding: chunked) through glint
#   SHM_DIR=/dev/shm                tmpfs for the source file (falls back to DATA_PARENT if full)
#   DATA_PARENT=${TMPDIR:-/tmp}     where glint's data dirs and logs go
#   SERVICES=<repo>/scripts/services      the store server scripts
#   GLINT_BIN=path/to/glint         measure this build instead of building the tree (before/after)
# Units: MB/s = 10^6 bytes/s; MiB = 2^20 bytes.
set -eEuo pipefail
trap 'say "failed at line $LINENO: $BASH_COMMAND"' ERR

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
STORES=${STORES:-s3 swift http}
SIZE_MIB=${SIZE_MIB:-1024}
REPEAT=${REPEAT:-3}
S3_VARIANTS=${S3_VARIANTS:-100:16 100:64}
SWIFT_VARIANTS=${SWIFT_VARIANTS:-5120:200 200:200}
CHUNKED=${CHUNKED:-1}
SHM_DIR=${SHM_DIR:-/dev/shm}
DATA_PARENT=${DATA_PARENT:-${TMPDIR:-/tmp}}
SERVICES=${SERVICES:-$root/scripts/services}
GLINT_BIN=${GLINT_BIN:-}
TARGET_PCT=90

say() { printf 'stores/run.sh: %s\n' "$*" >&2; }
die() { say "FAILED: $*"; exit 1; }
# shellcheck source=benches/lib.sh
. "$here/../lib.sh"

for s in $STORES; do
    case $s in s3 | swift | http) ;; *) die "unknown store '$s' in STORES (s3 swift http)" ;; esac
done
[[ $SIZE_MIB =~ ^[1-9][0-9]*$ && $REPEAT =~ ^[1-9][0-9]*$ ]] ||
    die "SIZE_MIB and REPEAT must be positive integers"
for v in $S3_VARIANTS $SWIFT_VARIANTS; do
    [[ $v =~ ^[0-9]+:[1-9][0-9]*$ ]] || die "variant '$v' is not MB:MB"
done
size_bytes=$((SIZE_MIB * 1024 * 1024))
tag="glint-bench-$$-$(date +%s)"
clk_tck=$(getconf CLK_TCK)

# --- clean-up: everything this script starts or creates is listed here -------------------------
work=""
src=""
http_file=""
s3_bucket=""
swift_container=""
pids=()
failures=()
cleanup() {
    local pid
    set +e
    for pid in "${pids[@]}"; do
        stop_pid "$pid"
    done
    [ -z "$s3_bucket" ] || s3_purge "$s3_bucket"
    [ -z "$swift_container" ] || swift_purge "$swift_container"
    [ -z "$http_file" ] || rm -f "$http_file"
    [ -z "$src" ] || rm -f "$src"
    [ -z "$work" ] || rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM



# --- build, tools, servers -----------------------------------------------------------------------
for tool in curl python3 awk df md5sum getconf; do
    command -v "$tool" >/dev/null || die "$tool is required"
done
cd "$root"
if [ -n "$GLINT_BIN" ]; then
    bin=$(cd "$(dirname "$GLINT_BIN")" && pwd)
    if [ "$(basename "$GLINT_BIN")" != glint ] || [ ! -x "$GLINT_BIN" ]; then
        die "GLINT_BIN=$GLINT_BIN is not a glint binary"
    fi
    say "measuring $GLINT_BIN (no build)"
else
    say "building (release)"
    cargo build --release --bin glint
    bin=${CARGO_TARGET_DIR:-$root/target}/release
    [ -x "$bin/glint" ] || die "no $bin/glint after the build"
fi

[ -d "$SERVICES" ] || die "no store server scripts at $SERVICES (set SERVICES)"
for s in $STORES; do
    out=$("$SERVICES/start-$s.sh") || die "start-$s.sh failed: the $s server cannot run"
    eval "$out"
done

mkdir -p "$DATA_PARENT"
work=$(mktemp -d "$DATA_PARENT/glint-stores-bench.XXXXXX")

# --- the source file ------------------------------------------------------------------------------
need=$((SIZE_MIB + 512))
df -h "$SHM_DIR" "$work" >&2 || true
if [ -d "$SHM_DIR" ] && [ "$(free_mib "$SHM_DIR")" -ge "$need" ]; then
    src="$SHM_DIR/$tag.bin"
else
    say "$SHM_DIR has less than $need MiB free: the source goes to $work"
    [ "$(free_mib "$work")" -ge "$need" ] || die "$work has less than $need MiB free either"
    src="$work/$tag.bin"
fi
say "writing $SIZE_MIB MiB of random data to $src"
head -c "$size_bytes" /dev/urandom >"$src"
src_md5=$(md5sum "$src" | cut -d' ' -f1)

# --- helpers ---------------------------------------------------------------------------------------
# mbps BYTES SECONDS
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
hwm_kib() { awk '/^VmHWM:/ { print $2 }' "/proc/$1/status"; }
rss_kib() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }

# Results, keyed "GROUP|TRANSFER":
declare -A direct_runs glint_runs glint_cpu glint_hwm loads
groups=()          # in order of measurement
declare -A group_store group_rss_idle group_rss_peak transfers_of
add_group() {
    groups+=("$1")
    group_store[$1]=$2
    transfers_of[$1]=""
}
# note GROUP TRANSFER KIND VALUE: appends a run figure.
note() {
    local key="$1|$2"
    case $3 in
        direct) direct_runs[$key]="${direct_runs[$key]:-} $4" ;;
        glint) glint_runs[$key]="${glint_runs[$key]:-} $4" ;;
        cpu) glint_cpu[$key]="${glint_cpu[$key]:-} $4" ;;
        hwm) glint_hwm[$key]="${glint_hwm[$key]:-} $4" ;;
    esac
    [[ " ${transfers_of[$1]} " == *" ${2// /_} "* ]] || transfers_of[$1]+=" ${2// /_}"
}
# mark_load GROUP: notes the 1-minute load average as a transfer starts.
mark_load() { loads[$1]="${loads[$1]:-}${loads[$1]:+ }$(cut -d' ' -f1 /proc/loadavg)"; }

# timed NAME OUTPUT CURL-ARGS...: runs curl with the answer body in OUTPUT, checks the status code
# (2xx), prints "BYTES SECONDS" (the bytes uploaded or downloaded, whichever is larger). Uploads are
# sent without "Expect: 100-continue" (-H 'Expect:'), except the direct S3 PUT: curl's SigV4 signs
# the emptied Expect header, which radosgw then rejects (SignatureDoesNotMatch); radosgw answers
# 100 Continue at once, so that costs one loopback round trip.
timed() {
    local name=$1 output=$2 out code up down secs
    shift 2
    out=$(curl -sS -o "$output" \
        -w '%{http_code} %{size_upload} %{size_download} %{time_total}' "$@") ||
        { say "curl failed for $name"; return 1; }
    read -r code up down secs <<<"$out"
    if [[ $code != 2?? ]]; then
        say "$name answered $code: $(head -c 300 "$output" 2>/dev/null)"
        return 1
    fi
    if [ "$up" -gt "$down" ]; then echo "$up $secs"; else echo "$down $secs"; fi
}

# check_bytes NAME BYTES: a transfer moved the whole image.
check_bytes() {
    [ "$2" = "$size_bytes" ] || die "$1 moved $2 bytes, not $size_bytes"
}

# --- glint ----------------------------------------------------------------------------------------
glint_pid=""
api_url=""
# start_glint NAME VAR=VALUE...: a fresh `glint serve` with the given environment.
start_glint() {
    local name=$1 log="$work/$1.log"
    shift
    mkdir -p "$work/$name"
    env "$@" "$bin/glint" serve --bind-host 127.0.0.1 --api-port 0 --registry-port 0 \
        --data-dir "$work/$name" 2>"$log" &
    glint_pid=$!
    pids+=("$glint_pid")
    api_url=$(wait_for_url "$log" "api listening on" "$glint_pid") || die "glint $name did not start"
    say "glint $name (pid $glint_pid) at $api_url"
}

stop_glint() {
    stop_pid "$glint_pid"
    rm -rf "${work:?}/$1"
}

meta=(-H 'x-image-meta-disk_format: raw' -H 'x-image-meta-container_format: bare')

# glint_measure GROUP TRANSFER OUTPUT CURL-ARGS...: a transfer through glint, with glint's CPU time
# and peak RSS for it; sets measured to "BYTES SECONDS".
measured=""
glint_measure() {
    local group=$1 transfer=$2 output=$3 t0 t1 secs
    shift 3
    mark_load "$group"
    echo 5 >"/proc/$glint_pid/clear_refs" 2>/dev/null || true
    t0=$(cpu_ticks "$glint_pid")
    measured=$(timed "glint $transfer" "$output" "$@") || return 1
    t1=$(cpu_ticks "$glint_pid")
    secs=${measured#* }
    note "$group" "$transfer" glint "$(mbps "$size_bytes" "$secs")"
    note "$group" "$transfer" cpu "$(awk -v t=$((t1 - t0)) -v h="$clk_tck" 'BEGIN { printf "%.1f", t / h }')"
    note "$group" "$transfer" hwm "$(hwm_kib "$glint_pid")"
}

# glint_upload GROUP TRANSFER STORE MODE: uploads the source through glint (MODE sized or chunked);
# checks size and checksum; sets image_id.
image_id=""
glint_upload() {
    local group=$1 transfer=$2 store=$3 mode=$4 fields
    local args=(-H 'Expect:' -X POST "${meta[@]}" -H "x-image-meta-store: $store" -H "x-image-meta-name: $tag"
        -H 'Content-Type: application/octet-stream')
    if [ "$mode" = sized ]; then
        glint_measure "$group" "$transfer" "$work/upload.out" -T "$src" "${args[@]}" \
            "$api_url/v1/images" || die "$group: glint $transfer failed"
    else
        # Through a pipe: curl does not know the size and sends Transfer-Encoding: chunked.
        glint_measure "$group" "$transfer" "$work/upload.out" -T - "${args[@]}" \
            "$api_url/v1/images" < <(cat "$src") || die "$group: glint $transfer failed"
    fi
    # (A chunked upload's byte count includes the chunk framing; the stored size is checked below.)
    [ "$mode" = chunked ] || check_bytes "glint $transfer" "${measured%% *}"
    fields=$(python3 -c 'import json, sys
i = json.load(open(sys.argv[1]))["image"]
print(i["id"], i["status"], i["size"], i.get("checksum") or "-")' "$work/upload.out")
    image_id=${fields%% *}
    [ "${fields#* }" = "active $size_bytes $src_md5" ] ||
        die "$group: glint $transfer stored '$fields', expected active $size_bytes $src_md5"
    say "$group: glint $transfer $(mbps "$size_bytes" "${measured#* }") MB/s"
}

glint_download() {
    local group=$1 transfer=$2 id=$3
    glint_measure "$group" "$transfer" /dev/null "$api_url/v1/images/$id" ||
        die "$group: glint $transfer failed"
    check_bytes "glint $transfer" "${measured%% *}"
    say "$group: glint $transfer $(mbps "$size_bytes" "${measured#* }") MB/s"
}

glint_delete() {
    local code
    code=$(curl -sS -o "$work/delete.out" -w '%{http_code}' -X DELETE "$api_url/v1/images/$1") ||
        die "DELETE /v1/images/$1: curl failed"
    [ "$code" = 200 ] || die "DELETE /v1/images/$1 answered $code: $(cat "$work/delete.out")"
}

# direct GROUP TRANSFER OUTPUT CURL-ARGS...: a direct transfer against the store.
direct() {
    local group=$1 transfer=$2 output=$3 r
    shift 3
    mark_load "$group"
    r=$(timed "direct $transfer" "$output" "$@") || die "$group: direct $transfer failed"
    check_bytes "direct $transfer" "${r%% *}"
    note "$group" "$transfer" direct "$(mbps "$size_bytes" "${r#* }")"
    say "$group: direct $transfer $(mbps "$size_bytes" "${r#* }") MB/s"
}

# --- S3 -------------------------------------------------------------------------------------------
s3_curl() {
    curl -sS --aws-sigv4 "aws:amz:$S3_REGION:s3" --user "$S3_ACCESS_KEY:$S3_SECRET_KEY" \
        -H 'x-amz-content-sha256: UNSIGNED-PAYLOAD' "$@"
}
s3_sign=()

# s3_purge BUCKET: aborts its multipart uploads, deletes its objects, then the bucket.
s3_purge() {
    local b=$1 key id
    s3_curl "$S3_ENDPOINT/$b?uploads=" 2>/dev/null | grep -o '<Upload><Key>[^<]*</Key><UploadId>[^<]*' |
        sed 's/<Upload><Key>//; s/<\/Key><UploadId>/ /' | while read -r key id; do
        s3_curl -o /dev/null -X DELETE "$S3_ENDPOINT/$b/$key?uploadId=$id"
    done || true # (grep fails when there is nothing to remove)
    s3_curl "$S3_ENDPOINT/$b" 2>/dev/null | grep -o '<Key>[^<]*' | cut -d'>' -f2 | while read -r key; do
        s3_curl -o /dev/null -X DELETE "$S3_ENDPOINT/$b/$key"
    done || true
    local code
    code=$(s3_curl -o /dev/null -w '%{http_code}' -X DELETE "$S3_ENDPOINT/$b")
    if [ "$code" = 204 ]; then say "removed S3 bucket $b"; else say "could not remove S3 bucket $b ($code)"; fi
}

bench_s3() {
    s3_sign=(--aws-sigv4 "aws:amz:$S3_REGION:s3" --user "$S3_ACCESS_KEY:$S3_SECRET_KEY"
        -H 'x-amz-content-sha256: UNSIGNED-PAYLOAD')
    local code variant threshold part group r key
    code=$(s3_curl -o /dev/null -w '%{http_code}' -X PUT "$S3_ENDPOINT/$tag") || die "creating S3 bucket failed"
    [ "$code" = 200 ] || die "creating S3 bucket $tag answered $code"
    s3_bucket=$tag
    for variant in $S3_VARIANTS; do
        threshold=${variant%%:*}
        part=${variant##*:}
        group="s3 ${threshold}MB/${part}MB"
        add_group "$group" s3
        start_glint "s3-$threshold-$part" GLINT_S3_STORE_HOST="$S3_ENDPOINT" \
            GLINT_S3_STORE_ACCESS_KEY="$S3_ACCESS_KEY" GLINT_S3_STORE_SECRET_KEY="$S3_SECRET_KEY" \
            GLINT_S3_STORE_REGION="$S3_REGION" GLINT_S3_STORE_BUCKET="$s3_bucket" \
            GLINT_S3_STORE_CREATE_BUCKET_ON_PUT=true \
            GLINT_S3_STORE_LARGE_OBJECT_SIZE="$threshold" \
            GLINT_S3_STORE_LARGE_OBJECT_CHUNK_SIZE="$part"
        group_rss_idle[$group]=$(rss_kib "$glint_pid")
        for r in $(seq 1 "$REPEAT"); do
            key="direct-$r"
            direct "$group" upload "$work/put.out" "${s3_sign[@]}" -T "$src" "$S3_ENDPOINT/$s3_bucket/$key"
            glint_upload "$group" upload s3 sized
            direct "$group" download /dev/null "${s3_sign[@]}" "$S3_ENDPOINT/$s3_bucket/$key"
            glint_download "$group" download "$image_id"
            s3_curl -o /dev/null -X DELETE "$S3_ENDPOINT/$s3_bucket/$key"
            glint_delete "$image_id"
            if [ "$CHUNKED" = 1 ]; then
                glint_upload "$group" "upload chunked" s3 chunked
                glint_delete "$image_id"
            fi
        done
        group_rss_peak[$group]=$(hwm_kib "$glint_pid")
        stop_glint "s3-$threshold-$part"
    done
    s3_purge "$s3_bucket"
    s3_bucket=""
}

# --- Swift ----------------------------------------------------------------------------------------
swift_token=""
swift_auth() {
    swift_token=$(curl -sS -D - -o /dev/null -H "X-Auth-User: $SWIFT_USER" -H "X-Auth-Key: $SWIFT_KEY" \
        "$SWIFT_AUTH_URL" | tr -d '\r' | awk -F': ' 'tolower($1) == "x-auth-token" { print $2 }')
    [ -n "$swift_token" ] || die "Swift tempauth gave no token"
}
swift_curl() { curl -sS -H "X-Auth-Token: $swift_token" "$@"; }

# swift_purge CONTAINER: deletes its objects, then the container.
swift_purge() {
    local c=$1 obj code
    swift_auth
    swift_curl "$SWIFT_STORAGE_URL/$c" 2>/dev/null | while read -r obj; do
        [ -z "$obj" ] || swift_curl -o /dev/null -X DELETE "$SWIFT_STORAGE_URL/$c/$obj"
    done || true
    code=$(swift_curl -o /dev/null -w '%{http_code}' -X DELETE "$SWIFT_STORAGE_URL/$c")
    if [ "$code" = 204 ]; then say "removed Swift container $c"; else say "could not remove Swift container $c ($code)"; fi
}

bench_swift() {
    local code variant large chunk group r obj
    swift_auth
    code=$(swift_curl -o /dev/null -w '%{http_code}' -X PUT "$SWIFT_STORAGE_URL/$tag") ||
        die "creating Swift container failed"
    [[ $code == 20? ]] || die "creating Swift container $tag answered $code"
    swift_container=$tag
    for variant in $SWIFT_VARIANTS; do
        large=${variant%%:*}
        chunk=${variant##*:}
        group="swift ${large}MB/${chunk}MB"
        add_group "$group" swift
        start_glint "swift-$large-$chunk" GLINT_SWIFT_STORE_AUTH_ADDRESS="$SWIFT_AUTH_URL" \
            GLINT_SWIFT_STORE_USER="$SWIFT_USER" GLINT_SWIFT_STORE_KEY="$SWIFT_KEY" \
            GLINT_SWIFT_STORE_CONTAINER="$swift_container" \
            GLINT_SWIFT_STORE_CREATE_CONTAINER_ON_PUT=true \
            GLINT_SWIFT_STORE_LARGE_OBJECT_SIZE="$large" \
            GLINT_SWIFT_STORE_LARGE_OBJECT_CHUNK_SIZE="$chunk"
        group_rss_idle[$group]=$(rss_kib "$glint_pid")
        for r in $(seq 1 "$REPEAT"); do
            obj="direct-$r"
            swift_auth
            direct "$group" upload "$work/put.out" -H 'Expect:' -H "X-Auth-Token: $swift_token" -T "$src" \
                "$SWIFT_STORAGE_URL/$swift_container/$obj"
            glint_upload "$group" upload swift sized
            direct "$group" download /dev/null -H "X-Auth-Token: $swift_token" \
                "$SWIFT_STORAGE_URL/$swift_container/$obj"
            glint_download "$group" download "$image_id"
            swift_curl -o /dev/null -X DELETE "$SWIFT_STORAGE_URL/$swift_container/$obj"
            glint_delete "$image_id"
            if [ "$CHUNKED" = 1 ]; then
                glint_upload "$group" "upload chunked" swift chunked
                # A chunked upload is always segmented: its download reads a DLO manifest.
                glint_download "$group" "download (chunked upload)" "$image_id"
                glint_delete "$image_id"
            fi
        done
        group_rss_peak[$group]=$(hwm_kib "$glint_pid")
        stop_glint "swift-$large-$chunk"
    done
    swift_purge "$swift_container"
    swift_container=""
}

# --- HTTP -----------------------------------------------------------------------------------------
bench_http() {
    local group="http" url r code fields id
    add_group "$group" http
    http_file="$HTTP_STORE_ROOT/$tag.bin"
    cp "$src" "$http_file"
    chmod 644 "$http_file"
    url="${HTTP_STORE_URL%/}/$tag.bin"
    start_glint http
    group_rss_idle[$group]=$(rss_kib "$glint_pid")
    code=$(curl -sS -o "$work/register.out" -w '%{http_code}' -X POST "${meta[@]}" \
        -H "x-image-meta-name: $tag" -H "x-image-meta-location: $url" "$api_url/v1/images") ||
        die "registering the http image failed"
    [ "$code" = 201 ] || die "registering the http image answered $code: $(cat "$work/register.out")"
    fields=$(python3 -c 'import json, sys
i = json.load(open(sys.argv[1]))["image"]
print(i["id"], i["status"], i["size"])' "$work/register.out")
    id=${fields%% *}
    [ "${fields#* }" = "active $size_bytes" ] || die "the http image is '$fields'"
    for r in $(seq 1 "$REPEAT"); do
        direct "$group" download /dev/null "$url"
        glint_download "$group" download "$id"
    done
    glint_delete "$id"
    group_rss_peak[$group]=$(hwm_kib "$glint_pid")
    stop_glint http
    rm -f "$http_file"
    http_file=""
}

# ==================================================================================================
say "machine: $(nproc) CPUs, load $(load); busiest processes:"
ps -eo pid,pcpu,etime,args --sort=-pcpu | head -n 8 | cut -c1-150 >&2
load_start=$(load)
started=$(date +%s)
for s in $STORES; do
    "bench_$s"
done
load_end=$(load)

echo
echo "== glint store benchmarks: $SIZE_MIB MiB image, $(nproc) CPUs, $(date -u '+%Y-%m-%d %H:%M UTC'), $(($(date +%s) - started)) s =="
echo "best of $REPEAT runs, direct and glint interleaved; MB/s = 10^6 B/s; source file on $(stat -f -c %T "$src") ($src)"
echo "load average (1/5/15 min): $load_start at start, $load_end at end"
echo "config: s3 THRESHOLD/PART (s3_store_large_object_size/_chunk_size); swift LARGE/SEGMENT (swift_store_large_object_size/_chunk_size)"
echo "chunked uploads (size unknown) are compared with the direct sized PUT: the store servers refuse chunked bodies or only have that"
echo
line() { printf '%-18s %-26s %8s %8s %7s %-6s %9s %9s  %s\n' "$@"; }
line "store config" "transfer" "direct" "glint" "ratio" "target" "glint CPU" "glint RSS" "runs MB/s: direct | glint"
line "" "" "MB/s" "MB/s" "%" ">=${TARGET_PCT}%" "s (min)" "peak MiB" ""
missed=0
for g in "${groups[@]}"; do
    store=${group_store[$g]}
    for t in ${transfers_of[$g]}; do
        t=${t//_/ }
        key="$g|$t"
        # The direct reference of a chunked upload / a download of a chunked upload.
        case $t in
            "upload chunked") ref="$g|upload" ;;
            "download (chunked upload)") ref="$g|download" ;;
            *) ref=$key ;;
        esac
        # shellcheck disable=SC2086
        d=$(best ${direct_runs[$ref]})
        # shellcheck disable=SC2086
        gl=$(best ${glint_runs[$key]})
        ratio=$(pct "$gl" "$d")
        verdict=$(awk -v r="$ratio" -v t="$TARGET_PCT" 'BEGIN { print (r >= t ? "ok" : "MISSED") }')
        [ "$verdict" = ok ] || missed=$((missed + 1))
        # shellcheck disable=SC2086
        cpu=$(printf '%s\n' ${glint_cpu[$key]} | sort -n | head -n 1)
        # shellcheck disable=SC2086
        hwm=$(best ${glint_hwm[$key]})
        line "$g" "$t" "$d" "$gl" "$ratio" "$verdict" "$cpu" "$((hwm / 1024))" \
            "${direct_runs[$ref]# } | ${glint_runs[$key]# }"
    done
done
echo
echo "glint memory per instance (one fresh glint serve per store config):"
for g in "${groups[@]}"; do
    printf '  %-18s idle VmRSS %4d MiB, VmHWM at the end %4d MiB (peak of the last transfer: VmHWM is reset before each)\n' \
        "$g" "$((${group_rss_idle[$g]} / 1024))" "$((${group_rss_peak[$g]} / 1024))"
done
echo
echo "load average (1 min) as each config's transfers started: min / max (above the CPU count: other jobs competed for the CPUs)"
for g in "${groups[@]}"; do
    # shellcheck disable=SC2086
    printf '  %-18s %s / %s\n' "$g" "$(printf '%s\n' ${loads[$g]} | sort -n | head -n 1)" \
        "$(best ${loads[$g]})"
done
echo
echo "$missed transfer(s) below ${TARGET_PCT}% of direct"
if [ "${#failures[@]}" -gt 0 ]; then
    echo
    echo "FAILED steps:"
    printf '  - %s\n' "${failures[@]}"
    exit 1
fi
