#!/usr/bin/env bash
# Stdio that used to freeze the shim's loop (reliability review §4b, §4c), through a
# real containerd:
#   - a `file://` log URI naming a FIFO that nobody reads: the shim opened it
#     write-only and blocking, so Create never returned; now the task runs and the
#     output waits in the FIFO for a reader;
#   - a runtime that connects to the console socket and never sends the pty master
#     (runc behind a relay that takes the master and keeps the shim's connection open,
#     silent): the shim blocked in recvmsg for as long as the connection stayed open;
#     now `ctr run -t` fails at once with a clear error and the shim removes its
#     console socket directory.
# Our shim only: the Go shim blocks on the first case too (it opens the log file
# O_WRONLY in the Create handler) and the relay is reached through our runtime config.
. "$(dirname "$0")/lib.sh"
command -v script >/dev/null || e2e_skip "script (util-linux) not installed"
command -v python3 >/dev/null || e2e_skip "python3 not installed"
[ "$RUNTIME" = io.containerd.nano.v2 ] || e2e_skip "our shim's behaviour (the Go shim blocks on a file:// FIFO too)"
e2e_setup

check "file:// log that is a FIFO without a reader: the task starts, the output waits"
fifo=$E2E_TMP/log.fifo
mkfifo "$fifo"
id=$(e2e_id fifolog)
t0=$(date +%s%N)
e2e_run -d --log-uri="file://$fifo" "$id" sh -c 'echo into-the-fifo; sleep 1000' </dev/null
t1=$(date +%s%N)
[ $(((t1 - t0) / 1000000)) -lt 15000 ] || fail "ctr run -d took $(((t1 - t0) / 1000000)) ms"
wait_for 10 "task $id running" e2e_task_status_is "$id" RUNNING
line=$(run_with_timeout 10 head -n 1 "$fifo")
assert_eq "into-the-fifo" "$line" "the first line, read from the FIFO later"
ctr task rm -f "$id" >/dev/null 2>&1 || true
ctr containers rm "$id"

check "a runtime that connects to the console socket and sends nothing"
relay=$E2E_TMP/relay.py
cat >"$relay" <<'PY'
# relay.py SHIM_SOCKET RELAY_SOCKET HOLD_SECONDS — takes the pty master runc sends to
# RELAY_SOCKET and keeps it (the container's terminal would hang up without it), and
# keeps a silent connection to the shim's socket open
import os, socket, sys, time
shim, path, hold = sys.argv[1], sys.argv[2], float(sys.argv[3])
srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
srv.bind(path)
srv.listen(1)
silent = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
silent.connect(shim)
open(path + ".ready", "w").close()
conn, _ = srv.accept()
msg, fds, _, _ = socket.recv_fds(conn, 1024, 4)
conn.close()
time.sleep(hold)
PY
real_runc=$(command -v runc)
wrapper=$E2E_TMP/runc-relay
cat >"$wrapper" <<WRAPPER
#!/bin/bash
# runc, except that a --console-socket goes through relay.py
args=()
while [ \$# -gt 0 ]; do
	if [ "\$1" = --console-socket ]; then
		r=$E2E_TMP/relay-\$\$.sock
		python3 "$relay" "\$2" "\$r" 30 </dev/null >/dev/null 2>&1 &
		echo \$! >>"$E2E_TMP/relay.pids"
		for i in \$(seq 100); do [ -e "\$r.ready" ] && break; sleep 0.05; done
		args+=(--console-socket "\$r")
		shift 2
		continue
	fi
	args+=("\$1")
	shift
done
exec "$real_runc" "\${args[@]}"
WRAPPER
chmod +x "$wrapper"
printf '{"binary_name":"%s"}\n' "$wrapper" >"$E2E_TMP/runtime.json"
id=$(e2e_id silent)
cmd="ctr --address $E2E_ADDR --namespace $E2E_NS run --fifo-dir=$E2E_FIFO_DIR --runtime $CTR_RUNTIME"
cmd+=" --runtime-config-path=$E2E_TMP/runtime.json --env=$E2E_PATH_ENV --rm -t --rootfs $E2E_ROOTFS $id true"
exec 7< <(exec sleep 60 2>/dev/null)
feeder=$!
t0=$(date +%s%N)
rc=0
run_with_timeout 25 script -qec "$cmd" /dev/null <&7 >"$E2E_TMP/pty.out" 2>&1 || rc=$?
t1=$(date +%s%N)
exec 7<&-
kill "$feeder" 2>/dev/null || true
ms=$(((t1 - t0) / 1000000))
out=$(tr -d '\r' <"$E2E_TMP/pty.out")
assert_ne 0 "$rc" "ctr run -t fails"
[ "$ms" -lt 10000 ] || fail "ctr run -t took $ms ms: the shim waited for the silent connection"
pass "ctr run -t failed after $ms ms"
assert_contains "$out" "no pty master" "the error says what the runtime did not send"
shim_dirs=$(ls -d /tmp/nanoshim-pty-* 2>/dev/null | while read -r d; do
	p=${d#/tmp/nanoshim-pty-}; p=${p%%-*}
	grep -qs -- "$E2E_NS" "/proc/$p/cmdline" && echo "$d"
done || true)
assert_eq "" "$shim_dirs" "console socket dirs of this run's shims"
while read -r p; do kill "$p" 2>/dev/null || true; done <"$E2E_TMP/relay.pids"
ctr task rm -f "$id" >/dev/null 2>&1 || true
ctr containers rm "$id" >/dev/null 2>&1 || true
pass "stdio never blocks the loop"
