#!/usr/bin/env bash
# check-skips.sh RESULTS SKIPLOG ALLOWED [--summary]
# RESULTS: lines "PASS name" / "SKIP name" (from ctest's own output and test.sh's
# stages); SKIPLOG: lines "SKIP name: reason" written by the tests themselves
# (test/e2e/lib.sh's e2e_skip, the unit binaries' report hook); ALLOWED: "name reason"
# per line (test/allowed-skips.txt). Every skip, whoever saw it, must be on ALLOWED:
# prints each skip with its reason and fails on one that is not. With --summary, ends with
# the closing line "N passed, M skipped (allowed: ...)".
set -euo pipefail
results=$1 skiplog=$2 allowed=$3 summary=${4:-}

declare -A reason=() ok=()
while IFS= read -r line; do
	[[ "$line" =~ ^SKIP\ ([^ ]+):\ (.*)$ ]] || continue
	reason[${BASH_REMATCH[1]}]=${BASH_REMATCH[2]}
done <"$skiplog"
while read -r name why; do
	[ -n "$name" ] && [[ "$name" != \#* ]] || continue
	ok[$name]=$why
done <"$allowed"

passed=0
declare -A skipped=()
while read -r what name; do
	case $what in
	PASS) passed=$((passed + 1)) ;;
	SKIP) skipped[$name]=1 ;;
	esac
done <"$results"
for name in "${!reason[@]}"; do skipped[$name]=1; done

bad=()
allowed_names=()
for name in $(printf '%s\n' "${!skipped[@]}" | sort); do
	if [ -n "${ok[$name]+x}" ]; then
		printf 'SKIP %s (%s) — allowed: %s\n' "$name" "${reason[$name]:-no reason given}" "${ok[$name]}"
		allowed_names+=("$name")
	else
		printf 'SKIP %s (%s) — NOT on %s\n' "$name" "${reason[$name]:-no reason given}" "$allowed" >&2
		bad+=("$name")
	fi
done
if [ "${#bad[@]}" -gt 0 ]; then
	echo "${#bad[@]} test(s) skipped that CI must run: ${bad[*]}" >&2
	exit 1
fi
if [ -n "$summary" ]; then
	printf '%d passed, %d skipped (allowed: %s)\n' "$passed" "${#allowed_names[@]}" \
		"$(IFS=,; echo "${allowed_names[*]:-none}" | sed 's/,/, /g')"
fi
