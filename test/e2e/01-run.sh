#!/usr/bin/env bash
# ctr run --rm: exact stdout of a one-shot container, and the environment it sees.
. "$(dirname "$0")/lib.sh"
e2e_setup

check "ctr run --rm ... echo hello prints exactly hello"
id=$(e2e_id run)
out=$(e2e_run --rm "$id" echo hello </dev/null)
assert_eq "hello" "$out" "stdout of echo hello"

check "arguments reach the process unchanged (spaces, quotes, empty argument)"
id=$(e2e_id args)
out=$(e2e_run --rm "$id" sh -c 'printf "[%s]" "$@"' sh "a b" "'q'" "" "*" </dev/null)
assert_eq "[a b]['q'][][*]" "$out" "argv as the process sees it"

check "--env and --cwd reach the process"
id=$(e2e_id env)
out=$(e2e_run --rm --env=NANO_E2E=yes --cwd=/etc "$id" sh -c 'echo "$NANO_E2E $(pwd)"' </dev/null)
assert_eq "yes /etc" "$out" "env var and working directory"

check "multi-line output keeps every line and its order"
id=$(e2e_id lines)
out=$(e2e_run --rm "$id" seq 1 1000 </dev/null | sha256sum | awk '{print $1}')
assert_eq "$(seq 1 1000 | sha256sum | awk '{print $1}')" "$out" "sha256 of seq 1 1000"

check "the process is pid 1 in its own pid namespace"
id=$(e2e_id pid1)
out=$(e2e_run --rm "$id" sh -c 'echo $$' </dev/null)
assert_eq "1" "$out" "pid of the init process"

check "the container is gone after --rm"
assert_eq "" "$(ctr containers ls -q)" "ctr containers ls -q"
assert_eq "" "$(ctr task ls -q)" "ctr task ls -q"
