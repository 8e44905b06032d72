#!/usr/bin/env bash
# Pause and resume: state PAUSED/RUNNING, the processes really stop and continue, and
# the operations that are invalid in each state are refused.
. "$(dirname "$0")/lib.sh"
e2e_setup

id=$(e2e_id pause)
# counts in a file of the rootfs, so the host can watch it progress
e2e_run -d --null-io "$id" sh -c 'i=0; while :; do i=$((i+1)); echo $i >/tmp/count; sleep 0.05; done' </dev/null
count() { cat "$E2E_ROOTFS/tmp/count" 2>/dev/null || echo 0; }
count_above() { [ "$(count)" -gt "$1" ]; }
wait_for 5 "counter running" count_above 2

check "ctr task pause → PAUSED, and the process stops counting"
ctr task pause "$id"
assert_eq PAUSED "$(e2e_task_status "$id")" "status after pause"
sleep 0.3
c1=$(count)
sleep 0.7
assert_eq "$c1" "$(count)" "counter while paused"
if [ "$(e2e_cgroup_mode)" = v1 ]; then
	f=$(e2e_cgroup_dir "$(e2e_task_pid "$id")" freezer)/freezer.state
	assert_eq FROZEN "$(cat "$f")" "freezer.state"
else
	f=$(e2e_cgroup_dir "$(e2e_task_pid "$id")")/cgroup.freeze
	assert_eq 1 "$(cat "$f")" "cgroup.freeze"
fi

check "pausing twice and exec while paused are refused; the task stays PAUSED"
assert_status 1 "second ctr task pause" ctr task pause "$id"
assert_status 1 "ctr task exec while paused" ctr task exec --exec-id p1 "$id" true </dev/null
assert_eq PAUSED "$(e2e_task_status "$id")" "status"

check "ctr task resume → RUNNING, and counting continues"
ctr task resume "$id"
assert_eq RUNNING "$(e2e_task_status "$id")" "status after resume"
wait_for 5 "counter moves again" count_above "$c1"

check "resuming a running task is refused"
assert_status 1 "ctr task resume of a running task" ctr task resume "$id"
assert_eq RUNNING "$(e2e_task_status "$id")" "status"

check "a paused task can be killed: SIGKILL while paused → STOPPED, 137"
ctr task pause "$id"
assert_eq PAUSED "$(e2e_task_status "$id")" "status after pause"
ctr task kill -s KILL "$id"
wait_for 10 "task $id stopped" e2e_task_status_is "$id" STOPPED
err=$(ctr task rm "$id" 2>&1)
assert_contains "$err" "exit with non-zero exit code 137" "ctr task rm warning"
