#!/usr/bin/env bash
# Detached tasks (ctr run -d): listed RUNNING with the right pid, `ctr task ps`,
# file:// log URI, exit status of a detached task on `ctr task rm`.
. "$(dirname "$0")/lib.sh"
e2e_setup

check "ctr run -d returns at once and the task is RUNNING"
id=$(e2e_id det)
log=$E2E_TMP/det.log
e2e_run -d "--log-uri=file://$log" "$id" sh -c 'echo started; echo to-stderr >&2; exec sleep 1000' </dev/null
assert_eq RUNNING "$(e2e_task_status "$id")" "ctr task ls status"
pid=$(e2e_task_pid "$id")
assert_match "$pid" '^[0-9]+$' "ctr task ls pid"
assert_shim_binary "$id"

check "the shim listens where containerd 1.6 looks: /run/containerd/s/<sha256(address/ns/id)>"
sock=$(e2e_socket "$id")
test -S "$sock" || fail "no socket at $sock"
pass "socket $sock"
assert_eq "unix://$sock" "$(cat "$(e2e_bundle "$id")/address")" "bundle address file"

check "the pid is the container's init, on the host"
assert_eq sleep "$(cat "/proc/$pid/comm")" "/proc/<pid>/comm"
assert_ne "$(readlink /proc/self/ns/pid)" "$(readlink "/proc/$pid/ns/pid")" "own pid namespace"

check "ctr task ps lists exactly the init pid"
out=$(ctr task ps "$id" | awk 'NR > 1 { print $1 }')
assert_eq "$pid" "$out" "pids of the task"

check "stdout and stderr of a detached task land in the file:// log"
wait_for 5 "log file has the output" grep -qx to-stderr "$log"
assert_eq "started
to-stderr" "$(sort "$log")" "log file content (both streams)"

check "a second detached task runs alongside; ctr task ls shows both"
id2=$(e2e_id det2)
e2e_run -d --null-io "$id2" sh -c 'sleep 1; exit 4' </dev/null
assert_eq RUNNING "$(e2e_task_status "$id")" "first task"
assert_match "$(e2e_task_status "$id2")" '^(RUNNING|STOPPED)$' "second task"

check "a detached task that exits is STOPPED and ctr task rm reports its status"
wait_for 10 "task $id2 stopped" e2e_task_status_is "$id2" STOPPED
err=$(ctr task rm "$id2" 2>&1)
assert_contains "$err" "task $id2 exit with non-zero exit code 4" "ctr task rm warning with the exit code"
assert_eq "" "$(e2e_task_status "$id2")" "task gone from ctr task ls"
ctr containers rm "$id2"

check "ctr task rm of a running task is refused"
rc=0
err=$(ctr task rm "$id" 2>&1) || rc=$?
assert_ne 0 "$rc" "ctr task rm status"
assert_contains "$err" "task must be stopped before deletion" "error message"
assert_eq RUNNING "$(e2e_task_status "$id")" "task still running"

check "kill, then rm: status 137"
ctr task kill -s KILL "$id"
wait_for 10 "task $id stopped" e2e_task_status_is "$id" STOPPED
err=$(ctr task rm "$id" 2>&1)
assert_contains "$err" "exit with non-zero exit code 137" "ctr task rm warning"
test ! -e "/proc/$pid" || [ "$(cat "/proc/$pid/comm" 2>/dev/null)" != sleep ] || fail "init $pid still alive"
pass "init process $pid is gone"
wait_for 5 "shim of $id exited" e2e_no_shims_of "$id"
ctr containers rm "$id"
