#!/usr/bin/env bash
# ctr events: every task topic the shim publishes, with the right payloads, in order:
# /tasks/create, start, exec-added, exec-started, exit (exec), paused, resumed, exit,
# delete, and /tasks/oom.
. "$(dirname "$0")/lib.sh"
e2e_setup
e2e_events_start "$E2E_TMP/events"

id=$(e2e_id ev)
e2e_run -d --null-io "$id" sleep 1000 </dev/null
pid=$(e2e_task_pid "$id")
ctr task exec --exec-id x1 "$id" sh -c 'exit 3' </dev/null || true
ctr task pause "$id"
ctr task resume "$id"
ctr task kill -s KILL "$id"
wait_for 10 "task $id stopped" e2e_task_status_is "$id" STOPPED
ctr task rm "$id" >/dev/null 2>&1
wait_for 10 "/tasks/delete event arrived" e2e_event_seen "$id" /tasks/delete

check "every topic arrived once, for this container, in this order"
prev=0
for spec in /tasks/create /tasks/start /tasks/exec-added /tasks/exec-started \
	'/tasks/exit "id":"x1"' /tasks/paused /tasks/resumed "/tasks/exit \"id\":\"$id\"" /tasks/delete; do
	topic=${spec%% *}
	frag=
	[ "$topic" = "$spec" ] || frag=${spec#* }
	n=$(e2e_event_lines "$id" "$topic" | grep -cF "$frag" || true)
	assert_eq 1 "$n" "number of $spec events"
	pos=$(e2e_event_pos "$id" "$topic" "$frag")
	[ "$pos" -gt "$prev" ] || fail "$spec arrived before the previous event (line $pos <= $prev)"
	prev=$pos
done
pass "order: create, start, exec-added, exec-started, exit(x1), paused, resumed, exit, delete"

check "payloads"
assert_contains "$(e2e_event_json "$id" /tasks/create)" "\"pid\":$pid" "/tasks/create has the init pid"
assert_contains "$(e2e_event_json "$id" /tasks/create)" "\"bundle\":\"$(e2e_bundle "$id")\"" "/tasks/create has the bundle"
assert_eq "{\"container_id\":\"$id\",\"pid\":$pid}" "$(e2e_event_json "$id" /tasks/start)" "/tasks/start"
assert_eq "{\"container_id\":\"$id\",\"exec_id\":\"x1\"}" "$(e2e_event_json "$id" /tasks/exec-added)" "/tasks/exec-added"
assert_match "$(e2e_event_json "$id" /tasks/exec-started)" "^\\{\"container_id\":\"$id\",\"exec_id\":\"x1\",\"pid\":[1-9][0-9]*\\}$" "/tasks/exec-started"
assert_match "$(e2e_event_json "$id" /tasks/exit '"id":"x1"')" "\"id\":\"x1\",\"pid\":[1-9][0-9]*,\"exit_status\":3,\"exited_at\":\"[0-9]{4}-" "/tasks/exit of the exec: status 3"
assert_eq "{\"container_id\":\"$id\"}" "$(e2e_event_json "$id" /tasks/paused)" "/tasks/paused"
assert_eq "{\"container_id\":\"$id\"}" "$(e2e_event_json "$id" /tasks/resumed)" "/tasks/resumed"
assert_match "$(e2e_event_json "$id" /tasks/exit "\"id\":\"$id\"")" "\"id\":\"$id\",\"pid\":$pid,\"exit_status\":137,\"exited_at\":\"[0-9]{4}-" "/tasks/exit of init: status 137"
assert_match "$(e2e_event_json "$id" /tasks/delete)" "^\\{\"container_id\":\"$id\",\"pid\":$pid,\"exit_status\":137,\"exited_at\":\"[0-9]{4}-" "/tasks/delete: status 137"
exit_at=$(e2e_event_json "$id" /tasks/exit "\"id\":\"$id\"" | sed 's/.*"exited_at":"\([^"]*\)".*/\1/')
assert_contains "$(e2e_event_json "$id" /tasks/delete)" "\"exited_at\":\"$exit_at\"" "/tasks/delete has the exit's exited_at"

check "ctr run --rm: create, start, exit with the status, delete"
id2=$(e2e_id evrun)
e2e_run --rm "$id2" sh -c 'exit 9' </dev/null || true
wait_for 10 "/tasks/delete event arrived" e2e_event_seen "$id2" /tasks/delete
for t in /tasks/create /tasks/start /tasks/exit /tasks/delete; do
	assert_eq 1 "$(e2e_event_lines "$id2" "$t" | wc -l)" "number of $t events"
done
assert_contains "$(e2e_event_json "$id2" /tasks/exit)" '"exit_status":9' "/tasks/exit status 9"
assert_contains "$(e2e_event_json "$id2" /tasks/delete)" '"exit_status":9' "/tasks/delete status 9"

check "an OOM kill publishes /tasks/oom"
id3=$(e2e_id evoom)
e2e_oom_task "$id3"
wait_for 10 "/tasks/oom event arrived" e2e_event_seen "$id3" /tasks/oom
assert_eq "{\"container_id\":\"$id3\"}" "$(e2e_event_json "$id3" /tasks/oom)" "/tasks/oom payload"
ctr task rm "$id3" >/dev/null 2>&1
e2e_events_stop
