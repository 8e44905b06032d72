#!/usr/bin/env bash
# No shim is leaked when containerd is SIGKILLed during `ctr run -d` or `ctr task rm`
# and restarted. containerd shuts a shim down only after deleting its task; killed
# between `start` and Create, or between the shim's Delete reply and Shutdown, it never
# will: restarted, it reloads the taskless shim (Connect answers) and keeps it for good —
# `ctr task ls` does not list it, `ctr task rm` finds no task, `ctr c rm` forgets the
# container, and a new task with that id is refused as existing. Our shim goes on its
# own when it has had no task for SHIM_ORPHAN_GRACE_MS (5 s) with no Create or Shutdown
# (shim/orphan.h), removing its socket.
#
# Windows hit deterministically — a wrapper around the shim holds `start` just after it
# printed the address (or just before it runs), a wrapper around runc holds create,
# start or delete, and the window after Delete and before Shutdown is the shim's Delete
# sent by hand while containerd is stopped — and others at random: rounds of 4 `ctr run
# -d` or 4 `ctr task rm` in flight when containerd is killed. After each restart: every
# task listed goes with `ctr task rm -f` within 1 s; then, with every container removed,
# no shim of this run is left a few seconds later, nor any of their sockets or bundles,
# and the id of a shim that went can be run again.
#
# Debian's Go shim (RUNTIME=io.containerd.runc.v2) has no such rule. Its known
# behaviour, asserted here: the shims of the windows between `start` and Create, inside
# Create, before `start` (it serves in the bundle the restarted containerd removed) and
# between Delete and Shutdown stay, and containerd, which keeps the reloaded ones, then
# refuses a new task with such an id as existing; at random points whatever stays is
# counted. The test ends those shims itself. Last, the rule on shims of ours started by
# hand: gone at once when its bundle is removed, after 5 s without a task, held by a
# connection that has sent nothing (up to 30 s).
. "$(dirname "$0")/lib.sh"

[ -x "$E2E_SHIMCALL" ] || fail "shimcall not built ($E2E_SHIMCALL)"
e2e_setup

GRACE_S=5 # SHIM_ORPHAN_GRACE_MS
# E2E_ORPHAN_COUNT_ONLY=1: shims left are counted, not asserted (to measure a shim
# without the rule)
count_only=${E2E_ORPHAN_COUNT_ONLY:-0}
go_shim=0
if [ "$RUNTIME" = io.containerd.runc.v2 ] && [ "$SHIM_AS_RUNC" != 1 ]; then
	go_shim=1
fi

# ---- the faults: files in $faults, per container id -----------------------------------
faults=$E2E_TMP/faults
mkdir -p "$faults"
mkfifo "$faults/never"

# runc behind a wrapper: with $faults/<subcommand>.<id>, it marks at.<subcommand>.<id>
# and waits 4 s before running runc (builtins only: a SIGKILL leaves no child behind);
# with $faults/<subcommand>-done.<id>, it runs runc, marks at.<subcommand>-done.<id> and
# waits 4 s before it exits (runc's work done, its caller not told yet)
real_runc=$(command -v runc)
runc_wrapper=$E2E_TMP/runc-wrapper
cat >"$runc_wrapper" <<WRAPPER
#!/bin/bash
$(e2e_runc_subcommand)
id=\${*: -1}
if [ -n "\$sub" ] && [ -e "$faults/\$sub.\$id" ]; then
	: >"$faults/at.\$sub.\$id"
	read -r -t 4 <>"$faults/never" || true
fi
if [ -n "\$sub" ] && [ -e "$faults/\$sub-done.\$id" ]; then
	"$real_runc" "\$@"
	rc=\$?
	: >"$faults/at.\$sub-done.\$id"
	read -r -t 4 <>"$faults/never" || true
	exit \$rc
fi
exec "$real_runc" "\$@"
WRAPPER
chmod +x "$runc_wrapper"
if [ "$CTR_RUNTIME" = io.containerd.runc.v2 ]; then
	runc_flags=(--runc-binary="$runc_wrapper")
else
	printf '{"binary_name":"%s"}\n' "$runc_wrapper" >"$E2E_TMP/runtime.json"
	runc_flags=(--runtime-config-path="$E2E_TMP/runtime.json")
fi

# the shim behind a wrapper on containerd's PATH: with $faults/start-after.<id>, `start`
# runs, then holds containerd's pipe 4 s (the shim serves, its address is in the bundle,
# containerd has not read it: no Create); with $faults/start-before.<id>, `start` waits
# for $faults/go.<id> before it runs (the bundle has no address meanwhile)
if [ "$CTR_RUNTIME" = io.containerd.runc.v2 ]; then
	shim_name=containerd-shim-runc-v2
else
	shim_name=containerd-shim-nano-v2
fi
real_shim=$(e2e_expected_shim_binary)
rm -f "$E2E_TMP/bin/$shim_name"
cat >"$E2E_TMP/bin/$shim_name" <<WRAPPER
#!/bin/bash
real=$real_shim
faults=$faults
WRAPPER
cat >>"$E2E_TMP/bin/$shim_name" <<'WRAPPER'
action= id=
args=("$@")
for ((i = 0; i < $#; i++)); do
	case "${args[i]}" in
	-id) id=${args[i + 1]} ;;
	start | delete) action=${args[i]} ;;
	esac
done
[ "$action" = start ] || exec "$real" "$@"
if [ -e "$faults/start-before.$id" ]; then
	: >"$faults/at.start-before.$id"
	i=0
	while [ ! -e "$faults/go.$id" ] && [ $((i += 1)) -le 200 ]; do
		read -r -t 0.05 <>"$faults/never"
	done
	"$real" "$@"
	rc=$?
	: >"$faults/done.start-before.$id"
	exit "$rc"
fi
out=$("$real" "$@")
rc=$?
if [ -e "$faults/start-after.$id" ]; then
	: >"$faults/at.start-after.$id"
	read -r -t 4 <>"$faults/never"
fi
printf '%s' "$out"
exit "$rc"
WRAPPER
chmod +x "$E2E_TMP/bin/$shim_name"

# ---- helpers -----------------------------------------------------------------------------
bg_pids=()
run_bg() { # ID: ctr run -d in the background (it fails when containerd dies under it)
	e2e_run -d --null-io "${runc_flags[@]}" "$1" sleep 1000 </dev/null >/dev/null 2>&1 &
	bg_pids+=($!)
}
wait_bg() {
	wait "${bg_pids[@]}" 2>/dev/null || true
	bg_pids=()
}
at() { [ -e "$faults/at.$1" ]; }
# alive PID — PID runs (a zombie does not: whoever reaps orphans here may take a while)
alive() {
	local st
	st=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
	st=${st##*) }
	[ "${st%% *}" != Z ]
}
gone() { ! alive "$1"; }
ms_since() { echo $((($(date +%s%N) - $1) / 1000000)); }
kill_containerd() {
	kill -KILL "$E2E_CONTAINERD_PID"
	e2e_containerd_stop KILL # reaps it
}
# the holds are for the first pass only: what runs after the kill runs at full speed
clear_faults() {
	rm -f "$faults"/create.* "$faults"/start.* "$faults"/delete.* "$faults"/start-after.* \
		"$faults"/start-done.*
}

# remove_all ID... — every task listed goes with ctr task rm -f within 1 s; then the
# containers are removed
remove_all() {
	local id st pid t0 ms out
	for id in "$@"; do
		st=$(e2e_task_status "$id")
		[ -n "$st" ] || continue
		pid=$(e2e_task_pid "$id")
		t0=$(date +%s%N)
		out=$(ctr task rm -f "$id" 2>&1) || fail "ctr task rm -f $id ($st): $out"
		ms=$(ms_since "$t0")
		[ "$ms" -lt 1000 ] || fail "ctr task rm -f $id ($st) took $ms ms"
		pass "task $id ($st) removed in $ms ms"
		assert_eq "" "$(e2e_task_status "$id")" "no task $id left"
		# its init (running even when CREATED: runc start done, Start not answered) too
		[ "$pid" = 0 ] || wait_for 2 "init $pid of $id gone" gone "$pid"
	done
	for id in "$@"; do
		ctr containers rm "$id" >/dev/null 2>&1 || true
		assert_eq "" "$(ctr containers ls -q | grep -Fx "$id" || true)" "container $id removed"
	done
}

# shims_left ID... — ids among these whose shim still runs
shims_left() {
	local pid id i running=" "
	local -a argv
	for pid in $(e2e_run_shims); do # one pass over /proc: their -id values
		mapfile -d '' -t argv 2>/dev/null <"/proc/$pid/cmdline" || continue
		for ((i = 0; i + 1 < ${#argv[@]}; i++)); do
			[ "${argv[i]}" != -id ] || running+="${argv[i + 1]} "
		done
	done
	for id in "$@"; do
		[[ "$running" != *" $id "* ]] || echo "$id"
	done
}
leaked_total=0
# settle WHAT EXPECTED-LEAKS ID... — waits past the grace for the shims of the ids to go;
# the ones still running must be EXPECTED-LEAKS (space-separated; "" for none)
# (ANY: whatever stays is recorded, not asserted — the Go shim at random kill points)
settle() {
	local what=$1 expected=$2 left t0
	shift 2
	t0=$(date +%s%N)
	while [ "$(ms_since "$t0")" -lt $(((GRACE_S + 4) * 1000)) ]; do
		left=$(shims_left "$@" | tr '\n' ' ')
		left=${left% }
		[ -n "$left" ] || break
		sleep 0.2
	done
	left=$(shims_left "$@" | tr '\n' ' ')
	left=${left% }
	leaked=$(wc -w <<<"$left")
	leaked_total=$((leaked_total + leaked))
	echo "# $what: $leaked of $# shims left $(ms_since "$t0") ms after removal: ${left:-none}"
	if [ "$expected" = ANY ] || [ "$count_only" = 1 ]; then
		expected=$left
	fi
	assert_eq "$expected" "$left" "$what: shims left running"
	local id sock
	for id in "$@"; do
		sock=$(e2e_socket "$id")
		if [[ " $left " == *" $id "* ]]; then
			continue
		fi
		assert_eq "" "$(e2e_existing "$sock" "$(e2e_bundle "$id")")" "$what: socket and bundle of $id gone"
	done
}
# the Go shim's known leaks, ended here so that the next round starts clean
end_leaked() {
	local id pid
	for id in "$@"; do
		for pid in $(e2e_run_shims "$id"); do
			kill -KILL "$pid" 2>/dev/null || true
		done
		rm -f "$(e2e_socket "$id")"
	done
}

# ---- SIGKILL during `ctr run -d` ------------------------------------------------------
check "containerd SIGKILLed during ctr run -d: in start, between start and Create, in Create, in Start (before and after runc start)"
r_after=$(e2e_id start-after)
r_before=$(e2e_id start-before)
r_create=$(e2e_id in-create)
r_start=$(e2e_id in-start)
r_started=$(e2e_id in-start-done) # runc start done, the shim's Start not answered
: >"$faults/start-after.$r_after"
: >"$faults/start-before.$r_before"
: >"$faults/create.$r_create"
: >"$faults/start.$r_start"
: >"$faults/start-done.$r_started"
for id in "$r_after" "$r_before" "$r_create" "$r_start" "$r_started"; do
	run_bg "$id"
done
# shellcheck disable=SC2016 # expanded by eval, at each poll
wait_for 20 "every ctr run -d at its hold point" \
	eval 'at start-after.$r_after && at start-before.$r_before && at create.$r_create &&
		at start.$r_start && at start-done.$r_started'
kill_containerd
clear_faults
e2e_containerd_start
# the held `start` runs only now: containerd found a bundle without an address
touch "$faults/go.$r_before"
wait_for 10 "the held start of $r_before done" test -e "$faults/done.start-before.$r_before"
wait_bg

check "after the restart: every task listed goes within 1 s"
remove_all "$r_after" "$r_before" "$r_create" "$r_start" "$r_started"
if [ "$go_shim" = 1 ]; then
	# Go: the shim `start` left (never sent Create) is reloaded by containerd and kept;
	# the one whose Create was cut short likewise; the one `start` made after the
	# restarted containerd had removed its address-less bundle serves in no bundle
	settle "run -d windows" "$r_after $r_before $r_create" "$r_after" "$r_before" "$r_create" "$r_start" "$r_started"
else
	settle "run -d windows" "" "$r_after" "$r_before" "$r_create" "$r_start" "$r_started"
fi
check "the id of the shim that was left between start and Create can be run again"
out=$(e2e_run -d --null-io "$r_after" sleep 1000 </dev/null 2>&1) && rc=0 || rc=$?
if [ "$count_only" = 1 ]; then
	echo "# ctr run -d $r_after again: status $rc ${out:+($out)}"
elif [ "$go_shim" = 1 ]; then
	# containerd still holds the taskless shim it reloaded under that id
	assert_ne 0 "$rc" "ctr run -d $r_after again (Go shim)"
	assert_contains "$out" "already exists" "ctr run -d $r_after again (Go shim)"
else
	[ "$rc" = 0 ] || fail "ctr run -d $r_after again: status $rc: $out"
	pass "ctr run -d $r_after again"
	assert_eq RUNNING "$(e2e_task_status "$r_after")" "status of the new $r_after"
fi
end_leaked "$r_after" "$r_before" "$r_create" "$r_start" "$r_started"
remove_all "$r_after"

# ---- SIGKILL during `ctr task rm` -----------------------------------------------------
check "containerd SIGKILLed during ctr task rm: in Delete, between Delete and Shutdown"
d_delete=$(e2e_id in-delete)
d_before_shutdown=$(e2e_id before-shutdown)
for id in "$d_delete" "$d_before_shutdown"; do
	e2e_run -d --null-io "${runc_flags[@]}" "$id" sleep 1000 </dev/null
	ctr task kill -s KILL "$id"
	wait_for 10 "task $id stopped" e2e_task_status_is "$id" STOPPED
done
: >"$faults/delete.$d_delete"
ctr task rm "$d_delete" >/dev/null 2>&1 &
bg_pids+=($!)
wait_for 10 "ctr task rm of $d_delete in runc delete" at "delete.$d_delete"
# the window after the shim's Delete reply and before containerd's Shutdown, made wide:
# containerd stopped, the Delete it would have sent sent here, containerd killed
kill -STOP "$E2E_CONTAINERD_PID"
assert_eq OK "$(e2e_shim_reply "$(e2e_bundle "$d_before_shutdown")" delete id="$d_before_shutdown")" \
	"Delete of $d_before_shutdown answered while containerd is stopped"
t_deleted=$(date +%s%N)
kill_containerd
clear_faults
# its TaskDelete cannot reach containerd: the taskless shim keeps it past the grace
# for a containerd that comes back
while [ "$(ms_since "$t_deleted")" -lt $(((GRACE_S + 2) * 1000)) ]; do sleep 0.2; done
[ -n "$(shims_left "$d_before_shutdown")" ] ||
	fail "the shim of $d_before_shutdown went with its TaskDelete undelivered"
pass "the shim of $d_before_shutdown still there $(ms_since "$t_deleted") ms after its Delete, containerd down"
e2e_containerd_start
wait_bg

check "after the restart: every task listed goes within 1 s"
remove_all "$d_delete" "$d_before_shutdown"
if [ "$go_shim" = 1 ]; then
	# Go: the shim whose task was deleted is reloaded taskless and kept
	settle "task rm windows" "$d_before_shutdown" "$d_delete" "$d_before_shutdown"
else
	settle "task rm windows" "" "$d_delete" "$d_before_shutdown"
fi
end_leaked "$d_delete" "$d_before_shutdown"

# ---- at random points ---------------------------------------------------------------------
# Rounds of 4 ctr run -d (then of 4 ctr task rm of stopped tasks) started together,
# containerd killed after a delay that differs from round to round; the shims of every
# round are looked at once, at the end.
rand_ids=()
# crash_after DELAY ID... — SIGKILL containerd DELAY s into what the round started, start
# it again, let the round's ctr processes end, then remove the round's containers
crash_after() {
	sleep "$1"
	shift
	kill_containerd
	e2e_containerd_start
	wait_bg
	echo "# tasks after the restart: $(ctr task ls | awk 'NR > 1 { printf "%s %s; ", $1, $3 }')"
	remove_all "$@"
	rand_ids+=("$@")
}
rand_run_round() { # DELAY
	local ids=() id i
	for ((i = 0; i < 4; i++)); do
		ids+=("$(e2e_id "run${1#0.}-$i")")
	done
	check "containerd SIGKILLed ${1}s after 4 ctr run -d"
	for id in "${ids[@]}"; do
		run_bg "$id"
	done
	crash_after "$1" "${ids[@]}"
}
rand_rm_round() { # DELAY
	local ids=() id i
	for ((i = 0; i < 4; i++)); do
		ids+=("$(e2e_id "rm${1#0.}-$i")")
	done
	check "containerd SIGKILLed ${1}s after 4 ctr task rm"
	for id in "${ids[@]}"; do
		e2e_run -d --null-io "${runc_flags[@]}" "$id" sleep 1000 </dev/null
		ctr task kill -s KILL "$id"
	done
	for id in "${ids[@]}"; do
		wait_for 10 "task $id stopped" e2e_task_status_is "$id" STOPPED
	done
	for id in "${ids[@]}"; do
		ctr task rm "$id" >/dev/null 2>&1 &
		bg_pids+=($!)
	done
	crash_after "$1" "${ids[@]}"
}
for d in ${E2E_ORPHAN_RUN_DELAYS:-0.06 0.08 0.1}; do
	rand_run_round "$d"
done
for d in ${E2E_ORPHAN_RM_DELAYS:-0.02 0.03 0.04}; do
	rand_rm_round "$d"
done
[ "$go_shim" = 1 ] && expected=ANY || expected=
settle "random points" "$expected" "${rand_ids[@]}"
end_leaked "${rand_ids[@]}"

echo "# shims leaked in all: $leaked_total"

# ---- the rule itself, on shims started by hand (ours only) --------------------------------
# Four taskless shims, each `start`ed in a bundle of its own (sockets in a dir of this
# run): A's bundle is removed at once; B hears nothing; C has a connection that sends
# nothing (containerd between `start` and Create) for 9 s; D has one that sends Connect
# and stays open (a containerd that reloaded it). hold.py times the connection. (The Go
# shim has no such rule: the rounds above show what it leaves.)
[ "$go_shim" = 0 ] || exit 0
check "by hand: a taskless shim goes at once without its bundle, after 5 s with nothing, held by a silent connection"
cat >"$E2E_TMP/hold.py" <<'PY'
import socket, struct, sys, time
path, secs, ask = sys.argv[1], float(sys.argv[2]), sys.argv[3] == "connect"
s = socket.socket(socket.AF_UNIX)
s.connect(path)
t0 = time.monotonic()
if ask:  # Request{service, method}: Connect with an empty ConnectRequest
    body = b"\x0a\x17containerd.task.v2.Task\x12\x07Connect"
    s.sendall(struct.pack(">IIBB", len(body), 1, 1, 0) + body)
s.settimeout(secs)
try:
    while True:
        if not s.recv(65536):
            print("closed %d" % ((time.monotonic() - t0) * 1000)); break
except socket.timeout:
    print("held %d" % ((time.monotonic() - t0) * 1000))
PY
hand_start() { # NAME — starts a shim in bundle $E2E_TMP/hand/NAME; prints its pid
	local b=$E2E_TMP/hand/$1
	mkdir -p "$b"
	echo '{"ociVersion":"1.0.2"}' >"$b/config.json"
	(cd "$b" && NANOSHIM_SOCKET_DIR=$E2E_TMP/hand/s TTRPC_ADDRESS=$E2E_ADDR.ttrpc \
		"$real_shim" -namespace "$E2E_NS" -address "$E2E_ADDR" -id "hand-$1" start </dev/null) >/dev/null
	cat "$b/shim.pid"
}
hand_sock() { sed 's|^unix://||' "$E2E_TMP/hand/$1/address"; }
# gone_after NAME MAX_MS — waits until shim NAME has exited, at most MAX_MS after its
# start; prints how long after its start it went
gone_after() {
	while alive "${hpid[$1]}"; do
		[ "$(ms_since "${hstart[$1]}")" -lt "$2" ] || fail "shim $1 still there $2 ms after its start"
		sleep 0.05
	done
	ms_since "${hstart[$1]}"
}
declare -A hpid hsock hstart
for n in a b c d; do
	hpid[$n]=$(hand_start "$n")
	hstart[$n]=$(date +%s%N) # the shim serves: its wait has begun
	hsock[$n]=$(hand_sock "$n")
done
python3 "$E2E_TMP/hold.py" "${hsock[c]}" 9 silent >"$E2E_TMP/hold-c" &
hold_c=$!
python3 "$E2E_TMP/hold.py" "${hsock[d]}" 12 connect >"$E2E_TMP/hold-d" &
hold_d=$!
rm -rf "$E2E_TMP/hand/a"
ms=$(gone_after a 2000)
pass "A went ${ms} ms after its start, its bundle removed"
assert_eq "" "$(e2e_existing "${hsock[a]}")" "A's socket removed"
ms=$(gone_after b $(((GRACE_S + 3) * 1000)))
[ "$ms" -ge $(((GRACE_S - 1) * 1000)) ] || fail "B went after $ms ms, before the grace"
pass "B (nothing heard) went ${ms} ms after its start"
ms=$(gone_after d $(((GRACE_S + 3) * 1000)))
[ "$ms" -ge $(((GRACE_S - 1) * 1000)) ] || fail "D went after $ms ms, before the grace"
pass "D (Connect, connection open) went ${ms} ms after its start"
wait "$hold_d" || true
assert_match "$(cat "$E2E_TMP/hold-d")" '^closed [0-9]+$' "D closed its connection as it went"
alive "${hpid[c]}" || fail "C gone while its silent connection is open"
pass "C still there $(ms_since "${hstart[c]}") ms after its start, its connection open"
wait "$hold_c" || true
assert_eq "held" "$(cut -d' ' -f1 "$E2E_TMP/hold-c")" "C's connection held 9 s"
ms=$(gone_after c 12000)
pass "C went once its connection closed, ${ms} ms after its start"
for n in b c d; do
	assert_eq "" "$(e2e_existing "${hsock[$n]}")" "$n's socket removed"
done
