# lib.sh — sourced by every e2e test. Starts a private containerd (own root, state, sockets
# and config under one temp dir, a namespace unique to this run), wraps ctr, provides
# assertions, and on EXIT removes everything this run created, and nothing else.
#
# Environment:
#   RUNTIME        runtime name under test: io.containerd.nano.v2 (default) or
#                  io.containerd.runc.v2 (Debian's Go shim, to validate the tests)
#   SHIM_BINARY    path of the built containerd-shim-nano-v2 (needed for the nano runtime)
#   SHIM_AS_RUNC   1: install SHIM_BINARY as containerd-shim-runc-v2 on containerd's PATH and
#                  run with --runtime io.containerd.runc.v2, so ctr's --runc-binary etc.
#                  reach our shim as containerd.runc.v1.Options
#   E2E_CACHE_DIR  where make-image.sh keeps the rootfs and image (default: build dir)
#   E2E_LOG_DIR    where the containerd log of a failed test is kept
#   E2E_TIMEOUT    seconds before the watchdog ends a test (default 100)
#   E2E_KEEP       1: on failure, leave the temp dir (containerd is still stopped)
#   E2E_TRACE_RPCS DIR: wrap the shim so that every daemon it starts is straced into DIR
#                  (trace-rpcs.sh decodes those traces into the ttrpc calls made)
# Tests exit 77 (ctest SKIP_RETURN_CODE) when the machine cannot run them, and append the
# skip to NANOSHIM_SKIP_LOG when set (scripts/test.sh fails on one not in
# test/allowed-skips.txt).

set -euo pipefail
shopt -s nullglob

E2E_SRC_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
E2E_TEST_NAME=$(basename "$0" .sh)
RUNTIME=${RUNTIME:-io.containerd.nano.v2}
SHIM_AS_RUNC=${SHIM_AS_RUNC:-0}
E2E_CACHE_DIR=${E2E_CACHE_DIR:-$E2E_SRC_DIR/../../build/test/e2e/cache}
E2E_LOG_DIR=${E2E_LOG_DIR:-$E2E_CACHE_DIR/../logs}
E2E_TIMEOUT=${E2E_TIMEOUT:-100}
E2E_CTR_TIMEOUT=${E2E_CTR_TIMEOUT:-30}
E2E_IMAGE=docker.io/nanoshim/busybox:test
E2E_PATH_ENV=PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
# The shim's socket dir and runc's default root are compile-time defaults of containerd
# 1.6 and its shims, not under containerd's --state: shared with any other containerd.
E2E_SOCKET_DIR=/run/containerd/s
E2E_RUNC_ROOT=/run/containerd/runc

E2E_TMP=
E2E_CONTAINERD_PID=
E2E_FAILED=0
E2E_EVENTS_PID=

# ---------------------------------------------------------------------------------------
# output and assertions

e2e_log() { printf '%s\n' "$*" >&2; }
# check DESCRIPTION — announces what the next assertions verify
check() { printf -- '--- %s\n' "$*"; }
pass() { printf 'ok   %s\n' "$*"; }
fail() {
	printf 'FAIL %s\n' "$*" >&2
	E2E_FAILED=1
	exit 1
}
# e2e_skip REASON — exit 77 (ctest's skip). The skip is also appended to
# NANOSHIM_SKIP_LOG when set, as "SKIP e2e.<name>: REASON" (e2e-runc.<name> against the Go
# shim), for scripts/check-skips.sh: CI fails on a skip not in test/allowed-skips.txt.
e2e_skip() {
	local name=${E2E_TEST_NAME#[0-9][0-9]-} prefix=e2e
	if [ "$RUNTIME" = io.containerd.runc.v2 ] && [ "$SHIM_AS_RUNC" != 1 ]; then
		prefix=e2e-runc
	fi
	printf 'SKIP %s: %s\n' "$E2E_TEST_NAME" "$*"
	if [ -n "${NANOSHIM_SKIP_LOG:-}" ]; then
		printf 'SKIP %s.%s: %s\n' "$prefix" "$name" "$*" >>"$NANOSHIM_SKIP_LOG"
	fi
	exit 77
}

# assert_eq EXPECTED ACTUAL DESCRIPTION
assert_eq() {
	if [ "$1" != "$2" ]; then
		fail "$3: expected [$1], got [$2]"
	fi
	pass "$3: [$2]"
}
# assert_ne UNEXPECTED ACTUAL DESCRIPTION
assert_ne() {
	if [ "$1" = "$2" ]; then
		fail "$3: got [$2]"
	fi
	pass "$3: [$2]"
}
# assert_contains HAYSTACK NEEDLE DESCRIPTION (fixed string)
assert_contains() {
	if [[ "$1" != *"$2"* ]]; then
		fail "$3: [$2] not found in [$1]"
	fi
	pass "$3"
}
# assert_not_contains HAYSTACK NEEDLE DESCRIPTION
assert_not_contains() {
	if [[ "$1" == *"$2"* ]]; then
		fail "$3: [$2] found in [$1]"
	fi
	pass "$3"
}
# assert_match STRING ERE DESCRIPTION
assert_match() {
	if ! [[ "$1" =~ $2 ]]; then
		fail "$3: [$1] does not match /$2/"
	fi
	pass "$3: [$1]"
}
# assert_status EXPECTED DESCRIPTION CMD... — runs CMD, checks its exit status
assert_status() {
	local want=$1 what=$2 got=0
	shift 2
	"$@" || got=$?
	assert_eq "$want" "$got" "$what"
}

# wait_for SECONDS DESCRIPTION CMD... — polls CMD every 0.1 s until it succeeds
wait_for() {
	local secs=$1 what=$2 deadline
	shift 2
	deadline=$(($(date +%s%N) + secs * 1000000000))
	until "$@" >/dev/null 2>&1; do
		if [ "$(date +%s%N)" -ge "$deadline" ]; then
			fail "$what: not within ${secs}s"
		fi
		sleep 0.1
	done
	pass "$what"
}

# run_with_timeout SECONDS CMD... — CMD, killed after SECONDS (status 124) or, if it
# ignores SIGTERM, 5 s later with SIGKILL (137). --foreground keeps CMD in our process
# group, so ctr -t works under a pty.
run_with_timeout() {
	local secs=$1
	shift
	timeout --foreground -k 5 "$secs" "$@"
}

# ---------------------------------------------------------------------------------------
# containerd and ctr

# ctr ARGS... — the real ctr against this run's containerd and namespace, time-bounded.
# For the commands that make stdio FIFOs (run, task start/exec), --fifo-dir puts them
# under this run's temp dir instead of the shared /run/containerd/fifo (ctr leaves the
# FIFOs of detached processes behind there).
ctr() {
	local fifo=()
	case "${1:-} ${2:-}" in
	"run "* | "task start" | "task exec" | "tasks start" | "tasks exec" | "t start" | "t exec")
		fifo=(--fifo-dir="$E2E_FIFO_DIR")
		;;
	esac
	if [ "${#fifo[@]}" -gt 0 ] && [ "$1" != run ]; then
		run_with_timeout "$E2E_CTR_TIMEOUT" /usr/bin/env ctr --address "$E2E_ADDR" --namespace "$E2E_NS" \
			"$1" "$2" "${fifo[@]}" "${@:3}"
	else
		run_with_timeout "$E2E_CTR_TIMEOUT" /usr/bin/env ctr --address "$E2E_ADDR" --namespace "$E2E_NS" \
			"${1:-}" "${fifo[@]}" "${@:2}"
	fi
}

# e2e_id NAME — a container id unique to this run (recorded for cleanup)
e2e_id() {
	local id="$1-$E2E_TAG"
	echo "$id" >>"$E2E_TMP/ids"
	echo "$id"
}

# e2e_run [--flag=value...] ID [CMD ARG...] — ctr run on the busybox rootfs with the
# runtime under test. Flags must use the --name=value form. (ctr's spec for --rootfs has
# no PATH — only an image config would bring one — so it is set here.)
e2e_run() {
	local flags=()
	while [ $# -gt 0 ] && [[ "$1" == -* ]]; do
		flags+=("$1")
		shift
	done
	ctr run --runtime "$CTR_RUNTIME" "${E2E_RUNTIME_FLAGS[@]}" --env="$E2E_PATH_ENV" \
		"${flags[@]}" --rootfs "$E2E_ROOTFS" "$@"
}

# e2e_run_image [--flag=value...] ID [CMD ARG...] — ctr run of the imported image
e2e_run_image() {
	local flags=()
	while [ $# -gt 0 ] && [[ "$1" == -* ]]; do
		flags+=("$1")
		shift
	done
	ctr run --runtime "$CTR_RUNTIME" "${E2E_RUNTIME_FLAGS[@]}" "${flags[@]}" \
		"$E2E_IMAGE" "$@"
}

e2e_import_image() {
	ctr images import "$E2E_CACHE_DIR/busybox-oci.tar" >/dev/null
}

e2e_bundle() { echo "$E2E_STATE/io.containerd.runtime.v2.task/$E2E_NS/$1"; }

# e2e_socket ID — the shim socket path containerd 1.6 expects for ID:
# /run/containerd/s/<hex sha256("<containerd address>/<namespace>/<id>")>
e2e_socket() {
	local h
	h=$(printf '%s' "$E2E_ADDR/$E2E_NS/$1" | sha256sum | awk '{print $1}')
	echo "$E2E_SOCKET_DIR/$h"
}

# e2e_task_field ID COLUMN — from `ctr task ls` (TASK PID STATUS): 2 = pid, 3 = status
e2e_task_field() {
	ctr task ls | awk -v id="$1" -v col="$2" '$1 == id { print $col }'
}
e2e_task_status() { e2e_task_field "$1" 3; }
e2e_task_pid() { e2e_task_field "$1" 2; }
# e2e_task_status_is ID STATUS — for wait_for
e2e_task_status_is() { [ "$(e2e_task_status "$1")" = "$2" ]; }

# e2e_cmdline_has PID ARG VALUE — /proc/PID/cmdline has ARG immediately followed by VALUE
e2e_cmdline_has() {
	local -a argv
	local i
	mapfile -d '' -t argv 2>/dev/null <"/proc/$1/cmdline" || return 1
	for ((i = 0; i + 1 < ${#argv[@]}; i++)); do
		if [ "${argv[i]}" = "$2" ] && [ "${argv[i + 1]}" = "$3" ]; then
			return 0
		fi
	done
	return 1
}

# e2e_run_shims [ID] — pids of shim processes of this run (of ID only, if given): their
# command line carries this run's unique namespace (-namespace NS) or this containerd's
# address (-address ADDR). Never matches another run's or the system's shims.
e2e_run_shims() {
	local d pid
	for d in /proc/[0-9]*; do
		pid=${d#/proc/}
		[ "$pid" != "$$" ] || continue
		if e2e_cmdline_has "$pid" -namespace "$E2E_NS" || e2e_cmdline_has "$pid" -address "$E2E_ADDR"; then
			if [ -n "${1:-}" ] && ! e2e_cmdline_has "$pid" -id "$1"; then
				continue
			fi
			echo "$pid"
		fi
	done
}

# e2e_no_shims_of ID — no shim process of this run serves ID (a function, for wait_for:
# `wait_for … test -z "$(e2e_run_shims ID)"` would expand the $(…) once, not poll)
e2e_no_shims_of() { [ -z "$(e2e_run_shims "$1")" ]; }

# e2e_shim_pid ID — the long-lived shim serving ID: the bundle's shim.pid when the shim
# wrote one (ours does, the Go runc.v2 shim does not), else the one matching process
# without an action word (start/delete are short-lived).
e2e_shim_pid() {
	local f pid
	f=$(e2e_bundle "$1")/shim.pid
	if [ -s "$f" ]; then
		cat "$f"
		return
	fi
	for pid in $(e2e_run_shims "$1"); do
		if ! tr '\0' '\n' 2>/dev/null <"/proc/$pid/cmdline" | grep -qxE 'start|delete'; then
			echo "$pid"
			return
		fi
	done
}

# e2e_expected_shim_binary — the executable the shim processes of this run must be
# e2e_runc_subcommand — lines for a runc wrapper script (printed, to put in its text):
# they set sub to runc's subcommand, the first argument that is not a global flag (or a
# global flag's value)
e2e_runc_subcommand() {
	cat <<'SNIPPET'
sub= skip=0
for a in "$@"; do
	if [ $skip = 1 ]; then skip=0; continue; fi
	case $a in
	--root | --log | --log-format | --criu) skip=1 ;;
	--*) ;;
	*) sub=$a; break ;;
	esac
done
SNIPPET
}

e2e_expected_shim_binary() {
	if [ "$RUNTIME" = io.containerd.runc.v2 ] && [ "$SHIM_AS_RUNC" != 1 ]; then
		readlink -f "$(PATH=/usr/local/bin:/usr/bin:/bin command -v containerd-shim-runc-v2)"
	else
		readlink -f "$SHIM_BINARY"
	fi
}

# assert_shim_binary ID — the shim serving ID runs the binary under test
assert_shim_binary() {
	local pid exe
	pid=$(e2e_shim_pid "$1")
	[ -n "$pid" ] || fail "no shim process found for $1"
	exe=$(readlink -f "/proc/$pid/exe" 2>/dev/null || true)
	assert_eq "$(e2e_expected_shim_binary)" "$exe" "shim of $1 (pid $pid) runs the binary under test"
}

# e2e_cpu_ticks PID — utime + stime of PID, in clock ticks (/proc/PID/stat fields 14, 15;
# parsed after the ")" that ends the command name, which may hold spaces)
e2e_cpu_ticks() {
	local st
	st=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
	st=${st##*) }
	# shellcheck disable=SC2086
	set -- $st
	echo $((${12} + ${13}))
}

# assert_shim_quiet PID [SECONDS] — a shim with nothing to do uses no CPU: its
# utime+stime over SECONDS (default 1) grows by at most 2 ticks (a busy loop takes one
# tick per 10 ms)
assert_shim_quiet() {
	local pid=$1 secs=${2:-1} t0 t1
	t0=$(e2e_cpu_ticks "$pid") || fail "shim $pid: no /proc/$pid/stat"
	sleep "$secs"
	t1=$(e2e_cpu_ticks "$pid") || fail "shim $pid exited while measured"
	if [ $((t1 - t0)) -gt 2 ]; then
		fail "shim $pid is not quiet: $((t1 - t0)) ticks of CPU in ${secs}s with nothing to do ($(getconf CLK_TCK)/s)"
	fi
	pass "shim $pid quiet: $((t1 - t0)) ticks of CPU in ${secs}s"
}

# shimcall (built with the tests): one Task call straight on a shim's socket
E2E_SHIMCALL=${E2E_SHIMCALL:-$E2E_CACHE_DIR/../shimcall}
# e2e_shimcall SOCKET|BUNDLE [-t SECONDS] [-e N] ARGS... — shimcall as containerd calls
# (this run's namespace in the metadata)
e2e_shimcall() {
	local target=$1 opts=()
	shift
	while [[ "${1:-}" == -* ]]; do
		opts+=("$1" "$2")
		shift 2
	done
	"$E2E_SHIMCALL" -n "$E2E_NS" "${opts[@]}" "$target" "$@"
}
# e2e_shim_reply SOCKET|BUNDLE ARGS... — the first line of the answer: "OK" or
# "<Code>: <message>"
e2e_shim_reply() {
	local out
	out=$(e2e_shimcall "$@" 2>&1) || true
	printf '%s\n' "${out%%$'\n'*}"
}

# e2e_fd_count PID — how many fds PID has open
e2e_fd_count() {
	local f=("/proc/$1/fd/"*)
	echo "${#f[@]}"
}
# e2e_fds_settled PID — PID's fd count is the same three times 0.2 s apart (for
# wait_for: a baseline taken once the shim closed what earlier calls left open)
e2e_fds_settled() {
	local a b c
	a=$(e2e_fd_count "$1")
	sleep 0.2
	b=$(e2e_fd_count "$1")
	sleep 0.2
	c=$(e2e_fd_count "$1")
	[ "$a" = "$b" ] && [ "$b" = "$c" ]
}

# e2e_existing PATH... — prints the PATHs that exist (for globs: nullglob is on, so an
# unmatched glob expands to nothing and nothing is printed)
e2e_existing() {
	local p
	for p in "$@"; do
		[ ! -e "$p" ] && [ ! -L "$p" ] || echo "$p"
	done
}

# e2e_mounts_under DIR — mount points at or below DIR (from /proc/self/mountinfo)
e2e_mounts_under() {
	awk -v d="$1" '$5 == d || index($5, d "/") == 1 { print $5 }' /proc/self/mountinfo
}

# e2e_events_start FILE — `ctr events` (every topic of every namespace) into FILE
e2e_events_start() {
	E2E_EVENTS_FILE=$1
	: >"$E2E_EVENTS_FILE"
	/usr/bin/env ctr --address "$E2E_ADDR" events >"$E2E_EVENTS_FILE" 2>&1 </dev/null &
	E2E_EVENTS_PID=$!
	# The subscription must be in place before the first event the test counts: publish
	# a sentinel (creating a namespace publishes /namespaces/create) until one shows up in
	# the output. A sentinel published before the subscription is lost, hence a new one
	# every 0.5 s. The sentinel namespaces are not the test's namespace, whose events the
	# tests filter on.
	local n=0 sentinel deadline=$(($(date +%s%N) + 30000000000)) i seen=
	while [ -z "$seen" ]; do
		[ "$(date +%s%N)" -lt "$deadline" ] || fail "ctr events: no sentinel event within 30s"
		kill -0 "$E2E_EVENTS_PID" 2>/dev/null || fail "ctr events exited: $(cat "$E2E_EVENTS_FILE")"
		n=$((n + 1))
		sentinel=$E2E_NS-sentinel-$n
		ctr namespaces create "$sentinel" >/dev/null
		for ((i = 0; i < 5; i++)); do
			if grep -qF "/namespaces/create {\"name\":\"$sentinel\"" "$E2E_EVENTS_FILE"; then
				seen=1
				break
			fi
			sleep 0.1
		done
	done
	for ((i = 1; i <= n; i++)); do
		ctr namespaces rm "$E2E_NS-sentinel-$i" >/dev/null 2>&1 || true
	done
}
e2e_events_stop() {
	if [ -n "$E2E_EVENTS_PID" ]; then
		kill "$E2E_EVENTS_PID" 2>/dev/null || true
		wait "$E2E_EVENTS_PID" 2>/dev/null || true
		E2E_EVENTS_PID=
	fi
}
# Captured lines: DATE TIME +0000 UTC NAMESPACE TOPIC JSON
# e2e_event_lines ID TOPIC — captured events of this namespace with TOPIC whose payload
# has "container_id":"ID", in arrival order, each prefixed with its line number
e2e_event_lines() {
	awk -v ns="$E2E_NS" -v t="$2" '$5 == ns && $6 == t { print NR ":" $0 }' "$E2E_EVENTS_FILE" 2>/dev/null |
		grep -F "\"container_id\":\"$1\""
}
# e2e_event_seen ID TOPIC [JSON-FRAGMENT] — such an event (with the fragment) arrived
e2e_event_seen() {
	e2e_event_lines "$1" "$2" | grep -qF "${3:-}"
}
# e2e_event_pos ID TOPIC [JSON-FRAGMENT] — line number of the first such event
e2e_event_pos() {
	e2e_event_lines "$1" "$2" | grep -F "${3:-}" | head -n 1 | cut -d: -f1
}
# e2e_event_json ID TOPIC [JSON-FRAGMENT] — payload of the first such event
e2e_event_json() {
	e2e_event_lines "$1" "$2" | grep -F "${3:-}" | head -n 1 | awk '{ print $7 }'
}

# ---------------------------------------------------------------------------------------
# cgroups (v1 or hybrid: controllers under /sys/fs/cgroup/<controller>; v2: unified)

e2e_cgroup_mode() {
	if [ "$(stat -fc %T /sys/fs/cgroup)" = cgroup2fs ]; then echo v2; else echo v1; fi
}
# e2e_cgroup_dir PID [CONTROLLER] — the cgroup directory of PID (for CONTROLLER on v1)
e2e_cgroup_dir() {
	if [ "$(e2e_cgroup_mode)" = v2 ]; then
		echo "/sys/fs/cgroup$(awk -F: '$1 == "0" { print $3 }' "/proc/$1/cgroup")"
	else
		echo "/sys/fs/cgroup/$2$(awk -F: -v c="$2" '{ n = split($2, a, ","); for (i = 1; i <= n; i++) if (a[i] == c) print $3 }' "/proc/$1/cgroup")"
	fi
}
# e2e_cgroup_noswap PID — keep the memory of PID's cgroup out of swap, so a memory limit
# ends in an OOM kill even on a host with swap
e2e_cgroup_noswap() {
	local d
	if [ "$(e2e_cgroup_mode)" = v2 ]; then
		d=$(e2e_cgroup_dir "$1")
		[ ! -e "$d/memory.swap.max" ] || echo 0 >"$d/memory.swap.max"
	else
		d=$(e2e_cgroup_dir "$1" memory)
		echo 0 >"$d/memory.swappiness" 2>/dev/null || true
		if [ -e "$d/memory.memsw.limit_in_bytes" ]; then
			cat "$d/memory.limit_in_bytes" >"$d/memory.memsw.limit_in_bytes"
		fi
	fi
}
# e2e_oom_task ID — a detached task with a 16 MiB memory limit whose init is OOM-killed
# (busybox tail buffers /dev/zero, which has no newline, without bound); returns once
# the task is STOPPED. The process waits for /tmp/go so swap can be switched off first.
# Sets E2E_OOM_CGROUP: the task's memory cgroup dir (it lasts until the task is deleted).
e2e_oom_task() {
	local pid
	rm -f "$E2E_ROOTFS/tmp/go"
	e2e_run -d --null-io --memory-limit=16777216 "$1" \
		sh -c 'while [ ! -e /tmp/go ]; do sleep 0.05; done; exec tail /dev/zero' </dev/null
	pid=$(e2e_task_pid "$1")
	E2E_OOM_CGROUP=$(e2e_cgroup_dir "$pid" memory)
	e2e_cgroup_noswap "$pid"
	touch "$E2E_ROOTFS/tmp/go"
	wait_for 20 "task $1 (16 MiB limit, tail /dev/zero) stopped" e2e_task_status_is "$1" STOPPED
}

e2e_write_config() {
	cat >"$E2E_TMP/config.toml" <<EOF
version = 2
root = "$E2E_ROOT"
state = "$E2E_STATE"
# Only what ctr run/exec/images import needs: no CRI, no other snapshotters. (The v1
# runtime plugin must stay: 1.6's tasks service refuses to load without one.)
disabled_plugins = [
  "io.containerd.grpc.v1.cri",
  "io.containerd.snapshotter.v1.aufs",
  "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.devmapper",
  "io.containerd.snapshotter.v1.zfs",
  "io.containerd.snapshotter.v1.native",
  "io.containerd.internal.v1.opt",
  "io.containerd.tracing.processor.v1.otlp",
  "io.containerd.internal.v1.tracing",
]

[grpc]
  address = "$E2E_ADDR"

[ttrpc]
  address = "$E2E_ADDR.ttrpc"

[debug]
  address = ""
  level = "debug"

[metrics]
  address = ""
EOF
	# the snapshotter used for images (ctr's default is overlayfs; say so explicitly)
	export CONTAINERD_SNAPSHOTTER=overlayfs
}

# e2e_containerd_start — starts (or restarts, same root/state/config) the private daemon
e2e_containerd_start() {
	PATH="$E2E_TMP/bin:$PATH" containerd --config "$E2E_TMP/config.toml" \
		</dev/null >>"$E2E_TMP/containerd.log" 2>&1 &
	E2E_CONTAINERD_PID=$!
	echo "$E2E_CONTAINERD_PID" >"$E2E_TMP/containerd.pid"
	local i
	for ((i = 0; i < 300; i++)); do
		if ! kill -0 "$E2E_CONTAINERD_PID" 2>/dev/null; then
			tail -n 30 "$E2E_TMP/containerd.log" >&2
			fail "containerd exited during startup"
		fi
		if run_with_timeout 5 /usr/bin/env ctr --address "$E2E_ADDR" version >/dev/null 2>&1; then
			return 0
		fi
		sleep 0.1
	done
	fail "containerd did not answer ctr version within 30s"
}

# e2e_containerd_stop [SIGNAL] — SIGTERM (default) or SIGKILL; SIGTERM escalates to
# SIGKILL after 10 s. Only ever the pid this run started.
e2e_containerd_stop() {
	[ -n "$E2E_CONTAINERD_PID" ] || return 0
	e2e_stop_pid "$E2E_CONTAINERD_PID" "${1:-TERM}" containerd
	E2E_CONTAINERD_PID=
	rm -f "$E2E_TMP/containerd.pid"
}

# e2e_stop_pid PID SIGNAL NAME — a daemon this run started (a child of this shell):
# SIGNAL, then SIGKILL if it is still there 10 s later; E2E_STOP_STATUS gets its wait
# status
e2e_stop_pid() {
	local pid=$1 sig=$2 i
	# bash reports a killed background job ("Killed ...") on its stderr whenever it
	# happens to reap it: keep that out of the test's output
	exec 3>&2 2>/dev/null
	kill -"$sig" "$pid" 2>/dev/null || true
	for ((i = 0; i < 100; i++)); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "$pid" 2>/dev/null; then
		echo "$3 $pid ignored SIG$sig for 10s; SIGKILL" >&3
		kill -KILL "$pid" 2>/dev/null || true
	fi
	E2E_STOP_STATUS=0
	wait "$pid" 2>/dev/null || E2E_STOP_STATUS=$?
	exec 2>&3 3>&-
}

# crun 1.8 refuses a hybrid cgroup layout (v1 controllers + a cgroup2 mount at
# /sys/fs/cgroup/unified) while the hugetlb controller is still attached to that cgroup2
# mount: it then finds no v1 hierarchy for hugetlb. Mounting a v1 hugetlb hierarchy
# fixes it. It is left mounted on exit: harmless for everything else, and other runs or
# tests may rely on it concurrently. On a pure cgroup2 host (Debian 12's default) or a
# host that already has it, nothing is done.
e2e_fix_hybrid_hugetlb() {
	[ "$(stat -fc %T /sys/fs/cgroup 2>/dev/null)" = tmpfs ] || return 0
	[ -r /sys/fs/cgroup/unified/cgroup.controllers ] || return 0
	grep -qw hugetlb /sys/fs/cgroup/unified/cgroup.controllers || return 0
	(
		flock 8
		# mountinfo: optional fields end at "-", then fstype, source, super options
		if ! awk '{ for (i = 7; i < NF && $i != "-"; i++); if ($(i + 1) == "cgroup" && $(i + 3) ~ /(^|,)hugetlb(,|$)/) found = 1 }
			END { exit !found }' /proc/self/mountinfo; then
			mkdir -p /sys/fs/cgroup/hugetlb &&
				mount -t cgroup -o hugetlb cgroup /sys/fs/cgroup/hugetlb
		fi
	) 8>"$E2E_CACHE_DIR/.hugetlb.lock" || e2e_log "warning: could not mount the v1 hugetlb hierarchy"
}

# e2e_install_shim REAL NAME — puts REAL on containerd's PATH as NAME: a symlink, or with
# E2E_TRACE_RPCS set, a wrapper that lets `start` run, then attaches strace to the daemon
# it left behind (found by its -namespace/-id arguments) before handing the address to
# containerd, so the daemon's first request (Create) is in the trace. strace cannot wrap
# `start` itself: it would hold the pipe containerd reads the address from.
e2e_install_shim() {
	local real=$1 name=$2
	if [ -z "${E2E_TRACE_RPCS:-}" ]; then
		ln -s "$real" "$E2E_TMP/bin/$name"
		return
	fi
	command -v strace >/dev/null || e2e_skip "E2E_TRACE_RPCS needs strace"
	mkdir -p "$E2E_TRACE_RPCS"
	cat >"$E2E_TMP/bin/$name" <<WRAPPER
#!/bin/bash
real=$real
dir=$E2E_TRACE_RPCS
WRAPPER
	cat >>"$E2E_TMP/bin/$name" <<'WRAPPER'
action= ns= id=
args=("$@")
for ((i = 0; i < $#; i++)); do
	case "${args[i]}" in
	-namespace) ns=${args[i + 1]} ;;
	-id) id=${args[i + 1]} ;;
	start | delete) action=${args[i]} ;;
	esac
done
[ "$action" = start ] || exec "$real" "$@"
out=$("$real" "$@")
rc=$?
if [ "$rc" = 0 ]; then
	for p in /proc/[0-9]*; do
		mapfile -d '' -t a 2>/dev/null <"$p/cmdline" || continue
		hit=0 bad=0
		for ((i = 0; i < ${#a[@]}; i++)); do
			case "${a[i]}" in start | delete) bad=1 ;; esac
			[ "${a[i]}" = -id ] && [ "${a[i + 1]:-}" = "$id" ] && hit=$((hit + 1))
			[ "${a[i]}" = -namespace ] && [ "${a[i + 1]:-}" = "$ns" ] && hit=$((hit + 1))
		done
		if [ "$hit" = 2 ] && [ "$bad" = 0 ] && [ "${p#/proc/}" != "$$" ]; then
			pid=${p#/proc/}
			setsid strace -f -p "$pid" -xx -s 16384 -ttt -e trace=read,write,recvmsg,sendmsg,readv,writev 				-o "$dir/$ns.$id.$pid.trace" </dev/null >/dev/null 2>"$dir/$ns.$id.$pid.attach" &
			for ((i = 0; i < 50; i++)); do
				grep -q attached "$dir/$ns.$id.$pid.attach" 2>/dev/null && break
				sleep 0.02
			done
			sleep 0.1
			break
		fi
	done
fi
printf '%s' "$out"
exit "$rc"
WRAPPER
	chmod +x "$E2E_TMP/bin/$name"
}

# ---------------------------------------------------------------------------------------
# setup and cleanup

e2e_watchdog() {
	local main=$$
	(
		exec </dev/null >/dev/null 2>&1
		sleep "$E2E_TIMEOUT" &
		sp=$!
		trap 'kill $sp 2>/dev/null; exit 0' TERM
		wait "$sp" || exit 0
		echo "watchdog: ${E2E_TIMEOUT}s" >"$E2E_TMP/timed-out" 2>/dev/null
		kill -TERM "$main"
		# the trap runs only when the current foreground command ends: end it
		cpid=$(cat "$E2E_TMP/containerd.pid" 2>/dev/null || true)
		for d in /proc/[0-9]*; do
			p=${d#/proc/}
			[ "$p" != "$BASHPID" ] && [ "$p" != "$cpid" ] || continue
			ppid=$(awk '{ print $4 }' "$d/stat" 2>/dev/null || true)
			[ "$ppid" = "$main" ] && kill -TERM "$p" 2>/dev/null
		done
	) &
	E2E_WATCHDOG_PID=$!
}

# e2e_begin PREFIX CLEANUP — what every harness does first: the image cache and log
# dirs, the busybox rootfs, a tag, the namespace PREFIX-<tag>, E2E_TMP=/tmp/PREFIX.XXXXXX,
# and the traps (CLEANUP on EXIT)
e2e_begin() {
	mkdir -p "$E2E_CACHE_DIR" "$E2E_LOG_DIR"
	E2E_CACHE_DIR=$(cd "$E2E_CACHE_DIR" && pwd)
	E2E_LOG_DIR=$(cd "$E2E_LOG_DIR" && pwd)
	"$E2E_SRC_DIR/make-image.sh" "$E2E_CACHE_DIR"
	E2E_TAG=$(od -An -N4 -tx1 /dev/urandom | tr -d ' \n')
	E2E_NS=$1-$E2E_TAG
	E2E_TMP=$(mktemp -d "/tmp/$1.XXXXXX")
	trap "$2" EXIT
	trap 'e2e_log "FAIL $E2E_TEST_NAME line $LINENO: status $? from: $BASH_COMMAND"; E2E_FAILED=1' ERR
	trap 'e2e_log "e2e: interrupted"; exit 130' INT
	trap 'e2e_log "e2e: $E2E_TEST_NAME timed out after ${E2E_TIMEOUT}s"; exit 124' TERM
}

e2e_setup() {
	[ "$(id -u)" = 0 ] || e2e_skip "needs root"
	local t
	for t in containerd ctr runc sha256sum timeout flock findmnt; do
		command -v "$t" >/dev/null || e2e_skip "$t not installed"
	done
	case "$RUNTIME" in
	io.containerd.runc.v2) ;;
	*)
		[ -n "${SHIM_BINARY:-}" ] && [ -x "$SHIM_BINARY" ] ||
			e2e_skip "shim binary not built (SHIM_BINARY=${SHIM_BINARY:-unset})"
		;;
	esac
	if [ "$SHIM_AS_RUNC" = 1 ]; then
		[ -n "${SHIM_BINARY:-}" ] && [ -x "$SHIM_BINARY" ] ||
			e2e_skip "SHIM_AS_RUNC=1 needs SHIM_BINARY"
	fi

	# short: containerd's sockets live here and unix socket paths are limited to 107 bytes
	e2e_begin nse2e e2e_cleanup
	: >"$E2E_TMP/ids"
	E2E_ADDR=$E2E_TMP/containerd.sock
	E2E_ROOT=$E2E_TMP/root
	E2E_STATE=$E2E_TMP/state
	E2E_FIFO_DIR=$E2E_TMP/fifo
	mkdir -p "$E2E_TMP/bin" "$E2E_ROOT" "$E2E_STATE" "$E2E_FIFO_DIR"

	# the private busybox rootfs for `ctr run --rootfs` (a copy: containers may write to it)
	E2E_ROOTFS=$E2E_TMP/rootfs
	cp -a "$E2E_CACHE_DIR/rootfs" "$E2E_ROOTFS"

	CTR_RUNTIME=$RUNTIME
	E2E_RUNTIME_FLAGS=()
	if [ -n "${SHIM_BINARY:-}" ] && [ -x "$SHIM_BINARY" ]; then
		e2e_install_shim "$(readlink -f "$SHIM_BINARY")" containerd-shim-nano-v2
	fi
	if [ "$SHIM_AS_RUNC" = 1 ]; then
		e2e_install_shim "$(readlink -f "$SHIM_BINARY")" containerd-shim-runc-v2
		CTR_RUNTIME=io.containerd.runc.v2
	elif [ "$RUNTIME" = io.containerd.runc.v2 ] && [ -n "${E2E_TRACE_RPCS:-}" ]; then
		e2e_install_shim "$(e2e_expected_shim_binary)" containerd-shim-runc-v2
	fi

	e2e_fix_hybrid_hugetlb
	e2e_write_config
	e2e_watchdog
	e2e_containerd_start
	printf '# %s: runtime %s%s, containerd %s (pid %s), namespace %s, tmp %s\n' \
		"$E2E_TEST_NAME" "$RUNTIME" "$([ "$SHIM_AS_RUNC" = 1 ] && echo " as io.containerd.runc.v2")" \
		"$E2E_ADDR" "$E2E_CONTAINERD_PID" "$E2E_NS" "$E2E_TMP"
	printf '# shim binary: %s\n' "$(e2e_expected_shim_binary)"
}

# e2e_kill_cgroup_procs — processes left in this run's cgroups (ctr's default cgroup path
# is /<namespace>/<id>, and the namespace is unique to this run)
e2e_kill_cgroup_procs() {
	local f pid
	for f in /sys/fs/cgroup/*/"$E2E_NS"/*/cgroup.procs /sys/fs/cgroup/"$E2E_NS"/*/cgroup.procs; do
		while read -r pid; do
			kill -KILL "$pid" 2>/dev/null || true
		done <"$f"
	done
}

e2e_rmdir_cgroups() {
	local d
	for d in /sys/fs/cgroup/*/"$E2E_NS"/* /sys/fs/cgroup/"$E2E_NS"/*; do
		[ -d "$d" ] && rmdir "$d" 2>/dev/null || true
	done
	for d in /sys/fs/cgroup/*/"$E2E_NS" /sys/fs/cgroup/"$E2E_NS"; do
		[ -d "$d" ] && rmdir "$d" 2>/dev/null || true
	done
}

# e2e_shims_exit LISTFN WHAT — every WHAT (task, container) of this run is deleted:
# waits up to 5 s for LISTFN to list no shim; a shim that stays is a defect: it is named
# and the status is 1
e2e_shims_exit() {
	local i left
	for ((i = 0; i < 50; i++)); do
		[ -n "$("$1")" ] || return 0
		sleep 0.1
	done
	left=$("$1" | tr '\n' ' ')
	[ -n "$left" ] || return 0
	e2e_log "FAIL $E2E_TEST_NAME: shim(s) $left still running 5 s after every $2 of this run was deleted"
	return 1
}

# e2e_show_log FILE NAME — after a failure, keeps FILE as E2E_LOG_DIR/<test>.NAME.log and
# shows its last lines
e2e_show_log() {
	[ "$E2E_FAILED" = 1 ] && [ -f "$1" ] || return 0
	cp "$1" "$E2E_LOG_DIR/$E2E_TEST_NAME.$2.log" 2>/dev/null
	e2e_log "--- last lines of the $2 log (all of it: $E2E_LOG_DIR/$E2E_TEST_NAME.$2.log)"
	tail -n 40 "$1" >&2
}

# e2e_finish STATUS — the end of a cleanup: unmounts what is left under E2E_TMP (the
# overlay rootfs of a dead shim, ...; deepest first), removes E2E_TMP (kept after a
# failure with E2E_KEEP=1), says PASS or FAIL and exits with STATUS
e2e_finish() {
	local rc=$1 i m t
	# mounts left under the temp dir (overlay rootfs of a dead shim, ...), deepest first
	if [ -n "$E2E_TMP" ]; then
		for ((i = 0; i < 3; i++)); do
			mapfile -t m < <(e2e_mounts_under "$E2E_TMP" | awk '{ print length($0) "\t" $0 }' |
				sort -rn | cut -f2-)
			[ "${#m[@]}" -gt 0 ] || break
			for t in "${m[@]}"; do
				umount "$t" 2>/dev/null || umount -l "$t" 2>/dev/null
			done
		done
	fi

	if [ -n "$E2E_TMP" ] && [ -d "$E2E_TMP" ]; then
		if [ "$E2E_FAILED" = 1 ] && [ "${E2E_KEEP:-0}" = 1 ]; then
			e2e_log "kept $E2E_TMP"
		elif [ -z "$(e2e_mounts_under "$E2E_TMP")" ]; then
			rm -rf --one-file-system "$E2E_TMP"
		else
			e2e_log "cleanup: mounts remain under $E2E_TMP; not removing it"
		fi
	fi
	if [ "$rc" = 0 ]; then
		printf '# %s: PASS\n' "$E2E_TEST_NAME"
	elif [ "$rc" != 77 ]; then
		printf '# %s: FAIL (status %s)\n' "$E2E_TEST_NAME" "$rc" >&2
	fi
	exit "$rc"
}

e2e_cleanup() {
	local rc=$? id pid ids=() t i m left
	trap - EXIT INT TERM
	set +e
	if [ -s "$E2E_TMP/timed-out" ]; then
		rc=124
	fi
	[ "$rc" = 0 ] || [ "$rc" = 77 ] || E2E_FAILED=1
	e2e_events_stop
	if [ -n "${E2E_WATCHDOG_PID:-}" ]; then
		kill "$E2E_WATCHDOG_PID" 2>/dev/null
		wait "$E2E_WATCHDOG_PID" 2>/dev/null
	fi

	mapfile -t ids < <(sort -u "$E2E_TMP/ids" 2>/dev/null)
	if [ -n "$E2E_CONTAINERD_PID" ] && kill -0 "$E2E_CONTAINERD_PID" 2>/dev/null; then
		local E2E_CTR_TIMEOUT=10
		for t in $(ctr task ls -q 2>/dev/null); do
			ctr task kill -a -s KILL "$t" >/dev/null 2>&1
		done
		for t in $(ctr task ls -q 2>/dev/null); do
			for ((i = 0; i < 30; i++)); do
				[ "$(e2e_task_status "$t")" = STOPPED ] && break
				sleep 0.1
			done
			ctr task rm -f "$t" >/dev/null 2>&1
		done
		for t in $(ctr containers ls -q 2>/dev/null); do
			ids+=("$t")
			ctr containers rm "$t" >/dev/null 2>&1
		done
		for t in $(ctr images ls -q 2>/dev/null); do
			ctr images rm "$t" >/dev/null 2>&1
		done
		# Every task is deleted: every shim of this run must exit (before containerd stops,
		# so a shim still handing containerd its last events is not blamed).
		if ! e2e_shims_exit e2e_run_shims task && [ "$rc" = 0 ]; then
			rc=1
			E2E_FAILED=1
		fi
	fi
	e2e_containerd_stop TERM
	e2e_show_log "$E2E_TMP/containerd.log" containerd

	# shims of this run still alive (only ones provably ours): after a failure, or when
	# containerd was already gone, or the leftovers failed above
	for pid in $(e2e_run_shims); do
		e2e_log "cleanup: killing leftover shim $pid: $(tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline")"
		kill -KILL "$pid" 2>/dev/null
	done
	# containers whose shim was killed: ask runc and crun to delete them from this run's
	# runc root namespace dir
	for id in "${ids[@]}"; do
		for t in runc crun; do
			if [ -e "$E2E_RUNC_ROOT/$E2E_NS/$id" ] && command -v "$t" >/dev/null; then
				run_with_timeout 10 "$t" --root "$E2E_RUNC_ROOT/$E2E_NS" delete --force "$id" >/dev/null 2>&1
			fi
		done
	done
	e2e_kill_cgroup_procs
	sleep 0.2
	e2e_rmdir_cgroups
	rm -rf "${E2E_RUNC_ROOT:?}/$E2E_NS"

	for id in "${ids[@]}"; do
		rm -f "$(e2e_socket "$id")"
	done

	e2e_finish "$rc"
}
