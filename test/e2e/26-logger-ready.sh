#!/usr/bin/env bash
# A binary:// logger's readiness is waited for, as containerd's shim does: the
# container does not start until the logger writes a byte to fd 5 or closes it,
# for the init (ctr run) and for an exec (its Exec and Start sent with shimcall,
# since ctr task exec takes no log URI). The wait is on the loop, not in it.
. "$(dirname "$0")/lib.sh"
e2e_setup

logdir=$E2E_TMP/logs
mkdir -p "$logdir"
logger=$E2E_TMP/slow-logger.sh
cat >"$logger" <<'LOGGER'
#!/bin/sh
# usage: slow-logger.sh name NAME — ready after 1.5 s, marking DIR/NAME.ready first
dir=$(dirname "$0")/logs
sleep 1.5
: >"$dir/$2.ready"
exec 5>&-
cat <&3 >"$dir/$2.out" &
cat <&4 >/dev/null &
exec 3<&- 4<&-
wait
LOGGER
chmod +x "$logger"

check "the init starts only once its logger is ready"
id=$(e2e_id ready)
e2e_run -d --log-uri="binary://$logger?name=init" \
	--mount="type=bind,src=$logdir,dst=/logs,options=rbind:rw" "$id" \
	sh -c 'if [ -e /logs/init.ready ]; then echo after; else echo before; fi; sleep 1000' </dev/null
wait_for 10 "task $id running" e2e_task_status_is "$id" RUNNING
has_line() { [ -s "$logdir/$1.out" ]; }
wait_for 10 "init output at the logger" has_line init
assert_eq "after" "$(head -n 1 "$logdir/init.out")" "the init saw the logger's ready mark"

check "an exec starts only once its logger is ready"
# ctr task exec has no --log-uri; the exec's stdout URI goes through shimcall
[ -x "$E2E_SHIMCALL" ] || fail "shimcall not built ($E2E_SHIMCALL)"
spec=$(printf '{"args":["sh","-c","if [ -e /logs/exec.ready ]; then echo after; else echo before; fi"],"cwd":"/","env":["%s"],"user":{"uid":0,"gid":0}}' "${E2E_PATH_ENV}")
out=$(e2e_shimcall "$(e2e_bundle "$id")" Exec id="$id" exec_id=x1 \
	stdout="binary://$logger?name=exec" spec="$spec" 2>&1 || true)
assert_eq OK "${out%%$'\n'*}" "Exec with a binary:// stdout"
t0=$(date +%s%N)
out=$(e2e_shimcall "$(e2e_bundle "$id")" Start id="$id" exec_id=x1 2>&1 || true)
t1=$(date +%s%N)
assert_eq OK "${out%%$'\n'*}" "Start of the exec"
# not a speed check: the logger signals ready only after 1.5 s, so an earlier answer
# means the exec was started before its logger was ready
[ $(((t1 - t0) / 1000000)) -ge 1000 ] || fail "Start answered after $(((t1 - t0) / 1000000)) ms, before the logger was ready"
wait_for 10 "exec output at the logger" has_line exec
assert_eq "after" "$(head -n 1 "$logdir/exec.out")" "the exec saw the logger's ready mark"

ctr task rm -f "$id" >/dev/null 2>&1 || true
ctr containers rm "$id"
pass "logger readiness"
