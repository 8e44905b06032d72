#!/usr/bin/env bash
# containerd there but not accepting: its ttrpc address is a listener whose backlog is
# full (as when containerd is frozen or overloaded). The shim's event publisher must
# not block the shim: Exec and Start of an exec, which publish TaskExecAdded and
# TaskExecStarted before they reply, and State are answered at once, straight over the
# shim's socket (shimcall). Once containerd is back, the queued events reach it, in
# order. (A blocking connect slept in the kernel inside Exec: the call never returned.)
# The Go shim answers at once too, but drops the events it could not send in 5 tries.
. "$(dirname "$0")/lib.sh"

shimcall=${E2E_SHIMCALL:-$(dirname "$E2E_CACHE_DIR")/shimcall}
[ -x "$shimcall" ] || e2e_skip "shimcall not built ($shimcall)"
command -v python3 >/dev/null || e2e_skip "python3 not installed"
e2e_setup

id=$(e2e_id backlog)
e2e_run -d --null-io "$id" sleep 1000 </dev/null
wait_for 5 "task $id running" e2e_task_status_is "$id" RUNNING
bundle=$(e2e_bundle "$id")
shim=$(e2e_shim_pid "$id")
ttrpc_addr=$(tr '\0' '\n' <"/proc/$shim/environ" | sed -n 's/^TTRPC_ADDRESS=//p')
assert_eq "$E2E_ADDR.ttrpc" "$ttrpc_addr" "the shim publishes to containerd's ttrpc socket"

spec=$E2E_TMP/process.json
cat >"$spec" <<EOF
{"terminal":false,"user":{"uid":0,"gid":0},"args":["sleep","1000"],"env":["$E2E_PATH_ENV"],"cwd":"/"}
EOF
# call WHAT ARGS... — one shimcall (5 s deadline); must answer OK within 2 s
call() {
	local what=$1 t0 ms out
	shift
	t0=$(date +%s%N)
	out=$("$shimcall" -n "$E2E_NS" -t 5 "$bundle" "$@" 2>&1) || true
	ms=$((($(date +%s%N) - t0) / 1000000))
	assert_eq OK "${out%%$'\n'*}" "$what answered"
	[ "$ms" -lt 2000 ] || fail "$what took ${ms} ms"
	pass "$what took ${ms} ms"
}

check "containerd killed; at its ttrpc address, a listener that never accepts, backlog full"
e2e_containerd_stop KILL
rm -f "$E2E_ADDR.ttrpc"
# (it ends by itself when this script does: lib.sh's cleanup does not know it)
python3 - "$E2E_ADDR.ttrpc" "$E2E_TMP/backlog" <<'EOF' >"$E2E_TMP/listener.log" 2>&1 &
import os, socket, sys, time
path, ready = sys.argv[1], sys.argv[2]
parent = os.getppid()
l = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
l.bind(path)
l.listen(0)
held = []
while True:
    c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    c.setblocking(False)
    try:
        c.connect(path)
    except BlockingIOError:
        c.close()
        break
    held.append(c)
with open(ready, "w") as f:
    f.write("%d\n" % len(held))
while os.getppid() == parent:
    time.sleep(0.2)
EOF
listener=$!
wait_for 5 "backlog filled" test -s "$E2E_TMP/backlog"
pass "$(cat "$E2E_TMP/backlog") connections fill the backlog"

check "Exec and Start (each publishes an event first) and State are answered at once"
call "Exec e1" exec id="$id" exec_id=e1 spec=@"$spec"
call "Start e1" start id="$id" exec_id=e1
call "State of e1" state id="$id" exec_id=e1
# the publisher retries its connect with back-off (50 ms, doubling to 2 s) meanwhile
end=$(($(date +%s) + 4))
n=0
while [ "$(date +%s)" -lt "$end" ]; do
	call "State of the task" state id="$id" >/dev/null
	n=$((n + 1))
	sleep 0.1
done
pass "$n State calls over 4 s, each answered within 2 s"
call "Kill e1" kill id="$id" exec_id=e1 signal=9
call "Wait for e1" wait id="$id" exec_id=e1
call "Delete e1" delete id="$id" exec_id=e1

check "containerd back: the queued events reach it, in order"
kill "$listener" 2>/dev/null
wait "$listener" 2>/dev/null || true
rm -f "$E2E_ADDR.ttrpc"
e2e_containerd_start
# containerd logs every event a shim forwards (debug level)
forwarded() {
	grep -F 'msg="event forwarded"' "$E2E_TMP/containerd.log" | grep -F "ns=$E2E_NS" |
		sed -n 's/.* topic=\([^ ]*\).*/\1/p'
}
wait_for 15 "/tasks/exit of e1 forwarded" eval 'forwarded | grep -qx /tasks/exit'
order=$(forwarded | grep -xE '/tasks/(exec-added|exec-started|exit)' | tr '\n' ' ')
if [ "$RUNTIME" = io.containerd.runc.v2 ] && [ "$SHIM_AS_RUNC" != 1 ]; then
	# The Go shim's publisher gives an event up after a fixed number of tries: over a
	# 4 s outage exec-added and exec-started are lost, only the later exit arrives.
	assert_contains "$order" "/tasks/exit" "Go shim: the exit forwarded after the outage ($order)"
else
	assert_eq "/tasks/exec-added /tasks/exec-started /tasks/exit " "$order" \
		"events forwarded after the outage"
fi
assert_eq RUNNING "$(e2e_task_status "$id")" "the task runs on"
