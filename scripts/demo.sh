#!/usr/bin/env bash
# Runs containers through containerd-shim-nano-v2 on a private containerd
# (its own root, state and socket; the harness of test/e2e/lib.sh), and shows
# the shim's footprint next to the container it serves.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
export SHIM_BINARY=${SHIM_BINARY:-$here/build/shim/containerd-shim-nano-v2}
export E2E_CACHE_DIR=${E2E_CACHE_DIR:-$here/build/test/e2e/cache}
. "$here/test/e2e/lib.sh"
e2e_setup

id=$(e2e_id demo)
echo "\$ ctr run --rm --runtime io.containerd.nano.v2 ... $id sh -c 'echo hello from ...'"
e2e_run --rm "$id" sh -c 'echo "hello from $(hostname), pid $$, in a container run by nanoshim"' </dev/null

id=$(e2e_id web)
e2e_run -d --null-io "$id" sleep 60 </dev/null
echo "\$ ctr task ls"
ctr task ls
echo "\$ ctr task exec --exec-id demo $id uname -a"
ctr task exec --exec-id demo "$id" uname -a
shim=$(cat "$E2E_STATE"/io.containerd.runtime.v2.task/*/"$id"/shim.pid)
echo "shim pid $shim: $(grep -E '^Pss:' /proc/"$shim"/smaps_rollup | awk '{print $2, $3}') PSS," \
	"$(grep Threads /proc/"$shim"/status | awk '{print $2}') thread(s)"
ctr task kill -s KILL "$id"
wait_for 10 "task $id stopped" e2e_task_status_is "$id" STOPPED
ctr task rm "$id" >/dev/null 2>&1 || true
ctr containers rm "$id"
