#!/bin/bash
# Runs one interop pairing: starts SERVER on a private socket, waits for its
# "ready" line, runs CLIENT's check suite against it, then stops that server
# (and only it) and removes the temp dir, whatever happened.
#   run-interop.sh SERVER_BIN CLIENT_BIN [client args...]
# Both binaries take the peer command line: `X server -socket P`, `X client -socket P`.
set -u

if [ $# -lt 2 ]; then
	echo "usage: $0 SERVER_BIN CLIENT_BIN [client args...]" >&2
	exit 2
fi
server_bin=$1
client_bin=$2
shift 2

tmp=$(mktemp -d "${TMPDIR:-/tmp}/interop.XXXXXX") || exit 1
server_pid=
server_status=

stop_server() {
	[ -n "$server_pid" ] || return 0
	local pid=$server_pid
	server_pid=
	if kill -TERM "$pid" 2>/dev/null; then
		for _ in $(seq 50); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
		kill -KILL "$pid" 2>/dev/null && echo "server $pid ignored SIGTERM for 5s: killed" >&2
	fi
	wait "$pid"
	server_status=$?
}

cleanup() {
	stop_server
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

sock=$tmp/bench.sock
"$server_bin" server -socket "$sock" >"$tmp/server.out" 2>"$tmp/server.err" &
server_pid=$!

for _ in $(seq 200); do
	grep -qx ready "$tmp/server.out" 2>/dev/null && break
	if ! kill -0 "$server_pid" 2>/dev/null; then
		echo "server exited before it was ready:" >&2
		cat "$tmp/server.err" >&2
		exit 1
	fi
	sleep 0.05
done
if ! grep -qx ready "$tmp/server.out"; then
	echo "server not ready after 10s" >&2
	exit 1
fi

echo "== $(basename "$client_bin") client -> $(basename "$server_bin") server"
"$client_bin" client -socket "$sock" "$@"
client_status=$?

stop_server
if [ -s "$tmp/server.err" ]; then
	echo "-- server stderr:"
	cat "$tmp/server.err"
fi
if [ "$server_status" -ne 0 ]; then
	echo "server exited with status $server_status after SIGTERM" >&2
	exit 1
fi
exit "$client_status"
