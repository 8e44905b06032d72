#!/usr/bin/env bash
# A task created and never started, through containerd's Go client (ctr 1.6 cannot
# create without starting): Kill(SIGKILL) ends its Wait with 137 and a /tasks/exit,
# and Delete reports 137, as with the Go shim; a task whose client died between Create
# and Start (left CREATED) is removed by `ctr task rm -f` at once, leaving nothing.
. "$(dirname "$0")/lib.sh"

task_go=${E2E_TASK_GO:-$E2E_CACHE_DIR/../task-go/task-go}
[ -x "$task_go" ] || fail "task-go not built ($task_go): cmake target e2e-task-go"
e2e_setup

# tg ID ARGS... — task-go against this run's containerd
tg() {
	local id=$1
	shift
	run_with_timeout 40 "$task_go" -address "$E2E_ADDR" -namespace "$E2E_NS" -id "$id" "$@"
}
create_container() {
	ctr container create --runtime "$CTR_RUNTIME" "${E2E_RUNTIME_FLAGS[@]}" \
		--env="$E2E_PATH_ENV" --rootfs "$E2E_ROOTFS" "$1" sleep 1000 >/dev/null
}
shim_gone() { [ -z "$(e2e_run_shims "$1")" ]; }

e2e_events_start "$E2E_TMP/events"

check "Kill of a created task ends its Wait; Delete reports the status"
id=$(e2e_id created)
create_container "$id"
out=$(tg "$id" kill-created) || fail "task-go kill-created: $out"
assert_eq "wait=137
delete=137" "$out" "Wait and Delete of the killed created task"
wait_for 5 "/tasks/exit of $id with 137" e2e_event_seen "$id" /tasks/exit '"exit_status":137'
wait_for 5 "/tasks/delete of $id" e2e_event_seen "$id" /tasks/delete
assert_eq "" "$(e2e_task_status "$id")" "no task left for $id"
ctr container rm "$id"
wait_for 5 "the shim of $id exited" shim_gone "$id"

check "a task left CREATED by a client that died goes with ctr task rm -f"
id=$(e2e_id orphan)
create_container "$id"
out=$(tg "$id" create) || fail "task-go create: $out"
assert_match "$out" '^pid=[0-9]+$' "task created, not started"
assert_eq CREATED "$(e2e_task_status "$id")" "status of $id"
start=$(date +%s%N)
assert_status 0 "ctr task rm -f of a created task" ctr task rm -f "$id"
ms=$((($(date +%s%N) - start) / 1000000))
# a hang check, not a speed measurement: the removal used to take 20 s
[ "$ms" -lt 5000 ] || fail "ctr task rm -f took $ms ms"
pass "ctr task rm -f returned in $ms ms"
assert_eq "" "$(e2e_task_status "$id")" "no task left for $id"
ctr container rm "$id"
wait_for 5 "the shim of $id exited" shim_gone "$id"
assert_eq "" "$(e2e_existing "$(e2e_bundle "$id")" "$(e2e_socket "$id")")" "bundle and socket gone"
