#!/usr/bin/env bash
# crun instead of runc: BinaryName=crun reaches the shim in containerd.runc.v1.Options.
# ctr 1.6 sends runc Options (and accepts --runc-binary) only for the runtime named
# io.containerd.runc.v2, so for our shim this test installs it under that name
# (SHIM_AS_RUNC=1). Basic run, exit status, stdin, exec and kill, all through crun.
. "$(dirname "$0")/lib.sh"
command -v crun >/dev/null || e2e_skip "crun not installed"
if [ "${RUNTIME:-io.containerd.nano.v2}" != io.containerd.runc.v2 ]; then
	SHIM_AS_RUNC=1
fi
e2e_setup
E2E_RUNTIME_FLAGS=(--runc-binary=crun)

check "ctr run --rm --runc-binary crun: exact output and exit status"
id=$(e2e_id crun)
out=$(e2e_run --rm "$id" echo hello </dev/null)
assert_eq hello "$out" "stdout of echo hello"
id=$(e2e_id crunexit)
assert_status 7 "exit status" e2e_run --rm "$id" sh -c 'exit 7' </dev/null
id=$(e2e_id crunerr)
e2e_run --rm "$id" sh -c 'echo out; echo err >&2' </dev/null >"$E2E_TMP/out" 2>"$E2E_TMP/err"
assert_eq out "$(cat "$E2E_TMP/out")" "stdout"
assert_eq err "$(cat "$E2E_TMP/err")" "stderr"

check "stdin round trip (256 KiB) under crun"
head -c 262144 /dev/urandom >"$E2E_TMP/payload"
id=$(e2e_id crunin)
e2e_run --rm "$id" cat <"$E2E_TMP/payload" >"$E2E_TMP/back"
assert_eq "$(sha256sum <"$E2E_TMP/payload" | awk '{print $1}')" \
	"$(sha256sum <"$E2E_TMP/back" | awk '{print $1}')" "sha256 through cat"

check "a detached task is a crun container, served by the shim under test"
id=$(e2e_id crundet)
e2e_run -d --null-io "$id" sleep 1000 </dev/null
assert_eq RUNNING "$(e2e_task_status "$id")" "status"
assert_shim_binary "$id"
assert_eq running "$(crun --root "$E2E_RUNC_ROOT/$E2E_NS" list | awk -v id="$id" '$1 == id { print $3 }')" \
	"crun list (root $E2E_RUNC_ROOT/$E2E_NS) shows it running"
assert_eq "$(e2e_task_pid "$id")" "$(crun --root "$E2E_RUNC_ROOT/$E2E_NS" list | awk -v id="$id" '$1 == id { print $2 }')" \
	"crun's pid is the task's pid"

check "exec under crun: output, exit status, a missing binary"
out=$(ctr task exec --exec-id e1 "$id" echo hello-exec </dev/null)
assert_eq hello-exec "$out" "exec output"
assert_status 3 "exec exit status" ctr task exec --exec-id e2 "$id" sh -c 'exit 3' </dev/null
rc=0
err=$(ctr task exec --exec-id e3 "$id" nosuch 2>&1 </dev/null) || rc=$?
assert_ne 0 "$rc" "exec of a missing binary fails"
assert_contains "$err" 'executable file `nosuch` not found in $PATH' "error carries crun's message"
ctr task exec -d --exec-id bg "$id" sleep 100 </dev/null
ps_out=$(ctr task ps "$id")
assert_eq 2 "$(awk 'NR > 1' <<<"$ps_out" | wc -l)" "processes in ctr task ps after a detached exec"
assert_match "$ps_out" 'ExecID:bg[,}]' "the exec is listed with its exec id"

check "pause/resume and kill under crun"
ctr task pause "$id"
assert_eq PAUSED "$(e2e_task_status "$id")" "status after pause"
ctr task resume "$id"
assert_eq RUNNING "$(e2e_task_status "$id")" "status after resume"
ctr task kill -s KILL "$id"
wait_for 10 "task $id stopped" e2e_task_status_is "$id" STOPPED
out=$(ctr task rm "$id" 2>&1)
assert_contains "$out" "exit with non-zero exit code 137" "ctr task rm reports 137"
assert_eq "" "$(crun --root "$E2E_RUNC_ROOT/$E2E_NS" list | awk -v id="$id" '$1 == id')" "crun list no longer has it"
ctr containers rm "$id"
