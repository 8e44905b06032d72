#!/usr/bin/env bash
# Our shim crashed at each of its NANOSHIM_CRASH_AT points under nanoshimd: whatever
# the point, nanoshimd cleans up with the shim's delete action, reports what happened,
# and leaves nothing behind (no runc container, no process, no shim, no bundle); an
# exit already on disk when the shim died keeps its real status.
. "$(dirname "$0")/mgr-lib.sh"
[ "$RUNTIME" = io.containerd.nano.v2 ] || e2e_skip "the crash points are our shim's (NANOSHIM_CRASH_AT); the Go shim has none"
mgr_setup

runc_left() { ls "$E2E_RUNC_ROOT/$E2E_NS" 2>/dev/null; }
not_listed() { [ -z "$(mgr_status "$1")" ]; }
shim_gone() { [ -z "$(mgr_run_shims)" ]; }
stopped() { case "$(mgr_status "$1")" in "STOPPED ("*) return 0 ;; esac; return 1; }

mapfile -t points < <("$SHIM_BINARY" -crash-points | awk '{ print $1 }')
[ "${#points[@]}" -ge 10 ] || fail "shim crash points: ${points[*]}"
for p in "${points[@]}"; do
	check "shim crashed at $p"
	id=sc-$p
	NANOSHIM_CRASH_AT=$p mgr_start
	case "$p" in
	create-rootfs-mounted | create-runc-done)
		rc=0
		out=$(ctl run -d --rootfs "$E2E_ROOTFS" "$id" sleep 100000 2>&1) || rc=$?
		[ "$rc" != 0 ] || fail "run succeeded although the shim died in Create"
		assert_contains "$out" "$id" "the error names the container"
		wait_for 10 "$id not listed" not_listed "$id"
		grep -q "$id: its shim died during create; cleaning up with its delete action" "$MGR_LOG" ||
			fail "nanoshimd did not see the shim die in Create"
		;;
	start-runc-done)
		rc=0
		ctl run -d --rootfs "$E2E_ROOTFS" "$id" sleep 100000 >/dev/null 2>&1 || rc=$?
		[ "$rc" != 0 ] || fail "run succeeded although the shim died in Start"
		wait_for 10 "$id reported stopped" stopped "$id"
		assert_eq "STOPPED (137)" "$(mgr_status "$id")" "status of a container whose shim died as it started"
		;;
	exec-start-runc-done)
		ctl run -d --rootfs "$E2E_ROOTFS" "$id" sleep 100000
		rc=0
		ctl exec --exec-id e "$id" echo hi >/dev/null 2>&1 || rc=$?
		[ "$rc" != 0 ] || fail "exec succeeded although the shim died in its Start"
		wait_for 10 "$id reported stopped" stopped "$id"
		assert_eq "STOPPED (137)" "$(mgr_status "$id")" "status of a container whose shim died in an exec's Start"
		;;
	exit-recorded | exit-event-queued | exit-event-sent)
		ctl run -d --rootfs "$E2E_ROOTFS" "$id" sh -c 'sleep 0.3; exit 3'
		wait_for 10 "$id reported stopped" stopped "$id"
		assert_eq "STOPPED (3)" "$(mgr_status "$id")" "the recorded exit status survives the shim's death"
		;;
	kill-runc-done)
		ctl run -d --rootfs "$E2E_ROOTFS" "$id" sh -c 'trap "exit 143" TERM; while :; do sleep 0.1; done'
		ctl kill "$id" >/dev/null 2>&1 || true
		wait_for 10 "$id reported stopped" stopped "$id"
		;;
	delete-runc-done | delete-event-queued)
		ctl run -d --rootfs "$E2E_ROOTFS" "$id" sh -c 'exit 5'
		ctl wait "$id" || true
		rc=0
		ctl rm "$id" >/dev/null 2>&1 || rc=$?
		[ "$rc" != 0 ] || fail "rm succeeded although the shim died in Delete"
		wait_for 10 "$id's shim gone" shim_gone
		ctl rm "$id"
		assert_eq "" "$(mgr_status "$id")" "deleted after the shim died in Delete"
		;;
	*)
		fail "crash point $p has no expectation in this test"
		;;
	esac
	case "$p" in create-* | delete-*) ;; *)
		# the shim is gone while the container is still listed: it died, no delete ended it
		assert_eq "" "$(mgr_run_shims)" "no shim serving $id any more"
		grep -q "shim of $E2E_NS/$id: connection lost" "$MGR_LOG" || fail "nanoshimd did not see $id's shim die"
		pass "$id's shim died at $p"
		;;
	esac
	[ -z "$(mgr_status "$id")" ] || ctl rm -f "$id"
	wait_for 10 "no shim left" shim_gone
	assert_eq "" "$(runc_left)" "no runc container left"
	assert_eq "" "$(ls "$MGR_STATE/$E2E_NS" 2>/dev/null)" "no bundle left"
	mgr_stop TERM
done
