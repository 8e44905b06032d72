#!/usr/bin/env bash
# Kill: a trapped SIGTERM decides the exit status, SIGKILL gives 137, signals reach
# exec processes, kill --all, kill of a stopped task.
. "$(dirname "$0")/lib.sh"
e2e_setup

# A shell as pid 1 ignores signals it has no handler for, so the traps are explicit.
trap_term='trap "echo got-TERM; exit 42" TERM; echo ready; while :; do sleep 0.1; done'

check "SIGTERM trapped by the process: prints, exits 42; ctr run reports 42"
id=$(e2e_id term)
e2e_run --rm "$id" sh -c "$trap_term" </dev/null >"$E2E_TMP/term.out" 2>&1 &
runpid=$!
wait_for 10 "container printed ready" grep -qx ready "$E2E_TMP/term.out"
ctr task kill -s SIGTERM "$id"
rc=0
wait "$runpid" || rc=$?
assert_eq 42 "$rc" "exit status of ctr run"
assert_eq "ready
got-TERM" "$(cat "$E2E_TMP/term.out")" "output"

check "SIGKILL: status 137"
id=$(e2e_id kill)
e2e_run --rm "$id" sh -c 'echo ready; exec sleep 1000' </dev/null >"$E2E_TMP/kill.out" 2>&1 &
runpid=$!
wait_for 10 "container printed ready" grep -qx ready "$E2E_TMP/kill.out"
ctr task kill -s KILL "$id"
rc=0
wait "$runpid" || rc=$?
assert_eq 137 "$rc" "exit status of ctr run"

check "a signal by number (-s 15) to a detached task; ctr task rm reports 42"
id=$(e2e_id num)
e2e_run -d "--log-uri=file://$E2E_TMP/num.log" "$id" sh -c "$trap_term" </dev/null
wait_for 10 "container printed ready" grep -qx ready "$E2E_TMP/num.log"
ctr task kill -s 15 "$id"
wait_for 10 "task $id stopped" e2e_task_status_is "$id" STOPPED
err=$(ctr task rm "$id" 2>&1)
assert_contains "$err" "exit with non-zero exit code 42" "ctr task rm warning"
ctr containers rm "$id"

check "kill --exec-id signals only that exec"
id=$(e2e_id exk)
e2e_run -d --null-io "$id" sleep 1000 </dev/null
ctr task exec --exec-id x1 "$id" sh -c "$trap_term" </dev/null >"$E2E_TMP/exec.out" 2>&1 &
execpid=$!
wait_for 10 "exec printed ready" grep -qx ready "$E2E_TMP/exec.out"
ctr task kill -s TERM --exec-id x1 "$id"
rc=0
wait "$execpid" || rc=$?
assert_eq 42 "$rc" "exit status of ctr task exec"
assert_eq RUNNING "$(e2e_task_status "$id")" "init still running"

check "kill --all reaches every process of the container"
ctr task exec -d --exec-id x2 "$id" sleep 900 </dev/null
pids=$(ctr task ps "$id" | awk 'NR > 1 { print $1 }')
assert_eq 2 "$(wc -l <<<"$pids")" "processes before kill --all"
ctr task kill -a -s KILL "$id"
wait_for 10 "task $id stopped" e2e_task_status_is "$id" STOPPED
for p in $pids; do
	wait_for 5 "process $p gone" test ! -e "/proc/$p"
done

check "kill of a stopped task fails with not found"
rc=0
err=$(ctr task kill -s KILL "$id" 2>&1) || rc=$?
assert_ne 0 "$rc" "ctr task kill status"
assert_contains "$err" "not found" "error message"
ctr task rm "$id" >/dev/null 2>&1
ctr containers rm "$id"
