#!/usr/bin/env bash
# nanoctl shim: the by-hand shim tool against the runtime under test.
# - `shim call` on the shim of a container containerd runs (by bundle, socket path and
#   unix:// address; name=value and JSON requests): State (RUNNING, containerd's pid),
#   Pids, Connect, Kill 15 then Wait (143); an unknown method, an unknown field, a bad
#   integer, an error status and an unreachable socket each give one line on stderr and
#   their exit status (1, or 2 when the shim cannot be reached).
# - `shim start` runs the binary as containerd does (argv, cwd, environment: checked with
#   a stand-in binary) and reports a failing start with its output and exit status.
# - outside containerd: a bundle made here (runc spec), `shim start` of our shim (and of
#   Debian's containerd-shim-runc-v2 when RUNTIME is the Go one), then Create, Start,
#   State, Kill, Wait, Delete and Shutdown through `shim call` on the printed address
#   only, the shim process gone, and `shim delete` printing its DeleteResponse (ours:
#   the recorded 143; the Go shim: 137).
. "$(dirname "$0")/lib.sh"

e2e_setup
NANOCTL=${NANOCTL:-$E2E_CACHE_DIR/../../../manager/nanoctl/nanoctl}
[ -x "$NANOCTL" ] || fail "nanoctl not built ($NANOCTL): cmake --build build --target nanoctl"
NANOCTL=$(readlink -f "$NANOCTL")

# By-hand shims are started with this run's namespace, so lib.sh's cleanup finds one
# left by a failure; their sockets (wherever the printed address says) and pids are
# recorded here and removed/killed on the way out.
: >"$E2E_TMP/hand-sockets"
: >"$E2E_TMP/hand-pids"
hand_cleanup() {
	local rc=$? s p
	set +e
	while read -r p; do
		[ -n "$p" ] && kill -0 "$p" 2>/dev/null && e2e_log "cleanup: by-hand shim $p still running" &&
			kill -KILL "$p" 2>/dev/null
	done <"$E2E_TMP/hand-pids"
	while read -r s; do
		[ -S "$s" ] && rm -f "$s"
	done <"$E2E_TMP/hand-sockets"
	(exit "$rc")
	e2e_cleanup
}
trap hand_cleanup EXIT

# nc ARGS... — nanoctl shim call with this run's namespace and a 10 s deadline
nc() { "$NANOCTL" shim call -n "$E2E_NS" -t 10s "$@"; }
# field JSON NAME — a top-level field of nanoctl's pretty JSON, unquoted
field() {
	sed -n -e "s/^  \"$2\": \"\(.*\)\",\{0,1\}\$/\1/p" \
		-e "s/^  \"$2\": \([^\"][^,]*\),\{0,1\}\$/\1/p" <<<"$1"
}
# run_nc OUT ERR ARGS... — nc into files; its exit status in $rc
run_nc() {
	local out=$1 err=$2
	shift 2
	rc=0
	nc "$@" >"$out" 2>"$err" || rc=$?
}
# assert_one_line_error FILE PREFIX WHAT — FILE is one line starting with PREFIX
assert_one_line_error() {
	assert_eq 1 "$(wc -l <"$1")" "$3: one line on stderr"
	assert_contains "$(cat "$1")" "$2" "$3: message"
	[[ "$(cat "$1")" == "$2"* ]] || fail "$3: [$(cat "$1")] does not start with [$2]"
}

check "--help and --version"
assert_match "$("$NANOCTL" --version)" '^nanoctl [0-9]' "nanoctl --version"
for sub in start call delete; do
	assert_match "$("$NANOCTL" shim "$sub" --help | head -n 1)" "^usage: nanoctl shim $sub " \
		"nanoctl shim $sub --help"
done
assert_status 1 "nanoctl with an unknown command" "$NANOCTL" nosuch

check "shim call on the shim of a container containerd runs"
id=$(e2e_id nctl)
e2e_run -d --null-io "$id" sh -c 'trap "exit 143" TERM; sleep 1000 & wait' </dev/null
wait_for 5 "task $id running" e2e_task_status_is "$id" RUNNING
pid=$(e2e_task_pid "$id")
bundle=$(e2e_bundle "$id")
address=$(cat "$bundle/address")
assert_match "$address" '^unix:///' "the bundle's address"

out=$(nc "$bundle" state id="$id")
assert_eq "$id" "$(field "$out" id)" "State by bundle: id"
assert_eq RUNNING "$(field "$out" status)" "State: status"
assert_eq "$pid" "$(field "$out" pid)" "State: pid (as ctr task ls)"
out=$(nc "$address" state "{\"id\":\"$id\"}")
assert_eq RUNNING "$(field "$out" status)" "State by unix:// address, request as JSON"
out=$(nc "${address#unix://}" State id="$id")
assert_eq "$pid" "$(field "$out" pid)" "State by socket path"

out=$(nc "$bundle" pids id="$id")
assert_contains "$out" "\"pid\": $pid" "Pids lists the init"
assert_match "$(head -n 2 <<<"$out" | tail -n 1)" '^  "processes": \[' "Pids: processes array"

out=$(nc "$bundle" connect id="$id")
assert_eq "$pid" "$(field "$out" task_pid)" "Connect: task_pid"
assert_eq "$(e2e_shim_pid "$id")" "$(field "$out" shim_pid)" "Connect: shim_pid"

check "--timeout: Go durations; a deadline that passes is DeadlineExceeded"
for d in 500ms 1.5s 2s 1m 1m30s; do
	out=$("$NANOCTL" shim call -n "$E2E_NS" --timeout "$d" "$bundle" state id="$id")
	assert_eq RUNNING "$(field "$out" status)" "State with --timeout $d"
done
rc=0
"$NANOCTL" shim call -n "$E2E_NS" -t 300ms "$bundle" wait id="$id" >"$E2E_TMP/o" 2>"$E2E_TMP/e" || rc=$?
assert_eq 1 "$rc" "Wait of a running task with -t 300ms: exit status"
assert_one_line_error "$E2E_TMP/e" "nanoctl: shim call Wait: DeadlineExceeded: " \
	"Wait of a running task with -t 300ms"
assert_eq RUNNING "$(e2e_task_status "$id")" "the task runs on"

out=$(nc "$bundle" kill id="$id" signal=15)
assert_eq "{}" "$out" "Kill 15: an empty reply"
out=$(nc "$bundle" wait id="$id")
assert_eq 143 "$(field "$out" exit_status)" "Wait: exit status of the trapped SIGTERM"
assert_match "$(field "$out" exited_at)" '^20[0-9][0-9]-[01][0-9]-[0-3][0-9]T[0-9:.]+Z$' \
	"Wait: exited_at as RFC 3339"
wait_for 10 "task $id stopped for containerd too" e2e_task_status_is "$id" STOPPED

check "bad input and failures: one line on stderr, exit status 1 (2: unreachable)"
run_nc "$E2E_TMP/o" "$E2E_TMP/e" "$bundle" bogus id="$id"
assert_eq 1 "$rc" "unknown method: exit status"
assert_one_line_error "$E2E_TMP/e" 'nanoctl: shim call: "bogus" is not a method of containerd.task.v2.Task (State, Create,' \
	"unknown method"
assert_eq "" "$(cat "$E2E_TMP/o")" "unknown method: nothing on stdout"

run_nc "$E2E_TMP/o" "$E2E_TMP/e" "$bundle" kill id="$id" sig=9
assert_eq 1 "$rc" "unknown field: exit status"
assert_one_line_error "$E2E_TMP/e" 'nanoctl: shim call Kill: containerd.task.v2.KillRequest has no field "sig"' \
	"unknown field"

run_nc "$E2E_TMP/o" "$E2E_TMP/e" "$bundle" kill id="$id" signal=TERM
assert_eq 1 "$rc" "bad integer: exit status"
assert_one_line_error "$E2E_TMP/e" 'nanoctl: shim call Kill: field signal: not an unsigned integer' \
	"bad integer"

run_nc "$E2E_TMP/o" "$E2E_TMP/e" "$bundle" state '{"id":'
assert_eq 1 "$rc" "bad JSON: exit status"
assert_one_line_error "$E2E_TMP/e" 'nanoctl: shim call State: containerd.task.v2.StateRequest: not JSON' \
	"bad JSON"

run_nc "$E2E_TMP/o" "$E2E_TMP/e" "$bundle" state id=nosuch
assert_eq 1 "$rc" "an error status: exit status"
assert_one_line_error "$E2E_TMP/e" 'nanoctl: shim call State: NotFound: ' "an error status"

run_nc "$E2E_TMP/o" "$E2E_TMP/e" "$E2E_TMP/nosuch.sock" state id="$id"
assert_eq 2 "$rc" "no socket: exit status"
assert_one_line_error "$E2E_TMP/e" "nanoctl: shim call State: connect $E2E_TMP/nosuch.sock: " "no socket"

mkdir "$E2E_TMP/empty-bundle"
run_nc "$E2E_TMP/o" "$E2E_TMP/e" "$E2E_TMP/empty-bundle" state id="$id"
assert_eq 2 "$rc" "a bundle without address file: exit status"
assert_one_line_error "$E2E_TMP/e" "nanoctl: shim call State: bundle $E2E_TMP/empty-bundle: address file: " \
	"a bundle without address file"

rc=0
"$NANOCTL" shim call -t 5y "$bundle" state id="$id" 2>"$E2E_TMP/e" || rc=$?
assert_eq 1 "$rc" "bad --timeout: exit status"
assert_one_line_error "$E2E_TMP/e" 'nanoctl: shim call: --timeout: not a duration' "bad --timeout"
ctr task rm "$id" >/dev/null

check "shim start runs the binary as containerd does (a stand-in binary)"
fake=$E2E_TMP/fake-shim
cat >"$fake" <<'EOF'
#!/bin/sh
printf '%s\n' "$PWD|$*|$TTRPC_ADDRESS|$NAMESPACE|$GOMAXPROCS|${NANOSHIM_SOCKET_DIR-unset}" >>"${0}.log"
case "$FAKE" in
fail) echo "first line" >&2; echo "second line"; exit 3 ;;
esac
echo "  unix:///fake/address  "
EOF
chmod +x "$fake"
mkdir -p "$E2E_TMP/fb"
out=$("$NANOCTL" shim start --binary "$fake" --namespace fakens --address /fake.sock \
	--socket-dir /fake/s --bundle "$E2E_TMP/fb" fid)
assert_eq "unix:///fake/address" "$out" "the address, trimmed"
assert_eq "$E2E_TMP/fb|-namespace fakens -address /fake.sock -publish-binary $NANOCTL -id fid start|/fake.sock|fakens|2|/fake/s" \
	"$(tail -n 1 "$fake.log")" "cwd, argv and environment of start"
env -u NANOSHIM_SOCKET_DIR "$NANOCTL" shim start --binary "$fake" --bundle "$E2E_TMP/fb" --debug fid2 >/dev/null
assert_eq "$E2E_TMP/fb|-namespace default -address /run/nanoshim/nanoshimd.sock -publish-binary $NANOCTL -id fid2 -debug start|/run/nanoshim/nanoshimd.sock|default|2|unset" \
	"$(tail -n 1 "$fake.log")" "defaults, and -debug"
"$NANOCTL" --address /global.sock shim start --binary "$fake" --bundle "$E2E_TMP/fb" fid6 >/dev/null
assert_match "$(tail -n 1 "$fake.log")" "\\|-namespace default -address /global.sock -publish-binary .*\\|/global.sock\\|" \
	"nanoctl --address is start's default"
rc=0
FAKE=fail "$NANOCTL" shim start --binary "$fake" --bundle "$E2E_TMP/fb" fid3 >"$E2E_TMP/o" 2>"$E2E_TMP/e" || rc=$?
assert_eq 1 "$rc" "a failing start: exit status"
assert_one_line_error "$E2E_TMP/e" "nanoctl: shim start fid3: first line; second line (exit status 3)" \
	"a failing start: its output and status"
assert_eq "" "$(cat "$E2E_TMP/o")" "a failing start: nothing on stdout"
FAKE=fail env -u NANOSHIM_SOCKET_DIR "$NANOCTL" shim delete --binary "$fake" --bundle "$E2E_TMP/fb" fid4 >/dev/null 2>&1 || true
assert_eq "$E2E_TMP/fb|-namespace default -address /run/nanoshim/nanoshimd.sock -publish-binary $NANOCTL -id fid4 -bundle $E2E_TMP/fb delete|/run/nanoshim/nanoshimd.sock|default|2|unset" \
	"$(tail -n 1 "$fake.log")" "cwd, argv and environment of delete"
rc=0
"$NANOCTL" shim start --binary "$E2E_TMP/nosuch" --bundle "$E2E_TMP/fb" fid5 2>"$E2E_TMP/e" || rc=$?
assert_eq 1 "$rc" "a missing binary: exit status"
assert_one_line_error "$E2E_TMP/e" "nanoctl: shim start fid5: shim binary $E2E_TMP/nosuch: " "a missing binary"

# by_hand TAG BINARY DELETE-STATUS EVENTS-ADDRESS — a task driven through nanoctl alone:
# start, Create, Start, State, Kill, Wait, Delete, Shutdown, the shim gone, shim delete.
# The shim publishes its events to EVENTS-ADDRESS.
by_hand() {
	local tag=$1 bin=$2 want_delete=$3 events=$4 hid hb addr out spid tpid sock
	check "by hand, outside containerd: $tag ($bin)"
	hid=$(e2e_id "hand-$tag")
	# the bundle dir is named for the id, as containerd's: the Go shim's delete reads
	# ../<id>/options.json from its cwd
	hb=$E2E_TMP/hand/$hid
	mkdir -p "$hb"
	cp -a "$E2E_CACHE_DIR/rootfs" "$hb/rootfs"
	runc spec --bundle "$hb"
	sed -i -e 's/"terminal": true/"terminal": false/' \
		-e "s|^\(\t*\)\"sh\"\$|\1\"sh\", \"-c\", \"trap 'exit 143' TERM; sleep 1000 \\& wait\"|" \
		-e "s|^\(\t*\)\"linux\": {\$|&\n\1\t\"cgroupsPath\": \"/$E2E_NS/$hid\",|" "$hb/config.json"
	grep -q '"cgroupsPath"' "$hb/config.json" || fail "config.json: no cgroupsPath after the edit"
	grep -q "trap 'exit 143'" "$hb/config.json" || fail "config.json: args not replaced"

	addr=$("$NANOCTL" shim start --binary "$bin" --namespace "$E2E_NS" \
		--address "$events" --socket-dir "$E2E_TMP/s" --bundle "$hb" "$hid")
	assert_match "$addr" '^unix:///' "shim start prints the address"
	sock=${addr#unix://}
	echo "$sock" >>"$E2E_TMP/hand-sockets"

	out=$(nc "$addr" connect id="$hid")
	spid=$(field "$out" shim_pid)
	echo "$spid" >>"$E2E_TMP/hand-pids"
	assert_match "$spid" '^[1-9][0-9]*$' "Connect: the shim's pid"
	if [ -s "$hb/shim.pid" ]; then
		assert_eq "$(cat "$hb/shim.pid")" "$spid" "shim.pid names the serving shim"
	fi
	[ -d "/proc/$spid" ] || fail "shim $spid is not running"

	out=$(nc "$addr" create id="$hid" bundle="$hb")
	tpid=$(field "$out" pid)
	assert_match "$tpid" '^[1-9][0-9]*$' "Create: the init's pid"
	assert_eq CREATED "$(field "$(nc "$addr" state id="$hid")" status)" "State after Create"
	assert_eq "$tpid" "$(field "$(nc "$addr" start id="$hid")" pid)" "Start: the same pid"
	out=$(nc "$addr" state id="$hid")
	assert_eq RUNNING "$(field "$out" status)" "State after Start"
	assert_eq "$hb" "$(field "$out" bundle)" "State: bundle"
	assert_eq "{}" "$(nc "$addr" kill id="$hid" signal=15)" "Kill 15"
	assert_eq 143 "$(field "$(nc "$addr" wait id="$hid")" exit_status)" "Wait: 143"
	out=$(nc "$addr" delete id="$hid")
	assert_eq 143 "$(field "$out" exit_status)" "Delete: 143"
	assert_eq "$tpid" "$(field "$out" pid)" "Delete: the init's pid"
	run_nc "$E2E_TMP/o" "$E2E_TMP/e" "$addr" state id="$hid"
	assert_eq 1 "$rc" "State after Delete: exit status"
	assert_one_line_error "$E2E_TMP/e" "nanoctl: shim call State: NotFound: " "State after Delete"
	assert_eq "{}" "$(nc "$addr" shutdown id="$hid")" "Shutdown"
	# ours gives up on undeliverable events 5 s after Shutdown
	wait_for 15 "shim $spid gone after Shutdown" test ! -d "/proc/$spid"

	out=$("$NANOCTL" shim delete --binary "$bin" --namespace "$E2E_NS" \
		--address "$events" --bundle "$hb" "$hid")
	# the Go shim answers 137 (SIGKILL) whatever happened; ours the exit status it
	# recorded in the bundle (init.exit)
	assert_eq "$want_delete" "$(field "$out" exit_status)" "shim delete: DeleteResponse.exit_status"
	assert_match "$(field "$out" exited_at)" '^20[0-9][0-9]-' "shim delete: exited_at"
	assert_eq "" "$(e2e_run_shims "$hid")" "no process of $hid's shim left"
}

if [ -n "${SHIM_BINARY:-}" ] && [ -x "$SHIM_BINARY" ]; then
	# events to an address nothing listens on, as nanoctl's default when nanoshimd is
	# not running
	by_hand nano "$(readlink -f "$SHIM_BINARY")" 143 "$E2E_TMP/no-manager.sock"
elif [ "$RUNTIME" != io.containerd.runc.v2 ]; then
	fail "SHIM_BINARY not built"
fi
if [ "$RUNTIME" = io.containerd.runc.v2 ] && [ -x /usr/bin/containerd-shim-runc-v2 ]; then
	# events to this run's containerd, which takes them (for a task it does not know):
	# the Go shim spends 5 s on each undeliverable event before it exits after Shutdown
	by_hand runc /usr/bin/containerd-shim-runc-v2 137 "$E2E_ADDR.ttrpc"
fi
