#!/usr/bin/env bash
# The shim SIGKILLed under a running task: containerd sees the connection close, runs
# `<shim> delete` (the bundle's shim binary, action delete), which kills the container
# and cleans up; containerd then publishes exit 137 and forgets the task.
. "$(dirname "$0")/lib.sh"
e2e_setup
e2e_import_image
e2e_events_start "$E2E_TMP/events"

id=$(e2e_id victim)
e2e_run_image -d --null-io "$id" sleep 1000 </dev/null
bundle=$(e2e_bundle "$id")
init=$(e2e_task_pid "$id")
shim=$(e2e_shim_pid "$id")

check "the shim serving the task is found and is the binary under test"
assert_match "$shim" '^[0-9]+$' "shim pid"
assert_shim_binary "$id"
if [ -s "$bundle/shim.pid" ]; then
	assert_eq "$shim" "$(cat "$bundle/shim.pid")" "bundle shim.pid"
fi
assert_eq "unix://$(e2e_socket "$id")" "$(cat "$bundle/address")" "bundle address file"
assert_eq overlay "$(findmnt -n -o FSTYPE --mountpoint "$bundle/rootfs")" "rootfs mounted"

check "SIGKILL to the shim: containerd's cleanup kills the container"
kill -KILL "$shim"
wait_for 10 "shim $shim gone" test ! -e "/proc/$shim"
wait_for 10 "container init $init gone" test ! -e "/proc/$init"

check "containerd reports exit 137 and forgets the task"
wait_for 10 "/tasks/exit of $id published" e2e_event_seen "$id" /tasks/exit
assert_contains "$(e2e_event_json "$id" /tasks/exit)" "\"pid\":$init,\"exit_status\":137" "/tasks/exit pid and status"
wait_for 10 "/tasks/delete of $id published" e2e_event_seen "$id" /tasks/delete
assert_contains "$(e2e_event_json "$id" /tasks/delete)" '"exit_status":137' "/tasks/delete status"
assert_eq "" "$(e2e_task_status "$id")" "ctr task ls no longer lists $id"
rc=0
out=$(ctr task rm "$id" 2>&1) || rc=$?
assert_ne 0 "$rc" "ctr task rm status"
assert_contains "$out" "not found" "ctr task rm: no such task"

check "the shim's delete action cleaned up: no mount, no bundle, no runc state"
# containerd runs `<shim> -id ID -bundle B delete`; when that fails it keeps the bundle
# and logs this warning
assert_eq 0 "$(grep -c 'failed to clean up after shim disconnected' "$E2E_TMP/containerd.log" || true)" \
	"containerd log: no failed cleanup through the shim's delete action"
assert_eq "" "$(e2e_mounts_under "$bundle")" "mounts under the bundle"
wait_for 5 "bundle removed" test ! -e "$bundle"
assert_eq "" "$(e2e_existing "$E2E_RUNC_ROOT/$E2E_NS/$id")" "runc state dir"
assert_eq "" "$(e2e_run_shims "$id")" "no shim process of $id (start/delete included)"

check "the container record remains: ctr task start gives it a new task and a new shim"
ctr task start -d --null-io "$id" </dev/null
assert_eq RUNNING "$(e2e_task_status "$id")" "status of the new task"
shim2=$(e2e_shim_pid "$id")
assert_ne "$shim" "$shim2" "new shim pid"
assert_shim_binary "$id"
ctr task kill -s KILL "$id"
wait_for 10 "task $id stopped" e2e_task_status_is "$id" STOPPED
ctr task rm "$id" >/dev/null 2>&1
ctr containers rm "$id"
id2=$(e2e_id again)
out=$(e2e_run_image --rm "$id2" echo again </dev/null)
assert_eq again "$out" "a new container runs"
e2e_events_stop
