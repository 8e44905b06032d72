#!/usr/bin/env bash
# Recovery benchmark: how long a crashed manager takes to have every container back, and
# what the manager itself weighs. nanoshimd (on our shim and on Debian's Go shim) side by
# side with containerd 1.6 (on both shims), in one run, on one machine:
#   nsd-nano  nanoshimd --shim-binary containerd-shim-nano-v2 (ours)
#   nsd-go    nanoshimd --shim-binary containerd-shim-runc-v2 (Go)
#   cd-go     the private containerd of test/e2e/lib.sh, runtime io.containerd.runc.v2
#   cd-nano   the same containerd, runtime io.containerd.nano.v2 (ours)
# One setup at a time: N detached `sleep 100000` containers are started, then R times the
# daemon is SIGKILLed (the shims and containers live on) and started again with the same
# flags. Measured from just before the daemon is exec'd to the first List that shows
# every one of the N containers RUNNING with the pid it had before the crash:
#   nanoshimd   bench/recovery-probe, started right after nanoshimd: it connects as soon
#               as the socket answers (retrying every 200 us), subscribes to nanoshimd's
#               events and calls List when "/nanoshim/recovered" arrives and every 2 ms
#               besides, over one connection (a polled `nanoctl ls` costs a process per
#               poll and takes the CPU nanoshimd needs). A row is RUNNING only once the
#               shim answered nanoshimd's State call (UNKNOWN before), so it means
#               "reconnected and answering". Also read: nanoshimd's own log line
#               "recovered N containers (...) in X ms".
#   containerd  its log is read (no fork) until "serving..." on its gRPC socket (a ctr
#               started before that would sit in gRPC's 1 s reconnect backoff), then
#               `ctr task ls` is polled; containerd asks every shim for its State on each
#               List, so RUNNING also means "answering". Also read: its "successfully
#               booted in" line.
#   containerd's polls are POLL_MS apart (default 5 ms); the cost of one poll with N
#   containers (its wall time, median of 10; `nanoctl ls` for nanoshimd) is reported:
#   containerd's resolution is about poll interval + cost.
#   After each recovery, `nanoctl ps` / `ctr task ps` of the last container goes to its
#   shim (a check, not timed).
# Memory: PSS (and RSS) of the daemon from /proc/PID/smaps_rollup, SETTLE seconds after:
# a fresh start with no container (idle), the N-th container started (N), and each
# restart (recovered; median). containerd idle is its first start (before any container).
# Ratios are containerd / nanoshimd for the same shim: above 1 favours nanoshimd.
# Needs root, containerd 1.6, ctr, runc, busybox-static, the Go shim. Cleans up every
# container, shim, cgroup, mount and temp dir it created, also on failure or ^C.
#
#   bench/recovery-bench.sh [-n 100] [-r 5] [--net host|none] [--settle 1]
#                           [--poll-ms 5] [--only nsd-nano,nsd-go,cd-go,cd-nano]
#                           [--oci runc|crun] [-B builddir] [--cache-dir DIR]
#                           [-o out.md] [--values FILE]
#
# --oci: the OCI runtime of every container (default runc): nanoshimd's --runtime; with
# containerd, the Go shim gets ctr's --runc-binary and ours a runtime config file naming
# it (as CRI passes it). --values: every figure as "key value" lines (bench/scale-bench.sh).
# Also measured once the N containers run: the total PSS and RSS of their shims.
#
# --net: nanoshimd's network mode for its containers. host (default) keeps the measure
# about the shim path; none gives each container its own network namespace (containerd's
# `ctr run` containers get one either way: ctr's default spec has a new netns).
# Binaries come from the build dir (default <repo>/build; built there if missing) and
# are copied at start, so a rebuild during the run does not change them.
set -euo pipefail
export LC_ALL=C

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
n=100
reps=5
net=host
settle=1
poll_ms=5
only=nsd-nano,nsd-go,cd-go,cd-nano
oci=runc
values=
build_dir=$root/build
cache_dir=
out=
orig_args="$*"
# shellcheck source=lib.sh
. "$here/lib.sh"

while [ $# -gt 0 ]; do
	case $1 in
	-n) n=$2; shift 2 ;;
	-r) reps=$2; shift 2 ;;
	--net) net=$2; shift 2 ;;
	--settle) settle=$2; shift 2 ;;
	--poll-ms) poll_ms=$2; shift 2 ;;
	--only) only=$2; shift 2 ;;
	--oci) oci=$2; shift 2 ;;
	--values) values=$2; shift 2 ;;
	-B | --build-dir) build_dir=$2; shift 2 ;;
	--cache-dir) cache_dir=$2; shift 2 ;;
	-o | --out) out=$2; shift 2 ;;
	*) usage ;;
	esac
done
for v in "$n" "$reps" "$poll_ms"; do
	[[ "$v" =~ ^[0-9]+$ ]] && [ "$v" -gt 0 ] || usage
done
[[ "$settle" =~ ^[0-9]+(\.[0-9]+)?$ ]] || usage
[ "$net" = host ] || [ "$net" = none ] || usage
[ "$oci" = runc ] || [ "$oci" = crun ] || usage
OCI_BIN=$(type -P "$oci" || true)
if [ -z "$OCI_BIN" ]; then
	echo "recovery-bench: $oci not installed" >&2
	exit 1
fi
want() { [[ ",$only," == *",$1,"* ]]; }

build_dir=$(cd "$build_dir" 2>/dev/null && pwd || echo "$build_dir")
if [ ! -x "$build_dir/manager/nanoshimd/nanoshimd" ] || [ ! -x "$build_dir/manager/nanoctl/nanoctl" ] ||
	[ ! -x "$build_dir/shim/containerd-shim-nano-v2" ] || [ ! -x "$build_dir/bench/recovery-probe" ]; then
	bench_build nanoshimd nanoctl containerd-shim-nano-v2 recovery-probe
fi
shim=$(readlink -f "$build_dir/shim/containerd-shim-nano-v2")
bench_go_shim recovery-bench
CTR_BIN=$(type -P ctr || true)

# --- the private containerd (test/e2e/lib.sh) ------------------------------------------
bench_containerd_env "$shim" 1800 60
T_BEGIN=$(date +%s)
# did the parent of nanoshimd's cgroups exist before this run? (only then left alone)
CG_PARENT_EXISTED=0
[ ! -d /sys/fs/cgroup/memory/nanoshim ] && [ ! -d /sys/fs/cgroup/nanoshim ] || CG_PARENT_EXISTED=1
# shellcheck source=../test/e2e/lib.sh
. "$root/test/e2e/lib.sh"
e2e_setup
[ "$oci" = runc ] || e2e_fix_hybrid_hugetlb

# the binaries under test, frozen for this run
bench_freeze_shim
cp "$build_dir/manager/nanoshimd/nanoshimd" "$E2E_TMP/bin/nanoshimd"
cp "$build_dir/manager/nanoctl/nanoctl" "$E2E_TMP/bin/nanoctl"
cp "$build_dir/bench/recovery-probe" "$E2E_TMP/bin/recovery-probe"
NSD_BIN=$E2E_TMP/bin/nanoshimd
NCTL_BIN=$E2E_TMP/bin/nanoctl
PROBE_BIN=$E2E_TMP/bin/recovery-probe

declare -A R=()         # results, keyed "<setup>.<metric>"
declare -A SHIM_OF=([nsd-nano]=$nano_exe [nsd-go]=$go_shim)
declare -A RT_OF=([cd-go]=io.containerd.runc.v2 [cd-nano]=io.containerd.nano.v2)
declare -A EXPECT=()    # id -> init pid before the crash, for the setup being measured
IDS=()                  # the ids of the setup being measured, in creation order
NSD_PID=                # the nanoshimd this run started and that is alive, if any
NSD_DIRS=()             # every nanoshimd dir of this run (state s/, root r/, logs)
POLL_S=$(awk -v m="$poll_ms" 'BEGIN { printf "%.3f", m / 1000 }')

NOW=0
now_set() { NOW=${EPOCHREALTIME//[!0-9]/}; } # no subshell: for the poll loops
say() { printf '[%5ss] %s\n' "$(($(date +%s) - T_BEGIN))" "$*" >&2; } # lib.sh's, timed
ms_between() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f\n", (b - a) / 1000 }'; }

bctr() { "$CTR_BIN" --address "$E2E_ADDR" --namespace "$E2E_NS" "$@"; }

# mem_of PID — "pss_kB rss_kB"
mem_of() {
	awk '$1 == "Rss:" { rss = $2 } $1 == "Pss:" { pss = $2 }
		END { if (pss == "") exit 1; print pss, rss }' "/proc/$1/smaps_rollup"
}
# record_mem KEY PID — R[KEY.pss], R[KEY.rss]
record_mem() {
	local m
	m=$(mem_of "$2") || fail "cannot read /proc/$2/smaps_rollup"
	read -r "R[$1.pss]" "R[$1.rss]" <<<"$m"
}

# record_fds KEY PID — R[KEY.fds]: PID's open fds, R[KEY.fd_limit]: its soft limit
record_fds() {
	local f=("/proc/$2/fd/"*)
	R[$1.fds]=${#f[@]}
	R[$1.fd_limit]=$(awk '/^Max open files/ { print $4 }' "/proc/$2/limits")
}

# record_shims_mem KEY PID... — R[KEY.pss], R[KEY.rss]: the sums over the PIDs (kB),
# R[KEY.count]: how many were read
record_shims_mem() {
	local k=$1 p m pss rss tp=0 tr=0 c=0
	shift
	for p in "$@"; do
		m=$(mem_of "$p" 2>/dev/null) || continue
		read -r pss rss <<<"$m"
		tp=$((tp + pss)) tr=$((tr + rss)) c=$((c + 1))
	done
	R[$k.pss]=$tp R[$k.rss]=$tr R[$k.count]=$c
}

# stats [DECIMALS] — reads numbers, prints "median min max"
stats() {
	sort -g | awk -v d="${1:-1}" '{ v[NR] = $1 }
		END {
			if (NR == 0) { print "nan nan nan"; exit }
			p50 = NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
			f = "%." d "f"
			printf f " " f " " f "\n", p50, v[1], v[NR] }'
}
# summarize KEY FILE — R[KEY] = median, R[KEY.min], R[KEY.max], R[KEY.all]
summarize() {
	read -r "R[$1]" "R[$1.min]" "R[$1.max]" < <(stats 1 <"$2")
	R[$1.all]=$(tr '\n' ' ' <"$2" | sed 's/ $//; s/ /, /g')
}

# log_wait FD GLOB DEADLINE_US — reads lines from FD (a log file opened for reading; no
# fork) until one matches GLOB; sets LOG_LINE. A line still being written is kept until
# its end arrives. Fails at the deadline.
LOG_LINE=
log_wait() {
	local fd=$1 pat=$2 deadline=$3 line part=
	while :; do
		while IFS= read -r -u "$fd" line; do
			line=$part$line
			part=
			# shellcheck disable=SC2053
			if [[ $line == $pat ]]; then
				LOG_LINE=$line
				return 0
			fi
		done
		part+=$line
		now_set
		[ "$NOW" -lt "$deadline" ] || return 1
		snooze "$POLL_S"
	done
}

# count_running TEXT — of the `ls` output TEXT (ID PID STATUS), how many rows are one of
# IDS, RUNNING, with the pid they had before: sets RUNNING_OK (and BAD_PIDS)
RUNNING_OK=0
BAD_PIDS=
count_running() {
	local id pid st rest
	RUNNING_OK=0 BAD_PIDS=
	while read -r id pid st rest; do
		[ "$st" = RUNNING ] && [ -n "${EXPECT[$id]:-}" ] || continue
		if [ "${EXPECT[$id]}" = "$pid" ]; then
			RUNNING_OK=$((RUNNING_OK + 1))
		else
			BAD_PIDS+="$id:${EXPECT[$id]}->$pid "
		fi
	done <<<"$1"
}

# poll_running CMD... — polls CMD (an `ls`) every POLL_MS until all N rows are RUNNING with
# their pids; sets POLLS (how many ran) and T_DONE (us). Fails after 120 s.
POLLS=0
T_DONE=0
poll_running() {
	local out deadline
	now_set
	deadline=$((NOW + 120000000))
	POLLS=0
	while :; do
		POLLS=$((POLLS + 1))
		if out=$("$@" 2>/dev/null); then
			count_running "$out"
			if [ "$RUNNING_OK" = "$n" ]; then
				now_set
				T_DONE=$NOW
				return 0
			fi
		fi
		now_set
		if [ "$NOW" -ge "$deadline" ]; then
			[ -z "$BAD_PIDS" ] || anomaly "pids changed across the restart: $BAD_PIDS"
			fail "not all $n containers RUNNING within 120 s (last poll: $RUNNING_OK)"
		fi
		snooze "$POLL_S"
	done
}

# probe_running EXPECT_FILE — nanoshimd's side: recovery-probe, started right after
# nanoshimd, connects as soon as the socket answers and calls List every 500 us over that
# connection until every "ID PID" of EXPECT_FILE is RUNNING with its pid; sets POLLS (its
# List calls) and T_DONE (us, the moment the last List answered). A failure (120 s) is
# reported with what the last List showed.
probe_running() {
	local out
	if ! out=$("$PROBE_BIN" "$NSD_ADDR" "$E2E_NS" "$1" 120 2>&1); then
		fail "not all $n containers RUNNING with their pids: $out"
	fi
	[[ "$out" =~ done_us=([0-9]+)\ connects=([0-9]+)\ lists=([0-9]+) ]] ||
		fail "recovery-probe printed: $out"
	T_DONE=${BASH_REMATCH[1]}
	POLLS=${BASH_REMATCH[3]}
}

# poll_cost KEY CMD... — R[KEY.poll_ms]: median wall time of 10 runs of CMD
poll_cost() {
	local k=$1 i t0 t1
	shift
	: >"$E2E_TMP/pollcost"
	for ((i = 0; i < 10; i++)); do
		t0=$(now_us)
		"$@" >/dev/null 2>&1 || anomaly "$k: poll command failed: $*"
		t1=$(now_us)
		ms_between "$t0" "$t1" >>"$E2E_TMP/pollcost"
	done
	read -r "R[$k.poll_ms]" _ _ < <(stats 1 <"$E2E_TMP/pollcost")
}

# ---------------------------------------------------------------------------------------
# nanoshimd

nctl() { "$NCTL_BIN" --address "$NSD_ADDR" -n "$E2E_NS" "$@"; }

# nsd_start SETUP LOG — nanoshimd with this setup's dirs and shim; sets NSD_PID. T0 (us)
# is taken just before the fork.
T0=0
nsd_start() {
	local dir=$E2E_TMP/$1
	now_set
	T0=$NOW
	"$NSD_BIN" --state "$dir/s" --root "$dir/r" --shim-binary "${SHIM_OF[$1]}" --runtime "$OCI_BIN" \
		</dev/null 2>>"$2" &
	NSD_PID=$!
	echo "$NSD_PID" >"$dir/nanoshimd.pid"
}
# nsd_kill SIGNAL — signal the nanoshimd this run started and reap it
nsd_kill() {
	local i
	[ -n "$NSD_PID" ] || return 0
	exec 3>&2 2>/dev/null # no "Killed" job report
	kill -"$1" "$NSD_PID" 2>/dev/null || true
	for ((i = 0; i < 100; i++)); do
		kill -0 "$NSD_PID" 2>/dev/null || break
		snooze 0.1
	done
	kill -KILL "$NSD_PID" 2>/dev/null || true
	wait "$NSD_PID" 2>/dev/null || true
	exec 2>&3 3>&-
	NSD_PID=
}

# nsd_shims SETUP — pids of the shims of this setup's nanoshimd (their command line has
# this run's namespace and that nanoshimd's socket)
nsd_shims() {
	local d p
	for d in /proc/[0-9]*; do
		p=${d#/proc/}
		e2e_cmdline_has "$p" -namespace "$E2E_NS" || continue
		e2e_cmdline_has "$p" -address "$E2E_TMP/$1/s/nanoshimd.sock" && echo "$p"
	done
	return 0
}

phase_nsd() {
	local s=$1 dir=$E2E_TMP/$1 i id t0 t1 fd rec
	NSD_DIRS+=("$s")
	NSD_ADDR=$dir/s/nanoshimd.sock
	mkdir -p "$dir"
	say "[$s] nanoshimd, shim ${SHIM_OF[$s]}, --net $net: idle memory"
	: >"$dir/start-0.log"
	exec {fd}<"$dir/start-0.log"
	nsd_start "$s" "$dir/start-0.log"
	log_wait "$fd" '*recovered 0 containers*' $((T0 + 30000000)) ||
		fail "$s: nanoshimd did not start: $(tail -n 5 "$dir/start-0.log")"
	exec {fd}<&-
	snooze "$settle"
	record_mem "$s.idle" "$NSD_PID"

	say "[$s] starting $n containers (nanoctl run -d --net $net ... sleep 100000)"
	IDS=()
	t0=$(now_us)
	for ((i = 1; i <= n; i++)); do
		id=$(e2e_id "$s-$i")
		if ! nctl run -d --net "$net" --rootfs "$E2E_ROOTFS" "$id" sleep 100000 \
			</dev/null >"$E2E_TMP/out" 2>&1; then
			fail "$s: nanoctl run -d $id: $(head -c 600 "$E2E_TMP/out")"
		fi
		IDS+=("$id")
	done
	t1=$(now_us)
	R[$s.create_s]=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", (b - a) / 1e6 }')
	EXPECT=()
	count_expect "$(nctl ls)"
	for id in "${!EXPECT[@]}"; do echo "$id ${EXPECT[$id]}"; done >"$dir/expect"
	snooze "$settle"
	record_mem "$s.n" "$NSD_PID"
	record_fds "$s.n" "$NSD_PID"
	# shellcheck disable=SC2046
	record_shims_mem "$s.shims" $(nsd_shims "$s")
	say "  $n started in ${R[$s.create_s]} s; nanoshimd PSS idle ${R[$s.idle.pss]} kB, with $n: ${R[$s.n.pss]} kB"

	: >"$dir/wall" ; : >"$dir/logms"; : >"$dir/polls"; : >"$dir/pss"
	for ((i = 1; i <= reps; i++)); do
		nsd_kill KILL
		: >"$dir/start-$i.log"
		exec {fd}<"$dir/start-$i.log"
		nsd_start "$s" "$dir/start-$i.log"
		probe_running "$dir/expect"
		ms_between "$T0" "$T_DONE" >>"$dir/wall"
		echo "$POLLS" >>"$dir/polls"
		log_wait "$fd" '*recovered * containers*' $((T_DONE + 10000000)) ||
			fail "$s: no \"recovered\" line from nanoshimd"
		exec {fd}<&-
		rec=$(sed -n 's/.*msg="\(recovered [^"]*\)".*/\1/p' <<<"$LOG_LINE")
		[[ "$rec" == "recovered $n containers ($n running, 0 unreachable) in "* ]] ||
			anomaly "$s: restart $i: nanoshimd logged: $rec"
		echo "${rec##* in }" | awk '{ print $1 }' >>"$dir/logms"
		nctl ps "${IDS[n - 1]}" >"$E2E_TMP/out" 2>&1 ||
			anomaly "$s: restart $i: nanoctl ps ${IDS[n - 1]} failed: $(head -c 300 "$E2E_TMP/out")"
		snooze "$settle"
		mem_of "$NSD_PID" | awk '{ print $1 }' >>"$dir/pss"
		say "  restart $i: all $n RUNNING after $(tail -n 1 "$dir/wall") ms ($POLLS polls); nanoshimd: $rec"
	done
	summarize "$s.wall" "$dir/wall"
	summarize "$s.logms" "$dir/logms"
	summarize "$s.polls" "$dir/polls"
	summarize "$s.rec.pss" "$dir/pss"
	poll_cost "$s" "$NCTL_BIN" --address "$NSD_ADDR" -n "$E2E_NS" ls

	say "[$s] removing the $n containers (nanoctl rm -f)"
	nsd_remove_all "$s"
	local left
	for ((i = 0; i < 50; i++)); do
		[ -n "$(nsd_shims "$s")" ] || break
		snooze 0.1
	done
	left=$(nsd_shims "$s" | tr '\n' ' ')
	[ -z "$left" ] || anomaly "$s: shims alive 5 s after nanoctl rm -f: $left"
	nsd_kill TERM
}

# nsd_status ID — the STATUS column of ID in `nanoctl ls`
nsd_status() {
	local id pid st rest
	while read -r id pid st rest; do
		[ "$id" != "$1" ] || { echo "$st"; return 0; }
	done < <(nctl ls 2>/dev/null)
}

# nsd_remove_all SETUP — nanoctl rm -f of every container listed. Should nanoshimd die
# meanwhile, that is reported (status, last log line), nanoshimd is started again and the
# rest go by `nanoctl kill -s KILL` + `nanoctl rm` (up to 3 restarts), so the run still
# ends clean.
nsd_remove_all() {
	local s=$1 dir=$E2E_TMP/$1 attempt id ids st log mode=force i
	for ((attempt = 1; attempt <= 4; attempt++)); do
		ids=$(nctl ls -q 2>"$E2E_TMP/out") || ids=
		for id in $ids; do
			if [ "$mode" = force ]; then
				nctl rm -f "$id" >"$E2E_TMP/out" 2>&1 ||
					anomaly "$s: nanoctl rm -f $id: $(head -c 300 "$E2E_TMP/out")"
			else
				nctl kill -s KILL "$id" >"$E2E_TMP/out" 2>&1 ||
					anomaly "$s: nanoctl kill -s KILL $id: $(head -c 300 "$E2E_TMP/out")"
				for ((i = 0; i < 100; i++)); do
					[ "$(nsd_status "$id")" != RUNNING ] && break
					snooze 0.05
				done
				nctl rm "$id" >"$E2E_TMP/out" 2>&1 ||
					anomaly "$s: nanoctl rm $id: $(head -c 300 "$E2E_TMP/out")"
			fi
			kill -0 "$NSD_PID" 2>/dev/null || break
		done
		if ! kill -0 "$NSD_PID" 2>/dev/null; then
			st=0
			exec 3>&2 2>/dev/null
			wait "$NSD_PID" || st=$?
			exec 2>&3 3>&-
			NSD_PID=
			log=$(ls -t "$dir"/start-*.log | head -n 1)
			anomaly "$s: nanoshimd exited with status $st during nanoctl rm -f $id (its last log line: $(tail -n 1 "$log")); restarted, the rest removed by nanoctl kill -s KILL + nanoctl rm"
			[ "$attempt" -lt 4 ] || fail "$s: nanoshimd keeps dying; containers left"
			mode=kill
			nsd_start "$s" "$dir/start-cleanup-$attempt.log"
			snooze 0.5
			continue
		fi
		[ -n "$(nctl ls -q)" ] || return 0
	done
	anomaly "$s: containers left after nanoctl rm -f: $(nctl ls -q | tr '\n' ' ')"
}

# count_expect TEXT — EXPECT[id] = pid for each of IDS in the `ls` output TEXT, all RUNNING
count_expect() {
	local id pid st rest
	while read -r id pid st rest; do
		[ "$id" != ID ] && [ "$id" != TASK ] || continue # the header
		[ "$st" = RUNNING ] || fail "container $id is $st before the crash"
		EXPECT[$id]=$pid
	done <<<"$1"
	[ "${#EXPECT[@]}" = "$n" ] || fail "${#EXPECT[@]} containers listed before the crash, not $n"
}

# ---------------------------------------------------------------------------------------
# containerd

phase_cd() {
	local s=$1 rt=${RT_OF[$1]} dir=$E2E_TMP/$1 i id t0 t1 fd boot tserve
	mkdir -p "$dir"
	OCI_FLAGS=()
	if [ "$oci" = crun ]; then
		if [ "$rt" = io.containerd.runc.v2 ]; then
			OCI_FLAGS=(--runc-binary="$OCI_BIN")
		else
			printf '{"binary_name": "%s"}\n' "$OCI_BIN" >"$dir/crun.json"
			OCI_FLAGS=(--runtime-config-path="$dir/crun.json")
		fi
	fi
	say "[$s] containerd, runtime $rt: starting $n containers (ctr run -d ... sleep 100000)"
	IDS=()
	t0=$(now_us)
	for ((i = 1; i <= n; i++)); do
		id=$(e2e_id "$s-$i")
		if ! ctr run -d --null-io --runtime "$rt" "${OCI_FLAGS[@]}" --env="$E2E_PATH_ENV" \
			--rootfs "$E2E_ROOTFS" "$id" sleep 100000 </dev/null >"$E2E_TMP/out" 2>&1; then
			fail "$s: ctr run -d $id: $(head -c 600 "$E2E_TMP/out")"
		fi
		IDS+=("$id")
	done
	t1=$(now_us)
	R[$s.create_s]=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", (b - a) / 1e6 }')
	EXPECT=()
	count_expect "$(bctr task ls)"
	snooze "$settle"
	record_mem "$s.n" "$E2E_CONTAINERD_PID"
	record_fds "$s.n" "$E2E_CONTAINERD_PID"
	# shellcheck disable=SC2046
	record_shims_mem "$s.shims" $(e2e_run_shims)
	say "  $n started in ${R[$s.create_s]} s; containerd PSS with $n: ${R[$s.n.pss]} kB"

	: >"$dir/wall"; : >"$dir/serve"; : >"$dir/boot"; : >"$dir/polls"; : >"$dir/pss"
	for ((i = 1; i <= reps; i++)); do
		e2e_containerd_stop KILL
		: >"$dir/start-$i.log"
		exec {fd}<"$dir/start-$i.log"
		now_set
		T0=$NOW
		PATH="$E2E_TMP/bin:$PATH" containerd --config "$E2E_TMP/config.toml" \
			</dev/null >>"$dir/start-$i.log" 2>&1 &
		E2E_CONTAINERD_PID=$!
		echo "$E2E_CONTAINERD_PID" >"$E2E_TMP/containerd.pid"
		log_wait "$fd" "*msg=serving... address=$E2E_ADDR" $((T0 + 60000000)) ||
			fail "$s: containerd not serving within 60 s: $(tail -n 5 "$dir/start-$i.log")"
		now_set
		tserve=$NOW
		poll_running "$CTR_BIN" --address "$E2E_ADDR" --namespace "$E2E_NS" task ls
		ms_between "$T0" "$T_DONE" >>"$dir/wall"
		ms_between "$T0" "$tserve" >>"$dir/serve"
		echo "$POLLS" >>"$dir/polls"
		log_wait "$fd" '*successfully booted in*' $((T_DONE + 10000000)) ||
			anomaly "$s: no \"successfully booted\" line from containerd"
		exec {fd}<&-
		boot=$(sed -n 's/.*successfully booted in \([0-9.]*\)s.*/\1/p' <<<"$LOG_LINE")
		awk -v b="${boot:-nan}" 'BEGIN { printf "%.1f\n", b * 1000 }' >>"$dir/boot"
		bctr task ps "${IDS[n - 1]}" >"$E2E_TMP/out" 2>&1 ||
			anomaly "$s: restart $i: ctr task ps ${IDS[n - 1]} failed: $(head -c 300 "$E2E_TMP/out")"
		snooze "$settle"
		mem_of "$E2E_CONTAINERD_PID" | awk '{ print $1 }' >>"$dir/pss"
		say "  restart $i: all $n RUNNING after $(tail -n 1 "$dir/wall") ms ($POLLS polls; serving after $(tail -n 1 "$dir/serve") ms; containerd: booted in ${boot}s)"
	done
	summarize "$s.wall" "$dir/wall"
	summarize "$s.serve" "$dir/serve"
	summarize "$s.boot" "$dir/boot"
	summarize "$s.polls" "$dir/polls"
	summarize "$s.rec.pss" "$dir/pss"
	poll_cost "$s" "$CTR_BIN" --address "$E2E_ADDR" --namespace "$E2E_NS" task ls

	say "[$s] removing the $n containers (ctr task rm -f, ctr containers rm)"
	for id in "${IDS[@]}"; do
		ctr task rm -f "$id" >"$E2E_TMP/out" 2>&1 || anomaly "$s: ctr task rm -f $id: $(head -c 300 "$E2E_TMP/out")"
	done
	ctr containers rm "${IDS[@]}" >"$E2E_TMP/out" 2>&1 ||
		anomaly "$s: ctr containers rm: $(head -c 300 "$E2E_TMP/out")"
	local left
	for ((i = 0; i < 100; i++)); do
		[ -n "$(e2e_run_shims)" ] || break
		snooze 0.1
	done
	left=$(e2e_run_shims | tr '\n' ' ')
	[ -z "$left" ] || anomaly "$s: shims alive 10 s after ctr task rm -f: $left"
	left=$(bctr task ls -q | tr '\n' ' ')
	[ -z "$left" ] || anomaly "$s: tasks left: $left"
}

# ---------------------------------------------------------------------------------------
# cleanup of what lib.sh does not know: nanoshimd, its shims, their cgroups (under
# /nanoshim/<namespace>/) and the Go shim's sockets in /run/containerd/s. Runs before
# lib.sh's own cleanup (which then stops containerd, deletes the runc state of every id,
# unmounts and removes the temp dir).
rb_cleanup() {
	set +e
	trap - ERR
	local s id p f a d i
	for s in "${NSD_DIRS[@]}"; do
		NSD_ADDR=$E2E_TMP/$s/s/nanoshimd.sock
		if [ -n "$NSD_PID" ] && kill -0 "$NSD_PID" 2>/dev/null; then
			for id in $(timeout 10 "$NCTL_BIN" --address "$NSD_ADDR" -n "$E2E_NS" ls -q 2>/dev/null); do
				timeout 10 "$NCTL_BIN" --address "$NSD_ADDR" -n "$E2E_NS" rm -f "$id" >/dev/null 2>&1
			done
			nsd_kill TERM
		fi
		for p in $(nsd_shims "$s"); do
			e2e_log "cleanup: killing leftover shim $p of nanoshimd ($s)"
			kill -KILL "$p" 2>/dev/null
		done
	done
	for id in $(sort -u "$E2E_TMP/ids" 2>/dev/null); do
		if [ -e "$E2E_RUNC_ROOT/$E2E_NS/$id" ]; then
			timeout 10 runc --root "$E2E_RUNC_ROOT/$E2E_NS" delete --force "$id" >/dev/null 2>&1
		fi
	done
	for f in /sys/fs/cgroup/*/nanoshim/"$E2E_NS"/*/cgroup.procs /sys/fs/cgroup/nanoshim/"$E2E_NS"/*/cgroup.procs; do
		while read -r p; do kill -KILL "$p" 2>/dev/null; done <"$f"
	done
	for s in "${NSD_DIRS[@]}"; do
		for a in "$E2E_TMP/$s/s/$E2E_NS"/*/address; do
			a=$(<"$a")
			a=${a#unix://}
			[[ "$a" == /run/containerd/s/* ]] && rm -f "$a"
		done
	done
	for i in 1 2 3; do
		for d in /sys/fs/cgroup/*/nanoshim/"$E2E_NS"/* /sys/fs/cgroup/nanoshim/"$E2E_NS"/* \
			/sys/fs/cgroup/*/nanoshim/"$E2E_NS" /sys/fs/cgroup/nanoshim/"$E2E_NS"; do
			[ -d "$d" ] && rmdir "$d" 2>/dev/null
		done
		[ -z "$(e2e_existing /sys/fs/cgroup/*/nanoshim/"$E2E_NS" /sys/fs/cgroup/nanoshim/"$E2E_NS")" ] && break
		snooze 0.2
	done
	if [ "$CG_PARENT_EXISTED" = 0 ]; then # made by this run: removed if nobody else uses it
		for d in /sys/fs/cgroup/*/nanoshim /sys/fs/cgroup/nanoshim; do
			[ -d "$d" ] && rmdir "$d" 2>/dev/null
		done
	fi
	return 0
}
trap 'rb_rc=$?; rb_cleanup; (exit $rb_rc); e2e_cleanup' EXIT

# ---------------------------------------------------------------------------------------

snooze "$settle"
record_mem cd.idle "$E2E_CONTAINERD_PID"
want nsd-nano && phase_nsd nsd-nano
want nsd-go && phase_nsd nsd-go
want cd-go && phase_cd cd-go
want cd-nano && phase_cd cd-nano

# ---------------------------------------------------------------------------------------
# the report

ratio() { # A B — A/B with 2 decimals, or "–"
	awk -v a="${1:-}" -v b="${2:-}" 'BEGIN { if (a == "" || b == "" || b + 0 == 0) print "–"; else printf "%.2f\n", a / b }'
}
mib() { awk -v k="${1:-}" 'BEGIN { if (k == "") print "–"; else printf "%.2f\n", k / 1024 }'; }
val() { echo "${R[$1]:-–}"; }
spread() { [ -n "${R[$1]:-}" ] && echo "${R[$1]} (${R[$1.min]}–${R[$1.max]})" || echo –; }

LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)
cpu_model=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
git_rev=$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)
git -C "$root" diff --quiet HEAD -- manager shim 2>/dev/null || git_rev="$git_rev + uncommitted changes"

{
	echo "# Recovery after a daemon crash: nanoshimd vs containerd"
	echo
	echo "$(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) CPUs ($cpu_model), Linux $(uname -r), cgroup $(e2e_cgroup_mode);" \
		"load average before: $LOAD_BEFORE, after: $LOAD_AFTER (other work shared the machine); run took $(($(date +%s) - T_BEGIN)) s."
	echo
	echo "- containerd $(containerd --version | awk '{ print $3 }'), runc $(runc --version | awk 'NR == 1 { print $3 }')," \
		"Go shim \`$go_shim\` $("$go_shim" -v 2>/dev/null | awk '/Version:/ { print $2 }'); ours and nanoshimd from tree $git_rev."
	echo "- N=$n detached \`sleep 100000\` containers per setup (busybox rootfs, $oci), R=$reps SIGKILL+restart each;" \
		"nanoshimd with \`--net $net\`; polls every $poll_ms ms; settle ${settle}s." \
		"Generated by \`bench/recovery-bench.sh${orig_args:+ $orig_args}\`."
	echo "- Time: from just before the daemon is exec'd to the first List showing all N RUNNING with unchanged pids" \
		"(nanoshimd: recovery-probe's List over one connection, on its \"recovered\" event or every 2 ms; containerd: \`ctr task ls\` every $poll_ms ms once its log says it serves gRPC)." \
		"Median (min–max) over R restarts."
	echo
	echo "| recovery of $n containers, ms | nanoshimd | containerd 1.6 | containerd / nanoshimd |"
	echo "|---|---:|---:|---:|"
	echo "| our shim: all RUNNING | $(spread nsd-nano.wall) | $(spread cd-nano.wall) | **$(ratio "${R[cd-nano.wall]:-}" "${R[nsd-nano.wall]:-}")** |"
	echo "| Go shim: all RUNNING | $(spread nsd-go.wall) | $(spread cd-go.wall) | **$(ratio "${R[cd-go.wall]:-}" "${R[nsd-go.wall]:-}")** |"
	echo "| nanoshimd on our shim against containerd on the Go shim (the stock setup) | $(spread nsd-nano.wall) | $(spread cd-go.wall) | **$(ratio "${R[cd-go.wall]:-}" "${R[nsd-nano.wall]:-}")** |"
	echo "| our shim: daemon's own figure¹ | $(spread nsd-nano.logms) | $(spread cd-nano.boot) | |"
	echo "| Go shim: daemon's own figure¹ | $(spread nsd-go.logms) | $(spread cd-go.boot) | |"
	echo "| containerd: gRPC serving (tasks loaded) | | our shim $(spread cd-nano.serve); Go $(spread cd-go.serve) | |"
	echo "| Lists / polls until all RUNNING (median) | ours $(val nsd-nano.polls), Go $(val nsd-go.polls) | ours $(val cd-nano.polls), Go $(val cd-go.polls) | |"
	echo "| cost of one poll with $n containers² | ours $(val nsd-nano.poll_ms), Go $(val nsd-go.poll_ms) | ours $(val cd-nano.poll_ms), Go $(val cd-go.poll_ms) | |"
	echo
	echo "| daemon memory, PSS MiB (RSS) | nanoshimd | containerd 1.6 | containerd / nanoshimd |"
	echo "|---|---:|---:|---:|"
	for s in nano go; do
		lbl=$([ $s = nano ] && echo "our shim" || echo "Go shim")
		echo "| idle, fresh start ($lbl under nanoshimd) | $(mib "${R[nsd-$s.idle.pss]:-}") ($(mib "${R[nsd-$s.idle.rss]:-}")) | $(mib "${R[cd.idle.pss]:-}") ($(mib "${R[cd.idle.rss]:-}")) | $(ratio "${R[cd.idle.pss]:-}" "${R[nsd-$s.idle.pss]:-}") |"
		echo "| $n containers on $lbl, as started | $(mib "${R[nsd-$s.n.pss]:-}") ($(mib "${R[nsd-$s.n.rss]:-}")) | $(mib "${R[cd-$s.n.pss]:-}") ($(mib "${R[cd-$s.n.rss]:-}")) | **$(ratio "${R[cd-$s.n.pss]:-}" "${R[nsd-$s.n.pss]:-}")** |"
		echo "| $n containers on $lbl, after a restart (median) | $(mib "${R[nsd-$s.rec.pss]:-}") | $(mib "${R[cd-$s.rec.pss]:-}") | $(ratio "${R[cd-$s.rec.pss]:-}" "${R[nsd-$s.rec.pss]:-}") |"
	done
	echo
	echo "| the $n shims themselves, total PSS MiB (RSS) | under nanoshimd | under containerd 1.6 |"
	echo "|---|---:|---:|"
	for s in nano go; do
		lbl=$([ $s = nano ] && echo "ours" || echo "Go")
		echo "| $lbl (shims read: nanoshimd ${R[nsd-$s.shims.count]:-–}, containerd ${R[cd-$s.shims.count]:-–}) | $(mib "${R[nsd-$s.shims.pss]:-}") ($(mib "${R[nsd-$s.shims.rss]:-}")) | $(mib "${R[cd-$s.shims.pss]:-}") ($(mib "${R[cd-$s.shims.rss]:-}")) |"
	done
	echo "| the daemon's open fds with $n (its soft limit) | ours ${R[nsd-nano.n.fds]:-–} (${R[nsd-nano.n.fd_limit]:-–}), Go ${R[nsd-go.n.fds]:-–} (${R[nsd-go.n.fd_limit]:-–}) | ours ${R[cd-nano.n.fds]:-–} (${R[cd-nano.n.fd_limit]:-–}), Go ${R[cd-go.n.fds]:-–} (${R[cd-go.n.fd_limit]:-–}) |"
	echo
	echo "¹ nanoshimd: its log line \"recovered N containers (...) in X ms\" (from its scan of the state dir"
	echo "to the last State answer; the exec, loader and socket setup are not in it). containerd: its log line"
	echo "\"containerd successfully booted in Xs\" (all plugins, including loading the tasks and connecting to"
	echo "their shims, before it serves)."
	echo "² median wall time of 10 runs of \`nanoctl ls\` / \`ctr task ls\` once all N are back: for"
	echo "containerd the measurement's resolution is about poll interval + this."
	echo
	echo "Creating the $n containers, s (sequential, not a benchmark): nanoshimd ours $(val nsd-nano.create_s), Go $(val nsd-go.create_s);" \
		"containerd (\`ctr run -d\`) ours $(val cd-nano.create_s), Go $(val cd-go.create_s)."
	echo
	echo "Runs in order, ms: nanoshimd ours $(val nsd-nano.wall.all) (own figure $(val nsd-nano.logms.all));" \
		"nanoshimd Go $(val nsd-go.wall.all) (own figure $(val nsd-go.logms.all));" \
		"containerd Go $(val cd-go.wall.all) (serving $(val cd-go.serve.all));" \
		"containerd ours $(val cd-nano.wall.all) (serving $(val cd-nano.serve.all))."
	echo
	if [ -s "$E2E_TMP/anomalies" ]; then
		echo "Anomalies seen during the run:"
		echo
		sed 's/^/- /' "$E2E_TMP/anomalies"
	else
		echo "No anomalies: every container came back RUNNING with its pid after every restart, its shim"
		echo "answered, every container was removed and every shim exited."
	fi
} >"$E2E_TMP/report.md"

if [ -n "$values" ]; then
	for k in "${!R[@]}"; do printf '%s %s\n' "$k" "${R[$k]}"; done | sort >"$values"
fi

if [ -n "$out" ]; then
	mkdir -p "$(dirname "$out")"
	cp "$E2E_TMP/report.md" "$out"
fi
cat "$E2E_TMP/report.md"
