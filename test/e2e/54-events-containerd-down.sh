#!/usr/bin/env bash
# A task exits while containerd is down (SIGKILLed) for longer than the Go shim keeps
# an event: its /tasks/exit still reaches `ctr events` once containerd is back.
#
# The Go shim's window (Debian's golang-github-containerd-containerd-dev 1.6.20,
# /usr/share/gocode/src/github.com/containerd/containerd/runtime/v2/shim/publisher.go):
# Publish tries once; each failure requeues the event after i.count seconds
# (queue(): count++, time.Sleep(count s)), and processQueue() drops it once
# count > maxRequeue = 5 ("evicting %s from queue because of retry count"): tries 0, 1,
# 3, 6, 10 and 15 s after the exit, dropped at 21 s. Ours retries the head of its
# queue for as long as containerd is away (shim/events.h: back-off 50 ms doubling to
# 2 s, lifecycle events never dropped).
#
# Here the shim cannot reach containerd for DOWN_SECS (20) after the exit: containerd
# is SIGKILLed, the task exits, containerd is restarted DOWN_SECS - 2 s after the exit.
# So that no event can arrive before `ctr events` has subscribed, the restarted
# containerd serves ttrpc on a new path, and the shims' TTRPC_ADDRESS (the old path,
# a dead socket file after the SIGKILL) becomes a symlink to it only once `ctr events`
# sees its sentinel: the shim then connects straight to containerd through it.
#
# Telling the shim's event from containerd's own: containerd 1.6 publishes a
# /tasks/exit itself only in cleanupAfterDeadShim (runtime/v2/shim.go), when a shim's
# connection is lost or cannot be loaded on restart (and then, in shim_load.go, the
# task is not yet in its list, so nothing is published), always followed by a
# /tasks/delete. Here the shim stays alive throughout, containerd's log has no
# "cleaning up after shim disconnected" for the task, and no /tasks/delete precedes
# `ctr task rm`: a /tasks/exit before that is the shim's. Its exited_at is the real
# exit time, during the outage.
#
# Asserted per runtime: ours delivers the /tasks/exit (status 3, the init's pid, once);
# the Go shim delivers none (it gave the event up), which is its real behaviour. For
# both, `ctr task rm` then reports status 3 (the shim's State/Delete still knows it)
# and the /tasks/delete carries 3.
. "$(dirname "$0")/lib.sh"
e2e_setup

DOWN_SECS=20
GO_SHIM_LAST_TRY=15 # seconds after the exit, from publisher.go (above)
is_go_shim() { [ "$RUNTIME" = io.containerd.runc.v2 ] && [ "$SHIM_AS_RUNC" != 1 ]; }
# json_field JSON NAME — a scalar field of an event payload
json_field() { sed -n "s/.*\"$2\":\\(\"[^\"]*\"\\|[0-9]*\\).*/\\1/p" <<<"$1" | tr -d '"'; }

check "a detached task waits for a signal file to exit with 3"
id=$(e2e_id exits-while-down)
rm -f "$E2E_ROOTFS/tmp/exit-now"
e2e_run -d --null-io "$id" sh -c 'while [ ! -e /tmp/exit-now ]; do sleep 0.05; done; exit 3' </dev/null
init=$(e2e_task_pid "$id")
shim=$(e2e_shim_pid "$id")
assert_match "$shim" '^[0-9]+$' "shim pid"
assert_shim_binary "$id"
old_ttrpc=$E2E_ADDR.ttrpc
grep -qF "address = \"$old_ttrpc\"" "$E2E_TMP/config.toml" || fail "no ttrpc address $old_ttrpc in config.toml"

check "containerd SIGKILLed; the task exits while it is down"
e2e_containerd_stop KILL
t_kill=$(date +%s.%N)
touch "$E2E_ROOTFS/tmp/exit-now"
wait_for 10 "init $init of $id exited" test ! -e "/proc/$init"
t_exit=$(date +%s.%N)
kill -0 "$shim" 2>/dev/null || fail "shim $shim died with containerd"
pass "shim $shim alive"

check "containerd restarted $((DOWN_SECS - 2)) s after the exit, its ttrpc on a new path"
sleep "$(awk -v a="$t_exit" -v d=$((DOWN_SECS - 2)) -v now="$(date +%s.%N)" \
	'BEGIN { s = a + d - now; print (s > 0 ? s : 0) }')"
new_ttrpc=$E2E_TMP/ttrpc-2.sock
sed -i "s|address = \"$old_ttrpc\"|address = \"$new_ttrpc\"|" "$E2E_TMP/config.toml"
t_restart=$(date +%s.%N)
e2e_containerd_start
test -S "$old_ttrpc" || fail "the old ttrpc socket file is gone"
pass "the shim's TTRPC_ADDRESS $old_ttrpc is still the dead socket of the killed containerd"
e2e_events_start "$E2E_TMP/events"
kill -0 "$shim" 2>/dev/null || fail "shim $shim gone after the restart"
assert_eq STOPPED "$(e2e_task_status "$id")" "status of $id reloaded from its live shim"
assert_eq "" "$(e2e_event_lines "$id" /tasks/exit)" "no /tasks/exit before the shim can reach containerd"

check "after $DOWN_SECS s the shim's TTRPC_ADDRESS leads to containerd again"
sleep "$(awk -v a="$t_exit" -v d="$DOWN_SECS" -v now="$(date +%s.%N)" \
	'BEGIN { s = a + d - now; print (s > 0 ? s : 0) }')"
rm -f "$old_ttrpc"
ln -s "$new_ttrpc" "$old_ttrpc"
t_open=$(date +%s.%N)
unreachable=$(awk -v a="$t_exit" -v b="$t_open" 'BEGIN { printf "%.1f", b - a }')
down=$(awk -v a="$t_kill" -v b="$t_restart" 'BEGIN { printf "%.1f", b - a }')
assert_eq 1 "$(awk -v u="$unreachable" -v w="$GO_SHIM_LAST_TRY" 'BEGIN { print (u > w + 2) }')" \
	"containerd down ${down}s; unreachable for the shim ${unreachable}s after the exit (Go shim's last try: ${GO_SHIM_LAST_TRY}s)"

if is_go_shim; then
	check "Go shim: the /tasks/exit was given up (5 retries over 15 s)"
	# ours would be there within one back-off (2 s); give the Go shim twice as long
	sleep 4
	assert_eq "" "$(e2e_event_lines "$id" /tasks/exit)" "no /tasks/exit of $id from the Go shim"
else
	check "ours: the /tasks/exit reaches ctr events after the restart"
	wait_for 10 "/tasks/exit of $id" e2e_event_seen "$id" /tasks/exit
	t_seen=$(date +%s.%N)
	kill -0 "$shim" 2>/dev/null || fail "shim $shim gone"
	pass "shim $shim still alive: the event is the shim's, not containerd's cleanup"
	assert_eq "" "$(e2e_event_lines "$id" /tasks/delete)" "no /tasks/delete yet (containerd's cleanup publishes one with its exit)"
	assert_eq 1 "$(e2e_event_lines "$id" /tasks/exit | wc -l)" "one /tasks/exit of $id"
	ev=$(e2e_event_json "$id" /tasks/exit)
	assert_contains "$ev" "\"pid\":$init,\"exit_status\":3" "/tasks/exit: pid $init, status 3"
	exited_at=$(date -d "$(json_field "$ev" exited_at)" +%s.%N)
	assert_eq 1 "$(awk -v e="$exited_at" -v k="$t_kill" -v x="$t_exit" 'BEGIN { print (e > k && e <= x) }')" \
		"exited_at $(json_field "$ev" exited_at): while containerd was down"
	e2e_log "# /tasks/exit delivered $(awk -v a="$t_open" -v b="$t_seen" 'BEGIN { printf "%.1f", b - a }')s after the path opened, $(awk -v a="$t_exit" -v b="$t_seen" 'BEGIN { printf "%.1f", b - a }')s after the exit"
	tries=$(sed -n 's/.*publish events: connected to .* again after \([0-9]*\) tries.*/\1/p' "$E2E_TMP/containerd.log" | tail -n 1)
	if [ -n "$tries" ]; then
		assert_eq 1 "$((tries > 6))" "the shim tried $tries times (the Go shim: 6)"
	fi
fi
assert_eq 0 "$(grep -c "cleaning up after shim disconnected.*$id\|id=$id.*cleaning up after shim disconnected" "$E2E_TMP/containerd.log" || true)" \
	"containerd ran no cleanup for $id"

check "ctr task rm reports status 3, the /tasks/delete carries it"
out=$(ctr task rm "$id" 2>&1)
assert_contains "$out" "exit with non-zero exit code 3" "ctr task rm of $id"
wait_for 10 "/tasks/delete of $id" e2e_event_seen "$id" /tasks/delete
assert_contains "$(e2e_event_json "$id" /tasks/delete)" "\"pid\":$init,\"exit_status\":3" "/tasks/delete: pid $init, status 3"
if ! is_go_shim; then
	exit_pos=$(e2e_event_pos "$id" /tasks/exit)
	del_pos=$(e2e_event_pos "$id" /tasks/delete)
	assert_eq 1 "$((exit_pos < del_pos))" "/tasks/exit (line $exit_pos) before /tasks/delete (line $del_pos)"
fi
wait_for 10 "shim of $id exited" e2e_no_shims_of "$id"
ctr containers rm "$id"
e2e_events_stop
