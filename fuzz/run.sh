#!/usr/bin/env bash
# Runs every fuzz target for a share of SECONDS (default 60) with libFuzzer on the stable
# toolchain: builds the targets with coverage instrumentation (plain rustc codegen options, no
# nightly, no cargo-fuzz), then runs each from its committed seeds (fuzz/corpus/<target>) plus
# what earlier runs found (fuzz/target/corpus/<target>), with an input cap and a memory limit.
# A crash stops the script with the failing target's name; its input is in fuzz/artifacts/.
# Usage: fuzz/run.sh [SECONDS] [TARGET...]        (docs/fuzzing.md)
set -euo pipefail
cd "$(dirname "$0")"
seconds=${1:-60}
shift || true

# The largest input a target looks at (MAX_INPUT_BYTES in fuzz/src/lib.rs).
max_len=65536
# libFuzzer stops a target whose resident memory passes this (MB): no unbounded allocation.
rss_limit_mb=512
# Same instrumentation as cargo-fuzz's default (inline 8-bit counters, PC table, compare
# tracing), applied through --target so build scripts and proc macros stay uninstrumented.
host=$(rustc -vV | sed -n 's/^host: //p')
export RUSTFLAGS="-Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4 \
-Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table \
-Cllvm-args=-sanitizer-coverage-trace-compares --cfg fuzzing -Cdebug-assertions -Coverflow-checks"
export CARGO_TARGET_DIR=target

if [ $# -gt 0 ]; then
    targets=("$@")
else
    mapfile -t targets < <(ls fuzz_targets | sed 's/\.rs$//')
fi
started=$(date +%s)
# Only the targets: make-seeds is a plain program (no libFuzzer to answer the coverage hooks).
cargo build --release --locked --target "$host" $(printf -- '--bin %s ' "${targets[@]}")
echo "== fuzz targets built in $(( $(date +%s) - started )) s"
share=$(( seconds / ${#targets[@]} ))
[ "$share" -ge 1 ] || share=1
# The cards-file target writes its scratch file per execution: in memory when /dev/shm is there.
[ -d /dev/shm ] && export TMPDIR=/dev/shm
mkdir -p artifacts
for target in "${targets[@]}"; do
    found="target/corpus/$target"
    mkdir -p "$found" "corpus/$target"
    echo "== $target: ${share} s"
    log="target/$target.log"
    if ! "target/$host/release/$target" "$found" "corpus/$target" \
        -max_total_time="$share" -max_len="$max_len" -rss_limit_mb="$rss_limit_mb" \
        -timeout=10 -print_final_stats=1 -artifact_prefix="artifacts/$target-" >"$log" 2>&1; then
        tail -n 40 "$log"
        echo "== $target FAILED: the input is in fuzz/artifacts/ (replay: target/$host/release/$target FILE)"
        exit 1
    fi
    grep -E '^stat::number_of_executed_units|^stat::peak_rss_mb|cov: ' "$log" | tail -n 3
done
echo "== fuzzing finished in $(( $(date +%s) - started )) s, no crash"
