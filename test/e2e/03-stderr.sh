#!/usr/bin/env bash
# stderr: kept apart from stdout, complete, in order.
. "$(dirname "$0")/lib.sh"
e2e_setup

check "stdout and stderr go to their own streams"
id=$(e2e_id split)
e2e_run --rm "$id" sh -c 'echo to-out; echo to-err >&2; echo out2; echo err2 >&2' \
	</dev/null >"$E2E_TMP/out" 2>"$E2E_TMP/err"
assert_eq "to-out
out2" "$(cat "$E2E_TMP/out")" "stdout"
assert_eq "to-err
err2" "$(cat "$E2E_TMP/err")" "stderr"

check "256 KiB on stderr arrive complete while stdout stays empty"
id=$(e2e_id bigerr)
e2e_run --rm "$id" sh -c 'seq 1 40000 >&2' </dev/null >"$E2E_TMP/out" 2>"$E2E_TMP/err"
assert_eq "" "$(cat "$E2E_TMP/out")" "stdout"
assert_eq "$(seq 1 40000 | sha256sum | awk '{print $1}')" \
	"$(sha256sum <"$E2E_TMP/err" | awk '{print $1}')" "sha256 of stderr"

check "stderr written just before a non-zero exit is not lost"
id=$(e2e_id errexit)
rc=0
e2e_run --rm "$id" sh -c 'echo fatal: bad thing >&2; exit 2' </dev/null 2>"$E2E_TMP/err" || rc=$?
assert_eq 2 "$rc" "exit status"
assert_eq "fatal: bad thing" "$(cat "$E2E_TMP/err")" "stderr"
