#!/usr/bin/env bash
# A task's exit status survives a SIGKILL of its shim. When the shim's connection
# drops, containerd 1.6 runs `<shim> delete` (cleanupAfterDeadShim) and publishes a
# /tasks/exit and a /tasks/delete carrying the status that action printed, then
# forgets the task (`ctr task rm` finds nothing).
#
# A task that had already exited with 7 before the shim died: ours writes an exit record
# (init.exit in the bundle) before it announces an exit, and its `delete` action reads
# it back, so containerd's cleanup reports 7 with the real exit time. The Go shim's
# `delete` has no such record and always reports 128 + SIGKILL = 137: the real status
# is lost. Asserted per runtime: 7 for ours, 137 for the Go shim.
#
# A task still running when the shim dies: the delete action kills it, 137 for both.
. "$(dirname "$0")/lib.sh"
e2e_setup
e2e_events_start "$E2E_TMP/events"

is_go_shim() { [ "$RUNTIME" = io.containerd.runc.v2 ] && [ "$SHIM_AS_RUNC" != 1 ]; }
# json_field JSON NAME — a scalar field of an event payload
json_field() { sed -n "s/.*\"$2\":\\(\"[^\"]*\"\\|[0-9]*\\).*/\\1/p" <<<"$1" | tr -d '"'; }
exit_events() { e2e_event_lines "$1" /tasks/exit | wc -l; }
two_exit_events() { [ "$(exit_events "$1")" -ge 2 ]; }

check "a detached task exits with 7"
id=$(e2e_id exited)
e2e_run -d --null-io "$id" sh -c 'sleep 1; exit 7' </dev/null
bundle=$(e2e_bundle "$id")
init=$(e2e_task_pid "$id")
shim=$(e2e_shim_pid "$id")
assert_match "$shim" '^[0-9]+$' "shim pid"
assert_shim_binary "$id"
wait_for 10 "task $id stopped" e2e_task_status_is "$id" STOPPED
wait_for 5 "/tasks/exit of $id from the live shim" e2e_event_seen "$id" /tasks/exit
first=$(e2e_event_json "$id" /tasks/exit)
assert_contains "$first" "\"pid\":$init,\"exit_status\":7" "live shim's /tasks/exit: pid and status 7"
exited_at=$(json_field "$first" exited_at)
if ! is_go_shim; then
	test -s "$bundle/init.exit" || fail "no exit record $bundle/init.exit"
	pass "exit record $bundle/init.exit written"
fi

check "SIGKILL to the shim before ctr task rm: containerd's cleanup runs the shim's delete"
kill -KILL "$shim"
wait_for 10 "shim $shim gone" test ! -e "/proc/$shim"
wait_for 10 "/tasks/delete of $id published" e2e_event_seen "$id" /tasks/delete
wait_for 5 "a second /tasks/exit of $id (the cleanup's)" two_exit_events "$id"
cleanup_exit=$(e2e_event_lines "$id" /tasks/exit | sed -n 2p | awk '{ print $7 }')
del=$(e2e_event_json "$id" /tasks/delete)
if is_go_shim; then
	want=137
else
	want=7
fi
assert_contains "$cleanup_exit" "\"pid\":$init,\"exit_status\":$want" "cleanup /tasks/exit: pid and status $want"
assert_contains "$del" "\"pid\":$init,\"exit_status\":$want" "/tasks/delete: pid and status $want"
if ! is_go_shim; then
	# the record keeps the time of the exit, not of the cleanup
	assert_eq "$exited_at" "$(json_field "$cleanup_exit" exited_at)" "cleanup /tasks/exit: exited_at of the real exit"
	assert_eq "$exited_at" "$(json_field "$del" exited_at)" "/tasks/delete: exited_at of the real exit"
fi
assert_eq 0 "$(grep -c 'failed to clean up after shim disconnected' "$E2E_TMP/containerd.log" || true)" \
	"containerd log: the shim's delete action succeeded"

check "ctr task rm afterwards: containerd has already forgotten the task"
rc=0
out=$(ctr task rm "$id" 2>&1) || rc=$?
assert_ne 0 "$rc" "ctr task rm status"
assert_contains "$out" "not found" "ctr task rm output"
wait_for 5 "bundle removed" test ! -e "$bundle"
assert_eq "" "$(e2e_run_shims "$id")" "no shim process of $id"

check "SIGKILL to the shim of a running task: 137 for both"
id=$(e2e_id running)
e2e_run -d --null-io "$id" sleep 1000 </dev/null
wait_for 5 "task $id running" e2e_task_status_is "$id" RUNNING
bundle=$(e2e_bundle "$id")
init=$(e2e_task_pid "$id")
shim=$(e2e_shim_pid "$id")
assert_shim_binary "$id"
kill -KILL "$shim"
wait_for 10 "shim $shim gone" test ! -e "/proc/$shim"
wait_for 10 "container init $init killed" test ! -e "/proc/$init"
wait_for 10 "/tasks/delete of $id published" e2e_event_seen "$id" /tasks/delete
assert_eq 1 "$(exit_events "$id")" "one /tasks/exit (the cleanup's)"
assert_contains "$(e2e_event_json "$id" /tasks/exit)" "\"pid\":$init,\"exit_status\":137" "/tasks/exit: pid and 137"
assert_contains "$(e2e_event_json "$id" /tasks/delete)" "\"pid\":$init,\"exit_status\":137" "/tasks/delete: pid and 137"
rc=0
out=$(ctr task rm "$id" 2>&1) || rc=$?
assert_ne 0 "$rc" "ctr task rm status"
assert_contains "$out" "not found" "ctr task rm output"
wait_for 5 "bundle removed" test ! -e "$bundle"
e2e_events_stop
