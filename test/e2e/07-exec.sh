#!/usr/bin/env bash
# ctr task exec: output, exit status, stdin, detached execs in `ctr task ps`, a failing
# exec with runc's own message, a duplicate exec id.
. "$(dirname "$0")/lib.sh"
e2e_setup

id=$(e2e_id exec)
e2e_run -d --null-io "$id" sleep 1000 </dev/null
wait_for 5 "task $id running" e2e_task_status_is "$id" RUNNING
init=$(e2e_task_pid "$id")

check "exec with exact output"
out=$(ctr task exec --exec-id e1 "$id" echo hello-exec </dev/null)
assert_eq "hello-exec" "$out" "stdout of exec"

check "exec runs in the container (its pid namespace, its root)"
out=$(ctr task exec --exec-id e2 "$id" sh -c 'cat /etc/nanoshim-image; ps -o pid,comm | awk "\$2 == \"sleep\" { print \$1 }"' </dev/null)
assert_eq "nanoshim e2e image
1" "$out" "rootfs marker and pid of init inside"

check "exec exit status and stderr"
rc=0
ctr task exec --exec-id e3 "$id" sh -c 'echo oops >&2; exit 3' </dev/null 2>"$E2E_TMP/err" || rc=$?
assert_eq 3 "$rc" "ctr task exec exit status"
assert_eq "oops" "$(cat "$E2E_TMP/err")" "stderr of exec"

check "exec stdin round trip (256 KiB) and EOF"
head -c 262144 /dev/urandom >"$E2E_TMP/payload"
ctr task exec --exec-id e4 "$id" cat <"$E2E_TMP/payload" >"$E2E_TMP/back"
assert_eq "$(sha256sum <"$E2E_TMP/payload" | awk '{print $1}')" \
	"$(sha256sum <"$E2E_TMP/back" | awk '{print $1}')" "sha256 through cat"

check "a detached exec shows in ctr task ps with its exec id"
ctr task exec -d --exec-id bg "$id" sleep 500 </dev/null
ps_out=$(ctr task ps "$id")
assert_eq 2 "$(awk 'NR > 1' <<<"$ps_out" | wc -l)" "number of processes"
assert_contains "$(awk -v p="$init" 'NR > 1 && $1 == p' <<<"$ps_out")" "$init" "init pid listed"
assert_match "$(awk -v p="$init" 'NR > 1 && $1 != p' <<<"$ps_out")" 'ExecID:bg[,}]' "exec listed with ExecID bg"

check "a duplicate exec id is refused while that exec runs"
rc=0
err=$(ctr task exec --exec-id bg "$id" true 2>&1 </dev/null) || rc=$?
assert_ne 0 "$rc" "ctr task exec status"
assert_contains "$err" "already exists" "error message"

check "exec of a missing binary fails with runc's message"
rc=0
err=$(ctr task exec --exec-id bad "$id" nosuch 2>&1 </dev/null) || rc=$?
assert_ne 0 "$rc" "ctr task exec status"
assert_contains "$err" 'exec: "nosuch": executable file not found in $PATH' "error message"
assert_eq RUNNING "$(e2e_task_status "$id")" "task still running"

check "the exec id of a finished exec can be reused"
out=$(ctr task exec --exec-id e1 "$id" echo again </dev/null)
assert_eq again "$out" "stdout of the reused exec id"

check "many execs in a row (no fd or process leak in the shim)"
shim=$(e2e_shim_pid "$id")
fd_count() { e2e_fd_count "$1"; }
fds_before=$(fd_count "$shim")
for i in $(seq 1 20); do
	out=$(ctr task exec --exec-id "loop$i" "$id" echo "$i" </dev/null)
	[ "$out" = "$i" ] || fail "exec $i printed [$out]"
done
pass "20 execs printed their number"
fds_after=$(fd_count "$shim")
[ "$fds_after" -le $((fds_before + 2)) ] || fail "shim fds grew from $fds_before to $fds_after"
pass "shim fds: $fds_before before, $fds_after after"

check "the shim is idle once the execs are done"
assert_shim_quiet "$shim"

ctr task kill -s KILL "$id"
wait_for 10 "task $id stopped" e2e_task_status_is "$id" STOPPED
ctr task rm "$id" >/dev/null 2>&1
