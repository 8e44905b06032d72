#!/usr/bin/env bash
# An imported image: the rootfs reaches the shim as overlay mounts in the Create request;
# the shim mounts them on the bundle's rootfs and unmounts them on delete.
. "$(dirname "$0")/lib.sh"
e2e_setup
e2e_events_start "$E2E_TMP/events"

check "ctr images import of the OCI archive names the image $E2E_IMAGE"
e2e_import_image
assert_eq "$E2E_IMAGE" "$(ctr images ls -q)" "ctr images ls -q"

check "ctr run --rm IMAGE runs the image's default Cmd"
id=$(e2e_id img)
out=$(e2e_run_image --rm "$id" </dev/null)
assert_eq "nanoshim e2e image" "$out" "output of the default Cmd (cat /etc/nanoshim-image)"

check "ctr run --rm IMAGE CMD: PATH from the image config"
id=$(e2e_id imgcmd)
out=$(e2e_run_image --rm "$id" sh -c 'echo "$PATH"' </dev/null)
assert_eq "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" "$out" "PATH inside"

check "a detached image task: the bundle's rootfs is an overlay mount"
id=$(e2e_id imgdet)
e2e_run_image -d --null-io "$id" sleep 1000 </dev/null
rootfs=$(e2e_bundle "$id")/rootfs
assert_eq overlay "$(findmnt -n -o FSTYPE --mountpoint "$rootfs")" "fstype of $rootfs"
assert_contains "$(e2e_event_json "$id" /tasks/create)" '"rootfs":[{"type":"overlay","source":"overlay"' "/tasks/create carries the overlay mount"

check "writes inside the container land in its rootfs mount, not in the image"
ctr task exec --exec-id w "$id" sh -c 'echo written-inside >/written' </dev/null
assert_eq written-inside "$(cat "$rootfs/written")" "file seen through the bundle rootfs"
id2=$(e2e_id imgother)
out=$(e2e_run_image --rm "$id2" sh -c 'cat /written 2>/dev/null || echo absent' </dev/null)
assert_eq absent "$out" "another container from the same image"

check "delete unmounts the rootfs and removes the bundle"
ctr task kill -s KILL "$id"
wait_for 10 "task $id stopped" e2e_task_status_is "$id" STOPPED
ctr task rm "$id" >/dev/null 2>&1
assert_eq "" "$(e2e_mounts_under "$(e2e_bundle "$id")")" "mounts under the bundle"
wait_for 5 "bundle $(e2e_bundle "$id") removed" test ! -e "$(e2e_bundle "$id")"
ctr containers rm "$id"
assert_eq "" "$(ctr snapshots ls | awk 'NR > 1 && $3 == "Active"')" "no active snapshot left"
