#!/usr/bin/env bash
# Memory benchmark: what an idle shim holds, and what execs leave behind. Debian's Go
# shim (containerd-shim-runc-v2, runtime io.containerd.runc.v2) and ours
# (containerd-shim-nano-v2, io.containerd.nano.v2; optionally a second build of ours,
# e.g. the dynamically linked one, as io.containerd.nanodyn.v2) side by side, in one
# run, on one private containerd (test/e2e/lib.sh; busybox rootfs). Measures:
#   idle   N detached `sleep` containers per shim, one shim kind at a time (so only its
#          own N processes share its binary's pages), SETTLE seconds, then per shim
#          process /proc/PID/smaps_rollup: Rss, Pss, USS (Private_Clean+Private_Dirty),
#          and Threads and the number of mappings; the mean over the N shims is one
#          sample. R rounds (each round: every shim kind once); median and min–max.
#   exec   one detached container per shim kind; 10 warm-up execs, then E
#          `ctr task exec … true` one after another; Rss/Pss/USS of its shim (SETTLE
#          seconds after the last exec) at the start and every S execs: the growth.
# Writes a markdown report (ratios ours/Go) to bench/results/memory.md and prints it.
# Needs root, containerd 1.6, ctr, runc, busybox-static. Cleans up everything this run
# created (tasks, containers, its shims, cgroups, mounts), also on failure or ^C.
#
#   bench/memory-bench.sh [--shim PATH | -B builddir] [--other-shim PATH]
#                         [-n 20] [-r 3] [-e 1000] [-s 100] [--settle 5]
#                         [--cache-dir DIR] [-o out.md]
#
# Without --shim the shim is built with cmake in the build dir (default <repo>/build).
# Shim binaries are copied at start, so a rebuild during the run does not change them.
set -euo pipefail
export LC_ALL=C

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
idle_n=20
rounds=3
execs=1000
sample=100
settle=5
build_dir=$root/build
shim=
other=
cache_dir=
out=$here/results/memory.md
orig_args="$*"
# shellcheck source=lib.sh
. "$here/lib.sh"

while [ $# -gt 0 ]; do
	case $1 in
	-n | --idle) idle_n=$2; shift 2 ;;
	-r | --rounds) rounds=$2; shift 2 ;;
	-e | --execs) execs=$2; shift 2 ;;
	-s | --sample) sample=$2; shift 2 ;;
	--settle) settle=$2; shift 2 ;;
	-B | --build-dir) build_dir=$2; shift 2 ;;
	--shim) shim=$2; shift 2 ;;
	--other-shim) other=$2; shift 2 ;;
	--cache-dir) cache_dir=$2; shift 2 ;;
	-o | --out) out=$2; shift 2 ;;
	*) usage ;;
	esac
done
for v in "$idle_n" "$rounds" "$sample" "$settle"; do
	[[ "$v" =~ ^[0-9]+$ ]] && [ "$v" -gt 0 ] || usage
done
[[ "$execs" =~ ^[0-9]+$ ]] || usage

if [ -z "$shim" ]; then
	bench_build containerd-shim-nano-v2
	shim=$build_dir/shim/containerd-shim-nano-v2
fi
for s in "$shim" ${other:+"$other"}; do
	[ -x "$s" ] || { echo "memory-bench: $s missing" >&2; exit 1; }
done
bench_go_shim memory-bench

# --- the private containerd (test/e2e/lib.sh) ------------------------------------------
bench_containerd_env "$(readlink -f "$shim")" 7200 120
T_START=$(date +%s)
# shellcheck source=../test/e2e/lib.sh
. "$root/test/e2e/lib.sh"
e2e_setup
# the shims under test, frozen for this run (containerd finds them on PATH)
bench_freeze_shim
GO=io.containerd.runc.v2 NANO=io.containerd.nano.v2 DYN=io.containerd.nanodyn.v2
KINDS=("$GO" "$NANO")
declare -A LABEL=([$GO]=go [$NANO]=nano [$DYN]=nanodyn)
declare -A EXE=([$GO]=$go_shim [$NANO]=$nano_exe)
if [ -n "$other" ]; then
	cp "$other" "$E2E_TMP/bin/containerd-shim-nanodyn-v2"
	EXE[$DYN]=$E2E_TMP/bin/containerd-shim-nanodyn-v2
	KINDS+=("$DYN")
fi
declare -A KIND_DESC=()
for rt in "${KINDS[@]}"; do
	if file -L "${EXE[$rt]}" | grep -q 'statically linked'; then
		KIND_DESC[$rt]="static, $(stat -c %s "${EXE[$rt]}") B"
	else
		KIND_DESC[$rt]="dynamic, $(stat -c %s "${EXE[$rt]}") B"
	fi
done

run_args() { RUN_ARGS=(--runtime "$1" --env="$E2E_PATH_ENV" --rootfs "$E2E_ROOTFS"); }

# shim_of RUNTIME ID — the pid of the long-lived shim serving ID: its bundle's shim.pid
# (ours) or the parent of the task's init (the Go shim is its subreaper); checked to run
# the expected binary and to carry -id ID without an action word
shim_of() {
	local rt=$1 id=$2 pid init exe
	pid=$(e2e_shim_pid "$id")
	if [ -z "$pid" ]; then
		init=$(e2e_task_pid "$id")
		pid=$(awk '{ print $4 }' "/proc/$init/stat" 2>/dev/null || true)
	fi
	[ -n "$pid" ] || fail "${LABEL[$rt]}: no shim found for $id"
	e2e_cmdline_has "$pid" -id "$id" || fail "${LABEL[$rt]}: pid $pid is not the shim of $id"
	exe=$(readlink -f "/proc/$pid/exe" 2>/dev/null || true)
	[ "$exe" = "$(readlink -f "${EXE[$rt]}")" ] ||
		fail "${LABEL[$rt]}: shim $pid of $id runs [$exe], expected [${EXE[$rt]}]"
	echo "$pid"
}

# mem_of PID — "rss pss uss threads maps" (kB, kB, kB, count, count)
mem_of() {
	local t m
	t=$(awk '$1 == "Threads:" { print $2 }' "/proc/$1/status")
	m=$(wc -l <"/proc/$1/maps")
	awk -v t="$t" -v m="$m" '
		$1 == "Rss:" { rss = $2 } $1 == "Pss:" { pss = $2 }
		$1 == "Private_Clean:" || $1 == "Private_Dirty:" { uss += $2 }
		END { if (rss == "") exit 1; print rss, pss, uss, t, m }' "/proc/$1/smaps_rollup"
}

# stats — numbers in, "median min max" out
stats() {
	sort -g | awk '{ v[NR] = $1 }
		END { if (NR == 0) { print "nan nan nan"; exit }
			p50 = NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
			printf "%.1f %.1f %.1f\n", p50, v[1], v[NR] }'
}

# --- idle ------------------------------------------------------------------------------

# idle_round RUNTIME ROUND — N sleepers, their shims' mean memory appended to
# idle-<label> as "rss pss uss threads maps"; all shims of this run gone afterwards
idle_round() {
	local rt=$1 l=${LABEL[$1]} i id pid ids=()
	local -A seen=()
	run_args "$rt"
	for ((i = 1; i <= idle_n; i++)); do
		id=$(e2e_id "idle-$l-$2-$i")
		ctr run -d --null-io "${RUN_ARGS[@]}" "$id" sleep 1000000 </dev/null >"$E2E_TMP/out" 2>&1 ||
			fail "$l: ctr run -d $id failed: $(head -c 600 "$E2E_TMP/out")"
		ids+=("$id")
	done
	snooze "$settle"
	: >"$E2E_TMP/round"
	for id in "${ids[@]}"; do
		[ "$(e2e_task_status "$id")" = RUNNING ] || fail "$l: task $id is not RUNNING"
		pid=$(shim_of "$rt" "$id")
		[ -z "${seen[$pid]:-}" ] || fail "$l: $id and ${seen[$pid]} share shim $pid"
		seen[$pid]=$id
		mem_of "$pid" >>"$E2E_TMP/round" || fail "$l: cannot read the memory of shim $pid"
	done
	cat "$E2E_TMP/round" >>"$E2E_TMP/idle-all-$l"
	awk '{ for (i = 1; i <= 5; i++) s[i] += $i }
		END { printf "%.1f %.1f %.1f %.2f %.1f\n", s[1] / NR, s[2] / NR, s[3] / NR, s[4] / NR, s[5] / NR }' \
		"$E2E_TMP/round" | tee -a "$E2E_TMP/idle-$l" >"$E2E_TMP/mean"
	read -r a b c d e <"$E2E_TMP/mean"
	say "  round $2, $l: $idle_n shims, mean RSS $a kB, PSS $b kB, USS $c kB, threads $d, maps $e"
	for id in "${ids[@]}"; do
		ctr task rm -f "$id" >"$E2E_TMP/out" 2>&1 || anomaly "$l: ctr task rm -f $id: $(head -c 300 "$E2E_TMP/out")"
	done
	ctr containers rm "${ids[@]}" >/dev/null 2>&1 || anomaly "$l: ctr containers rm failed"
	for ((i = 0; i < 100; i++)); do
		[ -n "$(e2e_run_shims)" ] || return 0
		snooze 0.1
	done
	anomaly "$l: shims alive 10 s after their tasks were deleted: $(e2e_run_shims | tr '\n' ' ')"
}

# --- exec ------------------------------------------------------------------------------

# exec_run RUNTIME — E execs of `true` in one container; samples to exec-<label> as
# "execs rss pss uss maps fds"
exec_run() {
	local rt=$1 l=${LABEL[$1]} id pid i out m fds t0
	id=$(e2e_id "exec-$l")
	run_args "$rt"
	ctr run -d --null-io "${RUN_ARGS[@]}" "$id" sleep 1000000 </dev/null >/dev/null
	pid=$(shim_of "$rt" "$id")
	for ((i = 1; i <= 10; i++)); do
		ctr task exec --exec-id "w$i" "$id" true </dev/null >/dev/null
	done
	: >"$E2E_TMP/exec-$l"
	sample_exec() {
		snooze "$settle"
		read -r a b c _ m < <(mem_of "$pid")
		fds=$(e2e_fd_count "$pid")
		echo "$1 $a $b $c $m $fds" >>"$E2E_TMP/exec-$l"
		say "  $l after $1 execs: RSS $a kB, PSS $b kB, USS $c kB, maps $m, fds $fds"
	}
	sample_exec 0
	t0=$(date +%s%N)
	for ((i = 1; i <= execs; i++)); do
		out=$(ctr task exec --exec-id "x$i" "$id" true </dev/null 2>&1) ||
			fail "$l: exec $i failed: $out"
		[ -z "$out" ] || anomaly "$l: exec $i printed: $out"
		if ((i % sample == 0)) || ((i == execs)); then
			sample_exec "$i"
		fi
	done
	EXEC_MS[$rt]=$((($(date +%s%N) - t0) / 1000000))
	[ "$(e2e_task_status "$id")" = RUNNING ] || fail "$l: task $id is not RUNNING after the execs"
	ctr task rm -f "$id" >/dev/null 2>&1 || anomaly "$l: ctr task rm -f $id failed"
	ctr containers rm "$id" >/dev/null 2>&1 || anomaly "$l: ctr containers rm $id failed"
}

say "memory-bench: ${#KINDS[@]} shims, $idle_n idle containers each, $rounds rounds; $execs execs"
for ((r = 1; r <= rounds; r++)); do
	for rt in "${KINDS[@]}"; do
		idle_round "$rt" "$r"
	done
done
declare -A EXEC_MS=()
if [ "$execs" -gt 0 ]; then
	for rt in "${KINDS[@]}"; do
		say "[exec] $execs execs on ${LABEL[$rt]}"
		exec_run "$rt"
	done
fi

# --- report ----------------------------------------------------------------------------
# MED[LABEL.N], STR[LABEL.N] — median, and "median (min–max)", of column N of idle-LABEL
declare -A MED=() STR=()
for rt in "${KINDS[@]}"; do
	for n in 1 2 3 4 5; do
		l=${LABEL[$rt]}
		read -r p lo hi < <(awk -v c="$n" '{ print $c }' "$E2E_TMP/idle-$l" | stats)
		MED[$l.$n]=$p
		STR[$l.$n]=$p
		[ "$rounds" -eq 1 ] || STR[$l.$n]="$p ($lo–$hi)"
	done
done
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.3f", a / b; else printf "–" }'; }
kib_mib() { awk -v k="$1" 'BEGIN { printf "%.0f KiB (%.2f MiB)", k, k / 1024 }'; }

ver() { dpkg-query -W -f='${Version}' "$1" 2>/dev/null || echo "?"; }
tree=$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo "?")
dirty=$(git -C "$root" status --porcelain --untracked-files=no 2>/dev/null | head -c1)
{
	echo "# Shim memory (bench/memory-bench.sh)"
	echo
	echo "$(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) CPUs ($(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo)), Linux $(uname -r);" \
		"load average before: $LOAD_BEFORE, after: $(cut -d' ' -f1-3 /proc/loadavg); run took $(($(date +%s) - T_START)) s."
	echo
	echo "- containerd $(ver containerd), runc $(ver runc), Go shim \`$go_shim\` $(ver containerd); ours from tree $tree${dirty:+ (with uncommitted changes)}."
	for rt in "${KINDS[@]}"; do
		echo "- ${LABEL[$rt]}: \`${EXE[$rt]##*/}\` ($rt), ${KIND_DESC[$rt]}."
	done
	echo "- Generated by \`bench/memory-bench.sh $orig_args\`."
	echo
	echo "## Idle shim, $idle_n shims per kind, median (min–max) of $rounds rounds"
	echo
	echo "Each round's figure is the mean over its $idle_n shims, $settle s after the last one started."
	echo
	printf '| per idle shim |'
	for rt in "${KINDS[@]}"; do printf ' %s |' "${LABEL[$rt]}"; done
	for rt in "${KINDS[@]}"; do [ "$rt" = "$GO" ] || printf ' %s/go |' "${LABEL[$rt]}"; done
	echo
	printf '|---|'
	for rt in "${KINDS[@]}"; do printf -- '---:|'; done
	for rt in "${KINDS[@]}"; do [ "$rt" = "$GO" ] || printf -- '---:|'; done
	echo
	for c in 2:PSS 1:RSS 3:USS 4:threads 5:mappings; do
		n=${c%%:*}
		if [ "$n" -le 3 ]; then printf '| %s, KiB |' "${c#*:}"; else printf '| %s |' "${c#*:}"; fi
		for rt in "${KINDS[@]}"; do printf ' %s |' "${STR[${LABEL[$rt]}.$n]}"; done
		for rt in "${KINDS[@]}"; do
			[ "$rt" = "$GO" ] || printf ' %s |' "$(ratio "${MED[${LABEL[$rt]}.$n]}" "${MED[go.$n]}")"
		done
		echo
	done
	echo
	printf '%s' "Total PSS of the $idle_n idle shims (median round):"
	for rt in "${KINDS[@]}"; do
		printf ' %s %s;' "${LABEL[$rt]}" "$(kib_mib "$(awk -v p="${MED[${LABEL[$rt]}.2]}" -v n="$idle_n" 'BEGIN { print p * n }')")"
	done
	echo
	echo
	if [ "$execs" -gt 0 ]; then
		echo "## $execs execs in one container"
		echo
		echo "\`ctr task exec\` of \`true\`, one after another, after 10 warm-up execs; the shim's memory"
		echo "$settle s after the last exec of each step. Growth is the last sample minus the first."
		echo
		printf '| execs |'
		for rt in "${KINDS[@]}"; do printf ' %s RSS / PSS / USS, KiB |' "${LABEL[$rt]}"; done
		echo
		printf '|---:|'
		for rt in "${KINDS[@]}"; do printf -- '---:|'; done
		echo
		awk '{ print $1 }' "$E2E_TMP/exec-${LABEL[${KINDS[0]}]}" | while read -r k; do
			printf '| %s |' "$k"
			for rt in "${KINDS[@]}"; do
				awk -v k="$k" '$1 == k { printf " %s / %s / %s |", $2, $3, $4 }' "$E2E_TMP/exec-${LABEL[$rt]}"
			done
			echo
		done
		printf '| growth |'
		for rt in "${KINDS[@]}"; do
			awk 'NR == 1 { r = $2; p = $3; u = $4 } END { printf " %+d / %+d / %+d |", $2 - r, $3 - p, $4 - u }' \
				"$E2E_TMP/exec-${LABEL[$rt]}"
		done
		echo
		echo
		printf 'Mappings and fds of the shim, first → last sample:'
		for rt in "${KINDS[@]}"; do
			awk -v l="${LABEL[$rt]}" 'NR == 1 { m = $5; f = $6 } END { printf " %s %d → %d maps, %d → %d fds;", l, m, $5, f, $6 }' \
				"$E2E_TMP/exec-${LABEL[$rt]}"
		done
		printf ' wall time of the %s execs:' "$execs"
		for rt in "${KINDS[@]}"; do printf ' %s %s s;' "${LABEL[$rt]}" "$(awk -v m="${EXEC_MS[$rt]}" 'BEGIN { printf "%.0f", m / 1000 }')"; done
		echo
		echo
	fi
	echo "Rounds (mean RSS PSS USS threads maps per shim):"
	for rt in "${KINDS[@]}"; do
		echo "${LABEL[$rt]}: $(awk '{ printf "%s[%s %s %s %s %s]", (NR > 1 ? " " : ""), $1, $2, $3, $4, $5 }' "$E2E_TMP/idle-${LABEL[$rt]}")."
	done
	echo
	if [ -s "$E2E_TMP/anomalies" ]; then
		echo "Anomalies seen during the run:"
		echo
		sed 's/^/- /' "$E2E_TMP/anomalies"
	else
		echo "No anomalies: every container ran with its own shim of the expected binary, every"
		echo "exec succeeded without output, and every shim exited after its task was deleted."
	fi
} >"$E2E_TMP/report.md"

mkdir -p "$(dirname "$out")"
cp "$E2E_TMP/report.md" "$out"
cat "$out"
