#!/usr/bin/env bash
# trace-rpcs.sh [RUNTIME] — a development aid, not a test: runs the usual ctr scenarios
# against RUNTIME (default io.containerd.runc.v2, the Go shim) with every shim daemon
# under strace, and prints, per scenario, the ttrpc requests containerd 1.6 sent the shim
# (→), the errors the shim answered (←) and the events it forwarded (⇒). Run it for both
# runtimes and diff the outputs. Needs root, strace and python3.
RUNTIME=${1:-${RUNTIME:-io.containerd.runc.v2}}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
BUILD_DIR=${BUILD_DIR:-$here/../../build}
export SHIM_BINARY=${SHIM_BINARY:-$BUILD_DIR/shim/containerd-shim-nano-v2}
export E2E_CACHE_DIR=${E2E_CACHE_DIR:-$BUILD_DIR/test/e2e/cache}
command -v python3 >/dev/null || { echo "trace-rpcs.sh needs python3" >&2; exit 77; }
. "$here/lib.sh"
E2E_TRACE_RPCS=$(mktemp -d /tmp/nse2e-trace.XXXXXX)
export E2E_TRACE_RPCS
e2e_setup
trap 'rm -rf "$E2E_TRACE_RPCS"; e2e_cleanup' EXIT

# scenario TITLE ID — prints the decoded traces of ID's shim daemons (waits for strace to
# flush: it ends with the shim, or is read as far as written)
show() {
	sleep 0.5
	echo
	echo "== $1"
	python3 "$here/decode-rpcs.py" "$E2E_TRACE_RPCS"/"$E2E_NS.$2".*.trace
}

id=$(e2e_id runrm)
e2e_run --rm "$id" echo hello </dev/null >/dev/null
show "ctr run --rm ID echo hello" "$id"

id=$(e2e_id stdin)
{ sleep 1; head -c 65536 /dev/zero; } | e2e_run --rm "$id" cat >/dev/null
show "ctr run --rm ID cat <64 KiB (stdin EOF → CloseIO)" "$id"

id=$(e2e_id exit7)
e2e_run --rm "$id" sh -c 'exit 7' </dev/null || true
show "ctr run --rm ID sh -c 'exit 7'" "$id"

id=$(e2e_id life)
e2e_run -d --null-io "$id" sleep 1000 </dev/null
ctr task ls >/dev/null
ctr task exec --exec-id x1 "$id" echo hi </dev/null >/dev/null
ctr task exec --exec-id x1 "$id" nosuch </dev/null >/dev/null 2>&1 || true
ctr task ps "$id" >/dev/null
ctr task metrics "$id" >/dev/null
ctr task pause "$id"
ctr task resume "$id"
ctr task kill -s TERM "$id"
ctr task kill -s KILL "$id"
wait_for 10 "stopped" e2e_task_status_is "$id" STOPPED >/dev/null
ctr task rm "$id" >/dev/null 2>&1
show "run -d, task ls, exec, exec of a missing binary, ps, metrics, pause, resume, kill TERM, kill KILL, rm" "$id"

id=$(e2e_id tty)
exec 7< <(exec sleep 30 2>/dev/null)
run_with_timeout 20 script -qec "stty rows 30 cols 90; ctr --address $E2E_ADDR --namespace $E2E_NS run --fifo-dir=$E2E_FIFO_DIR --runtime $CTR_RUNTIME --env=$E2E_PATH_ENV --rm -t --rootfs $E2E_ROOTFS $id sh -c 'sleep 0.3'" /dev/null <&7 >/dev/null || true
exec 7<&-
show "ctr run --rm -t ID (terminal, resize)" "$id"

id=$(e2e_id restart)
e2e_run -d --null-io "$id" sleep 1000 </dev/null
e2e_containerd_stop TERM
e2e_containerd_start
ctr task ls >/dev/null
ctr task kill -s KILL "$id"
wait_for 10 "stopped" e2e_task_status_is "$id" STOPPED >/dev/null
ctr task rm "$id" >/dev/null 2>&1
show "run -d, containerd SIGTERM + restart, task ls, kill, rm" "$id"

id=$(e2e_id fail)
e2e_run --rm "$id" nosuch </dev/null >/dev/null 2>&1 || true
show "ctr run --rm ID nosuch (create fails)" "$id"
