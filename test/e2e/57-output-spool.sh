#!/usr/bin/env bash
# A container's output while nobody reads it, through a real containerd: `ctr run`
# in the foreground (FIFO stdio) is SIGKILLed while the container writes a numbered
# line every 10 ms; the container keeps writing, then writes some 3 MB more; then
# `ctr task attach` must receive every line in order: the killed reader's output
# followed by the attach output is exactly 1, 2, ..., N.
#   nano (our shim): the container never waits: it writes everything while nobody
#     reads (the FIFO, then the output spool: memory, then an unnamed file in the
#     bundle), and the shim stays quiet meanwhile. With a small spool_max_bytes in the
#     runtime config file the container blocks once the spool is full, the log says
#     so, and nothing is lost either.
#   runc.v2 (Debian's Go shim): the container blocks once its pipes are full, for as
#     long as nobody reads (its counter stops), and resumes when `ctr task attach`
#     reads; nothing is lost either. (The small-cap case is ours only: the Go shim has
#     no spool.)
# The same for a terminal nobody reads (`ctr run -d -t`), attached to through the pty.
# The reader is killed between two lines, not while it holds bytes it has read and not
# yet written: what a killed reader held is lost in the reader, whatever the shim does.
. "$(dirname "$0")/lib.sh"
command -v script >/dev/null || e2e_skip "script (util-linux) not installed"
e2e_setup

CHUNK=2000  # lines per seq in the burst
CHUNKS=220  # about 3 MB in all

# the container: a line every 10 ms until /out/go exists, then CHUNKS*CHUNK lines as
# fast as it can; its progress (the last number written) in /out/progress
# (renamed into place: a reader never sees it half written)
script='n=0
p() { echo "$@" >/out/p.tmp; mv /out/p.tmp /out/progress; }
while [ ! -e /out/go ]; do n=$((n+1)); echo $n; p $n; usleep 10000; done
i=0
while [ $i -lt '$CHUNKS' ]; do seq $((n+1)) $((n+'$CHUNK')); n=$((n+'$CHUNK')); p $n; i=$((i+1)); done
p done $n
exec sleep 1000'

ctr_direct() { /usr/bin/env ctr --address "$E2E_ADDR" --namespace "$E2E_NS" "$@"; }
progress() { cat "$dir/progress" 2>/dev/null || true; }
progress_num() { local p; p=$(progress); p=${p#done }; echo "${p:-0}"; }
is_done() { [[ "$(progress)" == done* ]]; }
lines_in() { [ -s "$1" ] && [ "$(wc -l <"$1")" -ge "$2" ]; }
# seq_check FINAL FILE... — the files, \r removed, are exactly the lines 1..FINAL
seq_check() {
	local want=$1
	shift
	cat "$@" | tr -d '\r' | awk -v want="$want" '
		NR != $0 && !bad { bad = sprintf("line %d is [%s]", NR, $0) }
		END { if (!bad && NR != want) bad = sprintf("%d lines, want %d", NR, want); printf "%s", bad }'
}
past_first_chunk() { [ "$(progress_num)" -gt "$((killed_at + CHUNK))" ]; }
last_line_is() { [ "$(tail -n 1 "$1" 2>/dev/null)" = "$2" ]; }

# the spool file of a shim: an unlinked file in the bundle, held open
spool_size() {
	local fd t total=0
	for fd in /proc/"$1"/fd/*; do
		t=$(readlink "$fd" 2>/dev/null) || continue
		case "$t" in "$2"/*"(deleted)") total=$((total + $(stat -L -c %s "$fd"))) ;; esac
	done
	echo "$total"
}

# run_and_kill ID [ctr run flags...] — starts the container with `ctr run` in the
# foreground, lets the reader take some 50 lines, SIGKILLs it, checks the container
# keeps going for a while with nobody reading, then starts the burst
run_and_kill() {
	local id=$1
	shift
	dir=$E2E_TMP/$id
	mkdir -p "$dir"
	(exec /usr/bin/env ctr --address "$E2E_ADDR" --namespace "$E2E_NS" run \
		--fifo-dir="$E2E_FIFO_DIR" --runtime "$CTR_RUNTIME" "${E2E_RUNTIME_FLAGS[@]}" \
		--env="$E2E_PATH_ENV" "$@" --mount "type=bind,src=$dir,dst=/out,options=rbind:rw" \
		--rootfs "$E2E_ROOTFS" "$id" sh -c "$script") </dev/null >"$dir/run.out" 2>"$dir/run.err" &
	reader=$!
	wait_for 20 "the first reader (ctr run, pid $reader) got 50 lines" lines_in "$dir/run.out" 50
	kill -KILL "$reader"
	wait "$reader" 2>/dev/null || true
	killed_at=$(wc -l <"$dir/run.out")
	pass "ctr run killed after $killed_at lines"
	local p0
	p0=$(progress_num)
	sleep 0.5
	[ "$(progress_num)" -gt "$p0" ] || fail "the container stopped writing at once ($p0)"
	pass "the container goes on writing with nobody reading ($p0 -> $(progress_num))"
	shim=$(e2e_shim_pid "$id")
	bundle=$(e2e_bundle "$id")
	touch "$dir/go"
}

# attach_and_check ID — `ctr task attach`, which must deliver everything after what
# the first reader got, in order; then the task is removed
attach_and_check() {
	local id=$1 final
	(exec /usr/bin/env ctr --address "$E2E_ADDR" --namespace "$E2E_NS" task attach "$id") \
		</dev/null >"$dir/attach.out" 2>"$dir/attach.err" &
	attacher=$!
	wait_for 30 "the container finishes writing once read" is_done
	final=$(progress_num)
	wait_for 30 "ctr task attach received the last line ($final)" last_line_is "$dir/attach.out" "$final"
	assert_eq "" "$(seq_check "$final" "$dir/run.out" "$dir/attach.out")" \
		"first reader ($(wc -l <"$dir/run.out") lines) + attach ($(wc -l <"$dir/attach.out") lines) = 1..$final, no gap, no duplicate"
	# ctr task attach deletes the task once it has exited
	ctr task kill -s KILL "$id" >/dev/null
	local i
	for ((i = 0; i < 100; i++)); do
		kill -0 "$attacher" 2>/dev/null || break
		sleep 0.1
	done
	kill -0 "$attacher" 2>/dev/null && fail "ctr task attach still runs 10 s after the task was killed"
	wait "$attacher" 2>/dev/null || true
	ctr task rm -f "$id" >/dev/null 2>&1 || true
	wait_for 10 "task $id gone" e2e_task_status_is "$id" ""
	ctr containers rm "$id"
}

check "the reader is killed mid-stream: the container keeps writing, attach gets every line"
id=$(e2e_id spool)
run_and_kill "$id"
t0=$(date +%s%N)
if [ "$RUNTIME" = io.containerd.nano.v2 ]; then
	wait_for 30 "the container writes all ~3 MB with nobody reading" is_done
	ms=$((($(date +%s%N) - t0) / 1000000))
	pass "burst of $(progress_num) lines written in $ms ms, nobody reading"
	sz=$(spool_size "$shim" "$bundle")
	[ "$sz" -gt $((1 << 20)) ] || fail "spool file holds $sz bytes"
	pass "the spool file (unnamed, in the bundle) holds $sz bytes"
	assert_eq "" "$(ls -A "$bundle" | grep -i spool || true)" "no spool file name in the bundle"
	assert_shim_quiet "$shim" 1
else
	wait_for 10 "the container is past its first burst chunk" past_first_chunk
	sleep 1
	p1=$(progress_num)
	sleep 3
	p2=$(progress_num)
	assert_eq "$p1" "$p2" "Go shim: the container's counter stays at $p1 for 3 s while nobody reads"
	is_done && fail "the container finished with nobody reading"
	pass "Go shim: the container blocked $((p1 - killed_at)) lines after the reader died"
fi
attach_and_check "$id"

check "a terminal nobody reads (ctr run -d -t): the same, through the pty"
id=$(e2e_id spooltty)
dir=$E2E_TMP/$id
mkdir -p "$dir"
# under script(1): ctr -t needs a terminal of its own, even to detach; script's stdin
# must not reach EOF (see 05-tty), nor may the script hold a single quote
exec 7< <(exec sleep 120 2>/dev/null)
feeder=$!
run_with_timeout 30 script -qec "ctr --address $E2E_ADDR --namespace $E2E_NS run -d -t \
	--fifo-dir=$E2E_FIFO_DIR --runtime $CTR_RUNTIME ${E2E_RUNTIME_FLAGS[*]} --env=$E2E_PATH_ENV \
	--mount type=bind,src=$dir,dst=/out,options=rbind:rw --rootfs $E2E_ROOTFS $id \
	sh -c '$script'" /dev/null <&7 >"$dir/run.out" 2>&1
shim=$(e2e_shim_pid "$id")
killed_at=$(progress_num)
touch "$dir/go"
if [ "$RUNTIME" = io.containerd.nano.v2 ]; then
	wait_for 30 "the container writes all ~3 MB to a terminal nobody reads" is_done
	assert_shim_quiet "$shim" 1
else
	wait_for 10 "the container is past its first burst chunk" past_first_chunk
	sleep 1
	p1=$(progress_num)
	sleep 2
	assert_eq "$p1" "$(progress_num)" "Go shim: the container's counter stays at $p1 while nobody reads"
fi
(exec script -qec "ctr --address $E2E_ADDR --namespace $E2E_NS task attach $id" /dev/null) \
	<&7 >"$dir/attach.raw" 2>&1 &
attacher=$!
exec 7<&-
wait_for 30 "the container finishes writing once read" is_done
final=$(progress_num)
tty_last_line_is() { [ "$(tr -d '\r' <"$dir/attach.raw" | tail -n 1)" = "$1" ]; }
wait_for 30 "ctr task attach -t received the last line ($final)" tty_last_line_is "$final"
assert_eq "" "$(seq_check "$final" "$dir/run.out" "$dir/attach.raw")" \
	"what ctr run -d read before it left ($(wc -l <"$dir/run.out") lines) + attach through the terminal = 1..$final, no gap, no duplicate"
ctr task kill -s KILL "$id" >/dev/null
for ((i = 0; i < 100; i++)); do
	kill -0 "$attacher" 2>/dev/null || break
	sleep 0.1
done
kill "$attacher" "$feeder" 2>/dev/null || true
wait "$attacher" 2>/dev/null || true
ctr task rm -f "$id" >/dev/null 2>&1 || true
wait_for 10 "task $id gone" e2e_task_status_is "$id" ""
ctr containers rm "$id"

if [ "$RUNTIME" = io.containerd.nano.v2 ]; then
	check "a small spool (spool_max_bytes 262144): the container blocks when it is full, loses nothing"
	cfg=$E2E_TMP/spool.json
	printf '{"spool_max_bytes": 262144}\n' >"$cfg"
	id=$(e2e_id spoolcap)
	run_and_kill "$id" --runtime-config-path="$cfg"
	wait_for 10 "the container is past its first burst chunk" past_first_chunk
	sleep 1
	p1=$(progress_num)
	sleep 2
	p2=$(progress_num)
	assert_eq "$p1" "$p2" "the counter stays at $p1 while the full spool waits for a reader"
	is_done && fail "the container finished with nobody reading"
	pass "blocked $((p1 - killed_at)) lines after the reader died"
	sz=$(spool_size "$shim" "$bundle")
	[ "$sz" -le 262144 ] || fail "spool file holds $sz bytes, past the cap"
	pass "spool file holds $sz bytes (+ 64 KiB in memory), cap 262144"
	wait_for 5 "the log says the spool is full" grep -q "$id stdout: output spool full (262144 bytes)" "$E2E_TMP/containerd.log"
	assert_shim_quiet "$shim" 1
	attach_and_check "$id"
	wait_for 5 "the log says what the cap cost" grep -qE "$id stdout: spooled output delivered; the full spool held the process [0-9]+ times?, [0-9.]+ s in all" "$E2E_TMP/containerd.log"

	check "output no reader ever took is dropped when the task is deleted, and the log counts it"
	id=$(e2e_id spooldrop)
	dir=$E2E_TMP/$id
	mkdir -p "$dir"
	touch "$dir/go"
	# ctr run -d: ctr reads the FIFOs only until it returns
	e2e_run -d --mount="type=bind,src=$dir,dst=/out,options=rbind:rw" "$id" sh -c "$script" </dev/null
	wait_for 30 "the container writes all ~3 MB with nobody reading" is_done
	ctr task kill -s KILL "$id" >/dev/null
	wait_for 10 "task $id stopped (its output all spooled, the exit is announced)" e2e_task_status_is "$id" STOPPED
	ctr task rm "$id" >/dev/null
	wait_for 5 "the log counts what was dropped" grep -qE "$id stdout: [0-9]+ spooled bytes were never read, dropped" "$E2E_TMP/containerd.log"
	pass "$(grep -oE "$id stdout: [0-9]+ spooled bytes were never read" "$E2E_TMP/containerd.log")"
	ctr containers rm "$id"

	check "spool_max_bytes that is not a number of bytes fails the create"
	printf '{"spool_max_bytes": "lots"}\n' >"$cfg"
	id=$(e2e_id spoolbad)
	rc=0
	err=$(e2e_run --rm --runtime-config-path="$cfg" "$id" true 2>&1 </dev/null) || rc=$?
	assert_ne 0 "$rc" "ctr run fails"
	assert_contains "$err" "spool_max_bytes must be a number of bytes" "the error names the key"
	ctr containers rm "$id" >/dev/null 2>&1 || true
fi
pass "output is spooled, never lost"
