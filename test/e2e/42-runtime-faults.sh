#!/usr/bin/env bash
# The shim against a runtime that is slow or hangs, and the races around it (the
# reliability review's items 1, 3, 7 and 10). The runtime is the real runc behind a
# wrapper that, per subcommand, first waits a few seconds or hangs (a runc stuck on a
# frozen cgroup or a D-state process), chosen with a file in this run's temp dir; the
# wrapper is the task's binary_name (--runtime-config-path, nano only: ctr 1.6 passes
# --runc-binary only to runtime io.containerd.runc.v2).
#   - a runtime call outliving its request's deadline is killed: an exec whose Start
#     timed out never runs (no ghost exec: RUNNING with a pid containerd never saw);
#   - a hung `runc kill` does not wedge Delete once the init is dead, and a Delete
#     that comes while a Kill's runc is still running waits for it (a flake of
#     `ctr run --rm` after `ctr task kill`);
#   - Delete of the init is refused while an exec's Start is in flight (it used to
#     free the container under the exec: a use-after-free), and succeeds after;
#   - an exec fsyncs nothing but its exit record;
#   - exec ids "init" and "shim" are refused (their pid files are the bundle's own);
#   - the exit record is on disk at the reap, before the output drains: a shim killed
#     while output waits for a reader still reports the status.
. "$(dirname "$0")/lib.sh"

[ -x "$E2E_SHIMCALL" ] || fail "shimcall not built ($E2E_SHIMCALL)"
[ "$RUNTIME" = io.containerd.nano.v2 ] || e2e_skip "the runtime wrapper reaches only our shim (runtime config)"
e2e_setup
e2e_events_start "$E2E_TMP/events"

real_runc=$(command -v runc)
faults=$E2E_TMP/faults
mkdir -p "$faults"
mkfifo "$faults/never"
wrapper=$E2E_TMP/runc-wrapper
cat >"$wrapper" <<WRAPPER
#!/bin/bash
$(e2e_runc_subcommand)
if [ -n "\$sub" ] && [ -e "$faults/\$sub" ]; then
	read -r action secs <"$faults/\$sub"
	case \$action in
	# builtins only: a SIGKILL of this process leaves no child behind
	sleep) read -r -t "\$secs" <>"$faults/never" || true ;;
	# a hang long past any check here, yet bounded: a wrapper left behind by a failed
	# run (whose shim was killed) ends by itself
	hang) read -r -t 90 <>"$faults/never" || true ;;
	after)
		"$real_runc" "\$@"
		rc=\$?
		read -r -t "\$secs" <>"$faults/never" || true
		exit \$rc
		;;
	esac
fi
exec "$real_runc" "\$@"
WRAPPER
chmod +x "$wrapper"
printf '{"binary_name":"%s"}\n' "$wrapper" >"$E2E_TMP/runtime.json"
fault() { echo "$2 ${3:-}" >"$faults/$1"; }
nofault() { rm -f "$faults/$1"; }

start_task() {
	e2e_run -d --null-io --runtime-config-path="$E2E_TMP/runtime.json" "$1" sleep 1000 </dev/null
	wait_for 5 "task $1 running" e2e_task_status_is "$1" RUNNING
}
sc() { e2e_shimcall "$bundle" "$@"; }
reply() { e2e_shim_reply "$bundle" "$@"; }
spec=$E2E_TMP/process.json
cat >"$spec" <<SPEC
{"terminal":false,"user":{"uid":0,"gid":0},"args":["sleep","1000"],"env":["$E2E_PATH_ENV"],"cwd":"/"}
SPEC
field() { sed -n "s/^$2=//p" <<<"$1"; }

id=$(e2e_id faults)
start_task "$id"
bundle=$(e2e_bundle "$id")
init=$(e2e_task_pid "$id")
assert_shim_binary "$id"

check "an exec syncs only its exit record to disk (its process.json needs no fsync)"
shim=$(e2e_shim_pid "$id")
strace -f -qq -e trace=fsync,fdatasync -o "$E2E_TMP/fsync.trace" -p "$shim" &
tracer=$!
wait_for 5 "strace attached to shim $shim" grep -q 'TracerPid:.[1-9]' "/proc/$shim/status"
for i in 1 2 3; do
	ctr task exec --exec-id "sync$i" "$id" true </dev/null
done
kill -INT "$tracer" # strace, started by this test, detaches
wait "$tracer" || true
assert_eq 6 "$(grep -c 'fsync(' "$E2E_TMP/fsync.trace")" \
	"fsyncs for 3 execs (each exit record: the file and its directory)"

check "reserved exec ids"
for x in init shim; do
	r=$(reply exec id="$id" exec_id=$x spec=@"$spec")
	assert_match "$r" '^InvalidArgument: ' "Exec with id $x"
	assert_contains "$r" "reserved" "message says why"
done
test -s "$bundle/init.pid" || fail "init.pid gone"
assert_eq "$init" "$(cat "$bundle/init.pid")" "init.pid untouched"

check "an exec whose Start outlives its deadline never runs"
fault exec sleep 3
assert_eq OK "$(reply exec id="$id" exec_id=late spec=@"$spec")" "Exec late"
r=$(reply -t 1 start id="$id" exec_id=late)
assert_match "$r" '^DeadlineExceeded' "Start of late with a 1 s deadline"
sleep 3.5 # past the runtime's own delay: a ghost would be running now
out=$(sc state id="$id" exec_id=late)
assert_ne RUNNING "$(field "$out" status)" "state of late"
assert_eq 1 "$(ctr task ps "$id" | awk 'NR > 1' | wc -l)" "only the init runs in the container"
nofault exec
assert_eq OK "$(reply delete id="$id" exec_id=late)" "Delete of late"

check "a hung runc kill does not wedge Delete of a dead init"
fault kill hang
sc -t 60 kill id="$id" signal=15 >"$E2E_TMP/kill.out" 2>&1 &
killer=$!
wait_for 5 "the hung runc kill is running" pgrep -f -- "$wrapper.* kill .*$id" >/dev/null
kill -KILL "$init" # the container's own init, started by this test
wait_for 5 "task $id stopped" e2e_task_status_is "$id" STOPPED
rc=0
out=$(ctr task rm "$id" 2>&1) || rc=$?
assert_eq 0 "$rc" "ctr task rm while the runtime's kill hangs ($out)"
wait "$killer" || true
assert_match "$(head -n 1 "$E2E_TMP/kill.out")" '^(Unknown|NotFound|DeadlineExceeded)' \
	"the hung Kill got an error"
nofault kill
ctr container rm "$id"
shim_gone() { [ -z "$(e2e_run_shims "$1")" ]; }
wait_for 5 "the shim of $id exited" shim_gone "$id"

check "Delete waits for a Kill whose runc is still running after the init died"
id=$(e2e_id slowkill)
start_task "$id"
fault kill after 0.5 # runc kill signals at once, then takes another 0.5 s to exit
rc=0
ctr task kill -s KILL "$id" >"$E2E_TMP/slowkill.out" 2>&1 &
killer=$!
wait_for 5 "task $id stopped" e2e_task_status_is "$id" STOPPED
rc=0
out=$(ctr task rm "$id" 2>&1) || rc=$?
assert_eq 0 "$rc" "ctr task rm while the Kill's runc runs ($out)"
wait "$killer" || fail "ctr task kill failed: $(cat "$E2E_TMP/slowkill.out")"
pass "ctr task kill succeeded"
nofault kill
ctr container rm "$id"
wait_for 5 "the shim of $id exited" shim_gone "$id"

check "Delete of the init waits for an exec Start in flight"
id=$(e2e_id race)
start_task "$id"
bundle=$(e2e_bundle "$id")
init=$(e2e_task_pid "$id")
fault exec sleep 2
assert_eq OK "$(reply exec id="$id" exec_id=e1 spec=@"$spec")" "Exec e1"
sc start id="$id" exec_id=e1 >"$E2E_TMP/start.out" 2>&1 &
starter=$!
wait_for 5 "runc exec of e1 is running" pgrep -f -- "$wrapper.* exec .*$id" >/dev/null
kill -KILL "$init"
wait_for 5 "task $id stopped" e2e_task_status_is "$id" STOPPED
rc=0
r=$(ctr task rm "$id" 2>&1) || rc=$?
assert_eq 1 "$rc" "ctr task rm while e1 starts"
assert_contains "$r" "exec e1 is starting" "the shim's reason"
wait "$starter" || true
nofault exec
assert_status 0 "ctr task rm once e1's Start ended" ctr task rm "$id"
ctr container rm "$id"
wait_for 5 "the shim of $id exited" shim_gone "$id"

check "the exit record is written at the reap, before the output drains"
id=$(e2e_id drain)
# ctr's own stdout is a FIFO this test opens and never reads: ctr, containerd's FIFO
# and then the shim's pipe fill up; the init writes its 500 KB and exits 3 while the
# last of it waits in the shim, which waits for it to drain (up to 2 s)
mkfifo "$E2E_TMP/stall"
e2e_run "$id" sh -c 'head -c 500000 /dev/zero; exit 3' </dev/null >"$E2E_TMP/stall" &
runner=$!
exec 7<"$E2E_TMP/stall"
wait_for 10 "task $id created" test -s "$(e2e_bundle "$id")/init.pid"
bundle=$(e2e_bundle "$id")
shim=$(e2e_shim_pid "$id")
init=$(cat "$bundle/init.pid")
gone() { [ ! -e "/proc/$init" ]; }
wait_for 5 "init $init reaped" gone
# within 1 s of the reap, well inside the 2 s the shim waits for the output to drain
wait_for 1 "exit record on disk at the reap" test -s "$bundle/init.exit"
assert_match "$(cat "$bundle/init.exit")" "^pid=$init status=3 " "exit record"
kill -KILL "$shim"
wait_for 10 "shim $shim gone" test ! -e "/proc/$shim"
# containerd's cleanup of the dead shim runs its delete action, which reads the record
wait_for 10 "/tasks/delete of $id published" e2e_event_seen "$id" /tasks/delete
assert_contains "$(e2e_event_json "$id" /tasks/delete)" "\"pid\":$init,\"exit_status\":3" \
	"/tasks/delete after the shim died: status 3"
exec 7<&- # ctr's output has no reader now: it ends
wait "$runner" || true
ctr container rm "$id"
