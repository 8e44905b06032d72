#!/usr/bin/env bash
# expect-leak.sh BINARY — runs the planted-leak test (planted_leak.c) with the
# environment's ASAN_OPTIONS/LSAN_OPTIONS (CI's, suppressions included) and succeeds
# only if it fails with LeakSanitizer reports of both planted leaks: 64 bytes through a
# helper, 48 bytes straight from a test body.
set -uo pipefail
out=$("$1" --jobs 1 2>&1)
rc=$?
if [ "$rc" = 0 ]; then
	printf '%s\n' "$out"
	echo "FAIL: the planted leak was not reported (exit 0): leaks are suppressed" >&2
	exit 1
fi
if ! grep -q 'ERROR: LeakSanitizer: detected memory leaks' <<<"$out" ||
	! grep -q 'Direct leak of 64 byte' <<<"$out" ||
	! grep -q 'planted_leak_alloc' <<<"$out" ||
	! grep -q 'Direct leak of 48 byte' <<<"$out" ||
	! grep -q 'lsan_planted_leak_in_test_body_impl' <<<"$out"; then
	printf '%s\n' "$out"
	echo "FAIL: exit $rc without a LeakSanitizer report of the planted leak" >&2
	exit 1
fi
echo "ok: both planted leaks reported by LeakSanitizer (exit $rc)"
