#!/usr/bin/env bash
# Terminal: ctr run -t (and exec -t) under a pty made by script(1); the process gets a
# /dev/pts tty, output comes back through the pty master, the window size is applied
# (ResizePty).
. "$(dirname "$0")/lib.sh"
command -v script >/dev/null || e2e_skip "script (util-linux) not installed"
e2e_setup

# in_pty COMMAND-STRING — runs COMMAND-STRING (sh syntax) with a pty as stdin/stdout/
# stderr, prints its output with the pty's \r removed. script's own stdin must not reach
# EOF: script then types the pty's VEOF character, which is NUL on a pty nobody
# configured, and ctr -t forwards that NUL to the container (echoed back as "^@").
in_pty() {
	local rc=0 feeder
	exec 7< <(exec sleep 60 2>/dev/null)
	feeder=$!
	run_with_timeout 30 script -qec "$1" /dev/null <&7 >"$E2E_TMP/pty.out" || rc=$?
	exec 7<&-
	kill "$feeder" 2>/dev/null || true
	tr -d '\r' <"$E2E_TMP/pty.out"
	return "$rc"
}
ctr_cmd="ctr --address $E2E_ADDR --namespace $E2E_NS"
run_cmd="$ctr_cmd run --fifo-dir=$E2E_FIFO_DIR --runtime $CTR_RUNTIME ${E2E_RUNTIME_FLAGS[*]} --env=$E2E_PATH_ENV"
exec_cmd="$ctr_cmd task exec --fifo-dir=$E2E_FIFO_DIR"

check "ctr run -t: the process's stdin is a /dev/pts terminal"
id=$(e2e_id tty)
out=$(in_pty "$run_cmd --rm -t --rootfs $E2E_ROOTFS $id sh -c 'tty; sleep 0.3'")
assert_match "$out" '^/dev/pts/[0-9]+$' "tty inside the container"

check "ctr run -t: output and exit status come back through the terminal"
id=$(e2e_id ttyout)
out=$(in_pty "$run_cmd --rm -t --rootfs $E2E_ROOTFS $id sh -c 'echo hello-tty; test -t 1 && echo stdout-is-tty; sleep 0.3; exit 5'; echo \"rc=\$?\"")
assert_eq "hello-tty
stdout-is-tty
rc=5" "$out" "output and exit status"

# ctr sends ResizePty only after Start, so the process polls until a size is set.
poll_size='for i in $(seq 50); do s=$(stty size 2>/dev/null); case "$s" in ""|"0 0") sleep 0.1;; *) break;; esac; done; echo "$s"'

check "ctr run -t: the window size of the outer terminal is applied (ResizePty)"
id=$(e2e_id ttysize)
out=$(in_pty "stty rows 37 cols 111; $run_cmd --rm -t --rootfs $E2E_ROOTFS $id sh -c '$poll_size'")
assert_eq "37 111" "$out" "stty size inside the container"

check "ctr task exec -t on a detached task"
id=$(e2e_id ttyexec)
e2e_run -d --null-io "$id" sleep 1000 </dev/null
# (the sleep: ctr resizes after Start; a process already gone makes that resize fail)
out=$(in_pty "$exec_cmd -t --exec-id tty1 $id sh -c 'tty; echo exec-tty-ok; sleep 0.5'")
assert_match "$(head -n 1 <<<"$out")" '^/dev/pts/[0-9]+$' "tty of the exec process"
assert_eq "exec-tty-ok" "$(sed -n 2p <<<"$out")" "exec output"
assert_eq 2 "$(wc -l <<<"$out")" "nothing else on the terminal"
out=$(in_pty "stty rows 21 cols 77; $exec_cmd -t --exec-id tty2 $id sh -c '$poll_size'")
assert_eq "21 77" "$out" "window size of the exec terminal"
ctr task kill -s KILL "$id"
wait_for 10 "task $id stopped" e2e_task_status_is "$id" STOPPED
ctr task rm "$id" >/dev/null
