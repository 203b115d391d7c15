#!/usr/bin/env bash
# Bounded fuzzing: builds the libFuzzer targets of this folder and runs each
# for FUZZ_SECONDS, starting from the committed seeds. Fails when a target
# crashes, panics, hangs (FUZZ_TIMEOUT per input) or leaks past its memory
# limit; the input that did it is kept under .cache/fuzz/artifacts/ and
# printed in base64.
#
#   FUZZ_SECONDS  seconds per target (default 45)
#   FUZZ_TARGETS  space-separated targets (default: all of them)
#   FUZZ_TIMEOUT  seconds one input may take before it counts as a hang (10)
#   FUZZ_CACHE    build and corpus cache (default <repo>/.cache/fuzz, ignored)
#
# The build is `cargo fuzz build -s none` done by hand: the same stable
# codegen flags (sanitizer coverage, `cfg(fuzzing)`, debug assertions), on
# the project's own toolchain, with nothing to install but the crates. See
# the README's Fuzzing section.
set -euo pipefail
cd "$(dirname "$0")"
fuzz_dir=$(pwd)
repo=$(cd .. && pwd)

seconds=${FUZZ_SECONDS:-45}
timeout=${FUZZ_TIMEOUT:-10}
targets=${FUZZ_TARGETS:-"entity_stream payload http_transcode http_template spec_validation"}
cache=${FUZZ_CACHE:-$repo/.cache/fuzz}
mkdir -p "$cache"
cache=$(cd "$cache" && pwd)

host=$(rustc -vV | sed -n 's/^host: //p')
# The target triple keeps these flags off build scripts and proc macros.
export RUSTFLAGS="-Cpasses=sancov-module \
-Cllvm-args=-sanitizer-coverage-level=4 \
-Cllvm-args=-sanitizer-coverage-inline-8bit-counters \
-Cllvm-args=-sanitizer-coverage-pc-table \
-Cllvm-args=-sanitizer-coverage-trace-compares \
-Cllvm-args=-sanitizer-coverage-stack-depth \
--cfg fuzzing -Cdebug-assertions -Coverflow-checks"
export CARGO_TARGET_DIR=$cache/target
export CARGO_INCREMENTAL=0

bins=()
for target in $targets; do bins+=(--bin "$target"); done
echo "fuzz: building ${targets}"
start=$(date +%s)
cargo build --locked --release --target "$host" "${bins[@]}"
echo "fuzz: built in $(($(date +%s) - start)) s"

failed=()
for target in $targets; do
    work=$cache/corpus/$target
    artifacts=$cache/artifacts/$target
    mkdir -p "$work" "$artifacts"
    echo "fuzz: running $target for ${seconds} s"
    if ! "$CARGO_TARGET_DIR/$host/release/$target" \
        -max_total_time="$seconds" \
        -timeout="$timeout" \
        -rss_limit_mb=2048 \
        -print_final_stats=1 \
        -artifact_prefix="$artifacts/" \
        "$work" "$fuzz_dir/corpus/$target" 2>"$cache/$target.log"; then
        failed+=("$target")
        tail -n 60 "$cache/$target.log"
        for artifact in "$artifacts"/*; do
            [ -f "$artifact" ] || continue
            echo "fuzz: $target failed on $artifact ($(wc -c <"$artifact") bytes), base64:"
            head -c 65536 "$artifact" | base64
        done
    else
        grep -E '^(#[0-9]+.*DONE|stat::)' "$cache/$target.log" || tail -n 5 "$cache/$target.log"
    fi
done

if [ ${#failed[@]} -gt 0 ]; then
    echo "fuzz: FAILED: ${failed[*]}"
    exit 1
fi
echo "fuzz: ${targets} ran ${seconds} s each with no crash"
