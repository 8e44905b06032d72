#!/usr/bin/env bash
# An exec with a terminal on the request and terminal:false in its process spec, as
# containerd's Go client sends it (cio.WithTerminal): it runs on a pty, as with the Go
# shim, which takes the terminal from the request.
. "$(dirname "$0")/lib.sh"

task_go=${E2E_TASK_GO:-$E2E_CACHE_DIR/../task-go/task-go}
[ -x "$task_go" ] || fail "task-go not built ($task_go): cmake target e2e-task-go"
e2e_setup

id=$(e2e_id exectty)
e2e_run -d --null-io "$id" sleep 1000 </dev/null
wait_for 5 "task $id running" e2e_task_status_is "$id" RUNNING

check "exec with the request's terminal"
out=$(run_with_timeout 40 "$task_go" -address "$E2E_ADDR" -namespace "$E2E_NS" -id "$id" \
	exec-tty t1 sh -c 'tty; echo done') || fail "task-go exec-tty: $out"
out=$(tr -d '\r' <<<"$out")
assert_match "$(sed -n 1p <<<"$out")" '^/dev/pts/[0-9]+$' "the exec's stdin is a pty"
assert_eq "done" "$(sed -n 2p <<<"$out")" "output through the pty"
assert_eq "exit=0" "$(sed -n 3p <<<"$out")" "exit status"

check "a plain exec still has no terminal"
out=$(ctr task exec --exec-id t2 "$id" sh -c 'tty || true' </dev/null)
assert_eq "not a tty" "$out" "no pty without a terminal"
ctr task kill -s KILL "$id"
wait_for 5 "task $id stopped" e2e_task_status_is "$id" STOPPED
ctr task rm "$id" >/dev/null
