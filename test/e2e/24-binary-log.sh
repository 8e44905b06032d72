#!/usr/bin/env bash
# binary:// log URIs: the shim starts the logger with the container's stdout on
# fd 3 and stderr on fd 4 (fd 5 its readiness pipe), arguments from the URI's
# query and CONTAINER_ID / CONTAINER_NAMESPACE in its environment (and containerd's
# GLIBC_TUNABLES, not the one our shim serves with), and stops it when the task is
# deleted.
. "$(dirname "$0")/lib.sh"
e2e_setup

logger=$E2E_TMP/logger.sh
cat >"$logger" <<'LOGGER'
#!/bin/sh
# usage: logger.sh dir DIR — copies fd 3 and fd 4 into DIR/out and DIR/err
# Ready first (the Go shim waits for fd 5 to close before the container starts);
# closing it after starting the copies would leave it open in them.
# After EOF it stays until SIGTERM (default action: it dies), so that only the shim's
# stop on delete can end it.
exec 5>&-
dir=$2
echo "$CONTAINER_NAMESPACE/$CONTAINER_ID" >"$dir/env"
echo "${GLIBC_TUNABLES-unset}" >"$dir/tunables"
printf '%s\n' "$@" >"$dir/args"
cat <&3 >"$dir/out" &
cat <&4 >"$dir/err" &
exec 3<&- 4<&-
wait
echo eof >"$dir/eof"
while :; do sleep 1; done
LOGGER
chmod +x "$logger"

check "stdout and stderr reach the logger on fds 3 and 4"
id=$(e2e_id blog)
dir=$E2E_TMP/logs-$id
mkdir -p "$dir"
e2e_run -d --log-uri="binary://$logger?dir=$dir" "$id" \
	sh -c 'echo to-out; echo to-err >&2; head -c 200000 /dev/zero | tr "\0" x; echo' </dev/null
wait_for 10 "task $id stopped" e2e_task_status_is "$id" STOPPED
has_output() { [ "$(wc -c <"$dir/out")" -ge 200007 ] && [ -s "$dir/err" ]; }
wait_for 10 "logger wrote the output" has_output
assert_eq "to-out" "$(head -n 1 "$dir/out")" "first line of stdout"
assert_eq 200008 "$(wc -c <"$dir/out" | tr -d ' ')" "stdout byte count"
assert_eq "to-err" "$(cat "$dir/err")" "stderr"

check "the logger's arguments and environment"
assert_eq "$(printf 'dir\n%s' "$dir")" "$(cat "$dir/args")" "argv from the URI query"
assert_eq "$E2E_NS/$id" "$(cat "$dir/env")" "CONTAINER_NAMESPACE/CONTAINER_ID"
# `start` serves our shim with glibc's tcache off through GLIBC_TUNABLES and the
# serving shim takes it off again: its children get containerd's (unset here)
assert_eq "${GLIBC_TUNABLES-unset}" "$(cat "$dir/tunables")" "GLIBC_TUNABLES as containerd's"

check "the logger, which outlives EOF, is stopped once the task is deleted"
# (ours closes the logger's pipes when the process exits, the Go shim only on delete:
# either way the logger lives on until a signal ends it)
lpid=$(pgrep -f "$logger dir $dir" | head -n 1 || true)
[ -n "$lpid" ] || fail "logger not found before delete (it waits for SIGTERM)"
pass "logger $lpid running before delete"
ctr task rm "$id" >/dev/null 2>&1 || true
ctr containers rm "$id"
logger_gone() { ! kill -0 "$lpid" 2>/dev/null || grep -q '^State:.*Z' "/proc/$lpid/status" 2>/dev/null; }
wait_for 15 "logger $lpid stopped by the shim" logger_gone

check "a logger that ignores SIGTERM is killed, not left behind"
stubborn=$E2E_TMP/stubborn.sh
cat >"$stubborn" <<'LOGGER'
#!/bin/sh
exec 5>&-
trap '' TERM
cat <&3 >/dev/null &
cat <&4 >/dev/null &
exec 3<&- 4<&-
wait
while :; do sleep 1; done
LOGGER
chmod +x "$stubborn"
id=$(e2e_id stub)
e2e_run -d --log-uri="binary://$stubborn?tag=$id" "$id" echo hi </dev/null
wait_for 10 "task $id stopped" e2e_task_status_is "$id" STOPPED
spid=$(pgrep -f "$stubborn tag $id" | head -n 1 || true)
[ -n "$spid" ] || fail "stubborn logger not found"
ctr task rm "$id" >/dev/null 2>&1 || true
ctr containers rm "$id"
stub_gone() { ! kill -0 "$spid" 2>/dev/null || grep -q '^State:.*Z' "/proc/$spid/status" 2>/dev/null; }
wait_for 20 "stubborn logger $spid killed" stub_gone
