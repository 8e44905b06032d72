#!/usr/bin/env bash
# nanoshimd restart recovery. With containers running, one exiting while nanoshimd is
# down, one whose shim is SIGKILLed while it is down, and a half-created bundle:
# SIGKILL nanoshimd (then, the second time, SIGTERM) and start it again. Running
# containers are listed and manageable (exec works) with their output intact, the
# exited one reports its real exit status, the dead-shim one is reported exited and
# cleaned up, the half-made bundle is gone, and events flow again. Then nanoshimd is
# crashed at every --crash-at point in turn, and a restart loses nothing.
. "$(dirname "$0")/mgr-lib.sh"
mgr_setup
mgr_start

# a container that prints a numbered line every 0.1 s, and one that exits with $2 once
# /tmp/go-$1 exists in the (shared) rootfs
ticker() { ctl run -d "${@:2}" --rootfs "$E2E_ROOTFS" "$1" sh -c 'i=0; while :; do echo "tick $i"; i=$((i + 1)); sleep 0.1; done'; }
exiter() { ctl run -d --rootfs "$E2E_ROOTFS" "$1" sh -c "while [ ! -e /tmp/go-$1 ]; do sleep 0.05; done; exit $2"; }
pid_gone() { ! kill -0 "$1" 2>/dev/null; }
# the ticks in a log are consecutive from 0: nothing was lost or doubled
ticks_intact() {
	local log=$1 n
	n=$(grep -c '^tick ' "$log")
	[ "$n" -gt 0 ] || fail "no ticks in $log"
	assert_eq "$(seq 0 $((n - 1)) | sed 's/^/tick /')" "$(grep '^tick ' "$log")" "ticks 0..$((n - 1)) in order, none lost"
}

round() { # SIGNAL
	local sig=$1 tag=${1,,} apid exiter_pid victim_shim victim_pid
	check "$sig round: set up (running, exiting while down, shim killed while down, half-made)"
	ticker "run-$tag"
	# on a terminal: our shim writes it into the log itself, the Go shim's console copy
	# goes through a FIFO nanoshimd relays (it waits there while nanoshimd is down)
	ticker "tty-$tag" -t
	exiter "exit-$tag" 7
	ctl run -d --rootfs "$E2E_ROOTFS" "victim-$tag" sleep 100000
	ctl run -d --rootfs "$E2E_ROOTFS" "force-$tag" sleep 100000
	apid=$(mgr_pid "run-$tag")
	exiter_pid=$(mgr_pid "exit-$tag")
	victim_shim=$(mgr_shim_pid "victim-$tag")
	victim_pid=$(mgr_pid "victim-$tag")
	victim_sock=$(sed 's|^unix://||' "$(mgr_bundle "victim-$tag")/address")
	[ -n "$victim_shim" ] || fail "no shim.pid for victim-$tag"
	sleep 0.3

	check "$sig round: nanoshimd stopped with SIG$sig; things happen while it is down"
	mgr_stop "$sig"
	touch "$E2E_ROOTFS/tmp/go-exit-$tag"
	wait_for 10 "exit-$tag's process exited while nanoshimd is down" pid_gone "$exiter_pid"
	kill -KILL "$victim_shim"
	wait_for 10 "victim-$tag's shim is gone" pid_gone "$victim_shim"
	mkdir -p "$MGR_STATE/$E2E_NS/half-$tag"
	echo '{"ociVersion": "1.0.2"}' >"$MGR_STATE/$E2E_NS/half-$tag/config.json"
	since=$(date -u +%Y-%m-%dT%H:%M:%SZ)
	sleep 1

	check "$sig round: nanoshimd started again recovers"
	mgr_start
	# at once: a forced delete of an adopted running container (once answered twice)
	ctl rm -f "force-$tag"
	assert_eq "" "$(mgr_status "force-$tag")" "rm -f of an adopted container right after the restart"
	kill -0 "$MGR_PID" || fail "nanoshimd died on rm -f of an adopted container"
	assert_eq "RUNNING" "$(mgr_status "run-$tag")" "running container after restart"
	assert_eq "$apid" "$(mgr_pid "run-$tag")" "its pid after restart"
	assert_eq "STOPPED (7)" "$(mgr_status "exit-$tag")" "container that exited while down"
	rc=0
	ctl wait "exit-$tag" || rc=$?
	assert_eq 7 "$rc" "wait on it"
	assert_eq "STOPPED (137)" "$(mgr_status "victim-$tag")" "container whose shim was killed"
	wait_for 10 "victim-$tag's process is gone" pid_gone "$victim_pid"
	[ ! -e "$victim_sock" ] || fail "the dead shim's socket $victim_sock is still there"
	pass "the dead shim's socket is removed"
	[ ! -e "$MGR_STATE/$E2E_NS/half-$tag" ] || fail "half-made bundle half-$tag still there"
	pass "half-made bundle removed"
	out=$(ctl exec --exec-id after "run-$tag" sh -c 'echo exec works')
	assert_eq "exec works" "$out" "exec in the recovered container"
	ctl events --since "$since" --no-follow >"$E2E_TMP/ev-$tag.json"
	jq -s -e --arg id "exit-$tag" 'map(select(.topic == "/tasks/exit" and .id == $id and .exit_status == 7)) | length > 0' \
		"$E2E_TMP/ev-$tag.json" >/dev/null || fail "no exit event (7) for exit-$tag learned at recovery"
	jq -s -e --arg id "victim-$tag" 'map(select(.topic == "/tasks/exit" and .id == $id and .exit_status == 137)) | length > 0' \
		"$E2E_TMP/ev-$tag.json" >/dev/null || fail "no exit event (137) for victim-$tag"
	jq -s -e --arg id "run-$tag" 'map(select(.topic == "/tasks/exit" and .id == $id and .exec_id == "after")) | length > 0' \
		"$E2E_TMP/ev-$tag.json" >/dev/null || fail "no exit event of the exec after restart: events do not flow"
	pass "exits learned at recovery and new events are in the event log"

	check "$sig round: the recovered container's output is intact across the restart"
	ctl kill -s KILL "run-$tag"
	ctl wait "run-$tag" || true
	ctl logs "run-$tag" >"$E2E_TMP/log-$tag"
	ticks_intact "$E2E_TMP/log-$tag"
	assert_eq "RUNNING" "$(mgr_status "tty-$tag")" "the terminal container after restart"
	ctl kill -s KILL "tty-$tag"
	ctl wait "tty-$tag" || true
	ctl logs "tty-$tag" | tr -d '\r' >"$E2E_TMP/tty-$tag"
	ticks_intact "$E2E_TMP/tty-$tag"
	[ "$(grep -c '^tick ' "$E2E_TMP/tty-$tag")" -gt 15 ] || fail "too few ticks on the terminal: the relay did not resume"
	pass "the terminal's ticks go on across the restart"
	for id in "run-$tag" "tty-$tag" "exit-$tag" "victim-$tag"; do
		ctl rm "$id"
	done
	assert_eq "" "$(ctl ls -q)" "nothing left listed"
}

round KILL
round TERM

check "a wedged shim holds up no other container, and is adopted once it answers again"
ctl run -d --rootfs "$E2E_ROOTFS" wedged sleep 100000
ctl run -d --rootfs "$E2E_ROOTFS" fine sleep 100000
wshim=$(mgr_shim_pid wedged)
[ -n "$wshim" ] || fail "no shim pid for wedged"
mgr_stop KILL
kill -STOP "$wshim"
mgr_start
# recovery has finished (mgr_start waits for it) with the wedged shim's State timed out
assert_eq "RUNNING" "$(mgr_status fine)" "the other container, recovered"
assert_eq "UNKNOWN" "$(mgr_status wedged)" "the wedged shim's container, unreachable"
grep -q "wedged: shim at .* does not answer; retrying" "$MGR_LOG" || fail "no log line for the wedged shim"
out=$(ctl exec --exec-id e fine echo ok)
assert_eq "ok" "$out" "exec in the other container while one shim is wedged"
rc=0
out=$(ctl kill wedged 2>&1) || rc=$?
assert_contains "$out" "its shim does not answer" "a call to the wedged container fails at once, saying why"
kill -CONT "$wshim"
wait_for 20 "the wedged container adopted once its shim answers (retried every 5 s)" mgr_status_is wedged RUNNING
ctl rm -f wedged
ctl rm -f fine

check "every --crash-at point: nanoshimd dies there, a restart loses nothing"
mapfile -t points < <("$NANOSHIMD" --crash-at list | awk '{ print $1 }')
[ "${#points[@]}" -ge 8 ] || fail "crash points: ${points[*]}"
mgr_stop TERM
for p in "${points[@]}"; do
	id=cp-$p
	case "$p" in
	create-* | start-*)
		mgr_start --crash-at "$p"
		ctl run -d --rootfs "$E2E_ROOTFS" "$id" sh -c 'echo up; exec sleep 100000' >/dev/null 2>&1 || true
		;;
	delete-*)
		mgr_start
		ctl run -d --rootfs "$E2E_ROOTFS" "$id" sleep 100000
		mgr_stop TERM
		mgr_start --crash-at "$p"
		ctl rm -f "$id" >/dev/null 2>&1 || true
		;;
	recover-*)
		mgr_start
		ctl run -d --rootfs "$E2E_ROOTFS" "$id" sleep 100000
		mgr_stop KILL
		"$NANOSHIMD" --state "$MGR_STATE" --root "$MGR_ROOT" --shim-binary "$MGR_SHIM" --crash-at "$p" \
			</dev/null >>"$MGR_LOG" 2>&1 &
		MGR_PID=$!
		;;
	esac
	mgr_wait_exit 20
	assert_eq 137 "$MGR_STATUS" "nanoshimd killed itself at $p"
	mgr_start
	st=$(mgr_status "$id")
	case "$p" in
	create-record-written | create-shim-started)
		# the create never answered: the container is not there, and neither is its bundle
		assert_eq "" "$st" "after $p: not listed"
		[ ! -e "$(mgr_bundle "$id")" ] || fail "after $p: bundle left"
		;;
	create-task-created | start-before)
		assert_eq "CREATED" "$st" "after $p: listed as created"
		ctl start "$id"
		assert_eq "RUNNING" "$(mgr_status "$id")" "after $p: it starts"
		;;
	start-started | recover-*)
		assert_eq "RUNNING" "$st" "after $p: running"
		out=$(ctl exec --exec-id x "$id" echo alive)
		assert_eq "alive" "$out" "after $p: exec works"
		;;
	delete-before)
		assert_eq "STOPPED (137)" "$st" "after $p: killed, not yet deleted"
		;;
	delete-task-deleted | delete-shim-shutdown)
		# the delete was under way: the restart finishes it
		assert_eq "" "$st" "after $p: deleted"
		[ ! -e "$(mgr_bundle "$id")" ] || fail "after $p: bundle left"
		;;
	*)
		fail "crash point $p has no expectation in this test"
		;;
	esac
	[ -z "$st" ] || ctl rm -f "$id"
	assert_eq "" "$(ctl ls -q)" "after $p: nothing left"
	assert_eq "" "$(mgr_run_shims)" "after $p: no shim left"
	mgr_stop TERM
	pass "crash at $p: nothing lost"
done
mgr_start
