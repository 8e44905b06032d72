#!/usr/bin/env bash
# ctr task metrics: the shim's Stats answer, checked against the container's cgroup.
. "$(dirname "$0")/lib.sh"
e2e_setup

limit=67108864
id=$(e2e_id metrics)
e2e_run -d --null-io "--memory-limit=$limit" "$id" sleep 1000 </dev/null
pid=$(e2e_task_pid "$id")
mode=$(e2e_cgroup_mode)
metric() { awk -v k="$1" '$1 == k { print $2 }' "$E2E_TMP/metrics"; }

check "ctr task metrics prints the task's id and a metrics table (cgroup $mode)"
ctr task metrics "$id" >"$E2E_TMP/metrics"
cat "$E2E_TMP/metrics"
assert_eq "$id" "$(awk 'NR == 2 { print $1 }' "$E2E_TMP/metrics")" "ID column"

if [ "$mode" = v1 ]; then
	check "memory limit and usage (io.containerd.cgroups.v1.Metrics)"
	assert_eq "$limit" "$(metric memory.limit_in_bytes)" "memory.limit_in_bytes"
	assert_eq "$(cat "$(e2e_cgroup_dir "$pid" memory)/memory.limit_in_bytes")" \
		"$(metric memory.limit_in_bytes)" "limit as the cgroup has it"
	assert_match "$(metric memory.usage_in_bytes)" '^[1-9][0-9]*$' "memory.usage_in_bytes > 0"
	assert_match "$(metric cpuacct.usage)" '^[1-9][0-9]*$' "cpuacct.usage > 0"
else
	check "memory limit and usage (io.containerd.cgroups.v2.Metrics)"
	assert_eq "$limit" "$(metric memory.usage_limit)" "memory.usage_limit"
	assert_eq "$(cat "$(e2e_cgroup_dir "$pid")/memory.max")" "$(metric memory.usage_limit)" \
		"limit as the cgroup has it"
	assert_match "$(metric memory.usage)" '^[1-9][0-9]*$' "memory.usage > 0"
	assert_match "$(metric cpu.usage_usec)" '^[1-9][0-9]*$' "cpu.usage_usec > 0"
fi
assert_eq 1 "$(metric pids.current)" "pids.current (init only)"

check "pids.current follows an exec"
ctr task exec -d --exec-id bg "$id" sleep 500 </dev/null
ctr task metrics "$id" >"$E2E_TMP/metrics"
assert_eq 2 "$(metric pids.current)" "pids.current with one exec"

check "json format decodes the same data"
json=$(ctr task metrics --format json "$id")
assert_contains "$json" '"pids": {' "pids section"
assert_contains "$json" '"current": 2' "pids.current in json"

check "metrics of a stopped task: an answer within 5 s, not a hang"
ctr task kill -a -s KILL "$id"
wait_for 10 "task $id stopped" e2e_task_status_is "$id" STOPPED
rc=0
t0=$(date +%s%N)
out=$(ctr task metrics "$id" 2>&1) || rc=$?
ms=$((($(date +%s%N) - t0) / 1000000))
[ "$ms" -lt 5000 ] || fail "ctr task metrics of a stopped task took ${ms} ms (status $rc): [$out]"
pass "answered in ${ms} ms"
if [ "$RUNTIME" = io.containerd.runc.v2 ] && [ "$SHIM_AS_RUNC" != 1 ]; then
	# The Go shim still reads the cgroup, which lasts until Delete: metrics with no process.
	assert_eq 0 "$rc" "ctr task metrics exit status (Go shim)"
	printf '%s\n' "$out" >"$E2E_TMP/metrics"
	assert_eq 0 "$(metric pids.current)" "pids.current of the stopped task (Go shim)"
else
	# Ours refuses Stats once the init has exited; containerd's Metrics leaves such a task
	# out, and ctr says so.
	assert_eq 1 "$rc" "ctr task metrics exit status"
	assert_eq "ctr: no metrics received" "$out" "ctr's message"
fi
ctr task rm "$id" >/dev/null 2>&1
