#!/bin/bash
# ttrpc echo benchmark, C and Go side by side in one run: C client -> C server
# (this library, cpeer) and Go client -> Go server (containerd/ttrpc 1.1.1,
# gopeer), for each payload size and concurrency, the same duration each.
# Writes a markdown table with calls/s, p50/p99 latency and the C/Go ratios to
# bench/results/ttrpc.md and prints it.
#
#   bench/ttrpc-bench.sh [-d 2s] [-w 200ms] [-r 5] [--pin same|split] [-s "0 1024 65536 1048576"] [-c "1 16"]
#                        [-B builddir | --cpeer PATH --gopeer PATH] [-o out.md]
#
# -d is the measured time per run; -r N runs each cell N times per side,
# interleaved (C Go, Go C, C Go, ...), and reports the median with the min-max
# spread of each side, the ratio of the medians and the worst ratio of a C run
# to the Go run next to it. The machine's load average is recorded per cell and
# for the whole run: on a shared machine the spread is part of the result.
# --pin runs every client and server on CPU 0 (same), or clients on CPU 0 and
# servers on CPU 1 (split), C and Go alike: at 1 call in flight calls/s is
# mostly wake-up latency, which depends on where the two processes run.
#
# Without --cpeer/--gopeer the peers are built with cmake in the build dir
# (default: <repo>/build). Concurrency N means N calls in flight on ONE
# connection on both sides: cpeer keeps N async calls outstanding on one
# client, gopeer runs N goroutines sharing one ttrpc.Client.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
duration=2s
warmup=200ms
repeat=5
pin=
sizes="0 1024 65536 1048576"
concurrencies="1 16"
build_dir=$root/build
out=$here/results/ttrpc.md
cpeer=
gopeer=

# shellcheck source=lib.sh
. "$here/lib.sh"

while [ $# -gt 0 ]; do
	case $1 in
	-d | --duration) duration=$2; shift 2 ;;
	-w | --warmup) warmup=$2; shift 2 ;;
	--pin) pin=$2; shift 2 ;;
	-r | --repeat) repeat=$2; shift 2 ;;
	-s | --sizes) sizes=$2; shift 2 ;;
	-c | --concurrency) concurrencies=$2; shift 2 ;;
	-B | --build-dir) build_dir=$2; shift 2 ;;
	-o | --out) out=$2; shift 2 ;;
	--cpeer) cpeer=$2; shift 2 ;;
	--gopeer) gopeer=$2; shift 2 ;;
	*) usage ;;
	esac
done

if [ -z "$cpeer" ] || [ -z "$gopeer" ]; then
	if [ ! -f "$build_dir/CMakeCache.txt" ]; then
		cmake -S "$root" -B "$build_dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	fi
	cmake --build "$build_dir" --target cpeer gopeer -j2 >/dev/null
	cpeer=${cpeer:-$build_dir/test/interop/cpeer}
	gopeer=${gopeer:-$build_dir/test/interop/gopeer-build/gopeer}
fi
for bin in "$cpeer" "$gopeer"; do
	if [ ! -x "$bin" ]; then
		echo "ttrpc-bench: $bin missing" >&2
		exit 1
	fi
done

case $pin in
'') client_cpu=() server_cpu=() ;;
same) client_cpu=(taskset -c 0) server_cpu=(taskset -c 0) ;;
split) client_cpu=(taskset -c 0) server_cpu=(taskset -c 1) ;;
*) usage ;;
esac

tmp=$(mktemp -d "${TMPDIR:-/tmp}/ttrpc-bench.XXXXXX")
pids=()

# Stops the servers this script started, and only those.
stop_servers() {
	local pid
	for pid in "${pids[@]}"; do
		kill -TERM "$pid" 2>/dev/null || true
	done
	for pid in "${pids[@]}"; do
		wait "$pid" 2>/dev/null || true
	done
	pids=()
}

cleanup() {
	stop_servers
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# start_server NAME BIN: serves on $tmp/NAME.sock, waits for "ready".
start_server() {
	local name=$1 bin=$2
	rm -f "$tmp/$name.sock" "$tmp/$name.out"
	"${server_cpu[@]}" "$bin" server -socket "$tmp/$name.sock" >"$tmp/$name.out" \
		2>"$tmp/$name.err" &
	pids+=($!)
	for _ in $(seq 200); do
		if grep -qx ready "$tmp/$name.out" 2>/dev/null; then
			return 0
		fi
		sleep 0.05
	done
	echo "ttrpc-bench: $name server not ready:" >&2
	cat "$tmp/$name.err" >&2
	exit 1
}

json_get() {
	printf '%s\n' "$1" | sed -n "s/.*\"$2\":\([-0-9.eE+]*\).*/\1/p"
}

# values KEY JSON...: that figure of each run, one per line, in run order.
values() {
	local key=$1 j
	shift
	for j in "$@"; do
		json_get "$j" "$key"
	done
}

# stat KEY JSON...: "median min max" of that figure over the runs.
stat() {
	values "$@" | sort -g | awk '{ v[NR] = $1 } END {
		m = NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
		print m, v[1], v[NR] }'
}

load1() {
	cut -d' ' -f1 /proc/loadavg
}

# secs DURATION: Go-style "2s", "500ms", "1.5s" in seconds.
secs() {
	case $1 in
	*ms) awk -v v="${1%ms}" 'BEGIN { print v / 1000 }' ;;
	*s) echo "${1%s}" ;;
	*) echo "ttrpc-bench: duration $1: use s or ms" >&2; exit 2 ;;
	esac
}

# CPU seconds of a live process (all threads), and of this shell's reaped
# children (the bench clients).
proc_cpu() {
	awk -v hz="$(getconf CLK_TCK)" '{ sub(/.*\) /, ""); print ($12 + $13) / hz }' "/proc/$1/stat"
}
children_cpu() {
	times | tail -n 1 | awk '{
		n = 0
		for (i = 1; i <= 2; i++) { split($i, t, /[ms]/); n += t[1] * 60 + t[2] }
		print n }'
}

# run_bench BIN SOCKET SERVER_PID: one client run; prints its JSON with
# "cpu_us" added: client and server CPU time per call, warm-up included.
run_bench() {
	local bin=$1 sock=$2 spid=$3 c0 s0 c1 s1 j
	c0=$(children_cpu)
	s0=$(proc_cpu "$spid")
	j=$("${client_cpu[@]}" "$bin" bench -socket "$sock" -size "$size" -concurrency "$conc" \
		-duration "$duration" -warmup "$warmup")
	s1=$(proc_cpu "$spid")
	c1=$(children_cpu)
	awk -v j="$j" -v cpu="$(awk -v a="$c0" -v b="$c1" -v x="$s0" -v y="$s1" 'BEGIN { print b - a + y - x }')" \
		-v d="$(secs "$duration")" -v w="$(secs "$warmup")" 'BEGIN {
		match(j, /"calls_per_sec":[0-9.eE+]*/)
		cps = substr(j, RSTART + 16, RLENGTH - 16)
		us = cps > 0 ? cpu * 1e6 / (cps * (d + w)) : 0
		sub(/}$/, sprintf(",\"cpu_us\":%.3f}", us), j)
		print j }'
}

human_size() {
	case $1 in
	0) echo "0 B" ;;
	*) awk -v n="$1" 'BEGIN {
		if (n >= 1048576 && n % 1048576 == 0) printf "%d MiB", n / 1048576
		else if (n >= 1024 && n % 1024 == 0) printf "%d KiB", n / 1024
		else printf "%d B", n }' ;;
	esac
}

rows=()
load_start=$(cut -d' ' -f1-3 /proc/loadavg)
for size in $sizes; do
	for conc in $concurrencies; do
		echo "ttrpc-bench: $(human_size "$size") x $conc in flight," \
			"$repeat x $duration each side, interleaved" >&2
		# Fresh servers per cell: no cell inherits another's heap or caches.
		start_server c "$cpeer"
		cpid=${pids[-1]}
		start_server go "$gopeer"
		gpid=${pids[-1]}
		cs=() gs=() loads=()
		for i in $(seq "$repeat"); do
			loads+=("$(load1)")
			# alternate which side goes first, so neither always runs
			# right after the other's burst
			if [ $((i % 2)) -eq 1 ]; then
				cs+=("$(run_bench "$cpeer" "$tmp/c.sock" "$cpid")")
				gs+=("$(run_bench "$gopeer" "$tmp/go.sock" "$gpid")")
			else
				gs+=("$(run_bench "$gopeer" "$tmp/go.sock" "$gpid")")
				cs+=("$(run_bench "$cpeer" "$tmp/c.sock" "$cpid")")
			fi
		done
		stop_servers
		# worst pair: the lowest ratio of a C run to the Go run of its round
		worst=$(paste <(values calls_per_sec "${cs[@]}") <(values calls_per_sec "${gs[@]}") |
			awk '$2 > 0 { r = $1 / $2; if (w == "" || r < w) w = r } END { printf "%.2f", w }')
		read -r cc cmin cmax <<<"$(stat calls_per_sec "${cs[@]}")"
		read -r gc gmin gmax <<<"$(stat calls_per_sec "${gs[@]}")"
		read -r c50 _ _ <<<"$(stat p50_us "${cs[@]}")"
		read -r g50 _ _ <<<"$(stat p50_us "${gs[@]}")"
		read -r c99 _ _ <<<"$(stat p99_us "${cs[@]}")"
		read -r g99 _ _ <<<"$(stat p99_us "${gs[@]}")"
		read -r ccpu _ _ <<<"$(stat cpu_us "${cs[@]}")"
		read -r gcpu _ _ <<<"$(stat cpu_us "${gs[@]}")"
		read -r lmed lmin lmax <<<"$(printf '%s\n' "${loads[@]}" | sort -g |
			awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)], v[1], v[NR] }')"
		rows+=("$(awk -v size="$(human_size "$size")" -v conc="$conc" \
			-v cc="$cc" -v cmin="$cmin" -v cmax="$cmax" \
			-v gc="$gc" -v gmin="$gmin" -v gmax="$gmax" -v worst="$worst" \
			-v c50="$c50" -v g50="$g50" -v c99="$c99" -v g99="$g99" \
			-v ccpu="$ccpu" -v gcpu="$gcpu" \
			-v lmin="$lmin" -v lmax="$lmax" '
			function ratio(a, b) { return b > 0 ? sprintf("%.2f", a / b) : "-" }
			BEGIN {
				printf "| %s | %d | %.0f (%.0f–%.0f) | %.0f (%.0f–%.0f) | **%s** | %s | %.1f / %.1f | **%s** | %.1f / %.1f | %.1f / %.1f | %.1f–%.1f |",
					size, conc, cc, cmin, cmax, gc, gmin, gmax, ratio(cc, gc), worst,
					ccpu, gcpu, ratio(ccpu, gcpu), c50, g50, c99, g99, lmin, lmax
			}')")
	done
done
load_end=$(cut -d' ' -f1-3 /proc/loadavg)

go_version=$(go version 2>/dev/null | awk '{print $3}' || true)
cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)
mkdir -p "$(dirname "$out")"
{
	echo "# ttrpc echo: C (nanoshim ttrpc) vs Go (containerd/ttrpc 1.1.1)"
	echo
	echo "$(date -u +%Y-%m-%d), $(nproc) CPUs ($cpu), Linux $(uname -r), ${go_version:-go ?}."
	echo "Load average (1/5/15 min): $load_start at the start, $load_end at the end."
	echo
	echo "Each cell: $repeat runs of $duration per side, C and Go interleaved (the side"
	echo "that goes first alternates), after a short warm-up each; client and server on"
	echo "the same machine over a unix socket. Generated by"
	echo "\`bench/ttrpc-bench.sh -d $duration -w $warmup -r $repeat${pin:+ --pin $pin}\`${pin:+ (clients and servers pinned: $pin)}."
	echo
	echo "- C: \`cpeer bench\` -> \`cpeer server\` (one thread each, epoll). Concurrency N ="
	echo "  N async calls kept in flight on one connection."
	echo "- Go: \`gopeer bench\` -> \`gopeer server\` (ttrpc 1.1.1, default GOMAXPROCS)."
	echo "  Concurrency N = N goroutines sharing one \`ttrpc.Client\` (one connection)."
	echo "- Both servers are started afresh for each cell."
	echo "- calls/s: median (min–max) of the runs. C/Go: ratio of the medians; worst:"
	echo "  the lowest C/Go of one round (a C run and the Go run next to it)."
	echo "- CPU µs/call: user + system time of client and server over a run (warm-up"
	echo "  included) divided by its calls, median over the runs; the cost of a call,"
	echo "  less sensitive than calls/s to where the scheduler puts the two processes."
	echo "- Latency is per call, issue to reply, over the calls started in the measured"
	echo "  window, median over the runs (C / Go). Load: the 1-minute load average"
	echo "  before each run of the cell, min–max."
	echo
	echo "| payload | in flight | C calls/s | Go calls/s | C/Go | worst | CPU µs/call C / Go | C/Go | p50 µs C / Go | p99 µs C / Go | load |"
	echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
	printf '%s\n' "${rows[@]}"
} >"$out"
cat "$out"
