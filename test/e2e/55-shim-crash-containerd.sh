#!/usr/bin/env bash
# Our shim SIGKILLed at each of its NANOSHIM_CRASH_AT points (`containerd-shim-nano-v2
# -crash-points`) with a real containerd 1.6 driving it. containerd hands its own
# environment to the shims it starts, so the private containerd is restarted with
# NANOSHIM_CRASH_AT=POINT for each point (and the shim's /proc/PID/environ is checked).
# For each point: the ctr command's outcome; the exit status containerd reports (its
# cleanupAfterDeadShim runs the shim's `delete` action, which reads the exit record)
# is the real one whenever the exit was on disk; what the task wrote to its file://
# log before the crash is there, whole; and nothing is left: no shim process, no runc
# container, no cgroup, no mount under the bundle (the image's overlay rootfs, which
# the shim mounts), no bundle, no shim socket in /run/containerd/s, the task gone or
# removable, the container and its snapshot removable.
#
# Where containerd's cleanup (`delete`) follows a /tasks/exit the shim had already sent
# (exit-event-sent, delete-*, and kill-runc-done when the shim reaped the process before
# runc kill returned), containerd publishes a second one: both carry the same status
# and exited_at, the real ones, from the exit record. E2E_CRASH_POINTS="P..." runs only
# those points.
# Nano only: the Go shim has no crash points.
. "$(dirname "$0")/lib.sh"
[ "$RUNTIME" = io.containerd.nano.v2 ] ||
	e2e_skip "the crash points are our shim's (NANOSHIM_CRASH_AT); the Go shim has none"
e2e_setup
e2e_import_image

# exit_statuses ID — the exit_status of each /tasks/exit of ID's init, in order
exit_statuses() {
	e2e_event_lines "$1" /tasks/exit | grep -F "\"id\":\"$1\"" | awk '{ print $7 }' |
		sed -n 's/.*"exit_status":\([0-9]*\).*/\1/p' | tr '\n' ' ' | sed 's/ $//'
}
# exit_times ID — the exited_at of each /tasks/exit of ID's init, in order
exit_times() {
	e2e_event_lines "$1" /tasks/exit | grep -F "\"id\":\"$1\"" | awk '{ print $7 }' |
		sed -n 's/.*"exited_at":"\([^"]*\)".*/\1/p' | tr '\n' ' ' | sed 's/ $//'
}
# cgroups_of ID — ID's cgroup dirs (ctr's default path /<namespace>/<id>), v1 or v2
cgroups_of() { e2e_existing /sys/fs/cgroup/*/"$E2E_NS/$1" /sys/fs/cgroup/"$E2E_NS/$1"; }
no_cgroups_of() { [ -z "$(cgroups_of "$1")" ]; }
task_listed() { ctr task ls -q | grep -qx "$1"; }
log_has() { grep -qx "$2" "$1" 2>/dev/null; }
# crashed_at POINT — the containerd log has the shim's "crash point POINT reached"
crashed_at() { grep -q "crash point $1 reached" "$E2E_TMP/containerd.log"; }

mapfile -t points < <("$SHIM_BINARY" -crash-points | awk '{ print $1 }')
[ "${#points[@]}" -ge 10 ] || fail "shim crash points: ${points[*]}"
# E2E_CRASH_POINTS="P1 P2": only those (to debug one)
[ -z "${E2E_CRASH_POINTS:-}" ] || read -r -a points <<<"$E2E_CRASH_POINTS"
pass "${#points[@]} crash points: ${points[*]}"
for p in "${points[@]}"; do
	check "shim crashed at $p"
	e2e_events_stop
	e2e_containerd_stop TERM
	NANOSHIM_CRASH_AT=$p e2e_containerd_start
	e2e_events_start "$E2E_TMP/events-$p"
	id=$(e2e_id "$p")
	log=$E2E_TMP/$p.log
	go=/tmp/go
	bundle=$(e2e_bundle "$id")
	rm -f "$log"
	# prints, waits for /tmp/go, prints again and exits 3 a moment later (the last words
	# are copied to the log before the exit)
	script='echo before; while [ ! -e /tmp/go ]; do sleep 0.05; done; echo last; sleep 0.3; exit 3'
	rc=0
	out=$(e2e_run_image -d "--log-uri=file://$log" "$id" sh -c "$script" </dev/null 2>&1) || rc=$?
	shim='' init='' want_exits='' want_log=''
	case "$p" in
	create-rootfs-mounted | create-runc-done)
		assert_ne 0 "$rc" "ctr run fails: the shim died in Create ($out)"
		want_exits=none # the task never existed for containerd
		;;
	start-runc-done)
		assert_ne 0 "$rc" "ctr run fails: the shim died in Start ($out)"
		# the process ran and was killed by the cleanup: nothing on disk, SIGKILL's status
		want_exits=137
		;;
	*)
		assert_eq 0 "$rc" "ctr run -d ($out)"
		shim=$(e2e_shim_pid "$id")
		init=$(e2e_task_pid "$id")
		tr '\0' '\n' <"/proc/$shim/environ" | grep -qx "NANOSHIM_CRASH_AT=$p" ||
			fail "NANOSHIM_CRASH_AT=$p not in the environment of shim $shim"
		pass "shim $shim has NANOSHIM_CRASH_AT=$p from containerd"
		wait_for 10 "$id wrote its first line to the log" log_has "$log" before
		want_log=before
		assert_ne "" "$(e2e_mounts_under "$bundle/rootfs")" "the image's rootfs mounted by the shim at $bundle/rootfs"
		assert_ne "" "$(cgroups_of "$id")" "cgroups of $id while it runs"
		;;
	esac
	case "$p" in
	exec-start-runc-done)
		rc=0
		out=$(ctr task exec --exec-id x "$id" echo hi </dev/null 2>&1) || rc=$?
		assert_ne 0 "$rc" "ctr task exec fails: the shim died in the exec's Start ($out)"
		want_exits=137 # init still running, killed by the cleanup
		;;
	kill-runc-done)
		rc=0
		out=$(ctr task kill -s KILL "$id" 2>&1) || rc=$?
		assert_ne 0 "$rc" "ctr task kill fails: the shim died in Kill ($out)"
		# the cleanup's; before it, the shim's own when it reaped the process and sent
		# the exit before runc kill's reply came back
		want_exits="137|137 137"
		;;
	esac
	case "$p" in
	exit-* | delete-*)
		# the task exits 3 on its own (/tmp/go in its rootfs, seen through the bundle)
		touch "$bundle/rootfs$go"
		want_log=$'before\nlast'
		case "$p" in
		# on disk only, or queued: containerd hears it from its cleanup (the record)
		exit-recorded | exit-event-queued) want_exits=3 ;;
		# from the shim, then again from the cleanup (the record)
		*) want_exits="3 3" ;;
		esac
		;;
	esac
	case "$p" in
	delete-*)
		wait_for 10 "task $id stopped" e2e_task_status_is "$id" STOPPED
		wait_for 5 "/tasks/exit 3 of $id from the live shim" e2e_event_seen "$id" /tasks/exit '"exit_status":3'
		rc=0
		out=$(ctr task rm "$id" 2>&1) || rc=$?
		assert_ne 0 "$rc" "ctr task rm fails: the shim died in Delete ($out)"
		;;
	esac

	wait_for 10 "the shim reached $p" crashed_at "$p"
	wait_for 10 "no shim of $id left" e2e_no_shims_of "$id"
	if [ "$want_exits" = none ]; then
		sleep 0.5 # (containerd's cleanup, if any, publishes within milliseconds)
		assert_eq "" "$(exit_statuses "$id")" "no /tasks/exit of $id"
	else
		# containerd's cleanup after the dead shim: a /tasks/exit and a /tasks/delete
		# carrying what the shim's delete action reported
		wait_for 10 "/tasks/delete of $id" e2e_event_seen "$id" /tasks/delete
		got=$(exit_statuses "$id")
		case "|$want_exits|" in
		*"|$got|"*) pass "exit statuses in the /tasks/exit events of $id: [$got]" ;;
		*) fail "exit statuses in the /tasks/exit events of $id: expected [$want_exits], got [$got]" ;;
		esac
		want_status=${got##* }
		assert_contains "$(e2e_event_json "$id" /tasks/delete)" "\"exit_status\":$want_status" \
			"/tasks/delete of $id: status $want_status"
		if [ -n "$init" ]; then
			assert_contains "$(e2e_event_json "$id" /tasks/delete)" "\"pid\":$init," "/tasks/delete of $id: pid $init"
		fi
		times=$(exit_times "$id")
		if [ "${times% *}" != "$times" ]; then
			assert_eq "${times% *}" "${times#* }" "the cleanup's exited_at is the shim's (the real exit time, from the record)"
		fi
	fi
	if task_listed "$id"; then
		ctr task rm -f "$id" >/dev/null
		pass "task $id removed with ctr task rm -f"
	fi
	assert_eq "" "$(ctr task ls -q | grep -x "$id" || true)" "task $id gone"
	if [ -n "$want_log" ]; then
		assert_eq "$want_log" "$(cat "$log")" "the file:// log of $id, whole"
	fi
	ctr containers rm "$id"
	assert_eq "" "$(ctr snapshots ls | awk -v id="$id" '$1 == id')" "snapshot of $id removed"
	assert_eq "" "$(e2e_existing "$E2E_RUNC_ROOT/$E2E_NS/$id")" "no runc container $id"
	assert_eq "" "$(e2e_mounts_under "$bundle")" "no mount under the bundle"
	wait_for 5 "no cgroup of $id" no_cgroups_of "$id"
	wait_for 5 "bundle $bundle removed" test ! -e "$bundle"
	assert_eq "" "$(e2e_existing "$(e2e_socket "$id")")" "no shim socket of $id in $E2E_SOCKET_DIR"
	assert_eq "" "$(e2e_run_shims)" "no shim of this run alive"
done
