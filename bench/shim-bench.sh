#!/usr/bin/env bash
# Shim benchmark: Debian's Go shim (containerd-shim-runc-v2, runtime io.containerd.runc.v2)
# and ours (containerd-shim-nano-v2, runtime io.containerd.nano.v2) side by side, in one
# run, on one private containerd (test/e2e/lib.sh: own root, state, socket, namespace;
# busybox rootfs from test/e2e/make-image.sh). Measures:
#   idle     memory of an idle shim: N detached `sleep` containers per runtime (one
#            runtime at a time), then per shim process /proc/PID/smaps_rollup (Rss, Pss,
#            Private_Clean+Private_Dirty = USS) and Threads from /proc/PID/status; mean
#   latency  `ctr run --rm ... /bin/true` wall time, M runs per shim, with runc and with
#            crun (if installed), interleaved (Go, ours, Go, ours, ...) after one warm-up
#            run each; p50, mean. For ours also its own time on the start path (start
#            action, Create, Start, less the runtime's time), from its debug log lines in
#            containerd's log (the private containerd runs at debug level)
#   stdout   shim CPU while a process writes BYTES to stdout through the FIFOs to ctr,
#            for a container's init (`ctr run`) and for an exec (`ctr task exec`) apart,
#            with two writers: big (`dd bs=1M`) and small (`yes | head -c`) writes. The
#            shim's CPU is read exactly (sum of /proc/PID/task/*/schedstat, in ns) while it
#            is alive, just before the first byte and once `head -c BYTES | wc -c` on
#            ctr's stdout has them all; every count is checked. R runs of each case,
#            interleaved (Go, ours, ...); median and min–max.
#   conc     C detached containers per runtime (one runtime at a time): total PSS of all
#            shims
# Writes a markdown table (with ratios ours/Go) to bench/results/shim.md and prints it.
# Needs root, containerd 1.6, ctr, runc, busybox-static. Cleans up everything this run
# created (tasks, containers, its shims, cgroups, mounts), also on failure or ^C.
#
#   bench/shim-bench.sh [--shim PATH | -B builddir] [-n 20] [-m 20] [-c 50]
#                       [-b 268435456] [-r 5] [-w big,small] [--settle 2]
#                       [--only idle,latency,stdout,conc]
#                       [--cache-dir DIR] [-o out.md]
#
# Without --shim the shim is built with cmake in the build dir (default <repo>/build).
# The shim binary is copied at start, so a rebuild during the run does not change it.
set -euo pipefail
export LC_ALL=C

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
idle_n=20
lat_m=20
conc_n=50
out_bytes=268435456
out_reps=5
writers=big,small
settle=2
only=idle,latency,stdout,conc
build_dir=$root/build
shim=
cache_dir=
out=$here/results/shim.md
orig_args="$*"
# shellcheck source=lib.sh
. "$here/lib.sh"

while [ $# -gt 0 ]; do
	case $1 in
	-n | --idle) idle_n=$2; shift 2 ;;
	-m | --runs) lat_m=$2; shift 2 ;;
	-c | --concurrent) conc_n=$2; shift 2 ;;
	-b | --bytes) out_bytes=$2; shift 2 ;;
	-r | --stdout-runs) out_reps=$2; shift 2 ;;
	-w | --writers) writers=$2; shift 2 ;;
	--settle) settle=$2; shift 2 ;;
	--only) only=$2; shift 2 ;;
	-B | --build-dir) build_dir=$2; shift 2 ;;
	--shim) shim=$2; shift 2 ;;
	--cache-dir) cache_dir=$2; shift 2 ;;
	-o | --out) out=$2; shift 2 ;;
	*) usage ;;
	esac
done
for v in "$idle_n" "$lat_m" "$conc_n" "$out_bytes" "$out_reps"; do
	[[ "$v" =~ ^[0-9]+$ ]] && [ "$v" -gt 0 ] || usage
done
want() { [[ ",$only," == *",$1,"* ]]; }

if [ -z "$shim" ]; then
	bench_build containerd-shim-nano-v2
	shim=$build_dir/shim/containerd-shim-nano-v2
fi
if [ ! -x "$shim" ]; then
	echo "shim-bench: $shim missing" >&2
	exit 1
fi
shim=$(readlink -f "$shim")
bench_go_shim shim-bench
CTR_BIN=$(type -P ctr || true)
CRUN_BIN=$(type -P crun || true)

# --- the private containerd (test/e2e/lib.sh) ------------------------------------------
bench_containerd_env "$shim" 3600 120
# shellcheck source=../test/e2e/lib.sh
. "$root/test/e2e/lib.sh"
e2e_setup
# the shim under test, frozen for this run (containerd finds it on PATH at every start)
bench_freeze_shim

GO=io.containerd.runc.v2
NANO=io.containerd.nano.v2
declare -A LABEL=([$GO]=go [$NANO]=nano)
declare -A EXE=([$GO]=$go_shim [$NANO]=$nano_exe)
declare -A R=()      # results, keyed "<go|nano>.<metric>"
CLK_TCK=$(getconf CLK_TCK)

# bctr ARGS... — ctr on this run's containerd and namespace, without lib.sh's timeout
# wrapper (used where the wall time is measured; the run's watchdog still applies)
bctr() { "$CTR_BIN" --address "$E2E_ADDR" --namespace "$E2E_NS" "$@"; }

# run_args RUNTIME — the common `ctr run` flags for the busybox rootfs
run_args() {
	RUN_ARGS=(--runtime "$1" --env="$E2E_PATH_ENV" --rootfs "$E2E_ROOTFS")
}

# proc_field PID N — field N (1-based, as in proc(5)) of /proc/PID/stat
proc_field() {
	local line f
	{ read -r line <"/proc/$1/stat"; } 2>/dev/null || return 1
	read -r -a f <<<"${line##*) }"
	echo "${f[$(($2 - 3))]}"
}

# shim_cmdline_ok PID ID — PID is a long-lived shim of this containerd serving ID: -id ID
# and -address of this containerd on its command line, no action word (start, delete).
# No forks: it runs in the CPU poller's loop.
shim_cmdline_ok() {
	local -a argv
	local i has_id=0 has_addr=0
	{ mapfile -d '' -t argv <"/proc/$1/cmdline"; } 2>/dev/null || return 1
	for ((i = 1; i < ${#argv[@]}; i++)); do
		case ${argv[i]} in
		start | delete) return 1 ;;
		-id) [ "${argv[i + 1]:-}" != "$2" ] || has_id=1 ;;
		-address) [ "${argv[i + 1]:-}" != "$E2E_ADDR" ] || has_addr=1 ;;
		esac
	done
	[ "$has_id" = 1 ] && [ "$has_addr" = 1 ]
}

# find_shim ID — scan /proc for the long-lived shim of ID (comm "containerd-shim",
# -id ID, -address of this containerd, no action word); prints its pid or nothing
find_shim() {
	local d p comm
	for d in /proc/[0-9]*; do
		p=${d#/proc/}
		{ read -r comm <"$d/comm"; } 2>/dev/null || continue
		[[ "$comm" == containerd-shim* ]] || continue
		if shim_cmdline_ok "$p" "$1"; then
			echo "$p"
			return 0
		fi
	done
}

# shim_pid RUNTIME ID INITPID — the shim serving ID. Ours: the bundle's shim.pid. The Go
# shim writes none: the parent of the container's init (the shim is its subreaper).
# Either way it is checked against the command line; a mismatch is reported.
shim_pid() {
	local rt=$1 id=$2 init=$3 pid='' ppid f
	ppid=$(proc_field "$init" 4 || true)
	if [ "$rt" = "$NANO" ]; then
		f=$(e2e_bundle "$id")/shim.pid
		if [ -s "$f" ]; then
			pid=$(<"$f")
		else
			anomaly "nano: no shim.pid in the bundle of $id ($f)"
		fi
		if [ -n "$pid" ] && [ "$pid" != "$ppid" ]; then
			anomaly "nano: $id: shim.pid is $pid but the parent of init $init is $ppid"
		fi
	fi
	[ -n "$pid" ] || pid=$ppid
	if [ -z "$pid" ] || ! shim_cmdline_ok "$pid" "$id"; then
		anomaly "${LABEL[$rt]}: $id: pid ${pid:-?} (parent of init $init) is not its shim; scanning /proc"
		pid=$(find_shim "$id")
	fi
	[ -n "$pid" ] || fail "${LABEL[$rt]}: no shim process found for $id"
	local exe
	exe=$(readlink -f "/proc/$pid/exe" 2>/dev/null || true)
	[ "$exe" = "${EXE[$rt]}" ] ||
		fail "${LABEL[$rt]}: shim $pid of $id runs [$exe], expected [${EXE[$rt]}]"
	echo "$pid"
}

# mem_of PID — "rss_kB pss_kB uss_kB threads"
mem_of() {
	local t
	t=$(awk '$1 == "Threads:" { print $2 }' "/proc/$1/status")
	awk -v t="$t" '
		$1 == "Rss:" { rss = $2 } $1 == "Pss:" { pss = $2 }
		$1 == "Private_Clean:" || $1 == "Private_Dirty:" { uss += $2 }
		END { if (rss == "") exit 1; print rss, pss, uss, t }' "/proc/$1/smaps_rollup"
}

# task_pids — "id pid" per task of this namespace
task_pids() { ctr task ls | awk 'NR > 1 { print $1, $2 }'; }

# start_sleepers RUNTIME COUNT PREFIX — COUNT detached sleep containers; sets SLEEPERS
start_sleepers() {
	local rt=$1 n=$2 i id
	SLEEPERS=()
	run_args "$rt"
	for ((i = 1; i <= n; i++)); do
		id=$(e2e_id "$3-${LABEL[$rt]}-$i")
		if ! ctr run -d --null-io "${RUN_ARGS[@]}" "$id" sleep 1000000 </dev/null >"$E2E_TMP/out" 2>&1; then
			anomaly "${LABEL[$rt]}: ctr run -d $id failed: $(head -c 600 "$E2E_TMP/out")"
			fail "${LABEL[$rt]}: container $id did not start"
		fi
		SLEEPERS+=("$id")
	done
}

# measure_sleepers RUNTIME KEY — memory of the shims of SLEEPERS: R[<label>.KEY.*]
# (means per shim and totals); every task must be RUNNING with its own shim
measure_sleepers() {
	local rt=$1 key=$2 id pid m n=0 rss=0 pss=0 uss=0 thr=0 maxpss=0 a b c d
	local -A init=() seen=()
	while read -r id pid; do init[$id]=$pid; done < <(task_pids)
	: >"$E2E_TMP/mem-${LABEL[$rt]}-$key"
	for id in "${SLEEPERS[@]}"; do
		[ -n "${init[$id]:-}" ] || fail "${LABEL[$rt]}: task $id missing from ctr task ls"
		[ "$(e2e_task_status "$id")" = RUNNING ] ||
			fail "${LABEL[$rt]}: task $id is $(e2e_task_status "$id"), not RUNNING"
		pid=$(shim_pid "$rt" "$id" "${init[$id]}")
		[ -z "${seen[$pid]:-}" ] || fail "${LABEL[$rt]}: $id and ${seen[$pid]} share shim $pid"
		seen[$pid]=$id
		m=$(mem_of "$pid") || fail "${LABEL[$rt]}: cannot read memory of shim $pid ($id)"
		read -r a b c d <<<"$m"
		echo "$id $pid $m" >>"$E2E_TMP/mem-${LABEL[$rt]}-$key"
		rss=$((rss + a)) pss=$((pss + b)) uss=$((uss + c)) thr=$((thr + d)) n=$((n + 1))
		[ "$b" -le "$maxpss" ] || maxpss=$b
	done
	local l=${LABEL[$rt]}.$key
	R[$l.n]=$n R[$l.rss_tot]=$rss R[$l.pss_tot]=$pss R[$l.uss_tot]=$uss
	R[$l.rss]=$(awk -v s="$rss" -v n="$n" 'BEGIN { printf "%.1f", s / n }')
	R[$l.pss]=$(awk -v s="$pss" -v n="$n" 'BEGIN { printf "%.1f", s / n }')
	R[$l.uss]=$(awk -v s="$uss" -v n="$n" 'BEGIN { printf "%.1f", s / n }')
	R[$l.thr]=$(awk -v s="$thr" -v n="$n" 'BEGIN { printf "%.1f", s / n }')
	R[$l.maxpss]=$maxpss
	say "  ${LABEL[$rt]}: $n shims, mean RSS ${R[$l.rss]} kB, PSS ${R[$l.pss]} kB, USS ${R[$l.uss]} kB, threads ${R[$l.thr]}; total PSS $pss kB"
}

# shims_gone — no shim process of this run is left (waits up to 10 s)
shims_gone() {
	local i left
	for ((i = 0; i < 100; i++)); do
		left=$(e2e_run_shims | tr '\n' ' ')
		[ -n "$left" ] || return 0
		snooze 0.1
	done
	echo "$left"
	return 1
}

# stop_sleepers RUNTIME — force-delete the tasks and containers of SLEEPERS, then check
# that their shims, tasks, containers and bundles are gone
stop_sleepers() {
	local rt=$1 id left p
	for id in "${SLEEPERS[@]}"; do
		if ! ctr task rm -f "$id" >"$E2E_TMP/out" 2>&1; then
			anomaly "${LABEL[$rt]}: ctr task rm -f $id failed: $(head -c 600 "$E2E_TMP/out")"
		fi
	done
	ctr containers rm "${SLEEPERS[@]}" >"$E2E_TMP/out" 2>&1 ||
		anomaly "${LABEL[$rt]}: ctr containers rm failed: $(head -c 600 "$E2E_TMP/out")"
	if ! left=$(shims_gone); then
		for p in $left; do
			anomaly "${LABEL[$rt]}: shim $p still alive 10s after its task was deleted: $(tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null)"
		done
	fi
	left=$(ctr task ls -q | tr '\n' ' ')
	[ -z "$left" ] || anomaly "${LABEL[$rt]}: tasks left after ctr task rm -f: $left"
	left=$(ctr containers ls -q | tr '\n' ' ')
	[ -z "$left" ] || anomaly "${LABEL[$rt]}: containers left after ctr containers rm: $left"
	left=$(e2e_existing "$E2E_STATE/io.containerd.runtime.v2.task/$E2E_NS"/* | tr '\n' ' ')
	[ -z "$left" ] || anomaly "${LABEL[$rt]}: bundles left: $left"
	SLEEPERS=()
}

# stats [DECIMALS] — reads numbers, prints "p50 mean min p90 max"
stats() {
	sort -g | awk -v d="${1:-2}" '{ v[NR] = $1; s += $1 }
		END {
			if (NR == 0) { print "nan nan nan nan nan"; exit }
			p50 = NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
			i90 = int(0.9 * NR + 0.999999); if (i90 < 1) i90 = 1
			f = "%." d "f"
			printf f " " f " " f " " f " " f "\n", p50, s / NR, v[1], v[i90], v[NR] }'
}

# ---------------------------------------------------------------------------------------
# 1. idle shim memory, 4. concurrent containers

phase_memory() { # KEY COUNT
	local rt
	for rt in "$GO" "$NANO"; do
		say "[$1] $2 detached sleep containers on ${LABEL[$rt]}"
		start_sleepers "$rt" "$2" "$1"
		snooze "$settle"
		measure_sleepers "$rt" "$1"
		stop_sleepers "$rt"
	done
}

# ---------------------------------------------------------------------------------------
# 2. ctr run --rm /bin/true latency

# timed_true RUNTIME OCI ID — prints the wall time of `ctr run --rm ID /bin/true` in ms,
# with OCI (runc or crun) as the OCI runtime: the Go shim is given --runc-binary, ours a
# runtime config file (runtimeoptions.v1.Options) naming the binary, as CRI passes it
timed_true() {
	local t0 t1 rc=0 oci=()
	run_args "$1"
	if [ "$2" = crun ]; then
		if [ "$1" = "$GO" ]; then oci=(--runc-binary="$CRUN_BIN"); else oci=(--runtime-config-path="$E2E_TMP/crun.json"); fi
	fi
	t0=$(now_us)
	bctr run --rm --fifo-dir="$E2E_FIFO_DIR" "${oci[@]}" "${RUN_ARGS[@]}" "$3" /bin/true \
		</dev/null >"$E2E_TMP/out" 2>&1 || rc=$?
	t1=$(now_us)
	if [ "$rc" != 0 ]; then
		anomaly "${LABEL[$1]}/$2: ctr run --rm $3 /bin/true exited $rc: $(head -c 600 "$E2E_TMP/out")"
		fail "${LABEL[$1]}/$2: ctr run --rm /bin/true failed"
	fi
	[ ! -s "$E2E_TMP/out" ] || anomaly "${LABEL[$1]}/$2: ctr run --rm $3 /bin/true printed: $(head -c 600 "$E2E_TMP/out")"
	awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f\n", (b - a) / 1000 }'
}

# own_share ID — our shim's own time on the start path of ID, from its debug lines in
# containerd's log (shim/timing.h): "timing start-action|create|start ID: shim X ms,
# runtime Y ms ..."; prints "shim_ms runtime_ms" summed over the three, or fails
own_share() {
	awk -v id="$1" '
		/msg="timing (start-action|create|start) / {
			if (index($0, " " id ": shim ") == 0) next
			m = $0; sub(/.*: shim /, "", m); split(m, a, " "); shim += a[1]; n++
			r = $0; if (sub(/.* ms, runtime /, "", r)) { split(r, b, " "); rt += b[1] }
		}
		END { if (n != 3) exit 1; printf "%.3f %.3f\n", shim, rt }' "$E2E_TMP/containerd.log"
}

phase_latency() {
	local i rt oci id l k share
	OCIS=(runc)
	if [ -n "$CRUN_BIN" ]; then
		OCIS+=(crun)
		e2e_fix_hybrid_hugetlb
		printf '{"binary_name": "%s"}\n' "$CRUN_BIN" >"$E2E_TMP/crun.json"
	else
		anomaly "crun not installed: latency with runc only"
	fi
	say "[latency] ctr run --rm /bin/true, $lat_m runs per shim and OCI runtime (${OCIS[*]}), interleaved"
	for oci in "${OCIS[@]}"; do
		for rt in "$GO" "$NANO"; do # warm-up: page cache, first shim start
			timed_true "$rt" "$oci" "$(e2e_id "warm-${LABEL[$rt]}-$oci")" >/dev/null
			: >"$E2E_TMP/lat-${LABEL[$rt]}-$oci"
		done
		: >"$E2E_TMP/own-$oci"
		: >"$E2E_TMP/ownrt-$oci"
	done
	for ((i = 1; i <= lat_m; i++)); do
		for oci in "${OCIS[@]}"; do
			for rt in "$GO" "$NANO"; do
				id=$(e2e_id "lat-${LABEL[$rt]}-$oci-$i")
				timed_true "$rt" "$oci" "$id" >>"$E2E_TMP/lat-${LABEL[$rt]}-$oci"
				[ "$rt" = "$NANO" ] || continue
				if share=$(own_share "$id"); then
					echo "${share% *}" >>"$E2E_TMP/own-$oci"
					echo "${share#* }" >>"$E2E_TMP/ownrt-$oci"
				else
					anomaly "nano/$oci: no three timing lines for $id in containerd's log"
				fi
			done
		done
	done
	for oci in "${OCIS[@]}"; do
		for rt in "$GO" "$NANO"; do
			l=${LABEL[$rt]}
			k=$l${oci/runc/}
			read -r "R[$k.lat_p50]" "R[$k.lat_mean]" "R[$k.lat_min]" "R[$k.lat_p90]" "R[$k.lat_max]" \
				< <(stats <"$E2E_TMP/lat-$l-$oci")
			say "  $l/$oci: p50 ${R[$k.lat_p50]} ms, mean ${R[$k.lat_mean]} ms (min ${R[$k.lat_min]}, max ${R[$k.lat_max]})"
		done
		k=nano${oci/runc/}
		read -r "R[$k.own_p50]" _ "R[$k.own_min]" _ "R[$k.own_max]" < <(stats 3 <"$E2E_TMP/own-$oci")
		read -r "R[$k.ownrt_p50]" _ _ _ _ < <(stats 2 <"$E2E_TMP/ownrt-$oci")
		say "  nano/$oci: the shim's own time on the start path p50 ${R[$k.own_p50]} ms (min ${R[$k.own_min]}, max ${R[$k.own_max]}); the runtime's ${R[$k.ownrt_p50]} ms"
	done
	[ -z "$(ctr containers ls -q)" ] || anomaly "containers left after the ctr run --rm series: $(ctr containers ls -q | tr '\n' ' ')"
	local left
	left=$(shims_gone) || anomaly "shims alive after the ctr run --rm series: $left"
}

# ---------------------------------------------------------------------------------------
# 3. shim CPU for stdout, init and exec apart

# WRITER[w] — the command in the container that writes exactly out_bytes to stdout
declare -A WRITER=(
	[big]="dd if=/dev/zero bs=1048576 count=$((out_bytes / 1048576)) 2>/dev/null"
	[small]="yes | head -c $out_bytes"
)
declare -A WRITER_LABEL=([big]="dd bs=1M" [small]="yes \\| head -c (small writes)")

# shim_cpu_ns PID — CPU time of every thread of PID, in ns: the sum of the first field
# of /proc/PID/task/*/schedstat (the scheduler's own runtime, not 10 ms ticks). A thread
# that exited would be missing: the tick count is read too, as a cross-check.
shim_cpu_ns() {
	local t sum=0 a
	for t in /proc/"$1"/task/*/schedstat; do
		{ read -r a _ <"$t"; } 2>/dev/null || continue
		sum=$((sum + a))
	done
	echo "$sum"
}
shim_ticks() { echo $(($(proc_field "$1" 14) + $(proc_field "$1" 15))); }

# timed_stdout RUNTIME KIND WRITER REP — one measured run; appends
# "cpu_ns ticks_ms wall_ms" to stdout-<label>-<kind>-<writer>.
# The process (the init of a new container, or an exec in a running one) first reads a
# line from its stdin, so the shim's CPU time is read (t0) after Create/Start/Exec and
# before the first byte; then it writes out_bytes; t1 is read when `head -c` on ctr's
# stdout has seen them all, with the shim still alive (the init then sleeps; an exec's
# shim serves the sleeping init). The count must be exact.
timed_stdout() {
	local rt=$1 kind=$2 w=$3 id l=${LABEL[$1]} pid init c0 c1 k0 k1 t0 t1 got ctr_pid go
	local cnt=$E2E_TMP/count go_fifo=$E2E_TMP/go
	id=$(e2e_id "out-$kind-$w-$l-$4")
	rm -f "$cnt" "$go_fifo"
	mkfifo "$go_fifo"
	exec {go}<>"$go_fifo"
	run_args "$rt"
	if [ "$kind" = init ]; then
		bctr run --fifo-dir="$E2E_FIFO_DIR" "${RUN_ARGS[@]}" "$id" \
			sh -c "read x; ${WRITER[$w]}; exec sleep 1000000" \
			<"$go_fifo" 2>"$E2E_TMP/out" > >(head -c "$out_bytes" | wc -c >"$cnt") &
		ctr_pid=$!
		wait_for 30 "task $id running" e2e_task_status_is "$id" RUNNING >/dev/null
		init=$(e2e_task_pid "$id")
	else
		ctr run -d --null-io "${RUN_ARGS[@]}" "$id" sleep 1000000 </dev/null >/dev/null
		wait_for 30 "task $id running" e2e_task_status_is "$id" RUNNING >/dev/null
		init=$(e2e_task_pid "$id")
		bctr task exec --fifo-dir="$E2E_FIFO_DIR" --exec-id out "$id" \
			sh -c "read x; ${WRITER[$w]}" \
			<"$go_fifo" 2>"$E2E_TMP/out" > >(head -c "$out_bytes" | wc -c >"$cnt") &
		ctr_pid=$!
		# the exec is running (and blocked in read) once ctr task ps lists two processes
		exec_up() { [ "$(ctr task ps "$id" | awk 'NR > 1' | wc -l)" -ge 2 ]; }
		wait_for 30 "exec in $id running" exec_up >/dev/null
	fi
	pid=$(shim_pid "$rt" "$id" "$init")
	snooze 0.2 # Start/Exec answered and settled
	c0=$(shim_cpu_ns "$pid") k0=$(shim_ticks "$pid") t0=$(now_us)
	echo go >&"$go"
	while [ ! -s "$cnt" ]; do
		kill -0 "$ctr_pid" 2>/dev/null || { [ -s "$cnt" ] || snooze 0.2; break; }
		snooze 0.005
	done
	c1=$(shim_cpu_ns "$pid") k1=$(shim_ticks "$pid") t1=$(now_us)
	got=$(cat "$cnt" 2>/dev/null || true)
	[ "$got" = "$out_bytes" ] || anomaly "$l: $kind stdout ($w) of $id delivered ${got:-nothing} of $out_bytes bytes: $(head -c 300 "$E2E_TMP/out")"
	ctr task kill -s KILL "$id" >/dev/null 2>&1 || true
	wait "$ctr_pid" 2>/dev/null || true
	exec {go}>&-
	ctr task rm -f "$id" >/dev/null 2>&1 || true
	ctr containers rm "$id" >/dev/null 2>&1 || true
	local cpu_ms tick_ms
	cpu_ms=$(awk -v a="$c0" -v b="$c1" 'BEGIN { printf "%.1f", (b - a) / 1e6 }')
	tick_ms=$(((k1 - k0) * 1000 / CLK_TCK))
	awk -v c="$cpu_ms" -v k="$tick_ms" 'BEGIN { d = c - k; if (d < 0) d = -d; exit !(d > 20 + c / 10) }' &&
		anomaly "$l: $kind stdout ($w): schedstat says $cpu_ms ms, ticks say $tick_ms ms"
	say "  $l $kind ($w): shim $pid: $cpu_ms ms CPU (ticks: $tick_ms ms), $(((t1 - t0) / 1000)) ms wall"
	echo "$cpu_ms $tick_ms $(((t1 - t0) / 1000))" >>"$E2E_TMP/stdout-$l-$kind-$w"
}

phase_stdout() {
	local i rt l kind w key
	[ $((out_bytes % 1048576)) = 0 ] || fail "-b must be a multiple of 1 MiB"
	say "[stdout] $((out_bytes / 1048576)) MiB to stdout through ctr, init and exec, writers: $writers; $out_reps run(s) each, interleaved"
	for rt in "$GO" "$NANO"; do
		for kind in init exec; do
			for w in ${writers//,/ }; do
				: >"$E2E_TMP/stdout-${LABEL[$rt]}-$kind-$w"
			done
		done
	done
	for ((i = 1; i <= out_reps; i++)); do
		for kind in init exec; do
			for w in ${writers//,/ }; do
				for rt in "$GO" "$NANO"; do
					timed_stdout "$rt" "$kind" "$w" "$i"
				done
			done
		done
	done
	for rt in "$GO" "$NANO"; do
		l=${LABEL[$rt]}
		for kind in init exec; do
			for w in ${writers//,/ }; do
				key=$l.$kind.$w
				read -r "R[$key.cpu]" _ "R[$key.cpu_min]" _ "R[$key.cpu_max]" \
					< <(cut -d' ' -f1 "$E2E_TMP/stdout-$l-$kind-$w" | stats 1)
				read -r "R[$key.wall]" _ _ _ _ < <(cut -d' ' -f3 "$E2E_TMP/stdout-$l-$kind-$w" | stats 0)
				R[$key.raw]=$(cut -d' ' -f1 "$E2E_TMP/stdout-$l-$kind-$w" | tr '\n' ' ' | sed 's/ $//; s/ /, /g')
				say "  $l $kind ($w): median ${R[$key.cpu]} ms CPU (${R[$key.cpu_min]}–${R[$key.cpu_max]}), wall ${R[$key.wall]} ms"
			done
		done
	done
}

# ---------------------------------------------------------------------------------------

want idle && phase_memory idle "$idle_n"
want latency && phase_latency
want stdout && phase_stdout
want conc && phase_memory conc "$conc_n"

# ---------------------------------------------------------------------------------------
# the report

ratio() { # A B — A/B with 2 decimals, or "–"
	awk -v a="${1:-}" -v b="${2:-}" 'BEGIN { if (a == "" || b == "" || b + 0 == 0) print "–"; else printf "%.2f\n", a / b }'
}
mib() { awk -v k="${1:-}" 'BEGIN { if (k == "") print "–"; else printf "%.2f\n", k / 1024 }'; }
val() { echo "${R[$1]:-–}"; }
goal() { # AWK-CONDITION VAR=VALUE...
	local cond=$1 a
	shift
	for a in "$@"; do [ -n "${a#*=}" ] || { echo –; return; }; done
	local args=()
	for a in "$@"; do args+=(-v "$a"); done
	awk "${args[@]}" "BEGIN { print ($cond) ? \"yes\" : \"**no**\" }"
}

LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)
cpu_model=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
mem_total=$(awk '/^MemTotal:/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo)
git_rev=$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)
git -C "$root" diff --quiet HEAD 2>/dev/null && [ -z "$(git -C "$root" ls-files --others --exclude-standard -- shim 2>/dev/null)" ] ||
	git_rev="$git_rev + uncommitted changes"
shim_sum=$(sha256sum "$nano_exe" | cut -c1-12)
shim_size=$(stat -c %s "$nano_exe")

{
	echo "# Shim: containerd-shim-runc-v2 (Go) vs containerd-shim-nano-v2 (ours)"
	echo
	echo "$(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) CPUs ($cpu_model), $mem_total RAM," \
		"Linux $(uname -r), cgroup $(e2e_cgroup_mode); load average (1, 5, 15 min) before the run: $LOAD_BEFORE, after: $LOAD_AFTER" \
		"(other work shared the machine)."
	echo
	echo "- containerd $(containerd --version | awk '{ print $3 }'), runc $(runc --version | awk 'NR == 1 { print $3 }')," \
		"Go shim: \`$go_shim\` $("$go_shim" -v 2>/dev/null | awk '/Version:/ { print $2 }')" \
		"($("$go_shim" -v 2>/dev/null | awk '/Go version:/ { print $3 }'))," \
		"runtime \`$GO\`."
	echo "- Ours: \`containerd-shim-nano-v2\` $shim_size bytes, sha256 $shim_sum…, tree $git_rev," \
		"runtime \`$NANO\`."
	echo "- One private containerd (test/e2e/lib.sh) for both; \`ctr run --rootfs\` on a busybox-static" \
		"rootfs, runc as the OCI runtime for both shims."
	echo "- Phases: $only. Parameters: idle N=$idle_n, latency M=$lat_m, stdout $((out_bytes / 1048576)) MiB × $out_reps," \
		"concurrent C=$conc_n, settle ${settle}s. Generated by \`bench/shim-bench.sh${orig_args:+ $orig_args}\`."
	echo
	echo "Memory: per shim process, /proc/PID/smaps_rollup (USS = Private_Clean + Private_Dirty)"
	echo "and Threads from /proc/PID/status, measured ${settle}s after the last of N (or C) detached"
	echo "\`ctr run -d --null-io ... sleep\` containers of one runtime was started; one runtime at a"
	echo "time. Latency: wall time of \`ctr run --rm ... /bin/true\` (stdio through FIFOs), runs"
	echo "interleaved Go/ours after one warm-up each. Stdout: the init of a new container (\`ctr run\`)"
	echo "or an exec in a running one (\`ctr task exec\`) waits for a line on stdin, then writes the"
	echo "bytes (\`dd bs=1M\`, or \`yes | head -c\` for small writes); ctr copies the FIFO into"
	echo "\`head -c | wc -c\`, and every count is checked. Shim CPU = the sum of"
	echo "/proc/PID/task/*/schedstat (ns, every thread) read while the shim is alive, before the go"
	echo "line and once every byte has reached \`head\`: the container, ctr, Create/Start/Exec and"
	echo "the exit are not counted. Median and min–max over the runs, interleaved Go/ours; wall is"
	echo "the same window. Ratios are ours/Go: below 1 favours ours."
	echo
	echo "| metric | Go shim | ours | ours/Go | goal | met |"
	echo "|---|---:|---:|---:|---|---|"
	if want idle; then
		echo "| idle shim RSS, MiB (mean of $idle_n) | $(mib "${R[go.idle.rss]:-}") | $(mib "${R[nano.idle.rss]:-}") | $(ratio "${R[nano.idle.rss]:-}" "${R[go.idle.rss]:-}") | | |"
		echo "| idle shim PSS, MiB | $(mib "${R[go.idle.pss]:-}") | $(mib "${R[nano.idle.pss]:-}") | **$(ratio "${R[nano.idle.pss]:-}" "${R[go.idle.pss]:-}")** | ≤ 1 MiB | $(goal 'p <= 1024' p="${R[nano.idle.pss]:-}") |"
		echo "| idle shim USS, MiB | $(mib "${R[go.idle.uss]:-}") | $(mib "${R[nano.idle.uss]:-}") | $(ratio "${R[nano.idle.uss]:-}" "${R[go.idle.uss]:-}") | | |"
		echo "| threads per idle shim | $(val go.idle.thr) | $(val nano.idle.thr) | $(ratio "${R[nano.idle.thr]:-}" "${R[go.idle.thr]:-}") | 1 | $(goal 't == 1' t="${R[nano.idle.thr]:-}") |"
	fi
	if want latency; then
		echo "| \`ctr run --rm\` /bin/true p50, ms ($lat_m runs), runc | $(val go.lat_p50) | $(val nano.lat_p50) | **$(ratio "${R[nano.lat_p50]:-}" "${R[go.lat_p50]:-}")** | ≤ 0.8 × Go | $(goal 'a <= 0.8 * b' a="${R[nano.lat_p50]:-}" b="${R[go.lat_p50]:-}") |"
		echo "| \`ctr run --rm\` /bin/true mean, ms, runc | $(val go.lat_mean) | $(val nano.lat_mean) | $(ratio "${R[nano.lat_mean]:-}" "${R[go.lat_mean]:-}") | | |"
		if [ -n "${R[nanocrun.lat_p50]:-}" ]; then
			echo "| \`ctr run --rm\` /bin/true p50, ms, crun | $(val gocrun.lat_p50) | $(val nanocrun.lat_p50) | $(ratio "${R[nanocrun.lat_p50]:-}" "${R[gocrun.lat_p50]:-}") | | |"
			echo "| ours with crun vs Go with runc, p50 | $(val go.lat_p50) | $(val nanocrun.lat_p50) | **$(ratio "${R[nanocrun.lat_p50]:-}" "${R[go.lat_p50]:-}")** | ≤ 0.5 × Go+runc | $(goal 'a <= 0.5 * b' a="${R[nanocrun.lat_p50]:-}" b="${R[go.lat_p50]:-}") |"
		fi
		echo "| the shim's own time on the start path, ms per container (p50; min–max), runc | | $(val nano.own_p50) ($(val nano.own_min)–$(val nano.own_max)) | | ≤ 5 ms | $(goal 'a <= 5' a="${R[nano.own_p50]:-}") |"
		[ -z "${R[nanocrun.own_p50]:-}" ] ||
			echo "| the shim's own time on the start path, ms per container (p50; min–max), crun | | $(val nanocrun.own_p50) ($(val nanocrun.own_min)–$(val nanocrun.own_max)) | | ≤ 5 ms | $(goal 'a <= 5' a="${R[nanocrun.own_p50]:-}") |"
	fi
	if want stdout; then
		for w in ${writers//,/ }; do
			for kind in init exec; do
				g=go.$kind.$w n=nano.$kind.$w
				echo "| shim CPU, $kind stdout, ${WRITER_LABEL[$w]}, ms per $((out_bytes / 1048576)) MiB (median of $out_reps; min–max) | $(val "$g.cpu") ($(val "$g.cpu_min")–$(val "$g.cpu_max")) | $(val "$n.cpu") ($(val "$n.cpu_min")–$(val "$n.cpu_max")) | **$(ratio "${R[$n.cpu]:-}" "${R[$g.cpu]:-}")** | ≤ 1/3 × Go | $(goal 'a * 3 <= b' a="${R[$n.cpu]:-}" b="${R[$g.cpu]:-}") |"
			done
		done
	fi
	if want conc; then
		echo "| total PSS of $conc_n shims, MiB | $(mib "${R[go.conc.pss_tot]:-}") | $(mib "${R[nano.conc.pss_tot]:-}") | **$(ratio "${R[nano.conc.pss_tot]:-}" "${R[go.conc.pss_tot]:-}")** | | |"
		echo "| total RSS of $conc_n shims, MiB | $(mib "${R[go.conc.rss_tot]:-}") | $(mib "${R[nano.conc.rss_tot]:-}") | $(ratio "${R[nano.conc.rss_tot]:-}" "${R[go.conc.rss_tot]:-}") | | |"
		echo "| PSS per shim at $conc_n, MiB (mean) | $(mib "${R[go.conc.pss]:-}") | $(mib "${R[nano.conc.pss]:-}") | $(ratio "${R[nano.conc.pss]:-}" "${R[go.conc.pss]:-}") | | |"
		echo "| threads per shim at $conc_n | $(val go.conc.thr) | $(val nano.conc.thr) | | | |"
	fi
	echo
	if want latency; then
		for k in go nano gocrun nanocrun; do
			[ -n "${R[$k.lat_p50]:-}" ] || continue
			echo "Latency detail, $k (ms, p50 / mean / min / p90 / max):" \
				"$(val $k.lat_p50) / $(val $k.lat_mean) / $(val $k.lat_min) / $(val $k.lat_p90) / $(val $k.lat_max)."
		done
		echo
		echo "The shim's own time: the sum of what our shim logs at debug level (shim/timing.h) for"
		echo "its start action (entered to address printed), Create and Start (handler to reply), each"
		echo "less the time its runtime child ran; the runtime's own time on those calls, p50:"
		echo "runc $(val nano.ownrt_p50) ms${R[nanocrun.ownrt_p50]:+, crun ${R[nanocrun.ownrt_p50]} ms}."
		if [ -n "${R[nanocrun.lat_p50]:-}" ] && [ -n "${R[nanocrun.own_p50]:-}" ]; then
			rest= floor=
			rest=$(awk -v t="${R[nanocrun.lat_p50]}" -v o="${R[nanocrun.own_p50]}" -v r="${R[nanocrun.ownrt_p50]}" 'BEGIN { printf "%.1f", t - o - r }')
			floor=$(awk -v t="${R[nanocrun.lat_p50]}" -v o="${R[nanocrun.own_p50]}" -v g="${R[go.lat_p50]}" 'BEGIN { printf "%.2f", (t - o) / g }')
			echo "Of ours with crun (p50 ${R[nanocrun.lat_p50]} ms), the shim is ${R[nanocrun.own_p50]} ms and crun's create"
			echo "and start ${R[nanocrun.ownrt_p50]} ms; the other $rest ms are ctr, containerd and the kernel (process"
			echo "starts, the FIFOs, the exit and the delete). With a shim that took no time at all the"
			echo "ratio to the Go shim with runc would still be $floor."
		fi
		echo
	fi
	if want stdout; then
		echo "Stdout runs, shim CPU in ms, in run order:"
		for w in ${writers//,/ }; do
			for kind in init exec; do
				echo "$kind, ${WRITER_LABEL[$w]}: Go $(val "go.$kind.$w.raw"); ours $(val "nano.$kind.$w.raw")" \
					"(median wall $(val "go.$kind.$w.wall") / $(val "nano.$kind.$w.wall") ms)."
			done
		done
		echo
	fi
	if [ -s "$E2E_TMP/anomalies" ]; then
		echo "Anomalies seen during the run:"
		echo
		sed 's/^/- /' "$E2E_TMP/anomalies"
	else
		echo "No anomalies: every container started with its own shim, every byte count matched,"
		echo "every shim exited after its task was deleted, and no task, container or bundle was"
		echo "left between phases."
	fi
} >"$E2E_TMP/report.md"

mkdir -p "$(dirname "$out")"
cp "$E2E_TMP/report.md" "$out"
cat "$out"
