#!/usr/bin/env bash
# The shim's `start` action and its socket, driven by hand without containerd, in a
# private mount namespace with a fresh tmpfs on /run/containerd (the host's socket dir
# is never touched):
# - two `start`s for one group racing through the bind→listen window (widened with
#   strace's syscall delay injection) end with exactly one serving shim, both printing
#   its address, no orphan; plain concurrent starts likewise;
# - the socket dir is created 0600 (Go's MkdirAll(dir, 0600)); the socket is never
#   group/other accessible, not even between bind and chmod, whatever the umask;
# - a peer with our uid but another gid is refused (Go's UnixSocketRequireSameUser);
# - the serving shim runs with its soft RLIMIT_NOFILE raised to the hard limit (as Go
#   binaries do);
# - a stale socket of a killed shim is replaced; a shim that exits removes its socket;
# - a start waits at most 2 s for the socket dir's lock (its holder stopped mid-start).
# Nano runtime only: it runs containerd-shim-nano-v2 itself.
. "$(dirname "$0")/lib.sh"

[ "$(id -u)" = 0 ] || e2e_skip "needs root"
[ "$RUNTIME" = io.containerd.nano.v2 ] && [ "$SHIM_AS_RUNC" != 1 ] ||
	e2e_skip "drives containerd-shim-nano-v2 itself"
[ -n "${SHIM_BINARY:-}" ] && [ -x "$SHIM_BINARY" ] || e2e_skip "shim binary not built"
shimcall=${E2E_SHIMCALL:-$(dirname "$E2E_CACHE_DIR")/shimcall}
[ -x "$shimcall" ] || e2e_skip "shimcall not built ($shimcall)"
for t in unshare strace prlimit setpriv sha256sum timeout flock; do
	command -v "$t" >/dev/null || e2e_skip "$t not installed"
done
SHIM_BINARY=$(readlink -f "$SHIM_BINARY")
shimcall=$(readlink -f "$shimcall")

if [ "${E2E_START_MNTNS:-}" != 1 ]; then
	exec unshare -m --propagation private env E2E_START_MNTNS=1 bash "$0" "$@"
fi
mount -t tmpfs -o mode=0755 nanoshim-e2e /run/containerd

E2E_TAG=$(od -An -N4 -tx1 /dev/urandom | tr -d ' \n')
E2E_NS=nse2e-$E2E_TAG
E2E_TMP=$(mktemp -d /tmp/nse2e.XXXXXX)
E2E_ADDR=$E2E_TMP/containerd.sock # never listened on: no events, none needed

cleanup() {
	local rc=$? pid
	trap - EXIT
	set +e
	for pid in $(e2e_run_shims); do
		kill -KILL "$pid" 2>/dev/null
	done
	rm -rf "$E2E_TMP"
	exit "$rc"
}
trap cleanup EXIT
trap 'e2e_log "FAIL $E2E_TEST_NAME line $LINENO: status $? from: $BASH_COMMAND"' ERR
printf '# %s: shim %s, namespace %s, tmp %s\n' "$E2E_TEST_NAME" "$SHIM_BINARY" "$E2E_NS" "$E2E_TMP"

# bundle NAME GROUP — a bundle dir whose config.json puts it in sandbox GROUP
bundle() {
	local d=$E2E_TMP/$1
	mkdir -p "$d"
	printf '{"ociVersion":"1.0.2","annotations":{"io.kubernetes.cri.sandbox-id":"%s"}}\n' "$2" \
		>"$d/config.json"
	echo "$d"
}
# start BUNDLE ID [WRAPPER...] — `<shim> start` as containerd runs it, in the bundle
# (WRAPPER: a command or function that runs the rest)
start() {
	local b=$1 id=$2
	shift 2
	(
		cd "$b"
		unset TTRPC_ADDRESS
		"$@" "$SHIM_BINARY" -namespace "$E2E_NS" -address "$E2E_ADDR" -id "$id" start </dev/null
	)
}
# delayed SYSCALL CMD... — CMD with SYSCALL delayed 0.5 s on entry (strace's fault
# injection; in a sanitizer build, without LeakSanitizer, which cannot run under ptrace)
delayed() {
	local sc=$1
	shift
	env "ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0" \
		strace -o /dev/null -e trace="$sc" -e inject="$sc":delay_enter=500000 "$@"
}
# socket GROUP — where containerd 1.6 and the shim put the group's socket
socket() {
	printf '/run/containerd/s/%s' \
		"$(printf '%s' "$E2E_ADDR/$E2E_NS/$1" | sha256sum | awk '{print $1}')"
}
# serving [GROUP] — the serving shims of this run (of GROUP's socket owner if given):
# this run's namespace on the command line and no action word
serving() {
	local pid
	for pid in $(e2e_run_shims); do
		tr '\0' '\n' 2>/dev/null <"/proc/$pid/cmdline" | grep -qxE 'start|delete' || echo "$pid"
	done
}
nserving() { serving | wc -l; }
# answers SOCKET — the shim on SOCKET answers a call (NotFound for an unknown id)
answers() { [[ "$("$shimcall" -n "$E2E_NS" "$1" state id=nosuch 2>&1)" == NotFound:* ]]; }
# stop_all — Shutdown every serving shim of this run and wait until they are gone (on
# failure, say what each one left is doing)
stop_all() {
	local s p i
	for s in /run/containerd/s/*; do
		"$shimcall" -n "$E2E_NS" "$s" shutdown >/dev/null 2>&1 || true
	done
	for ((i = 0; i < 100; i++)); do
		[ "$(nserving)" != 0 ] || break
		sleep 0.1
	done
	if [ "$(nserving)" != 0 ]; then
		for p in $(serving); do
			e2e_log "left: $p ($(tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null)) state $(awk '{print $3}' "/proc/$p/stat" 2>/dev/null)" \
				"wchan $(cat "/proc/$p/wchan" 2>/dev/null) fds: $(ls -l "/proc/$p/fd" 2>/dev/null | awk 'NR > 1 {print $NF}' | tr '\n' ' ')"
		done
		e2e_log "sockets: $(ls -l /run/containerd/s)"
		fail "shims of this run still running 10 s after Shutdown: $(serving | tr '\n' ' ')"
	fi
	pass "every shim of this run exited"
}

check "the socket dir is created as Go creates it: 0600"
[ ! -e /run/containerd/s ] || fail "fresh tmpfs has /run/containerd/s"
b=$(bundle dirmode g0)
addr=$(start "$b" c0)
assert_eq "unix://$(socket g0)" "$addr" "start prints the group's address"
assert_eq 600 "$(stat -c %a /run/containerd/s)" "mode of /run/containerd/s"
assert_eq 600 "$(stat -c %a "$(socket g0)")" "mode of the socket"
wait_for 5 "the shim answers on its socket" answers "$(socket g0)"

check "the serving shim's soft RLIMIT_NOFILE is raised to the hard limit"
b=$(bundle rlimit g1)
start "$b" c1 prlimit --nofile=256:8192 >/dev/null
pid=$(cat "$b/shim.pid")
assert_match "$(grep 'Max open files' "/proc/$pid/limits")" '^Max open files +8192 +8192 ' \
	"limits of the serving shim $pid"

check "a peer with our uid and another gid is refused; ours is served"
r=$(setpriv --regid 54321 --clear-groups "$shimcall" -n "$E2E_NS" "$(socket g1)" state id=nosuch 2>&1) || true
assert_match "$r" '^Unavailable' "call from uid 0 gid 54321"
assert_status 0 "call from uid 0 gid 0 still served" answers "$(socket g1)"
stop_all

check "the socket is never open to group or others between bind and chmod (umask 000)"
b=$(bundle umask g2)
(
	umask 000
	start "$b" c2 delayed chmod >"$E2E_TMP/umask.out"
) &
sp=$!
wait_for 5 "the socket is bound" test -S "$(socket g2)"
mode=$(stat -c %a "$(socket g2)")
wait "$sp"
assert_eq 0 "$((8#$mode & 8#077))" "group/other bits of the socket right after bind (mode $mode)"
assert_eq 600 "$(stat -c %a "$(socket g2)")" "mode after start"
stop_all

check "two starts for one group, the second inside the first's bind→listen window"
b1=$(bundle race1 g3)
b2=$(bundle race2 g3)
start "$b1" r1 delayed listen >"$E2E_TMP/r1.out" &
s1=$!
wait_for 5 "the first start has bound" test -S "$(socket g3)"
start "$b2" r2 >"$E2E_TMP/r2.out"
wait "$s1"
a1=$(cat "$E2E_TMP/r1.out")
a2=$(cat "$E2E_TMP/r2.out")
assert_eq "unix://$(socket g3)" "$a1" "first start's address"
assert_eq "$a1" "$a2" "second start's address"
wait_for 5 "the shim answers on the group's socket" answers "$(socket g3)"
sleep 0.3 # a second serving shim, if one was spawned, is up by now
assert_eq 1 "$(nserving)" "serving shims (an orphan would make 2)"
assert_eq "$(cat "$b1/shim.pid")" "$(serving)" "the one serving is the first start's"
stop_all

check "plain concurrent starts: 10 rounds of 4 at once for one group"
for round in $(seq 1 10); do
	pids=()
	for i in 1 2 3 4; do
		b=$(bundle "p$round-$i" "gp$round")
		start "$b" "p$round-$i" >"$E2E_TMP/p$round-$i.out" &
		pids+=($!)
	done
	for p in "${pids[@]}"; do wait "$p"; done
	for i in 1 2 3 4; do
		[ "$(cat "$E2E_TMP/p$round-$i.out")" = "unix://$(socket "gp$round")" ] ||
			fail "round $round: start $i printed [$(cat "$E2E_TMP/p$round-$i.out")]"
	done
	wait_for 5 "round $round: the group's shim answers" answers "$(socket "gp$round")"
	sleep 0.1
	[ "$(nserving)" = 1 ] || fail "round $round: $(nserving) serving shims"
	stop_all >/dev/null
done
pass "10 rounds: one shim each, every start printed its address"

check "a killed shim's stale socket is replaced; an exiting shim removes its socket"
b=$(bundle stale g4)
start "$b" s1 >/dev/null
old=$(cat "$b/shim.pid")
kill -KILL "$old"
wait_for 5 "shim $old gone" test ! -d "/proc/$old"
assert_eq 0 "$(nserving)" "no shim serves"
[ -S "$(socket g4)" ] || fail "the killed shim's socket is gone already"
start "$b" s2 >/dev/null
new=$(cat "$b/shim.pid")
assert_ne "$old" "$new" "a new shim"
wait_for 5 "the new shim answers" answers "$(socket g4)"
"$shimcall" -n "$E2E_NS" "$(socket g4)" shutdown >/dev/null
wait_for 5 "the new shim exited" test ! -d "/proc/$new"
assert_eq "" "$(e2e_existing "$(socket g4)")" "its socket removed"

check "a start waits at most 2 s for the socket dir's lock, then goes on without it"
flock -o /run/containerd/s sleep 6 &
holder=$!
wait_for 5 "the lock is held" eval '! flock -n /run/containerd/s true'
b=$(bundle locked g5)
t0=$(date +%s%N)
addr=$(start "$b" l1)
ms=$((($(date +%s%N) - t0) / 1000000))
assert_eq "unix://$(socket g5)" "$addr" "start's address"
[ "$ms" -ge 1900 ] && [ "$ms" -lt 5000 ] || fail "start took ${ms} ms (the lock is held for 6 s)"
pass "start took ${ms} ms"
wait_for 5 "its shim answers" answers "$(socket g5)"
wait "$holder"
stop_all
