#!/usr/bin/env bash
# Builds and runs every nanoshim test: unit, interop (Go peer) and end-to-end
# tests in a release build, the unit tests again under ASan+UBSan, and each
# libFuzzer target for FUZZ_SECONDS (default 60) under ASan+UBSan.
set -euo pipefail
cd "$(dirname "$0")/.."
top=$PWD
jobs=${JOBS:-2}
fuzz_seconds=${FUZZ_SECONDS:-60}

scripts/install-deps.sh

step() { printf '\n=== %s\n' "$*"; }

step "release build"
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$jobs"

step "unit, interop and end-to-end tests"
ctest --test-dir build --output-on-failure -j1

step "ASan+UBSan build: unit tests"
CC=clang cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DNANOSHIM_SANITIZE=ON >/dev/null
cmake --build build-asan -j"$jobs"
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	ctest --test-dir build-asan -L unit --output-on-failure -j1

step "fuzz targets, ${fuzz_seconds}s each"
CC=clang cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=Debug -DNANOSHIM_FUZZ=ON >/dev/null
cmake --build build-fuzz -j"$jobs"
work=$(mktemp -d /tmp/nanoshim-fuzz.XXXXXX)
trap 'rm -rf "$work"' EXIT
for t in build-fuzz/test/fuzz/fuzz_*; do
	name=$(basename "$t")
	seeds="$top/test/fuzz/corpus/${name#fuzz_}"
	mkdir -p "$work/$name"
	[ -d "$seeds" ] && cp -r "$seeds/." "$work/$name/"
	(cd "$work" && "$top/$t" -max_total_time="$fuzz_seconds" -rss_limit_mb=2048 \
		-print_final_stats=1 "$work/$name" 2>&1 | grep -E '^(stat::number_of_executed_units|Done|==|SUMMARY)' || true)
	if ls "$work"/crash-* "$work"/leak-* "$work"/timeout-* >/dev/null 2>&1; then
		echo "fuzz target $name found a failure:" >&2
		ls "$work"/crash-* "$work"/leak-* "$work"/timeout-* 2>/dev/null >&2
		exit 1
	fi
done
step "all tests passed"
