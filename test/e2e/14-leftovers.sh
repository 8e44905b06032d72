#!/usr/bin/env bash
# Nothing is left behind after a task is deleted: no shim process, no shim socket, no
# bundle, no mount, no runc state, no cgroup, no FIFOs — for --rootfs and image
# containers, after run --rm, after detach + kill + rm, and after a failed create.
. "$(dirname "$0")/lib.sh"
e2e_setup
e2e_import_image

# assert_no_leftovers ID — waits up to 5 s for the shim to go, then checks everything
assert_no_leftovers() {
	local id=$1 b
	b=$(e2e_bundle "$id")
	wait_for 5 "no shim process of $id" e2e_no_shims_of "$id"
	assert_eq "" "$(e2e_existing "$(e2e_socket "$id")")" "no shim socket $(e2e_socket "$id")"
	assert_eq "" "$(e2e_mounts_under "$b")" "no mount under the bundle"
	assert_eq "" "$(e2e_existing "$b")" "no bundle dir"
	assert_eq "" "$(e2e_existing "$E2E_ROOT/io.containerd.runtime.v2.task/$E2E_NS/$id")" "no work dir"
	assert_eq "" "$(e2e_existing "$E2E_RUNC_ROOT/$E2E_NS/$id")" "no runc state dir"
	assert_eq "" "$(e2e_existing /sys/fs/cgroup/*/"$E2E_NS/$id" /sys/fs/cgroup/"$E2E_NS/$id")" "no cgroup"
	assert_eq "" "$(e2e_existing "$E2E_FIFO_DIR"/*/"$id"-*)" "no stdio FIFOs"
	assert_eq "" "$(ctr task ls -q | grep -x "$id" || true)" "not in ctr task ls"
}

check "after ctr run --rm (rootfs dir)"
id=$(e2e_id rm)
out=$(e2e_run --rm "$id" echo hi </dev/null)
assert_eq hi "$out" "output"
assert_no_leftovers "$id"

check "after ctr run --rm (image: overlay rootfs)"
id=$(e2e_id rmimg)
out=$(e2e_run_image --rm "$id" true </dev/null)
assert_no_leftovers "$id"
assert_eq "" "$(ctr snapshots ls | awk 'NR > 1 && $1 == "'"$id"'"')" "no snapshot"

check "after run -d, exec, kill, task rm, containers rm (image)"
id=$(e2e_id det)
e2e_run_image -d --null-io "$id" sleep 1000 </dev/null
ctr task exec --exec-id x "$id" true </dev/null
ctr task kill -s KILL "$id"
wait_for 10 "task $id stopped" e2e_task_status_is "$id" STOPPED
ctr task rm "$id" >/dev/null 2>&1
ctr containers rm "$id"
assert_no_leftovers "$id"

check "after a failed create (missing binary)"
id=$(e2e_id fail)
e2e_run --rm "$id" nosuch </dev/null >/dev/null 2>&1 && fail "run of a missing binary succeeded"
assert_no_leftovers "$id"

check "after a failed create from an image (overlay mounted, then runc create fails)"
id=$(e2e_id failimg)
e2e_run_image --rm "$id" nosuch </dev/null >/dev/null 2>&1 && fail "run of a missing binary succeeded"
assert_no_leftovers "$id"

check "no mount of this run remains anywhere under its state and root"
assert_eq "" "$(e2e_mounts_under "$E2E_STATE")" "mounts under the state dir"
assert_eq "" "$(e2e_mounts_under "$E2E_ROOT/io.containerd.runtime.v2.task")" "mounts under the work dirs"
