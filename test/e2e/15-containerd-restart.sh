#!/usr/bin/env bash
# containerd stopped (SIGTERM, then SIGKILL) and restarted while detached tasks run:
# the shims outlive it, containerd reconnects through the bundle's address file, and
# exec, kill and delete keep working. A task that exits while containerd is down is
# reported STOPPED with its exit status afterwards.
. "$(dirname "$0")/lib.sh"
e2e_setup

restart_round() {
	local sig=$1 id idx shim init out
	id=$(e2e_id "live-$sig")
	idx=$(e2e_id "exits-$sig")
	rm -f "$E2E_ROOTFS/tmp/exit-$idx"
	e2e_run -d --null-io "$id" sleep 1000 </dev/null
	e2e_run -d --null-io "$idx" sh -c "while [ ! -e /tmp/exit-$idx ]; do sleep 0.05; done; exit 3" </dev/null
	shim=$(e2e_shim_pid "$id")
	init=$(e2e_task_pid "$id")
	local xinit
	xinit=$(e2e_task_pid "$idx")

	check "SIG$sig to containerd: the shims and containers outlive it"
	e2e_containerd_stop "$sig"
	kill -0 "$shim" 2>/dev/null || fail "shim $shim of $id died with containerd"
	pass "shim $shim alive"
	kill -0 "$init" 2>/dev/null || fail "init $init of $id died with containerd"
	pass "init $init alive"

	check "a task exits while containerd is down"
	touch "$E2E_ROOTFS/tmp/exit-$idx"
	wait_for 10 "init $xinit of $idx exited" test ! -e "/proc/$xinit"

	check "containerd restarted: it reloads both tasks from their shims"
	e2e_containerd_start
	e2e_events_start "$E2E_TMP/events-$sig"
	assert_eq RUNNING "$(e2e_task_status "$id")" "status of $id"
	assert_eq "$init" "$(e2e_task_pid "$id")" "pid of $id unchanged"
	assert_eq STOPPED "$(e2e_task_status "$idx")" "status of $idx (exited while down)"
	assert_eq "$shim" "$(e2e_shim_pid "$id")" "same shim process"

	check "exec, kill and delete work after the restart"
	out=$(ctr task exec --exec-id after "$id" echo after-restart </dev/null)
	assert_eq after-restart "$out" "exec output"
	ctr task kill -s KILL "$id"
	wait_for 10 "task $id stopped" e2e_task_status_is "$id" STOPPED
	out=$(ctr task rm "$id" 2>&1)
	assert_contains "$out" "exit with non-zero exit code 137" "ctr task rm of $id"
	wait_for 10 "/tasks/exit 137 of $id published" e2e_event_seen "$id" /tasks/exit '"exit_status":137'
	wait_for 5 "shim of $id exited" e2e_no_shims_of "$id"
	ctr containers rm "$id"

	check "the task that exited while containerd was down keeps its exit status"
	out=$(ctr task rm "$idx" 2>&1)
	assert_contains "$out" "exit with non-zero exit code 3" "ctr task rm of $idx"
	wait_for 5 "shim of $idx exited" e2e_no_shims_of "$idx"
	ctr containers rm "$idx"
	e2e_events_stop
}

restart_round TERM
restart_round KILL
