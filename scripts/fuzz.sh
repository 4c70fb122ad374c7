#!/usr/bin/env bash
# Runs glint's fuzz targets one after another, each for SECONDS (default 60).
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]     # all targets by default
#
# Our toolchain is stable only, so targets run without a sanitizer (`-s none`: the default ASan
# build needs nightly's -Zsanitizer); Rust's own bounds and overflow checks still catch our bugs.
# One libFuzzer job per target: the machine has 2 cores and is shared with other builds.
# Corpora grow under fuzz/corpus/<target>; crashes land in fuzz/artifacts/<target>; keyword
# dictionaries are in fuzz/dict/<target>.dict; committed seed inputs in fuzz/seeds/<target>.
# Exits 1 if any target crashes (the others still run), 2 on a usage or build error.
set -euo pipefail

cd "$(dirname "$0")/.."

seconds=${1:-60}
if ! [[ $seconds =~ ^[1-9][0-9]*$ ]]; then
    echo "usage: $0 [SECONDS] [TARGET...]" >&2
    exit 2
fi
shift || true

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "fuzz.sh: installing cargo-fuzz" >&2
    cargo install cargo-fuzz --locked
fi

if [ $# -gt 0 ]; then
    targets=("$@")
else
    mapfile -t targets < <(cargo fuzz list --fuzz-dir fuzz)
fi

# Build every target first, so a compile error is reported as one and not as a crash.
for target in "${targets[@]}"; do
    if ! cargo fuzz build --fuzz-dir fuzz -s none "$target"; then
        echo "fuzz.sh: $target does not build" >&2
        exit 2
    fi
done

failed=()
for target in "${targets[@]}"; do
    echo "fuzz.sh: $target for ${seconds}s" >&2
    corpus="$PWD/fuzz/corpus/$target"
    mkdir -p "$corpus"
    # A dictionary of the target's keywords, when there is one, helps libFuzzer past exact
    # string comparisons (field names, parameter names, route segments).
    dict=()
    if [ -f "fuzz/dict/$target.dict" ]; then
        dict=("-dict=$PWD/fuzz/dict/$target.dict")
    fi
    # Committed seeds (fuzz/seeds/<target>, e.g. headers made by qemu-img) are read as well;
    # new inputs are written to the first directory only.
    seeds=()
    if [ -d "fuzz/seeds/$target" ]; then
        seeds=("$PWD/fuzz/seeds/$target")
    fi
    if ! cargo fuzz run --fuzz-dir fuzz -s none "$target" "$corpus" "${seeds[@]}" \
        -- -max_total_time="$seconds" "${dict[@]}"; then
        failed+=("$target")
    fi
done

if [ ${#failed[@]} -gt 0 ]; then
    echo "fuzz.sh: crashes in: ${failed[*]} (inputs under fuzz/artifacts/)" >&2
    exit 1
fi
echo "fuzz.sh: ${#targets[@]} target(s) ran ${seconds}s each without a crash" >&2
