# bench/lib.sh — sourced by the benchmarks (after they set here, root and their
# defaults): their usage text, building what they measure, finding the Go shim, the
# environment of test/e2e/lib.sh's private containerd, and sleeping without forking.
# Each script sources test/e2e/lib.sh itself, at its top level (what lib.sh declares
# must stay global).

# usage — the calling script's header comment (line 2 to its `set -e...` line), exit 2
usage() {
	sed -n '2,/^set -eu/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2
	exit 2
}

# bench_build TARGET... — build these targets in $build_dir, configuring it first if it
# has never been
bench_build() {
	[ -f "$build_dir/CMakeCache.txt" ] || cmake -S "$root" -B "$build_dir" >/dev/null
	cmake --build "$build_dir" --target "$@" -j2 >/dev/null
}

# bench_go_shim NAME — go_shim: Debian's containerd-shim-runc-v2, its real path; NAME
# (the script's) says it is missing and exits
bench_go_shim() {
	go_shim=$(type -P containerd-shim-runc-v2 || true)
	if [ -z "$go_shim" ]; then
		echo "$1: containerd-shim-runc-v2 (the Go shim) not installed" >&2
		exit 1
	fi
	go_shim=$(readlink -f "$go_shim")
}

# bench_containerd_env SHIM TIMEOUT CTR_TIMEOUT — what test/e2e/lib.sh reads: our shim
# under test (SHIM) as io.containerd.nano.v2, the image cache, the run's watchdog and
# ctr's timeout (seconds; the caller's environment wins); LOAD_BEFORE, taken now
bench_containerd_env() {
	export RUNTIME=io.containerd.nano.v2 SHIM_BINARY=$1
	export E2E_CACHE_DIR=${cache_dir:-$build_dir/test/e2e/cache}
	export E2E_TIMEOUT=${E2E_TIMEOUT:-$2}
	export E2E_CTR_TIMEOUT=${E2E_CTR_TIMEOUT:-$3}
	LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
}

# bench_freeze_shim — once e2e_setup ran: the shim under test copied into the run's bin
# dir (containerd finds it on PATH at every start), its path in nano_exe; then the
# FIFO snooze reads from
bench_freeze_shim() {
	cp --remove-destination "$SHIM_BINARY" "$E2E_TMP/bin/containerd-shim-nano-v2"
	nano_exe=$E2E_TMP/bin/containerd-shim-nano-v2
	mkfifo "$E2E_TMP/snooze"
	exec {SNOOZE_FD}<>"$E2E_TMP/snooze"
}

# snooze SECONDS — sleep without forking
snooze() { read -r -t "$1" -u "$SNOOZE_FD" _ || true; }
now_us() { echo "${EPOCHREALTIME//[!0-9]/}"; }
say() { printf '%s\n' "$*" >&2; }
# anomaly TEXT — something odd seen (kept in a file: also works from a subshell)
anomaly() {
	printf '%s\n' "$*" >>"$E2E_TMP/anomalies"
	say "ANOMALY: $*"
}
