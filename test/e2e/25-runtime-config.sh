#!/usr/bin/env bash
# A shim not named runc gets its runtime settings the way CRI and
# `ctr run --runtime-config-path` send them: runtimeoptions.v1.Options naming a
# config file. Ours reads the same keys as options.json from it (README):
# here {"binary_name": "crun"} makes the container a crun container, and a
# missing or corrupt file fails create with a message naming it.
# Our shim's own option format: skipped for the Go shim.
. "$(dirname "$0")/lib.sh"
command -v crun >/dev/null || e2e_skip "crun not installed"
[ "${RUNTIME:-io.containerd.nano.v2}" = io.containerd.nano.v2 ] ||
	e2e_skip "runtime config files are the nano shim's option format"
e2e_setup

cfg=$E2E_TMP/runtime.json
printf '{"binary_name": "crun"}\n' >"$cfg"

check "binary_name from the config file: the task runs under crun"
id=$(e2e_id cfg)
e2e_run -d --null-io --runtime-config-path="$cfg" "$id" sleep 1000 </dev/null
assert_eq RUNNING "$(e2e_task_status "$id")" "status"
assert_eq running "$(crun --root "$E2E_RUNC_ROOT/$E2E_NS" list | awk -v id="$id" '$1 == id { print $3 }')" \
	"crun list shows it running"
assert_eq crun "$(cat "$(e2e_bundle "$id")/runtime")" "the bundle's runtime file (for delete)"
out=$(ctr task exec --exec-id e1 "$id" echo via-crun </dev/null)
assert_eq via-crun "$out" "exec output"
ctr task kill -s KILL "$id"
wait_for 10 "task $id stopped" e2e_task_status_is "$id" STOPPED
ctr task rm "$id" >/dev/null 2>&1 || true
ctr containers rm "$id"

check "a missing config file fails create and names the file"
id=$(e2e_id nocfg)
rc=0
err=$(e2e_run --rm --runtime-config-path="$E2E_TMP/nope.json" "$id" true 2>&1 </dev/null) || rc=$?
assert_ne 0 "$rc" "ctr run fails"
assert_contains "$err" "$E2E_TMP/nope.json" "error names the file"

check "a corrupt config file fails create with what is wrong"
printf '{"io_uid": "root"}\n' >"$cfg"
id=$(e2e_id badcfg)
rc=0
err=$(e2e_run --rm --runtime-config-path="$cfg" "$id" true 2>&1 </dev/null) || rc=$?
assert_ne 0 "$rc" "ctr run fails"
assert_contains "$err" "io_uid" "error names the bad key"
