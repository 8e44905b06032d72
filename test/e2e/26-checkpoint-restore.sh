#!/usr/bin/env bash
# Checkpoint + restore round trip where criu works (20-checkpoint covers a criu that
# cannot run, and skips here): `ctr containers checkpoint --task` of a running counter
# makes a checkpoint image through the shim's Checkpoint; the task and container are
# removed; `ctr containers restore --live` recreates the container from that image and
# the shim's Create restores the process from criu's images: its counter goes on from
# where it was (a fresh start would count from 1).
. "$(dirname "$0")/lib.sh"

command -v criu >/dev/null || fail "criu not installed (scripts/install-deps.sh installs it)"
[ "$(id -u)" = 0 ] || e2e_skip "needs root"
if ! criu_check=$(criu check 2>&1); then
	e2e_skip "criu cannot run on this host ($(grep -m1 '^Error' <<<"$criu_check" || tail -n 1 <<<"$criu_check")); 20-checkpoint covers that"
fi
e2e_setup
e2e_import_image
e2e_events_start "$E2E_TMP/events"

id=$(e2e_id ckrt)
e2e_run_image -d --null-io "$id" sh -c 'i=0; while :; do i=$((i + 1)); echo $i >/tmp/count; sleep 0.1; done' </dev/null
wait_for 5 "task $id running" e2e_task_status_is "$id" RUNNING
assert_shim_binary "$id"
count() { ctr task exec --exec-id "c$RANDOM" "$id" cat /tmp/count </dev/null 2>/dev/null; }
count_at_least() { local c; c=$(count) && [ "${c:-0}" -ge "$1" ]; }
wait_for 20 "counter of $id reached 30" count_at_least 30

check "checkpoint of the running task into an image"
ref=nanoshim.test/checkpoint-$id:1
ctr containers checkpoint --task "$id" "$ref"
wait_for 5 "/tasks/checkpointed of $id" e2e_event_seen "$id" /tasks/checkpointed
assert_contains "$(ctr images ls -q)" "$ref" "checkpoint image listed"
c1=$(count)
assert_match "$c1" '^[0-9]+$' "counter after the checkpoint"

check "the original goes away"
ctr task kill -s KILL "$id"
wait_for 10 "task $id stopped" e2e_task_status_is "$id" STOPPED
ctr task rm "$id" >/dev/null
ctr containers rm "$id"

check "restore --live brings the process back with its memory"
ctr containers restore --live "$id" "$ref"
wait_for 10 "restored task $id running" e2e_task_status_is "$id" RUNNING
assert_shim_binary "$id"
# the shell's i came back from the checkpoint: the first value written is past c1's
# checkpoint-time value, never a fresh 1, 2, 3...
wait_for 10 "restored counter written" count_at_least 1
c2=$(count)
[ "$c2" -ge 30 ] || fail "the restored counter starts afresh ($c2 after a checkpoint at >= 30)"
pass "the restored counter goes on: $c2 (checkpointed at >= 30, read $c1 just after)"
wait_for 5 "the restored counter advances" count_at_least $((c2 + 1))
ctr task kill -s KILL "$id"
wait_for 10 "restored task $id stopped" e2e_task_status_is "$id" STOPPED
e2e_events_stop
