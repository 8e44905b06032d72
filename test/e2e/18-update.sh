#!/usr/bin/env bash
# Update of a task's memory limit. ctr 1.6 has no `task update`: update-go calls
# Task.Update through containerd's Go client (containerd.WithResources with an OCI
# LinuxResources), which containerd passes to the shim's Update as JSON, and the shim
# to `runc update`. Checked against the container's own cgroup files (v1:
# memory.limit_in_bytes and memory.memsw.limit_in_bytes; v2: memory.max and
# memory.swap.max) and `ctr task metrics`, and enforced (a 48 MiB buffer that fitted is
# OOM-killed once the limit drops to 32 MiB); a paused task can be updated; an update
# of a stopped task is refused and changes nothing.
. "$(dirname "$0")/lib.sh"

update_go=${E2E_UPDATE_GO:-$E2E_CACHE_DIR/../update-go/update-go}
if [ ! -x "$update_go" ]; then
	# normally built by cmake (target e2e-update-go); a cold Go build takes about a minute
	[ "$(id -u)" = 0 ] || e2e_skip "needs root"
	command -v go >/dev/null || e2e_skip "go not installed: update-go cannot be built"
	e2e_log "building $update_go"
	"$E2E_SRC_DIR/update-go/build.sh" "$(dirname "$update_go")" >/dev/null ||
		e2e_skip "update-go could not be built (golang-github-containerd-containerd-dev missing?)"
fi
e2e_setup

MiB=1048576
# update ID ARGS... — update-go against this run's containerd
update() {
	local id=$1
	shift
	"$update_go" -address "$E2E_ADDR" -namespace "$E2E_NS" -id "$id" "$@"
}
# mem_file NAME — the memory limit file NAME of the container's cgroup (v1 names;
# on v2 the equivalent), or nothing when this cgroup has no such file
mem_file() {
	local f
	if [ "$(e2e_cgroup_mode)" = v2 ]; then
		case $1 in
		limit) f=$cg/memory.max ;;
		swap) f=$cg/memory.swap.max ;;
		esac
	else
		case $1 in
		limit) f=$cg/memory.limit_in_bytes ;;
		swap) f=$cg/memory.memsw.limit_in_bytes ;;
		esac
	fi
	[ ! -e "$f" ] || echo "$f"
}
mem_limit() { cat "$(mem_file limit)"; }
# swap_value MEMORY SWAP — what the kernel file shows for an OCI memory.swap of SWAP
# (v1: the memory+swap limit itself; v2: the swap part alone, runc writes SWAP-MEMORY)
swap_value() {
	if [ "$(e2e_cgroup_mode)" = v2 ]; then echo $(($2 - $1)); else echo "$2"; fi
}
# metrics_limit ID — the memory limit `ctr task metrics` reports (through the shim's Stats)
metrics_limit() {
	ctr task metrics "$1" | awk '$1 == "memory.limit_in_bytes" || $1 == "memory.usage_limit" { print $2 }'
}

id=$(e2e_id upd)
e2e_run -d --null-io --memory-limit=$((256 * MiB)) "$id" sleep 1000 </dev/null
wait_for 5 "task $id running" e2e_task_status_is "$id" RUNNING
init=$(e2e_task_pid "$id")
cg=$(e2e_cgroup_dir "$init" memory)
assert_shim_binary "$id"

check "the limit ctr run set is the cgroup's"
assert_match "$cg" "/$E2E_NS/$id\$" "memory cgroup of init (ctr's cgroupsPath /<namespace>/<id>)"
assert_eq $((256 * MiB)) "$(mem_limit)" "$(mem_file limit) before"

check "lower the limit to 64 MiB"
out=$(update "$id" -memory $((64 * MiB)))
assert_eq updated "$out" "update-go"
assert_eq $((64 * MiB)) "$(mem_limit)" "$(mem_file limit)"
assert_eq $((64 * MiB)) "$(metrics_limit "$id")" "ctr task metrics"

check "raise it to 128 MiB with memory+swap 192 MiB"
out=$(update "$id" -memory $((128 * MiB)) -memory-swap $((192 * MiB)))
assert_eq updated "$out" "update-go"
assert_eq $((128 * MiB)) "$(mem_limit)" "$(mem_file limit)"
if [ -n "$(mem_file swap)" ]; then
	assert_eq "$(swap_value $((128 * MiB)) $((192 * MiB)))" "$(cat "$(mem_file swap)")" "$(mem_file swap)"
else
	pass "no swap accounting on this host: memory+swap not checked"
fi
assert_eq RUNNING "$(e2e_task_status "$id")" "task still running"
assert_eq "$init" "$(e2e_task_pid "$id")" "same init"

check "a paused task can be updated"
ctr task pause "$id"
wait_for 5 "task $id paused" e2e_task_status_is "$id" PAUSED
out=$(update "$id" -memory $((96 * MiB)) -memory-swap $((192 * MiB)))
assert_eq updated "$out" "update-go on the paused task"
assert_eq $((96 * MiB)) "$(mem_limit)" "$(mem_file limit)"
assert_eq PAUSED "$(e2e_task_status "$id")" "still paused"
ctr task resume "$id"
wait_for 5 "task $id running again" e2e_task_status_is "$id" RUNNING

check "the new limit is enforced: a 48 MiB buffer fits in 96 MiB, not in 32 MiB"
out=$(ctr task exec --exec-id fits "$id" dd if=/dev/zero of=/dev/null bs=48M count=2 2>&1 </dev/null)
assert_contains "$out" "2+0 records out" "dd with a 48 MiB buffer under the 96 MiB limit"
# memory+swap = memory: no swap to escape to
out=$(update "$id" -memory $((32 * MiB)) -memory-swap $((32 * MiB)))
assert_eq updated "$out" "update-go to 32 MiB"
assert_eq $((32 * MiB)) "$(mem_limit)" "$(mem_file limit)"
rc=0
ctr task exec --exec-id oom "$id" dd if=/dev/zero of=/dev/null bs=48M count=2 </dev/null >/dev/null 2>&1 || rc=$?
assert_eq 137 "$rc" "the same dd is OOM-killed"
assert_eq RUNNING "$(e2e_task_status "$id")" "the task itself still runs"
assert_eq "$init" "$(e2e_task_pid "$id")" "same init"

check "an update of a stopped task is refused and changes nothing"
ctr task kill -s KILL "$id"
wait_for 10 "task $id stopped" e2e_task_status_is "$id" STOPPED
rc=0
err=$(update "$id" -memory $((32 * MiB)) 2>&1) || rc=$?
assert_eq 1 "$rc" "update-go exit status"
assert_contains "$err" stopped "error says the task is stopped"
if [ "$RUNTIME" = io.containerd.runc.v2 ] && [ "$SHIM_AS_RUNC" != 1 ]; then
	# The Go shim's state machine returns a plain error: gRPC Unknown
	assert_contains "$err" "cannot update a stopped container: unknown" "Go shim: errdefs unknown"
else
	# Ours answers FailedPrecondition, which containerd's client turns into
	# errdefs.ErrFailedPrecondition
	assert_contains "$err" "failed precondition" "errdefs failed precondition"
fi
if [ -e "$cg" ]; then
	assert_eq $((32 * MiB)) "$(mem_limit)" "$(mem_file limit) of the stopped task unchanged"
fi
ctr task rm "$id" >/dev/null

check "an update of a deleted task: no task to update"
rc=0
err=$(update "$id" -memory $((32 * MiB)) 2>&1) || rc=$?
assert_eq 1 "$rc" "update-go exit status"
assert_contains "$err" "not found" "error"
