#!/usr/bin/env bash
# nanoshimd and nanoctl, every container command, through real shims and runc/crun:
# run (foreground, detached, stdin, --rm), create/start, ls, ps, exec, kill, wait,
# pause/resume, update, stats, logs, events, info, get, rm; networking and capabilities
# of generated specs; and bad input answered with one-line errors, nothing left half-made.
. "$(dirname "$0")/mgr-lib.sh"
mgr_setup
[ -z "${MGR_RUNTIME:-}" ] || e2e_fix_hybrid_hugetlb
mgr_start

check "run in the foreground: its output (stdout and stderr in one log; each stream in order), its exit status"
rc=0
out=$(ctl run --rootfs "$E2E_ROOTFS" fg sh -c 'echo hello; echo oops >&2; echo bye; exit 3' 2>"$E2E_TMP/fg.err") || rc=$?
assert_eq $'hello\nbye' "$(grep -v oops <<<"$out")" "stdout lines of run, in order"
if [ "$RUNTIME" = io.containerd.nano.v2 ]; then
	assert_eq "oops" "$(grep oops <<<"$out")" "stderr line of run (the log holds: $(ctl logs fg | tr '\n' ' '))"
elif ! grep -q oops <<<"$out"; then
	# the Go shim's file:// copy sometimes drops a stream of a process that exits at
	# once: the line is not in the log file at all (seen 2 runs in 6 under load)
	e2e_log "note: the Go shim lost the stderr line (the log holds: $(ctl logs fg | tr '\n' ' '))"
fi
assert_eq "" "$(cat "$E2E_TMP/fg.err")" "nanoctl's own stderr"
assert_eq 3 "$rc" "exit status of run"
assert_eq "STOPPED (3)" "$(mgr_status fg)" "ls after it exited"
ctl rm fg
assert_eq "" "$(mgr_status fg)" "ls after rm"
[ ! -e "$(mgr_bundle fg)" ] || fail "bundle of fg left after rm"
pass "bundle removed with the container"

check "run -i: stdin reaches the process; --rm deletes it afterwards"
out=$(printf 'line one\nline two\n' | ctl run -i --rm --rootfs "$E2E_ROOTFS" cat1 cat)
assert_eq $'line one\nline two' "$out" "cat of stdin"
assert_eq "" "$(mgr_status cat1)" "ls after run --rm"

check "run -t: a terminal of the size of ours; -t -i: an interactive shell; exit statuses"
command -v script >/dev/null || fail "script (util-linux) not installed"
rc=0
out=$(run_with_timeout 30 script -qec "stty cols 91 rows 33; $NANOCTL --address $MGR_ADDR -n $E2E_NS run -t --rm --rootfs $E2E_ROOTFS tty1 sh -c 'tty; stty size; exit 4'" /dev/null </dev/null | tr -d '\r') || rc=$?
# our shim writes the terminal into the log itself; the Go shim copies a console only
# into a FIFO, which nanoshimd relays into the same log (relay.c)
assert_eq $'/dev/pts/0\n33 91' "$out" "tty and size inside"
assert_eq 4 "$rc" "exit status of run -t"
rc=0
out=$(printf 'echo in-tty\nexit 6\n' | run_with_timeout 30 script -qec "$NANOCTL --address $MGR_ADDR -n $E2E_NS run -t -i --rm --rootfs $E2E_ROOTFS tty2 sh" /dev/null | tr -d '\r') || rc=$?
assert_contains "$out" $'\nin-tty\n' "output of a command typed into the terminal"
assert_eq 6 "$rc" "exit status of the interactive shell"
ctl run -d --rootfs "$E2E_ROOTFS" ttyx sleep 100000
# crun 1.8 now and then hands an exec a pty whose ioctls fail (ENOTTY: busybox's stty
# prints "stty: standard input"), with either shim, about 1 exec -t in 7 here; runc never
for try in 1 2 3 4 5; do
	rc=0
	out=$(run_with_timeout 30 script -qec "stty cols 77 rows 22; $NANOCTL --address $MGR_ADDR -n $E2E_NS exec -t --exec-id t$try ttyx sh -c 'stty size; exit 2'" /dev/null </dev/null | tr -d '\r') || rc=$?
	assert_eq 2 "$rc" "exit status of exec -t"
	[[ "${MGR_RUNTIME:-}" == *crun ]] && [ "$out" = "stty: standard input" ] || break
	e2e_log "crun's exec got a pty it cannot ioctl (try $try): $out"
done
assert_eq "22 77" "$out" "exec -t: the terminal's size from the start"
if [ "$RUNTIME" = io.containerd.nano.v2 ]; then
	assert_eq "" "$(ls "$(mgr_bundle ttyx)" | grep '\.tty$' || true)" "no relay FIFO for our shim"
else
	grep -q 'copies a terminal only into a FIFO: nanoshimd relays it' "$MGR_LOG" ||
		fail "nanoshimd did not say it relays the Go shim's terminals"
	pass "nanoshimd relays the Go shim's terminals"
fi
ctl rm -f ttyx
assert_eq "" "$(ctl ls -q)" "nothing left after run -t"

check "run -d, ls, ps, get, logs"
# pid 1 of a pid namespace ignores signals it has no handler for: trap TERM
ctl run -d --rootfs "$E2E_ROOTFS" web sh -c 'trap "exit 143" TERM; echo started; while :; do sleep 0.1; done'
assert_eq "RUNNING" "$(mgr_status web)" "status of web"
pid=$(mgr_pid web)
[ -n "$pid" ] && [ "$pid" -gt 0 ] && kill -0 "$pid" || fail "web's pid $pid is not alive"
pass "web runs as pid $pid"
assert_contains "$(ctl ps web)" "$pid" "ps lists the init pid"
ctl get web >"$E2E_TMP/get.json"
assert_eq "web" "$(jq -r .id "$E2E_TMP/get.json")" "get: id"
assert_eq "STATUS_RUNNING" "$(jq -r .init.status "$E2E_TMP/get.json")" "get: status"
web_logged() { ctl logs web | grep -qx started; }
wait_for 10 "web's output in its log" web_logged

check "exec: output, exit status; the exec is deleted afterwards"
rc=0
out=$(ctl exec --exec-id e1 web sh -c 'echo in exec; exit 5') || rc=$?
assert_eq "in exec" "$out" "exec stdout"
assert_eq 5 "$rc" "exec exit status"
assert_eq "0" "$(ctl get web | jq '.execs | length')" "execs left after a foreground exec"
out=$(ctl exec --exec-id e2 --env FOO=bar --cwd /tmp web sh -c 'echo $FOO $(pwd)')
assert_eq "bar /tmp" "$out" "exec --env and --cwd"

check "pause and resume"
ctl pause web
assert_eq "PAUSED" "$(mgr_status web)" "status after pause"
# v1's freezer.state may still say FREEZING just after the runtime returned; a frozen
# task shows as T (cgroup v2) or D (v1 freezer, kernels 6.1+) in /proc
web_frozen() {
	grep -qx FROZEN "$(e2e_cgroup_dir "$pid" freezer)/freezer.state" 2>/dev/null ||
		grep -q '^State:.*[TD]' "/proc/$pid/status"
}
wait_for 5 "web's process frozen after pause" web_frozen
pass "process frozen"
ctl resume web
assert_eq "RUNNING" "$(mgr_status web)" "status after resume"

check "update: a new memory limit reaches the cgroup"
ctl update --memory 64m web
if [ "$(e2e_cgroup_mode)" = v2 ]; then
	lim=$(cat "$(e2e_cgroup_dir "$pid")/memory.max")
else
	lim=$(cat "$(e2e_cgroup_dir "$pid" memory)/memory.limit_in_bytes")
fi
assert_eq $((64 << 20)) "$lim" "memory limit after update"

check "stats: cgroup metrics and the network namespace's interface counters"
ctl stats web >"$E2E_TMP/stats.json"
jq -e '.metrics.value.pids.current >= 1 and .metrics.value.memory.usage.usage > 0' "$E2E_TMP/stats.json" >/dev/null ||
	jq -e '.metrics.value.pids.current >= 1 and .metrics.value.memory.usage > 0' "$E2E_TMP/stats.json" >/dev/null ||
	fail "stats: no pids or memory in the metrics: $(cat "$E2E_TMP/stats.json")"
assert_eq "lo" "$(jq -r '.interfaces[].name' "$E2E_TMP/stats.json")" "stats: interfaces of --net none"
pass "stats has metrics and lo"

check "kill: default TERM, wait returns the container's status"
ctl kill web
rc=0
ctl wait web || rc=$?
assert_eq 143 "$rc" "wait after kill (128 + TERM)"
assert_eq "STOPPED (143)" "$(mgr_status web)" "status after kill"
ctl rm web

check "create, then start; kill -s KILL --all"
ctl create --rootfs "$E2E_ROOTFS" cs sleep 100000
assert_eq "CREATED" "$(mgr_status cs)" "status after create"
ctl start cs
assert_eq "RUNNING" "$(mgr_status cs)" "status after start"
ctl kill -s KILL --all cs
rc=0
ctl wait cs || rc=$?
assert_eq 137 "$rc" "wait after kill -s KILL"
ctl rm cs

check "--net none: only lo, up; --net host: the host's interfaces"
out=$(ctl run --rm --rootfs "$E2E_ROOTFS" n1 sh -c 'ls /sys/class/net; cat /sys/class/net/lo/flags')
assert_eq $'lo\n0x9' "$out" "interfaces and lo's flags (UP|LOOPBACK) with --net none"
host_ifs=$(ls /sys/class/net | sort | tr '\n' ' ')
out=$(ctl run --rm --net host --rootfs "$E2E_ROOTFS" n2 sh -c 'ls /sys/class/net' | sort | tr '\n' ' ')
assert_eq "$host_ifs" "$out" "interfaces with --net host"
[ -z "$(ls "$MGR_ROOT/netns" 2>/dev/null)" ] || fail "network namespaces left: $(ls "$MGR_ROOT/netns")"
pass "no network namespace left after --rm"

check "capabilities: --cap-add and --cap-drop by name"
capeff() { ctl run --rm "$@" --rootfs "$E2E_ROOTFS" caps sh -c 'grep CapEff /proc/self/status' | awk '{ print $2 }'; }
base=$((16#$(capeff)))
with=$((16#$(capeff --cap-add net_admin --cap-drop CAP_CHOWN)))
[ $((base & (1 << 0))) -ne 0 ] || fail "CAP_CHOWN not in the default set"
[ $((with & (1 << 0))) -eq 0 ] || fail "CAP_CHOWN still there after --cap-drop"
[ $((with & (1 << 12))) -ne 0 ] || fail "CAP_NET_ADMIN missing after --cap-add"
[ $((base & (1 << 12))) -eq 0 ] || fail "CAP_NET_ADMIN in the default set"
pass "CapEff $(printf %x $base) → $(printf %x $with)"

check "crun as the runtime (--runtime-binary)"
if command -v crun >/dev/null; then
	e2e_fix_hybrid_hugetlb
	out=$(ctl run --rm --runtime-binary "$(type -P crun)" --rootfs "$E2E_ROOTFS" cr sh -c 'echo via crun; exit 4' || echo "rc=$?")
	assert_eq $'via crun\nrc=4' "$out" "output and status through crun"
else
	fail "crun not installed"
fi

check "events: what happened is replayed with --since"
ctl events --since 10m --no-follow >"$E2E_TMP/events.json"
jq -s -e 'map(select(.topic == "/tasks/exit" and .id == "fg" and .exit_status == 3 and .event.value.exit_status == 3)) | length > 0' "$E2E_TMP/events.json" >/dev/null ||
	fail "no /tasks/exit of fg with status 3 in: $(head -c 2000 "$E2E_TMP/events.json")"
jq -s -e 'map(select(.topic == "/tasks/start" and .id == "web")) | length > 0' "$E2E_TMP/events.json" >/dev/null ||
	fail "no /tasks/start of web"
pass "exit and start events replayed"

check "info"
out=$(ctl info)
assert_contains "$out" "$MGR_SHIM" "info names the shim"
assert_contains "$out" "$MGR_STATE" "info names the state dir"
assert_contains "$out" "runtime:     ${MGR_RUNTIME:-runc}" "info names the runtime"

check "run --user, --memory, --cpus: the process's ids and its cgroup's limits"
out=$(ctl run --rm --user 1000:1001 --rootfs "$E2E_ROOTFS" ids sh -c 'id -u; id -g')
assert_eq $'1000\n1001' "$out" "uid and gid inside with --user 1000:1001"
ctl run -d --memory 48m --cpus 0.5 --rootfs "$E2E_ROOTFS" lim sleep 100000
pid=$(mgr_pid lim)
if [ "$(e2e_cgroup_mode)" = v2 ]; then
	assert_eq $((48 << 20)) "$(cat "$(e2e_cgroup_dir "$pid")/memory.max")" "memory.max of --memory 48m"
	assert_eq "50000 100000" "$(cat "$(e2e_cgroup_dir "$pid")/cpu.max")" "cpu.max of --cpus 0.5"
else
	assert_eq $((48 << 20)) "$(cat "$(e2e_cgroup_dir "$pid" memory)/memory.limit_in_bytes")" "memory limit of --memory 48m"
	cg=$(e2e_cgroup_dir "$pid" cpu)
	assert_eq "50000/100000" "$(cat "$cg/cpu.cfs_quota_us")/$(cat "$cg/cpu.cfs_period_us")" "CFS quota/period of --cpus 0.5"
fi
ctl rm -f lim

check "run --bundle: a given OCI bundle (runc spec, relative root) runs its own process"
ob=$E2E_TMP/oci-bundle
mkdir -p "$ob"
(cd "$ob" && runc spec)
cp -a "$E2E_ROOTFS" "$ob/rootfs"
jq '.process.terminal = false | .process.args = ["sh", "-c", "echo from-bundle; pwd; exit 5"] | .process.cwd = "/tmp" | .root.path = "rootfs" | .root.readonly = true' \
	"$ob/config.json" >"$ob/config.new" && mv "$ob/config.new" "$ob/config.json"
rc=0
out=$(ctl run --bundle "$ob" ob1) || rc=$?
assert_eq $'from-bundle\n/tmp' "$out" "output of the bundle's own process"
assert_eq 5 "$rc" "exit status of the bundle's process"
assert_eq "$ob/rootfs" "$(jq -r .root.path "$(mgr_bundle ob1)/config.json")" "the relative root made absolute in nanoshimd's copy"
ctl rm ob1
[ -f "$ob/config.json" ] && [ -x "$ob/rootfs/bin/busybox" ] || fail "the given bundle was changed or removed"
pass "the given bundle is left as it was"

check "logs -f: follows a process until it exits; events: follows live events"
ctl events >"$E2E_TMP/live.json" 2>&1 &
ev_pid=$!
ctl run -d --rootfs "$E2E_ROOTFS" slow sh -c 'for i in 1 2 3 4 5; do echo "tick $i"; sleep 0.2; done; exit 9'
out=$(run_with_timeout 20 "$NANOCTL" --address "$MGR_ADDR" -n "$E2E_NS" logs -f slow)
assert_eq $'tick 1\ntick 2\ntick 3\ntick 4\ntick 5' "$out" "logs -f: every line, then it returns"
assert_eq "STOPPED (9)" "$(mgr_status slow)" "status once logs -f returned"
live_exit() { jq -e -s 'map(select(.topic == "/tasks/exit" and .id == "slow" and .exit_status == 9)) | length == 1' "$E2E_TMP/live.json" >/dev/null 2>&1; }
wait_for 10 "the live /tasks/exit of slow in nanoctl events" live_exit
e2e_stop_pid "$ev_pid" TERM
ctl rm slow

check "--help on every command"
for cmd in run create start exec ls ps kill pause resume update stats wait rm logs events info get shim; do
	out=$("$NANOCTL" "$cmd" --help)
	assert_match "$(head -n 1 <<<"$out")" "^usage: nanoctl $cmd" "first line of nanoctl $cmd --help"
done

check "bad input: one-line errors, non-zero exits, nothing half-made"
bad() { # EXPECTED-FRAGMENT ARGS...
	local want=$1 out rc
	shift
	rc=0
	out=$(ctl "$@" 2>&1) || rc=$?
	[ "$rc" != 0 ] || fail "nanoctl $* succeeded: $out"
	assert_contains "$out" "$want" "error of nanoctl $*"
	[ "$(printf '%s\n' "$out" | wc -l)" = 1 ] || fail "error of nanoctl $* is not one line: $out"
}
bad 'container id "bad/id" must match' run -d --rootfs "$E2E_ROOTFS" 'bad/id' true
bad 'not found' kill nosuch
bad 'not found' wait nosuch
bad 'not found' rm nosuch
ctl run -d --rootfs "$E2E_ROOTFS" dup sleep 100000
bad 'already exists' run -d --rootfs "$E2E_ROOTFS" dup true
bad 'is running' rm dup
bad '"init" is reserved' exec --exec-id init dup true

ctl rm -f dup
bad "$E2E_TMP/nope" run -d --rootfs "$E2E_TMP/nope" nr true
bad 'not found or not executable' run -d --runtime-binary /nonexistent/runc --rootfs "$E2E_ROOTFS" nrt true
bad 'unknown capability' run -d --cap-add CAP_NOPE --rootfs "$E2E_ROOTFS" ncap true
bad "bundle $ob: its config.json says what to run" run -d --bundle "$ob" nbc echo hi
bad 'give --rootfs DIR or --bundle DIR' run -d nbr true
assert_eq "" "$(ctl ls -q)" "no container left by the refused requests"
assert_eq "" "$(ls "$MGR_STATE/$E2E_NS" 2>/dev/null)" "no bundle left by the refused requests"
rc=0
out=$("$NANOCTL" --address "$E2E_TMP/none.sock" ls 2>&1) || rc=$?
assert_eq 2 "$rc" "exit status with no daemon"
assert_eq "nanoctl: cannot reach nanoshimd at $E2E_TMP/none.sock: No such file or directory" "$out" "message with no daemon"

check "--runtime and --runtime-arg: every runtime call gets the arguments first"
mgr_stop TERM
cat >"$E2E_TMP/rt" <<RT
#!/bin/sh
printf '%s\n' "\$*" >>"$E2E_TMP/rt.calls"
exec runc "\$@"
RT
chmod +x "$E2E_TMP/rt"
mgr_start --runtime "$E2E_TMP/rt" --runtime-arg=--debug --runtime-arg "--log-format=text"
out=$(ctl run --rm --rootfs "$E2E_ROOTFS" rtarg echo via wrapper)
assert_eq "via wrapper" "$out" "output through the runtime given"
grep -q -- '^--debug --log-format=text .* create ' "$E2E_TMP/rt.calls" ||
	fail "no create with the arguments first in: $(cat "$E2E_TMP/rt.calls")"
grep -q -- '^--debug --log-format=text .* start ' "$E2E_TMP/rt.calls" ||
	fail "no start with the arguments first in: $(cat "$E2E_TMP/rt.calls")"
pass "create and start ran as: $(grep -m1 ' create ' "$E2E_TMP/rt.calls" | cut -c1-80)..."

check "--start-timeout: a shim or a create that hangs is cleaned up and reported"
mgr_stop TERM
# shim processes of this namespace serving container $1 (their command line says so)
shims_of() {
	local d p
	for d in /proc/[0-9]*; do
		p=${d#/proc/}
		e2e_cmdline_has "$p" -namespace "$E2E_NS" && e2e_cmdline_has "$p" -id "$1" && echo "$p"
	done
	return 0
}
cat >"$E2E_TMP/rt-hang" <<RT
#!/bin/sh
case " \$* " in *" create "*) echo \$\$ >"$E2E_TMP/rt-hang.pid"; exec sleep 3 ;; esac
exec runc "\$@"
RT
chmod +x "$E2E_TMP/rt-hang"
mgr_start --runtime "$E2E_TMP/rt-hang" --start-timeout 1s
ctl run -d --rootfs "$E2E_ROOTFS" hang sleep 100000 >"$E2E_TMP/hang.out" 2>&1 &
run_pid=$!
hang_shim=
for ((i = 0; i < 50; i++)); do
	hang_shim=$(shims_of hang | head -n 1)
	[ -z "$hang_shim" ] || break
	sleep 0.05
done
[ -n "$hang_shim" ] || fail "no shim seen for hang"
rc=0
wait "$run_pid" || rc=$?
[ "$rc" != 0 ] || fail "run of a create that hangs succeeded"
assert_contains "$(cat "$E2E_TMP/hang.out")" "create hang: not created within the start timeout (1000 ms)" "the error"
hang_gone() { ! kill -0 "$hang_shim" 2>/dev/null && [ -z "$(mgr_status hang)" ] && [ ! -e "$MGR_STATE/$E2E_NS/hang" ]; }
wait_for 10 "hang's shim, listing and bundle gone" hang_gone
ctl events --since 5m --no-follow >"$E2E_TMP/hang-ev.json"
jq -s -e 'map(select(.topic == "/nanoshim/start-timeout" and .id == "hang")) | length == 1' "$E2E_TMP/hang-ev.json" >/dev/null ||
	fail "no /nanoshim/start-timeout event for hang"
pass "reported as a /nanoshim/start-timeout event"
# the hung runtime (orphaned with its shim, holding the Go shim's listener it
# inherited; the Go shim's children get SIGKILL as it dies) ends: wait for it, so
# nanoshimd can remove that socket
rt_hang_pid=$(cat "$E2E_TMP/rt-hang.pid")
rt_hang_gone() { ! kill -0 "$rt_hang_pid" 2>/dev/null; }
wait_for 10 "the hung runtime wrapper ended" rt_hang_gone
mgr_stop TERM
cat >"$E2E_TMP/shim-hang" <<SH
#!/bin/sh
[ "\$1" = start ] || [ "\${*#*start}" != "\$*" ] && exec sleep 30
exec "$MGR_SHIM" "\$@"
SH
chmod +x "$E2E_TMP/shim-hang"
mgr_start --shim-binary "$E2E_TMP/shim-hang" --start-timeout 500ms
rc=0
out=$(ctl run -d --rootfs "$E2E_ROOTFS" hang2 sleep 100000 2>&1) || rc=$?
[ "$rc" != 0 ] || fail "run with a shim whose start hangs succeeded"
assert_contains "$out" "create hang2: shim start failed" "the error"
assert_eq "" "$(mgr_status hang2)" "hang2 not listed"
[ ! -e "$MGR_STATE/$E2E_NS/hang2" ] || fail "hang2's bundle left"
assert_eq "" "$(shims_of hang2)" "no start action of hang2 left"
mgr_stop TERM

check "--event-retain: the last N events, kept across a restart; --log-level; NANOSHIMD_ADDRESS"
mgr_start --event-retain 4 --log-level debug
for i in 1 2; do ctl run --rm --rootfs "$E2E_ROOTFS" "ev$i" true; done
grep -q 'level=debug' "$MGR_LOG" || fail "no debug line from --log-level debug"
pass "--log-level debug logs debug lines"
mgr_stop TERM
mgr_start --event-retain 4
ctl events --since 1h --no-follow >"$E2E_TMP/retained.json"
assert_eq 4 "$(wc -l <"$E2E_TMP/retained.json")" "events replayed with --event-retain 4"
assert_eq "/nanoshim/recovered" "$(jq -r .topic "$E2E_TMP/retained.json" | tail -n 1)" "the newest: this start's recovery"
assert_eq "/tasks/delete ev2" "$(jq -r 'select(.topic == "/tasks/delete") | "\(.topic) \(.id)"' "$E2E_TMP/retained.json" | tail -n 1)" "the last delete kept"
assert_eq "" "$(NANOSHIMD_ADDRESS=$MGR_ADDR "$NANOCTL" -n "$E2E_NS" ls -q)" "ls through NANOSHIMD_ADDRESS"
mgr_stop TERM
# a record that is not a protobuf message (wire type 7), then a torn one: both go
printf '\003\000\000\000\017\377\377\005\000\000\000\001' >>"$MGR_STATE/events.log"
mgr_start --event-retain 4
grep -Eq 'event log: a torn or corrupt record after [0-9]+ events; the rest is dropped' "$MGR_LOG" ||
	fail "nanoshimd did not say it dropped the corrupt end of its event log"
ctl events --since 1h --no-follow >"$E2E_TMP/retained.json"
assert_eq "4" "$(wc -l <"$E2E_TMP/retained.json")" "events after a corrupt tail: the 4 kept, this start's in place of the oldest"
assert_eq "/nanoshim/recovered /nanoshim/recovered" "$(jq -r .topic "$E2E_TMP/retained.json" | tail -n 2 | tr '\n' ' ' | sed 's/ $//')" "the last two: both starts' recoveries"
mgr_stop TERM
