#!/usr/bin/env bash
# nanoshimd and nanoctl, by hand: a private nanoshimd runs a container that prints a
# numbered line every 0.2 s; nanoshimd is SIGKILLed and started again; the container is
# still listed RUNNING, answers an exec, and its log has every line, none lost while
# nothing was watching it. (The harness of test/e2e/mgr-lib.sh: own state dir, root
# and socket; everything removed on exit.)
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
export SHIM_BINARY=${SHIM_BINARY:-$here/build/shim/containerd-shim-nano-v2}
export NANOSHIMD=${NANOSHIMD:-$here/build/manager/nanoshimd/nanoshimd}
export NANOCTL=${NANOCTL:-$here/build/manager/nanoctl/nanoctl}
export E2E_CACHE_DIR=${E2E_CACHE_DIR:-$here/build/test/e2e/cache}
. "$here/test/e2e/mgr-lib.sh"
mgr_setup
say() { printf '\n$ %s\n' "$*"; }

mgr_start
say "nanoshimd --state $MGR_STATE ...   (pid $MGR_PID)"
say "nanoctl run -d --rootfs ROOTFS ticker sh -c 'i=0; while :; do echo tick \$i; i=\$((i+1)); sleep 0.2; done'"
ctl run -d --rootfs "$E2E_ROOTFS" ticker sh -c 'i=0; while :; do echo "tick $i"; i=$((i + 1)); sleep 0.2; done'
say "nanoctl ls"
ctl ls
sleep 1
say "kill -KILL $MGR_PID   (nanoshimd crashes; the container and its shim keep running)"
mgr_stop KILL
sleep 1.5
say "nanoshimd --state $MGR_STATE ...   (started again: it adopts what kept running)"
mgr_start
grep -o 'recovered [0-9]* containers.*ms' "$MGR_LOG" | tail -n 1
say "nanoctl ls"
ctl ls
say "nanoctl exec --exec-id hello ticker uname -a"
ctl exec --exec-id hello ticker uname -a
ctl kill -s KILL ticker
ctl wait ticker || true
say "nanoctl logs ticker   (every line, across the crash)"
ctl logs ticker >"$E2E_TMP/ticker.log"
n=$(grep -c '^tick ' "$E2E_TMP/ticker.log")
head -n 3 "$E2E_TMP/ticker.log"
echo "..."
tail -n 2 "$E2E_TMP/ticker.log"
if [ "$(grep '^tick ' "$E2E_TMP/ticker.log")" = "$(seq 0 $((n - 1)) | sed 's/^/tick /')" ]; then
	echo "$n lines, tick 0 to tick $((n - 1)), none missing"
else
	fail "lines are missing from the log"
fi
say "nanoctl rm ticker"
ctl rm ticker
