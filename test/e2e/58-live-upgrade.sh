#!/usr/bin/env bash
# Live upgrade of a running shim (shim/upgrade.h): ten containers of one sandbox
# id (one shim) printing numbered lines to file:// logs, a detached exec, a
# terminal exec, a binary:// logger, a task whose FIFOs nobody reads (its output
# spooled, handed over, then read in order by ctr task attach), a Wait in
# flight, a task that has exited and one waiting to be OOM-killed; the shim
# re-execs itself as another binary (`nanoctl shim upgrade`: a copy of the shim
# at another path, back, the copy again, itself with execs in flight) and on
# SIGHUP: the same shim pid, the same container pids, the new binary in
# /proc/<shim>/exe, containerd never loses its connections (no "shim
# disconnected" in its log). A container SIGKILLed while a slow wrapper delays
# the new binary: its exit is announced by it, once. The OOM kill afterwards is
# reported. With containerd SIGKILLed, an exit queued for it goes to the new
# binary, which delivers it once containerd is back. Refusals leave the shim
# serving: a binary that takes another state version, one that says it does and
# hands the state back, a missing one. Afterwards exec, kill, the carried Wait
# and delete work, and every line of output is in the logs once and in order.
# Our shim only: the Go shim has no live upgrade.
. "$(dirname "$0")/lib.sh"
[ "$RUNTIME" = io.containerd.nano.v2 ] && [ "$SHIM_AS_RUNC" != 1 ] ||
	e2e_skip "live upgrade is our shim's (the Go shim has none)"
NANOCTL=${NANOCTL:-$E2E_CACHE_DIR/../../../manager/nanoctl/nanoctl}
[ -x "$NANOCTL" ] || fail "nanoctl not built ($NANOCTL): cmake --build build --target nanoctl"
NANOCTL=$(readlink -f "$NANOCTL")
e2e_setup
e2e_events_start "$E2E_TMP/events"

N=10
pod=$(e2e_id lupod)
ann=--annotation=io.kubernetes.cri.sandbox-id=$pod
ids=()
# numbered lines in bursts of 10 every 20 ms; on SIGTERM the last number, then exit 0
prog='i=0; trap '\''echo "end $i"; exit 0'\'' TERM
while :; do j=0; while [ $j -lt 10 ]; do i=$((i+1)); echo "line $i"; j=$((j+1)); done; usleep 20000; done'

check "$N containers in one shim, output flowing to file:// logs"
for k in $(seq 1 $N); do
	id=$(e2e_id lu$k)
	ids+=("$id")
	e2e_run -d "$ann" "--log-uri=file://$E2E_TMP/$id.log" "$id" sh -c "$prog" </dev/null
done
shim=$(e2e_shim_pid "${ids[0]}")
[ -n "$shim" ] || fail "no shim for ${ids[0]}"
sock=$(cat "$(e2e_bundle "${ids[0]}")/address")
sock=${sock#unix://}
declare -A pids
for id in "${ids[@]}"; do
	assert_eq RUNNING "$(e2e_task_status "$id")" "$id running"
	pids[$id]=$(e2e_task_pid "$id")
	assert_eq "$shim" "$(awk '/^PPid:/{print $2}' "/proc/${pids[$id]}/status")" "parent of $id's init"
done
wait_for 5 "output in the last log" grep -q '^line 50$' "$E2E_TMP/${ids[N - 1]}.log"
done_id=$(e2e_id ludone) # a task that has exited, not deleted, before the upgrades
e2e_run -d --null-io "$ann" "$done_id" sh -c 'exit 3' </dev/null
wait_for 10 "$done_id stopped" e2e_task_status_is "$done_id" STOPPED
ctr task exec -d --exec-id bg "${ids[2]}" sleep 1000 </dev/null # an exec running through them
exec_pid() { ctr task ps "${ids[2]}" | awk '/ExecID:bg[,}]/ { print $1 }'; }
bg_pid=$(exec_pid)
assert_match "$bg_pid" '^[0-9]+$' "the exec bg's pid"
oom_id=$(e2e_id luoom) # OOM-killed after the upgrades: the new binary watches it
rm -f "$E2E_ROOTFS/tmp/go"
e2e_run -d --null-io "$ann" --memory-limit=16777216 "$oom_id" \
	sh -c 'while [ ! -e /tmp/go ]; do sleep 0.05; done; exec tail /dev/zero' </dev/null
e2e_cgroup_noswap "$(e2e_task_pid "$oom_id")"
# a task whose output goes to a binary:// logger (our child, carried too)
logger=$E2E_TMP/logger.sh
cat >"$logger" <<'LOGGER'
#!/bin/sh
# copies fd 3 into DIR/out; after EOF it stays until SIGTERM: only the shim ends it
exec 5>&-
cat <&3 >"$2/out" &
exec 3<&- 4<&-
wait
while :; do sleep 1; done
LOGGER
chmod +x "$logger"
log_id=$(e2e_id lulog)
mkdir -p "$E2E_TMP/ldir"
e2e_run -d "$ann" "--log-uri=binary://$logger?dir=$E2E_TMP/ldir" "$log_id" sh -c "$prog" </dev/null
wait_for 5 "the logger's output" grep -q '^line 50$' "$E2E_TMP/ldir/out"
logger_pid=$(pgrep -f "$logger dir $E2E_TMP/ldir" | head -n 1)
assert_eq "$shim" "$(awk '/^PPid:/{print $2}' "/proc/$logger_pid/status")" "the logger is the shim's child"
# a task whose FIFOs nobody reads (ctr run -d): its output waits in the spool
spool_id=$(e2e_id luspool)
e2e_run -d "$ann" "$spool_id" sh -c 'seq 1 100000; echo end; exec sleep 1000' </dev/null
N_ALL=$((N + 4))
# a Wait in flight through every upgrade (ctr's exec -d left one on bg too)
wout=$E2E_TMP/wait.out
"$NANOCTL" shim call -n "$E2E_NS" -t 60s "$sock" wait id="${ids[1]}" >"$wout" 2>&1 &
waiter=$!
orig=$(readlink -f "/proc/$shim/exe")
assert_eq "$(readlink -f "$SHIM_BINARY")" "$orig" "the shim runs the binary under test"
tunables() { tr '\0' '\n' <"/proc/$shim/environ" | grep '^GLIBC_TUNABLES=' || true; }
tunables0=$(tunables)
copy=$E2E_TMP/bin-b/containerd-shim-nano-v2
mkdir -p "$(dirname "$copy")"
cp "$orig" "$copy"

# upgrade BINARY: one upgrade through nanoctl; checks pid, exe, containers
upgrade_to() {
	local bin=$1 id
	out=$("$NANOCTL" shim upgrade -t 20s "$sock" "$bin") || fail "upgrade to $bin: $out"
	assert_contains "$out" "\"pid\": $shim" "upgrade reply: the same pid"
	assert_contains "$out" "\"containers\": $N_ALL" "upgrade reply: $N_ALL containers carried"
	ms=$(printf '%s\n' "$out" | sed -n 's/.*"duration_ns": "*\([0-9]*\)"*.*/\1/p')
	pass "upgraded to $bin in $((ms / 1000)) us (exec to serving)"
	sp=$(printf '%s\n' "$out" | sed -n 's/.*"spooled_bytes": "*\([0-9]*\)"*.*/\1/p')
	if [ -n "${first_upgrade:-}" ]; then
		first_upgrade=
		[ "${sp:-0}" -gt 0 ] || fail "no spooled output handed over: $out"
		pass "$sp bytes of spooled output handed over (${spool_id}'s, unread)"
	fi
	assert_eq "$(readlink -f "$bin")" "$(readlink -f "/proc/$shim/exe")" "/proc/$shim/exe"
	for id in "${ids[@]}"; do
		[ "$(e2e_task_status "$id")" = RUNNING ] || fail "$id is $(e2e_task_status "$id") after the upgrade"
		[ "$(e2e_task_pid "$id")" = "${pids[$id]}" ] || fail "$id's pid changed"
	done
	pass "all $N tasks RUNNING with their pids, through containerd"
	local fds
	fds=$(ls "/proc/$shim/fd" | wc -l)
	[ "$fds" -le "$fds0" ] || fail "the shim holds $fds fds, $fds0 before the first upgrade"
	pass "the shim holds $fds fds ($fds0 before the first upgrade)"
	assert_eq "$tunables0" "$(tunables)" "the serving shim's GLIBC_TUNABLES as \`start\` set them"
}

check "upgrade three times in place: to a copy at another path, back, to the copy"
first_upgrade=1
# an exec on a terminal runs through them too (under script(1), as in 05-tty)
exec 7< <(exec sleep 60 2>/dev/null)
feeder=$!
script -qec "ctr --address $E2E_ADDR --namespace $E2E_NS task exec --fifo-dir=$E2E_FIFO_DIR -t --exec-id tty ${ids[3]} sh -c 'i=0; while [ \$i -lt 60 ]; do i=\$((i+1)); echo tty-\$i; usleep 50000; done; exit 4'; echo rc=\$?" \
	/dev/null <&7 >"$E2E_TMP/tty.out" 2>&1 &
tty_job=$!
wait_for 5 "the terminal exec's first line" grep -q tty-1 "$E2E_TMP/tty.out"
fds0=$(ls "/proc/$shim/fd" | wc -l)
for bin in "$copy" "$orig" "$copy"; do
	before=$(wc -l <"$E2E_TMP/${ids[0]}.log")
	upgrade_to "$bin"
	wait_for 5 "output still flowing after the upgrade" \
		test "$(wc -l <"$E2E_TMP/${ids[0]}.log")" -gt $((before + 20))
done

check "execs in flight when the upgrade comes: requests held back, then all served"
for k in 1 2 3 4 5; do
	ctr task exec --exec-id "c$k" "${ids[4]}" sh -c "usleep 100000; echo c$k" >"$E2E_TMP/c$k.out" 2>&1 &
	eval "cjob$k=\$!"
done
sleep 0.05
upgrade_to "$copy" # to the binary it runs: an upgrade to itself
ms=$(printf '%s\n' "$out" | sed -n 's/.*"quiesce_ns": "*\([0-9]*\)"*.*/\1/p')
pass "requests held back $((${ms:-0} / 1000)) us for the calls in flight"
for k in 1 2 3 4 5; do
	eval "wait \$cjob$k" || fail "exec c$k: $(cat "$E2E_TMP/c$k.out")"
	assert_eq "c$k" "$(cat "$E2E_TMP/c$k.out")" "exec c$k begun before the upgrade"
done

check "the terminal exec's output came through the upgrades, all of it"
wait "$tty_job" || fail "script: $(cat "$E2E_TMP/tty.out")"
exec 7<&-
kill "$feeder" 2>/dev/null || true
[ "$(seq -f 'tty-%g' 1 60; echo rc=4)" = "$(tr -d '\r' <"$E2E_TMP/tty.out")" ] ||
	fail "terminal output: $(tr -d '\r' <"$E2E_TMP/tty.out" | tr '\n' ' ')"
pass "60 lines on the terminal in order, then its exit status 4"

check "SIGHUP: the shim upgrades to the binary at its own path (replaced on disk)"
cp "$orig" "$copy.new"
mv "$copy.new" "$copy" # the running inode is now "(deleted)"
kill -HUP "$shim"
wait_for 5 "the shim runs the new file" \
	sh -c "readlink /proc/$shim/exe | grep -qvx '.*(deleted)'"
assert_eq "$copy" "$(readlink "/proc/$shim/exe")" "/proc/$shim/exe after SIGHUP"
for id in "${ids[@]}"; do
	[ "$(e2e_task_pid "$id")" = "${pids[$id]}" ] || fail "$id's pid changed"
done
pass "tasks untouched"

check "a process that exits while the new binary starts: reaped and announced by it"
# a wrapper that takes 0.5 s before it execs the shim: the window between the
# old process's exec and the new one serving, made long enough to act in
slow=$E2E_TMP/slow-shim
printf '#!/usr/bin/perl\nselect(undef, undef, undef, 0.5) unless grep { $_ eq "-upgrade-version" } @ARGV;\nexec { "%s" } "%s", @ARGV or die "exec: $!";\n' "$orig" "$orig" >"$slow"
chmod +x "$slow"
victim=${ids[N - 1]}
"$NANOCTL" shim upgrade -t 20s "$sock" "$slow" >"$E2E_TMP/slow.out" 2>&1 &
up=$!
wait_for 5 "the wrapper runs" sh -c "readlink /proc/$shim/exe | grep -q perl"
kill -KILL "${pids[$victim]}"
t0=$(date +%s%N)
ctr task ls >/dev/null # containerd asks the shim, which is not serving yet: answered once it is
pass "a call made meanwhile answered after $((($(date +%s%N) - t0) / 1000000)) ms"
wait "$up" || fail "upgrade through the wrapper: $(cat "$E2E_TMP/slow.out")"
assert_eq "$orig" "$(readlink -f "/proc/$shim/exe")" "/proc/$shim/exe after the wrapper"
wait_for 5 "$victim stopped" e2e_task_status_is "$victim" STOPPED
ids=("${ids[@]:0:N-1}") # no end line for it: checked apart below
wait_for 10 "/tasks/exit of $victim" e2e_event_seen "$victim" /tasks/exit '"exit_status":137'
assert_eq 1 "$(e2e_event_lines "$victim" /tasks/exit | wc -l)" "/tasks/exit events of $victim"

check "an OOM kill after the upgrades: the new binary's OOM watch reports it"
touch "$E2E_ROOTFS/tmp/go"
wait_for 20 "$oom_id OOM-killed" e2e_task_status_is "$oom_id" STOPPED
wait_for 10 "/tasks/oom of $oom_id" e2e_event_seen "$oom_id" /tasks/oom
wait_for 10 "/tasks/exit of $oom_id" e2e_event_seen "$oom_id" /tasks/exit '"exit_status":137'


check "refused, the shim serving on: a binary that takes another state version"
fake=$E2E_TMP/fake-shim
printf '#!/bin/sh\n[ "$1" = -upgrade-version ] && echo 99 && exit 0\nexit 3\n' >"$fake"
chmod +x "$fake"
rc=0
out=$("$NANOCTL" shim upgrade "$sock" "$fake" 2>&1) || rc=$?
assert_eq 1 "$rc" "nanoctl shim upgrade status"
assert_contains "$out" "FailedPrecondition" "refusal code"
assert_contains "$out" "it takes state version 99, this shim hands over version 1" "refusal message"
assert_eq "$orig" "$(readlink -f "/proc/$shim/exe")" "the shim still runs its binary"
# a binary that says it takes the state, then cannot: it hands the state back
# (what ours does with a state of another version, -upgrade-fallback)
liar=$E2E_TMP/liar-shim
printf '#!/bin/sh\n[ "$1" = -upgrade-version ] && echo 1 && exit 0\nexec "%s" "$@" -upgrade-fallback\n' "$orig" >"$liar"
chmod +x "$liar"
rc=0
out=$("$NANOCTL" shim upgrade -t 20s "$sock" "$liar" 2>&1) || rc=$?
assert_eq 1 "$rc" "a binary that hands the state back: status"
assert_contains "$out" "upgrade to $liar: it could not take the state (version 1) and handed it back: the shim serves on as $orig" \
	"a binary that hands the state back: message"
assert_eq "$orig" "$(readlink -f "/proc/$shim/exe")" "the shim runs its binary again"
for id in "${ids[@]}"; do
	[ "$(e2e_task_pid "$id")" = "${pids[$id]}" ] || fail "$id's pid changed"
done
pass "tasks untouched"
rc=0
out=$("$NANOCTL" shim upgrade "$sock" /nonexistent/shim 2>&1) || rc=$?
assert_eq 1 "$rc" "a missing binary: status"
assert_contains "$out" "No such file or directory" "a missing binary: message"

check "containerd never lost the shim through the upgrades"
# (once the last task is deleted the shim exits and containerd logs each
# connection's end: only what came before counts)
wait_for 5 "the shim's last upgrade line in containerd's log" \
	test "$(grep -c 'upgraded from' "$E2E_TMP/containerd.log")" -ge 6
cp "$E2E_TMP/containerd.log" "$E2E_TMP/cd-upgrades.log"
assert_eq 0 "$(grep -c 'shim disconnected' "$E2E_TMP/cd-upgrades.log" || true)" "'shim disconnected' in containerd's log"
assert_eq 0 "$(grep -c 'cleaning up' "$E2E_TMP/cd-upgrades.log" || true)" "'cleaning up' in containerd's log"
assert_eq 6 "$(grep -c 'upgraded from' "$E2E_TMP/cd-upgrades.log" || true)" "the shim's 'upgraded from' log lines"
grep -o 'upgraded from .* events' "$E2E_TMP/cd-upgrades.log" | sed 's/^/     /'

check "the binary:// logger through the upgrades: the same process, stopped on delete"
kill -0 "$logger_pid" 2>/dev/null || fail "logger $logger_pid gone"
assert_eq "$shim" "$(awk '/^PPid:/{print $2}' "/proc/$logger_pid/status")" "the logger's parent"
ctr task kill "$log_id"
wait_for 10 "$log_id stopped" e2e_task_status_is "$log_id" STOPPED
ctr task rm "$log_id" >/dev/null
ctr containers rm "$log_id"
wait_for 15 "the logger stopped by the new binary after the delete" sh -c "! kill -0 $logger_pid 2>/dev/null"
f=$E2E_TMP/ldir/out
last=$(sed -n 's/^end \([0-9]*\)$/\1/p' "$f")
[ -n "$last" ] && seq -f 'line %g' 1 "$last" | cmp -s - <(grep '^line ' "$f") ||
	fail "$log_id: the logger's output has lines missing, repeated or out of order"
pass "$last lines through the logger, in order"
logger_lines=$last

check "containerd SIGKILLed, a task exits, an upgrade: the new binary delivers the exit once containerd is back"
e2e_events_stop
e2e_containerd_stop KILL
downed=${ids[5]}
kill -TERM "${pids[$downed]}" # the trap prints the last number and exits 0
wait_for 10 "$downed exited" sh -c "! kill -0 ${pids[$downed]} 2>/dev/null"
out=$("$NANOCTL" shim upgrade -t 20s "$sock" "$copy") || fail "upgrade with containerd down: $out"
assert_contains "$out" "\"events\": 1" "the exit event handed to the new binary"
assert_eq "$copy" "$(readlink -f "/proc/$shim/exe")" "/proc/$shim/exe"
from=$(($(wc -l <"$E2E_TMP/containerd.log") + 1))
e2e_containerd_start
wait_for 10 "containerd got the /tasks/exit" \
	sh -c "tail -n +$from $E2E_TMP/containerd.log | grep -q 'event forwarded.*topic=/tasks/exit'"
assert_eq STOPPED "$(e2e_task_status "$downed")" "$downed after containerd's restart"
e2e_events_start "$E2E_TMP/events2"

check "the output spooled through the upgrades: ctr task attach gets all of it, in order"
(exec /usr/bin/env ctr --address "$E2E_ADDR" --namespace "$E2E_NS" task attach "$spool_id") \
	</dev/null >"$E2E_TMP/attach.out" 2>"$E2E_TMP/attach.err" &
attacher=$!
wait_for 30 "ctr task attach got the last line" sh -c "tail -n 1 $E2E_TMP/attach.out | grep -qx end"
# (ctr run -d read the first lines before it left, maybe ending mid-line: after
# attach's first line, which may be the rest of one, every line follows the one
# before up to 100000)
grep -vx end "$E2E_TMP/attach.out" | tail -n +2 >"$E2E_TMP/attach.lines"
first=$(head -n 1 "$E2E_TMP/attach.lines")
seq "$first" 100000 | cmp -s - "$E2E_TMP/attach.lines" ||
	fail "attach output: lines missing, repeated or out of order after $first"
pass "lines $first..100000 through the spool and its handovers, in order, then end"
# ctr task attach deletes the task once it has exited
ctr task kill -s KILL "$spool_id"
wait_for 10 "ctr task attach done" sh -c "! kill -0 $attacher 2>/dev/null"
wait "$attacher" 2>/dev/null || true
ctr task rm -f "$spool_id" >/dev/null 2>&1 || true
wait_for 10 "$spool_id gone" e2e_task_status_is "$spool_id" ""
ctr containers rm "$spool_id"

check "exec, kill, wait and delete after the upgrades"
assert_eq "$bg_pid" "$(exec_pid)" "the exec bg kept its pid"
ctr task kill -s KILL --exec-id bg "${ids[2]}"
wait_for 5 "exec bg gone" sh -c "! kill -0 $bg_pid 2>/dev/null"
out=$(ctr task exec --exec-id ex1 "${ids[0]}" sh -c 'echo exec-out; exit 5' 2>&1) && rc=0 || rc=$?
assert_eq exec-out "$out" "exec output"
assert_eq 5 "$rc" "exec exit status"
kill -0 "$waiter" 2>/dev/null || fail "the Wait ended early: $(cat "$wout")"
for id in "${ids[@]}"; do
	[ "$id" = "$downed" ] || ctr task kill "$id" # SIGTERM: the trap prints the last number and exits 0
done
for id in "${ids[@]}"; do
	wait_for 10 "$id stopped" e2e_task_status_is "$id" STOPPED
done
wait "$waiter" || fail "Wait on ${ids[1]}: $(cat "$wout")"
assert_contains "$(cat "$wout")" '"exited_at"' "the Wait begun before the upgrades answered with the exit"
for id in "${ids[@]}"; do
	ctr task rm "$id" >/dev/null
	ctr containers rm "$id"
done
out=$(ctr task rm "$victim" 2>&1)
assert_contains "$out" "exit with non-zero exit code 137" "the task killed during the exec: its status"
out=$(ctr task rm "$done_id" 2>&1)
assert_contains "$out" "exit with non-zero exit code 3" "the task that had exited before: its status"
ctr task rm "$oom_id" >/dev/null 2>&1 || true
ctr containers rm "$victim" "$done_id" "$oom_id"
wait_for 10 "the shim exited with its last container" sh -c "! kill -0 $shim 2>/dev/null"
pass "shim $shim gone after the last delete"

check "every line of output, once and in order"
total=0
for id in "${ids[@]}"; do
	f=$E2E_TMP/$id.log
	last=$(sed -n 's/^end \([0-9]*\)$/\1/p' "$f")
	[ -n "$last" ] || fail "$id: no end line in its log"
	got=$(grep -c '^line ' "$f")
	[ "$got" = "$last" ] || fail "$id: $got lines, the last number is $last"
	seq -f 'line %g' 1 "$last" | cmp -s - <(grep '^line ' "$f") ||
		fail "$id: lines missing, repeated or out of order"
	total=$((total + last))
done
f=$E2E_TMP/$victim.log
last=$(grep -c '^line ' "$f")
seq -f 'line %g' 1 "$last" | cmp -s - <(grep '^line ' "$f") || fail "$victim: lines missing, repeated or out of order"
total=$((total + last))
# (both captures: before containerd's restart and after; the exit of $downed,
# delivered while the second was starting, is checked in containerd's log above)
exits() { { E2E_EVENTS_FILE=$E2E_TMP/events e2e_event_lines "$1" /tasks/exit; e2e_event_lines "$1" /tasks/exit; }; }
init_exits() { exits "$1" | grep -cF "\"id\":\"$1\""; }
exec_exits() { exits "$1" | grep -cvF "\"id\":\"$1\""; }
for id in "${ids[@]}" "$victim" "$done_id" "$oom_id" "$log_id"; do
	[ "$id" != "$downed" ] || continue
	[ "$(init_exits "$id")" = 1 ] || fail "$id: $(init_exits "$id") /tasks/exit events for its init"
done
[ "$(exec_exits "${ids[0]}")/$(exec_exits "${ids[2]}")/$(exec_exits "${ids[3]}")/$(exec_exits "${ids[4]}")" = 1/1/1/5 ] ||
	fail "exec exits: ex1, bg, tty, c1..c5: $(exec_exits "${ids[0]}")/$(exec_exits "${ids[2]}")/$(exec_exits "${ids[3]}")/$(exec_exits "${ids[4]}")"
e2e_events_stop
pass "one /tasks/exit per process"
total=$((total + logger_lines))
pass "$total numbered lines ($(cat "$E2E_TMP"/lu*.log | wc -c) bytes) in $N logs and the logger's, none lost or repeated"

