#!/usr/bin/env bash
# stdin: ctr run always attaches its stdin; EOF on it becomes CloseIO, which the shim
# must turn into EOF for the process.
. "$(dirname "$0")/lib.sh"
e2e_setup

check "1 MiB of random bytes round-trip through cat unchanged"
head -c 1048576 /dev/urandom >"$E2E_TMP/payload"
id=$(e2e_id cat)
e2e_run --rm "$id" cat <"$E2E_TMP/payload" >"$E2E_TMP/back"
assert_eq "$(sha256sum <"$E2E_TMP/payload" | awk '{print $1}')" \
	"$(sha256sum <"$E2E_TMP/back" | awk '{print $1}')" "sha256 of what came back"

check "EOF on stdin reaches the process (wc -c ends and counts exactly)"
id=$(e2e_id wc)
out=$(e2e_run --rm "$id" wc -c <"$E2E_TMP/payload")
assert_eq 1048576 "${out// /}" "byte count seen by wc -c"

check "line-by-line stdin through a shell read loop"
# ctr's stdin EOF handler is installed only after NewTask returns: input that ends before
# the task exists never becomes CloseIO (a ctr race, not the shim's). Hence the input is
# written once the task is RUNNING (ctr starts it after NewTask has returned).
id=$(e2e_id read)
out=$({
	wait_for 20 "task $id running before its input is written" e2e_task_status_is "$id" RUNNING >&2
	printf 'alpha\nbeta\ngamma\n'
} | e2e_run --rm "$id" sh -c 'while read -r l; do echo "<$l>"; done; echo done')
assert_eq "<alpha>
<beta>
<gamma>
done" "$out" "echoed lines"
