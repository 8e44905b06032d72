#!/usr/bin/env bash
# Exit statuses: ctr run returns the container's exit status; a failed create returns
# runc's own error message and leaves nothing behind.
. "$(dirname "$0")/lib.sh"
e2e_setup

for code in 0 1 7 255; do
	check "sh -c 'exit $code' → ctr run exits $code"
	id=$(e2e_id exit$code)
	assert_status "$code" "exit status of ctr run (exit $code)" \
		e2e_run --rm "$id" sh -c "exit $code" </dev/null
done

check "a child killed by SIGKILL, its status passed on by sh → 137"
id=$(e2e_id sig)
assert_status 137 "exit status of ctr run" \
	e2e_run --rm "$id" sh -c 'sh -c "kill -KILL \$\$"; exit $?' </dev/null

check "output written just before exit is not lost"
id=$(e2e_id last)
out=$(e2e_run --rm "$id" sh -c 'seq 1 20000 | tail -n 1; exit 3' </dev/null) && rc=0 || rc=$?
assert_eq 3 "$rc" "exit status"
assert_eq 20000 "$out" "last line before exit"

check "a missing binary fails create with runc's message"
id=$(e2e_id nosuch)
rc=0
err=$(e2e_run --rm "$id" nosuch 2>&1 </dev/null) || rc=$?
assert_ne 0 "$rc" "ctr run of a missing binary fails"
assert_contains "$err" 'exec: "nosuch": executable file not found in $PATH' "error carries runc's message"
assert_eq "" "$(ctr task ls -q)" "no task left"
assert_eq "" "$(ctr containers ls -q)" "no container left (--rm)"
wait_for 5 "no shim of $id left" e2e_no_shims_of "$id"
