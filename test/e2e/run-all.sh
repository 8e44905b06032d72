#!/usr/bin/env bash
# run-all.sh [RUNTIME] [NAME...] — runs the e2e tests (all, or those whose file name
# contains one of NAMEs) one after another against RUNTIME and prints a summary.
#   RUNTIME: io.containerd.nano.v2 (default) or io.containerd.runc.v2 (Debian's Go shim)
# Environment: BUILD_DIR (default <source>/build), SHIM_BINARY (default
# $BUILD_DIR/shim/containerd-shim-nano-v2), SHIM_AS_RUNC=1 (our shim under the runc.v2
# name), E2E_KEEP=1 (keep the temp dir of a failed test). Needs root.
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
src=$(cd "$here/../.." && pwd)
export RUNTIME=${1:-${RUNTIME:-io.containerd.nano.v2}}
[ $# -gt 0 ] && shift
BUILD_DIR=${BUILD_DIR:-$src/build}
export SHIM_BINARY=${SHIM_BINARY:-$BUILD_DIR/shim/containerd-shim-nano-v2}
export E2E_CACHE_DIR=${E2E_CACHE_DIR:-$BUILD_DIR/test/e2e/cache}
export E2E_LOG_DIR=${E2E_LOG_DIR:-$BUILD_DIR/test/e2e/logs}

tests=()
for t in "$here"/[0-9][0-9]-*.sh; do
	if [ $# -eq 0 ]; then
		tests+=("$t")
		continue
	fi
	for want in "$@"; do
		case "$(basename "$t")" in *"$want"*) tests+=("$t") ;; esac
	done
done
[ "${#tests[@]}" -gt 0 ] || { echo "run-all.sh: no test matches: $*" >&2; exit 2; }

echo "# runtime $RUNTIME${SHIM_AS_RUNC:+ (SHIM_AS_RUNC=$SHIM_AS_RUNC)}, shim binary $SHIM_BINARY"
declare -a summary
failed=0
start_all=$(date +%s)
for t in "${tests[@]}"; do
	name=$(basename "$t" .sh)
	s=$(date +%s)
	# the same bound ctest puts on one test
	timeout -k 10 120 bash "$t"
	rc=$?
	d=$(($(date +%s) - s))
	case $rc in
	0) res=PASS ;;
	77) res=SKIP ;;
	*)
		res="FAIL ($rc)"
		failed=$((failed + 1))
		;;
	esac
	summary+=("$(printf '%-24s %-10s %4ss' "$name" "$res" "$d")")
done
echo
echo "# summary ($RUNTIME, $(($(date +%s) - start_all))s)"
printf '%s\n' "${summary[@]}"
[ "$failed" -eq 0 ]
