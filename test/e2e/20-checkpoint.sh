#!/usr/bin/env bash
# Checkpoint where criu cannot work (here criu fails in its own kernel feature
# detection, as `criu check` shows): `ctr task checkpoint` fails with runc's report of
# criu's failure ("criu failed: type DUMP ...") and the path of criu's log, brought back
# through the shim; that log holds criu's own error lines. ctr pauses the task around
# the checkpoint: it is RUNNING again afterwards, answers exec, and no checkpoint image
# or /tasks/checkpointed event is left behind.
. "$(dirname "$0")/lib.sh"

# Where criu works, 26-checkpoint-restore runs the checkpoint + restore round trip instead,
# and this test skips; where it cannot run (criu 3.17 on Linux 6.18), this one runs and
# 26 skips. A missing criu fails both: scripts/install-deps.sh installs it.
command -v criu >/dev/null || fail "criu not installed (scripts/install-deps.sh installs it)"
[ "$(id -u)" = 0 ] || e2e_skip "needs root"
criu_check=$(criu check 2>&1) && e2e_skip "criu works on this host: 26-checkpoint-restore covers it, this test covers a failing criu"
e2e_setup
e2e_events_start "$E2E_TMP/events"

# criu's own messages from `criu check`: "Error (criu/vdso.c:381): vdso: ..." -> "vdso: ..."
mapfile -t criu_errors < <(sed -n 's/^Error ([^)]*): //p' <<<"$criu_check" | grep -v '^exited, status=')
[ "${#criu_errors[@]}" -gt 0 ] || fail "no error lines in criu check's output: [$criu_check]"

id=$(e2e_id ckpt)
e2e_run -d --null-io "$id" sh -c 'i=0; while :; do i=$((i + 1)); echo $i >/tmp/count; sleep 0.1; done' </dev/null
wait_for 5 "task $id running" e2e_task_status_is "$id" RUNNING
init=$(e2e_task_pid "$id")
bundle=$(e2e_bundle "$id")
assert_shim_binary "$id"

check "ctr task checkpoint fails with criu's failure"
rc=0
err=$(ctr task checkpoint "$id" 2>&1) || rc=$?
assert_eq 1 "$rc" "ctr task checkpoint exit status"
assert_contains "$err" "criu failed: type DUMP" "runc's report of criu's failure"
log=$(grep -o '/[^ ]*dump\.log' <<<"$err" | head -n 1)
assert_match "$log" "^$bundle/[^/]*dump\\.log\$" "criu's log named in the error, in the bundle"
test -s "$log" || fail "criu log $log missing or empty"
found=
for e in "${criu_errors[@]}"; do
	if grep -qF -- "$e" "$log"; then
		found=$e
		break
	fi
done
assert_ne "" "$found" "the log holds one of criu's own errors (${criu_errors[*]})"

check "the task is RUNNING again, unchanged, and answers exec"
wait_for 5 "task $id running" e2e_task_status_is "$id" RUNNING
assert_eq "$init" "$(e2e_task_pid "$id")" "same init pid"
c1=$(ctr task exec --exec-id c1 "$id" cat /tmp/count </dev/null)
sleep 0.5
c2=$(ctr task exec --exec-id c2 "$id" cat /tmp/count </dev/null)
assert_match "$c1" '^[0-9]+$' "counter read"
[ "$c2" -gt "$c1" ] || fail "the counter does not advance: $c1 then $c2 (task still frozen?)"
pass "the counter advances: $c1 then $c2"
out=$(ctr task exec --exec-id hello "$id" echo after-checkpoint </dev/null)
assert_eq after-checkpoint "$out" "exec output"

check "ctr paused and resumed the task around the checkpoint; nothing was checkpointed"
wait_for 5 "/tasks/resumed of $id" e2e_event_seen "$id" /tasks/resumed
p=$(e2e_event_pos "$id" /tasks/paused)
r=$(e2e_event_pos "$id" /tasks/resumed)
assert_match "$p" '^[0-9]+$' "/tasks/paused published"
[ "$p" -lt "$r" ] || fail "/tasks/resumed (line $r) before /tasks/paused (line $p)"
pass "/tasks/paused then /tasks/resumed"
assert_eq "" "$(e2e_event_lines "$id" /tasks/checkpointed)" "no /tasks/checkpointed"
assert_eq "" "$(ctr images ls -q)" "no checkpoint image"

check "a second attempt fails the same way (nothing stuck in the shim)"
rc=0
err=$(ctr task checkpoint "$id" 2>&1) || rc=$?
assert_eq 1 "$rc" "ctr task checkpoint exit status"
assert_contains "$err" "criu failed: type DUMP" "error"
wait_for 5 "task $id running" e2e_task_status_is "$id" RUNNING
e2e_events_stop
