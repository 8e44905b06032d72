#!/usr/bin/env bash
# Grouping, as the CRI plugin uses it: containers annotated with one
# io.kubernetes.cri.sandbox-id share one shim (one socket, one process). Deleting
# one leaves the shim serving the others; the shim exits with the last one, and
# nothing of the group survives it.
. "$(dirname "$0")/lib.sh"
e2e_setup

pod=$(e2e_id pod) # recorded: cleanup also removes the socket keyed on it
a=$(e2e_id ga)
b=$(e2e_id gb)
ann=--annotation=io.kubernetes.cri.sandbox-id=$pod

check "two containers of one sandbox id get one shim address"
e2e_run -d --null-io "$ann" "$a" sleep 300 </dev/null
e2e_run -d --null-io "$ann" "$b" sleep 300 </dev/null
addr_a=$(cat "$(e2e_bundle "$a")/address")
addr_b=$(cat "$(e2e_bundle "$b")/address")
assert_eq "$addr_a" "$addr_b" "address of the second container"
sock=${addr_a#unix://}
want="$E2E_SOCKET_DIR/$(printf '%s' "$E2E_ADDR/$E2E_NS/$pod" | sha256sum | awk '{print $1}')"
assert_eq "$want" "$sock" "socket keyed on the sandbox id"

check "one shim process is the parent of both containers"
shim=$(e2e_shim_pid "$a")
[ -n "$shim" ] || fail "no shim found for $a"
pa=$(e2e_task_field "$a" 2)
pb=$(e2e_task_field "$b" 2)
assert_eq "$shim" "$(awk '/^PPid:/{print $2}' "/proc/$pa/status")" "parent of $a's init"
assert_eq "$shim" "$(awk '/^PPid:/{print $2}' "/proc/$pb/status")" "parent of $b's init"

check "deleting one container leaves the shim serving the other"
ctr task kill -s KILL "$a"
wait_for 10 "task $a stopped" e2e_task_status_is "$a" STOPPED
ctr task rm "$a" >/dev/null 2>&1 || true
ctr containers rm "$a"
sleep 1
kill -0 "$shim" 2>/dev/null || fail "the shim exited with a container left to serve"
pass "shim $shim still running"
assert_eq RUNNING "$(e2e_task_status "$b")" "the other task"
out=$(ctr task exec --exec-id probe "$b" echo still-here)
assert_eq still-here "$out" "exec in the remaining container"

check "the shim exits with the last container and removes its socket"
ctr task kill -s KILL "$b"
wait_for 10 "task $b stopped" e2e_task_status_is "$b" STOPPED
ctr task rm "$b" >/dev/null 2>&1 || true
ctr containers rm "$b"
shim_gone() { ! kill -0 "$shim" 2>/dev/null; }
wait_for 10 "shim $shim exited" shim_gone
sock_gone() { [ ! -e "$sock" ]; }
wait_for 5 "socket $sock removed" sock_gone
