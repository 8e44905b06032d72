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

check "stdin left unread after the client wrote 300 KiB and closed it: the shim stays quiet"
# The process (sleep) never reads. Ours: 256 KiB fill the process's stdin pipe, the rest
# waits in the FIFO, and ctr, at the end of its input, closes the FIFO: the shim must
# then wait for the process to read, not spin on the FIFO's hangup. The Go shim's pipe
# holds 64 KiB and it stops reading the FIFO while the pipe is full: ctr stays blocked in
# its write, and the shim must be just as quiet.
head -c 307200 /dev/urandom >"$E2E_TMP/300k"
id=$(e2e_id unread)
e2e_run --rm "$id" sleep 600 <"$E2E_TMP/300k" >/dev/null 2>&1 &
job=$!
wait_for 20 "task $id running" e2e_task_status_is "$id" RUNNING
shim=$(e2e_shim_pid "$id")
# ctr_stdin_pos — how far the ctr of this run has read its stdin (the 300 KiB file)
ctr_stdin_pos() {
	local p
	for p in $(pgrep -x ctr); do
		if [ "$(readlink "/proc/$p/fd/0" 2>/dev/null)" = "$E2E_TMP/300k" ]; then
			awk '$1 == "pos:" { print $2 }' "/proc/$p/fdinfo/0" 2>/dev/null
			return
		fi
	done
}
# ctr_closed_stdin — no ctr process has this task's stdin FIFO open any more
ctr_closed_stdin() {
	local p f
	for p in $(pgrep -x ctr); do
		for f in /proc/"$p"/fd/*; do
			[[ "$(readlink "$f" 2>/dev/null)" != "$E2E_FIFO_DIR"/*/"$id-stdin" ]] || return 1
		done
	done
}
# ctr_stdin_stuck — ctr's read offset does not move for 0.5 s (its FIFO write blocks)
ctr_stdin_stuck() {
	local a b
	a=$(ctr_stdin_pos)
	sleep 0.5
	b=$(ctr_stdin_pos)
	[ -n "$a" ] && [ "$a" = "$b" ]
}
if [ "$RUNTIME" = io.containerd.runc.v2 ] && [ "$SHIM_AS_RUNC" != 1 ]; then
	wait_for 20 "ctr blocked writing stdin (Go shim: 64 KiB pipe, FIFO not read)" ctr_stdin_stuck
else
	wait_for 20 "ctr wrote its 300 KiB and closed the stdin FIFO" ctr_closed_stdin
	assert_eq 307200 "$(ctr_stdin_pos)" "bytes ctr read from its stdin"
fi
assert_eq RUNNING "$(e2e_task_status "$id")" "task still running, its stdin unread"
assert_shim_quiet "$shim"
ctr task kill -s KILL "$id"
rc=0
wait "$job" || rc=$?
assert_eq 137 "$rc" "ctr run's status once the task is killed"
