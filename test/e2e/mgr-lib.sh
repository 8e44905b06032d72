# mgr-lib.sh — sourced by the manager's e2e tests (5x-nanoshimd-*.sh). Runs a private
# nanoshimd (own state dir, root dir and socket under one temp dir, a namespace unique to
# this run) with the shim under test, wraps nanoctl, and on EXIT removes everything this
# run created, and nothing else. Assertions and helpers come from lib.sh; no containerd.
#
# Environment (as lib.sh): RUNTIME picks the shim nanoshimd runs: io.containerd.nano.v2
# (default: SHIM_BINARY, ours) or io.containerd.runc.v2 (Debian's containerd-shim-runc-v2).
# NANOSHIMD and NANOCTL: the built binaries. MGR_RUNTIME: the OCI runtime nanoshimd
# gives its shims (default: nanoshimd's, runc).

. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

NANOSHIMD=${NANOSHIMD:-}
NANOCTL=${NANOCTL:-}
MGR_PID=

mgr_setup() {
	[ "$(id -u)" = 0 ] || e2e_skip "needs root"
	[ -n "$NANOSHIMD" ] && [ -x "$NANOSHIMD" ] || e2e_skip "nanoshimd not built (NANOSHIMD=${NANOSHIMD:-unset})"
	[ -n "$NANOCTL" ] && [ -x "$NANOCTL" ] || e2e_skip "nanoctl not built (NANOCTL=${NANOCTL:-unset})"
	command -v runc >/dev/null || e2e_skip "runc not installed"
	case "$RUNTIME" in
	io.containerd.runc.v2)
		MGR_SHIM=$(type -P containerd-shim-runc-v2) || e2e_skip "containerd-shim-runc-v2 not installed"
		;;
	*)
		[ -n "${SHIM_BINARY:-}" ] && [ -x "$SHIM_BINARY" ] ||
			e2e_skip "shim binary not built (SHIM_BINARY=${SHIM_BINARY:-unset})"
		MGR_SHIM=$(readlink -f "$SHIM_BINARY")
		;;
	esac
	e2e_begin nsm mgr_cleanup
	MGR_STATE=$E2E_TMP/state
	MGR_ROOT=$E2E_TMP/root
	MGR_ADDR=$MGR_STATE/nanoshimd.sock
	MGR_LOG=$E2E_TMP/nanoshimd.log
	E2E_ROOTFS=$E2E_TMP/rootfs
	cp -a "$E2E_CACHE_DIR/rootfs" "$E2E_ROOTFS"
	e2e_watchdog
}

# mgr_start [FLAGS...] — starts nanoshimd (this run's dirs and shim) and waits until it
# answers; MGR_PID is its pid
mgr_start() {
	MGR_STARTED=$(date -u +%Y-%m-%dT%H:%M:%S.%NZ)
	"$NANOSHIMD" --state "$MGR_STATE" --root "$MGR_ROOT" --shim-binary "$MGR_SHIM" \
		${MGR_RUNTIME:+--runtime "$MGR_RUNTIME"} "$@" \
		</dev/null >>"$MGR_LOG" 2>&1 &
	MGR_PID=$!
	local i
	for ((i = 0; i < 200; i++)); do
		kill -0 "$MGR_PID" 2>/dev/null || {
			tail -n 20 "$MGR_LOG" >&2
			fail "nanoshimd exited during startup"
		}
		ctl info >/dev/null 2>&1 && break
		sleep 0.05
	done
	[ "$i" -lt 200 ] || fail "nanoshimd did not answer within 10s"
	# and has finished recovering (its own "recovered N containers" event)
	for ((i = 0; i < 200; i++)); do
		ctl events --since "$MGR_STARTED" --no-follow 2>/dev/null |
			jq -s -e 'map(select(.topic == "/nanoshim/recovered")) | length > 0' \
				>/dev/null 2>&1 && return 0
		kill -0 "$MGR_PID" 2>/dev/null || fail "nanoshimd exited during recovery"
		sleep 0.05
	done
	fail "nanoshimd did not finish recovering within 10s"
}

# mgr_stop [SIGNAL] — TERM (default; escalates to KILL after 10 s) or KILL; only MGR_PID.
# Sets MGR_STATUS to the daemon's wait status.
mgr_stop() {
	[ -n "$MGR_PID" ] || return 0
	e2e_stop_pid "$MGR_PID" "${1:-TERM}" nanoshimd
	MGR_STATUS=$E2E_STOP_STATUS
	MGR_PID=
}

# mgr_wait_exit SECONDS — waits for the daemon to end on its own (a --crash-at point);
# sets MGR_STATUS
mgr_wait_exit() {
	local i
	for ((i = 0; i < $1 * 10; i++)); do
		kill -0 "$MGR_PID" 2>/dev/null || break
		sleep 0.1
	done
	kill -0 "$MGR_PID" 2>/dev/null && fail "nanoshimd still running after $1 s"
	MGR_STATUS=0
	wait "$MGR_PID" 2>/dev/null || MGR_STATUS=$?
	MGR_PID=
}

# ctl ARGS... — nanoctl on this run's daemon and namespace
ctl() {
	run_with_timeout 30 "$NANOCTL" --address "$MGR_ADDR" -n "$E2E_NS" "$@"
}

# mgr_status ID — the STATUS column of `nanoctl ls` for ID ("" if not listed)
mgr_status() {
	ctl ls | awk -v id="$1" '$1 == id { $1 = ""; $2 = ""; sub(/^ +/, ""); print }'
}
mgr_status_is() {
	[ "$(mgr_status "$1")" = "$2" ]
}
# mgr_pid ID — the PID column of `nanoctl ls` for ID
mgr_pid() {
	ctl ls | awk -v id="$1" '$1 == id { print $2 }'
}
# mgr_bundle ID — the bundle dir nanoshimd keeps for ID
mgr_bundle() {
	echo "$MGR_STATE/$E2E_NS/$1"
}
# mgr_shim_pid ID — the pid of ID's shim: its bundle's shim.pid (ours writes one), else
# the shim's own answer to Connect (the Go runc v2 shim writes none)
mgr_shim_pid() {
	mgr_shim_pid_of "$(mgr_bundle "$1")"
}

# shims of this run: the shim pid of each of its bundles, when alive and running MGR_SHIM
mgr_run_shims() {
	local b pid
	for b in "$MGR_STATE"/*/*/; do
		b=${b%/}
		pid=$(mgr_shim_pid_of "$b") || continue
		[ -n "$pid" ] && [ "$(readlink "/proc/$pid/exe" 2>/dev/null)" = "$MGR_SHIM" ] && echo "$pid"
	done
	return 0
}
mgr_shim_pid_of() {
	local b=$1 ns
	ns=$(basename "$(dirname "$b")")
	if [ -s "$b/shim.pid" ]; then
		cat "$b/shim.pid"
	elif [ -S "$(sed 's|^unix://||' "$b/address" 2>/dev/null)" ]; then
		run_with_timeout 10 "$NANOCTL" shim call -n "$ns" -t 2s "$b" connect 2>/dev/null | jq -r '.shim_pid // empty'
	fi
}

mgr_cleanup() {
	local rc=$? id pid t
	trap - EXIT INT TERM
	set +e
	[ -s "$E2E_TMP/timed-out" ] && rc=124
	[ "$rc" = 0 ] || [ "$rc" = 77 ] || E2E_FAILED=1
	if [ -n "${E2E_WATCHDOG_PID:-}" ]; then
		kill "$E2E_WATCHDOG_PID" 2>/dev/null
		wait "$E2E_WATCHDOG_PID" 2>/dev/null
	fi
	if [ -n "$MGR_PID" ] && kill -0 "$MGR_PID" 2>/dev/null; then
		for id in $(ctl ls -q 2>/dev/null); do
			ctl rm -f "$id" >/dev/null 2>&1
		done
		if ! e2e_shims_exit mgr_run_shims container && [ "$rc" = 0 ]; then
			rc=1
			E2E_FAILED=1
		fi
		mgr_stop TERM
	fi
	e2e_show_log "$MGR_LOG" nanoshimd
	for pid in $(mgr_run_shims); do
		e2e_log "cleanup: killing leftover shim $pid"
		kill -KILL "$pid" 2>/dev/null
	done
	for t in runc crun; do
		command -v "$t" >/dev/null || continue
		for id in "$E2E_RUNC_ROOT/$E2E_NS"/*; do
			run_with_timeout 10 "$t" --root "$E2E_RUNC_ROOT/$E2E_NS" delete --force "${id##*/}" >/dev/null 2>&1
		done
	done
	e2e_kill_cgroup_procs
	sleep 0.2
	e2e_rmdir_cgroups
	rm -rf "${E2E_RUNC_ROOT:?}/$E2E_NS"
	e2e_finish "$rc"
}
