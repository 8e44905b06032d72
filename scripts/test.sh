#!/usr/bin/env bash
# Builds and runs every nanoshim test: unit, interop (Go peer) and end-to-end
# tests in a release build; the unit tests and a subset of the end-to-end
# tests (with the shim built with sanitizers) under ASan+UBSan; and each
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
CC=clang cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DNANOSHIM_SANITIZE=ON \
	-DNANOSHIM_E2E_UPDATE_GO=OFF >/dev/null
cmake --build build-asan -j"$jobs"
# malloc_context_size=2 keeps test/lsan.supp to Criterion's own allocations (see there);
# unit.lsan_planted_leak fails this stage if a planted leak is not reported.
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:malloc_context_size=2 \
	UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	LSAN_OPTIONS=suppressions=$top/test/lsan.supp \
	ctest --test-dir build-asan -L unit --output-on-failure -j1

step "ASan+UBSan build: the shim through containerd (a subset of the e2e tests)"
# The shim's stderr is containerd's log FIFO: sanitizer reports go to files
# instead, and any report fails the run.
reports=$(mktemp -d /tmp/nanoshim-asan.XXXXXX)
for t in 01-run 04-stdin 07-exec 09-pause 19-bad-input; do
	ASAN_OPTIONS=log_path=$reports/asan:detect_leaks=1 \
	UBSAN_OPTIONS=print_stacktrace=1:log_path=$reports/ubsan \
	SHIM_BINARY=$top/build-asan/shim/containerd-shim-nano-v2 \
	E2E_CACHE_DIR=$top/build/test/e2e/cache E2E_TIMEOUT=200 \
		test/e2e/$t.sh >"$reports/$t.out" 2>&1 || { cat "$reports/$t.out"; echo "$t failed under ASan" >&2; exit 1; }
	echo "ok $t"
done
if ls "$reports"/asan.* "$reports"/ubsan.* >/dev/null 2>&1; then
	cat "$reports"/asan.* "$reports"/ubsan.* 2>/dev/null >&2
	echo "sanitizer reports from the shim (above)" >&2
	exit 1
fi
rm -rf "$reports"

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
