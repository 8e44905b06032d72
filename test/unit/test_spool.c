/* The output spool and the copier's output mode: bytes leave in the order
 * they came through memory, the overflow file and the tail (a source splice
 * cannot read), the cap is never passed and what it refuses stays in the
 * source, the file leaves nothing behind; a copier with a spool keeps its
 * writer going while the reader is away, delivers everything in order when
 * it comes back, and, spool full, sleeps instead of spinning. */
#include "copier.h"
#include "loop.h"
#include "spool.h"

#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <sys/socket.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

/* byte i of every stream here: never periodic on a page or a chunk */
static unsigned char pat(size_t i)
{
	return (unsigned char)(i * 7 + i / 4093);
}

struct stream {
	int r, w;      /* a pipe (or a socketpair: r, w its ends) */
	size_t in, out; /* bytes written to w, checked out of r */
};

static void stream_pipe(struct stream *s, int size)
{
	int p[2];
	cr_assert_eq(pipe2(p, O_CLOEXEC | O_NONBLOCK), 0);
	fcntl(p[1], F_SETPIPE_SZ, size);
	s->r = p[0];
	s->w = p[1];
	s->in = s->out = 0;
}

/* Writes up to n more bytes of the pattern (as many as fit). */
static size_t put(struct stream *s, size_t n)
{
	unsigned char buf[8192];
	size_t done = 0;
	while (done < n) {
		size_t k = n - done < sizeof(buf) ? n - done : sizeof(buf);
		for (size_t i = 0; i < k; i++)
			buf[i] = pat(s->in + i);
		ssize_t w = write(s->w, buf, k);
		if (w <= 0)
			break;
		s->in += (size_t)w;
		done += (size_t)w;
	}
	return done;
}

/* Reads what r holds and checks it continues the pattern. */
static size_t take(struct stream *s)
{
	unsigned char buf[8192];
	size_t got = 0;
	for (;;) {
		ssize_t n = read(s->r, buf, sizeof(buf));
		if (n <= 0)
			break;
		for (ssize_t i = 0; i < n; i++)
			cr_assert_eq(buf[i], pat(s->out + (size_t)i), "byte %zu out of order",
				     s->out + (size_t)i);
		s->out += (size_t)n;
		got += (size_t)n;
	}
	return got;
}

static char dir[] = "/tmp/test-spool.XXXXXX";

static void mkdir_tmp(void)
{
	strcpy(dir, "/tmp/test-spool.XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
}

static int dir_entries(void)
{
	DIR *d = opendir(dir);
	cr_assert_not_null(d);
	int n = 0;
	struct dirent *e;
	while ((e = readdir(d)))
		n += strcmp(e->d_name, ".") && strcmp(e->d_name, "..");
	closedir(d);
	return n;
}

static void rm_tmp(void)
{
	rmdir(dir);
}

/* Moves everything from src through the spool into dst, interleaving: the
 * writer puts `chunk` bytes at a time, the spool takes what src holds, and
 * every `drain_every` rounds the reader side drains some. */
Test(spool, memory_then_file_in_order, .init = mkdir_tmp, .fini = rm_tmp)
{
	struct stream in, out;
	stream_pipe(&in, 64 << 10);
	stream_pipe(&out, 64 << 10);
	struct spool *s = spool_new(dir, 16 << 10, 4 << 20);
	cr_assert_not_null(s);
	const size_t total = 3 << 20;
	bool used_file = false;
	for (int round = 0; in.in < total || spool_len(s) || in.out < in.in; round++) {
		cr_assert_lt(round, 100000);
		put(&in, total - in.in < 50000 ? total - in.in : 50000);
		ssize_t n;
		while ((n = spool_fill(s, in.r)) > 0)
			;
		cr_assert(n == -EAGAIN || n == -ENOSPC, "fill: %zd", n);
		used_file |= spool_file_len(s) > 0;
		if (round % 3 == 2 || in.in == total) {
			/* the reader takes some: the spool drains into out */
			while (spool_len(s) && spool_drain(s, out.w) > 0)
				;
			out.out = in.out;
			size_t got = take(&out);
			in.out = out.out;
			(void)got;
		}
		cr_assert_leq(spool_len(s), spool_cap(s));
	}
	cr_assert(used_file, "the spool overflowed into its file");
	cr_assert_eq(in.out, total, "all %zu bytes came out (%zu)", total, in.out);
	cr_assert_eq(spool_drain(s, out.w), 0, "an empty spool drains nothing");
	cr_assert_eq(dir_entries(), 0, "the spool file has no name");
	spool_free(s);
	close(in.r), close(in.w), close(out.r), close(out.w);
}

Test(spool, cap_is_never_passed_and_the_rest_stays_in_the_source, .init = mkdir_tmp,
     .fini = rm_tmp)
{
	struct stream in, out;
	stream_pipe(&in, 1 << 20);
	stream_pipe(&out, 64 << 10);
	const size_t cap = 200000;
	struct spool *s = spool_new(dir, 8192, cap);
	put(&in, 600000);
	ssize_t n;
	while ((n = spool_fill(s, in.r)) > 0)
		;
	cr_assert_eq(n, -ENOSPC);
	cr_assert_eq(spool_len(s), cap);
	cr_assert_eq(spool_room(s), 0);
	cr_assert_eq(spool_file_len(s), cap - 8192);
	/* the destination full: drain says EAGAIN and keeps the bytes */
	out.in = 0;
	unsigned char junk[4096];
	memset(junk, 0, sizeof(junk));
	size_t junk_in = 0;
	ssize_t w;
	while ((w = write(out.w, junk, sizeof(junk))) > 0)
		junk_in += (size_t)w;
	cr_assert_eq(spool_drain(s, out.w), -EAGAIN);
	cr_assert_eq(spool_len(s), cap);
	/* the reader empties the pipe of junk, then everything comes in order:
	 * the spool's bytes, then what the cap left in the source */
	while (junk_in) {
		ssize_t r = read(out.r, junk, sizeof(junk));
		cr_assert_gt(r, 0);
		junk_in -= (size_t)r;
	}
	while (spool_len(s)) {
		while (spool_len(s) && spool_drain(s, out.w) > 0)
			;
		take(&out);
	}
	cr_assert_eq(out.out, cap);
	/* what stayed in the source follows with no gap */
	in.out = cap;
	take(&in);
	cr_assert_eq(in.out, 600000);
	spool_free(s);
	close(in.r), close(in.w), close(out.r), close(out.w);
}

/* Filling resumes into the file while the file still holds bytes, even when
 * memory has room again: order across memory and file. */
Test(spool, refill_while_file_holds_bytes, .init = mkdir_tmp, .fini = rm_tmp)
{
	struct stream in, out;
	stream_pipe(&in, 1 << 20);
	stream_pipe(&out, 1 << 20);
	struct spool *s = spool_new(dir, 4096, 1 << 20);
	put(&in, 20000);
	while (spool_fill(s, in.r) > 0)
		;
	cr_assert_eq(spool_len(s), 20000);
	cr_assert_eq(spool_file_len(s), 20000 - 4096);
	/* half the memory out: there is room there, but new bytes come after
	 * the file's */
	cr_assert_gt(spool_drain(s, out.w), 0);
	put(&in, 3000);
	while (spool_fill(s, in.r) > 0)
		;
	while (spool_drain(s, out.w) > 0)
		;
	cr_assert_eq(spool_len(s), 0);
	take(&out);
	cr_assert_eq(out.out, 23000);
	/* empty again: memory first once more */
	put(&in, 1000);
	cr_assert_eq(spool_fill(s, in.r), 1000);
	cr_assert_eq(spool_file_len(s), 0);
	spool_free(s);
	close(in.r), close(in.w), close(out.r), close(out.w);
}

/* A source splice cannot read (a socket here, a pty master in the shim)
 * overflows into the file through the tail. */
Test(spool, non_pipe_source_overflows_through_the_tail, .init = mkdir_tmp, .fini = rm_tmp)
{
	int sp[2];
	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, sp), 0);
	struct stream in = {.r = sp[0], .w = sp[1]}, out;
	stream_pipe(&out, 1 << 20);
	struct spool *s = spool_new(dir, 4096, 1 << 20);
	size_t total = 0;
	for (int i = 0; i < 20; i++) {
		put(&in, 20000);
		ssize_t n;
		while ((n = spool_fill(s, in.r)) > 0)
			total += (size_t)n;
		cr_assert_eq(n, -EAGAIN);
	}
	cr_assert_eq(total, 400000);
	cr_assert_eq(spool_file_len(s), 400000 - 4096);
	while (spool_len(s)) {
		while (spool_drain(s, out.w) > 0)
			;
		take(&out);
	}
	cr_assert_eq(out.out, 400000);
	spool_free(s);
	close(sp[0]), close(sp[1]), close(out.r), close(out.w);
}

Test(spool, memory_only_without_a_directory)
{
	struct stream in;
	stream_pipe(&in, 1 << 20);
	struct spool *s = spool_new(NULL, 8192, 1 << 20);
	put(&in, 100000);
	ssize_t n;
	while ((n = spool_fill(s, in.r)) > 0)
		;
	cr_assert_eq(n, -ENOSPC);
	cr_assert_eq(spool_len(s), 8192);
	cr_assert_eq(spool_file_len(s), 0);
	spool_free(s);
	close(in.r), close(in.w);
}

Test(spool, empty_source_and_eof)
{
	struct stream in;
	stream_pipe(&in, 65536);
	struct spool *s = spool_new(NULL, 8192, 8192);
	cr_assert_eq(spool_fill(s, in.r), -EAGAIN);
	close(in.w);
	cr_assert_eq(spool_fill(s, in.r), 0, "EOF");
	spool_free(s);
	close(in.r);
	spool_free(NULL);
}

/* ---- the copier's output mode ---- */

static int done_calls, drained_calls;

static void on_done(struct copier *c, void *ud)
{
	done_calls++;
}

static void on_drained(struct copier *c, void *ud)
{
	drained_calls++;
}

static int64_t now_ms(clockid_t clock)
{
	struct timespec ts;
	clock_gettime(clock, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The shim's case: the process's pipe to a FIFO the shim holds read+write,
 * its reader gone (here: dst's read end, unread). */
struct rig {
	struct loop *l;
	struct stream proc; /* proc.w: the process; proc.r: the copier's source */
	struct stream fifo; /* fifo.w: the copier's destination; fifo.r: the reader */
	struct copier *c;
};

static void rig_new(struct rig *g, size_t cap)
{
	g->l = loop_new();
	cr_assert_not_null(g->l);
	stream_pipe(&g->proc, 64 << 10);
	stream_pipe(&g->fifo, 64 << 10);
	done_calls = drained_calls = 0;
	g->c = copier_new(g->l, g->proc.r, g->fifo.w, true, on_done, NULL);
	cr_assert_not_null(g->c);
	copier_set_spool(g->c, spool_new(dir, 16 << 10, cap), "test stdout", on_drained);
}

/* The process writes as fast as the pipe lets it for ms; returns what it wrote. */
static size_t rig_write_for(struct rig *g, size_t limit, int ms)
{
	size_t before = g->proc.in;
	int64_t deadline = now_ms(CLOCK_MONOTONIC) + ms;
	while (now_ms(CLOCK_MONOTONIC) < deadline) {
		if (g->proc.in < limit)
			put(&g->proc, limit - g->proc.in < 32768 ? limit - g->proc.in : 32768);
		cr_assert_geq(loop_iterate(g->l, 2), 0);
	}
	return g->proc.in - before;
}

/* The reader comes back and reads until it has `total` bytes, all in order. */
static void rig_read_all(struct rig *g, size_t total, int ms)
{
	g->fifo.out = 0;
	int64_t deadline = now_ms(CLOCK_MONOTONIC) + ms;
	while (g->fifo.out < total && now_ms(CLOCK_MONOTONIC) < deadline) {
		if (g->proc.w >= 0 && g->proc.in < total)
			put(&g->proc, total - g->proc.in);
		if (!take(&g->fifo))
			cr_assert_geq(loop_iterate(g->l, 5), 0);
	}
	cr_assert_eq(g->fifo.out, total, "the reader got %zu of %zu bytes", g->fifo.out, total);
}

static void rig_free(struct rig *g)
{
	copier_free(g->c);
	if (g->proc.w >= 0)
		close(g->proc.w);
	close(g->fifo.r);
	loop_free(g->l);
}

Test(copier_spool, writer_never_waits_for_an_absent_reader, .init = mkdir_tmp, .fini = rm_tmp,
     .timeout = 30)
{
	struct rig g;
	rig_new(&g, 4 << 20);
	const size_t total = 3 << 20;
	rig_write_for(&g, total, 1500);
	cr_assert_eq(g.proc.in, total, "the process wrote %zu of %zu bytes with nobody reading",
		     g.proc.in, total);
	/* the process exits: everything is spooled, so it counts as drained */
	close(g.proc.w);
	g.proc.w = -1;
	int64_t deadline = now_ms(CLOCK_MONOTONIC) + 2000;
	while (!drained_calls && now_ms(CLOCK_MONOTONIC) < deadline)
		loop_iterate(g.l, 5);
	cr_assert_eq(drained_calls, 1);
	cr_assert(copier_drained(g.c));
	cr_assert_not(copier_done(g.c), "bytes wait for a reader");
	cr_assert_eq(dir_entries(), 0, "the spool file has no name");
	/* the reader comes back: every byte, in order, then EOF */
	rig_read_all(&g, total, 10000);
	deadline = now_ms(CLOCK_MONOTONIC) + 2000;
	while (!done_calls && now_ms(CLOCK_MONOTONIC) < deadline)
		loop_iterate(g.l, 5);
	cr_assert_eq(done_calls, 1, "done once every byte is written");
	cr_assert_eq(drained_calls, 1);
	rig_free(&g);
}

Test(copier_spool, full_spool_blocks_the_writer_quietly_and_loses_nothing, .init = mkdir_tmp,
     .fini = rm_tmp, .timeout = 30)
{
	struct rig g;
	const size_t cap = 256 << 10;
	rig_new(&g, cap);
	rig_write_for(&g, 4 << 20, 500);
	size_t held = g.proc.in;
	/* the fifo (64 KiB), the spool and the process's pipe (64 KiB) */
	cr_assert_lt(held, (size_t)(cap + (200 << 10)), "wrote %zu", held);
	cr_assert_geq(held, cap, "wrote %zu", held);
	/* nobody reads: nothing moves, and the loop sleeps */
	int64_t cpu0 = now_ms(CLOCK_PROCESS_CPUTIME_ID);
	int woken = 0;
	int64_t deadline = now_ms(CLOCK_MONOTONIC) + 500;
	while (now_ms(CLOCK_MONOTONIC) < deadline)
		woken += loop_iterate(g.l, 10) > 0;
	cr_assert_leq(woken, 3, "the loop woke %d times while blocked", woken);
	cr_assert_leq(now_ms(CLOCK_PROCESS_CPUTIME_ID) - cpu0, 50);
	cr_assert_eq(put(&g.proc, 4096), 0, "the process's pipe stays full");
	/* the reader comes back: everything, in order, and the writer goes on */
	rig_read_all(&g, 4 << 20, 15000);
	cr_assert_eq(done_calls, 0);
	rig_free(&g);
}

/* A live reader that only reads slowly still gets everything in order. */
Test(copier_spool, slow_reader_gets_every_byte_in_order, .init = mkdir_tmp, .fini = rm_tmp,
     .timeout = 30)
{
	struct rig g;
	rig_new(&g, 1 << 20);
	const size_t total = 6 << 20;
	g.fifo.out = 0;
	int64_t deadline = now_ms(CLOCK_MONOTONIC) + 20000;
	for (int i = 0; g.fifo.out < total && now_ms(CLOCK_MONOTONIC) < deadline; i++) {
		if (g.proc.in < total)
			put(&g.proc, total - g.proc.in < 40000 ? total - g.proc.in : 40000);
		loop_iterate(g.l, 1);
		if (i % 4 == 0) {
			unsigned char buf[16384];
			ssize_t n = read(g.fifo.r, buf, sizeof(buf));
			for (ssize_t k = 0; k < n; k++)
				cr_assert_eq(buf[k], pat(g.fifo.out + (size_t)k));
			if (n > 0)
				g.fifo.out += (size_t)n;
		}
	}
	cr_assert_eq(g.fifo.out, total);
	rig_free(&g);
}

/* A reader that pauses for less than READER_AWAY_MS keeps the direct path:
 * nothing is read ahead until the destination stayed full that long. */
Test(copier_spool, spools_ahead_only_after_the_reader_stayed_away, .init = mkdir_tmp,
     .fini = rm_tmp, .timeout = 30)
{
	struct rig g;
	rig_new(&g, 4 << 20);
	int64_t t0 = now_ms(CLOCK_MONOTONIC);
	rig_write_for(&g, 4 << 20, 40);
	size_t early = g.proc.in;
	bool in_time = now_ms(CLOCK_MONOTONIC) - t0 < 90;
	rig_write_for(&g, 4 << 20, 400);
	/* the pipe and the fifo, 64 KiB each, and at most the spool's memory
	 * (16 KiB here) for a race between a full destination and a reader */
	if (in_time)
		cr_assert_leq(early, (size_t)(144 << 10), "%zu bytes taken in the first 40 ms",
			      early);
	cr_assert_geq(g.proc.in, (size_t)(1 << 20), "%zu bytes taken once the reader was away",
		      g.proc.in);
	rig_read_all(&g, 4 << 20, 15000);
	rig_free(&g);
}

/* A terminal's output: the pty master gives small reads, so the copier may
 * spend its whole round of work filling the spool while the destination
 * stays full; it must still come back for more. */
struct pty_writer {
	int fd;
	size_t total, done;
};

static void *write_pty(void *arg)
{
	struct pty_writer *w = arg;
	unsigned char buf[512];
	while (w->done < w->total) {
		size_t k = w->total - w->done < sizeof(buf) ? w->total - w->done : sizeof(buf);
		for (size_t i = 0; i < k; i++)
			buf[i] = pat(w->done + i);
		ssize_t n = write(w->fd, buf, k);
		if (n <= 0)
			break;
		__atomic_add_fetch(&w->done, (size_t)n, __ATOMIC_SEQ_CST);
	}
	return NULL;
}

Test(copier_spool, terminal_output_is_spooled_while_nobody_reads, .init = mkdir_tmp,
     .fini = rm_tmp, .timeout = 30)
{
	int master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
	cr_assert_geq(master, 0);
	cr_assert_eq(grantpt(master), 0);
	cr_assert_eq(unlockpt(master), 0);
	int slave = open(ptsname(master), O_RDWR | O_NOCTTY | O_CLOEXEC);
	cr_assert_geq(slave, 0);
	struct termios t;
	cr_assert_eq(tcgetattr(slave, &t), 0);
	cfmakeraw(&t);
	cr_assert_eq(tcsetattr(slave, TCSANOW, &t), 0);

	struct loop *l = loop_new();
	struct stream fifo;
	stream_pipe(&fifo, 64 << 10);
	done_calls = drained_calls = 0;
	struct copier *c = copier_new(l, master, fifo.w, true, on_done, NULL);
	cr_assert_not_null(c);
	copier_set_spool(c, spool_new(dir, 16 << 10, 4 << 20), "test terminal", on_drained);

	struct pty_writer w = {.fd = slave, .total = 2 << 20};
	pthread_t thr;
	pthread_create(&thr, NULL, write_pty, &w);
	int64_t deadline = now_ms(CLOCK_MONOTONIC) + 10000;
	while (__atomic_load_n(&w.done, __ATOMIC_SEQ_CST) < w.total &&
	       now_ms(CLOCK_MONOTONIC) < deadline)
		cr_assert_geq(loop_iterate(l, 5), 0);
	size_t done = __atomic_load_n(&w.done, __ATOMIC_SEQ_CST);
	cr_assert_eq(done, w.total, "the terminal took %zu of %zu bytes with nobody reading", done,
		     w.total);
	pthread_join(thr, NULL);

	fifo.out = 0;
	deadline = now_ms(CLOCK_MONOTONIC) + 10000;
	while (fifo.out < w.total && now_ms(CLOCK_MONOTONIC) < deadline)
		if (!take(&fifo))
			cr_assert_geq(loop_iterate(l, 5), 0);
	cr_assert_eq(fifo.out, w.total, "the reader got %zu of %zu bytes", fifo.out, w.total);
	close(slave);
	copier_free(c);
	close(fifo.r);
	loop_free(l);
}

/* The same with a source that gives one small piece per read (a seqpacket
 * socket: 128 bytes a read, as a busy pty gives a few hundred): a whole round
 * of work can go to filling the spool while the destination stays full. */
Test(copier_spool, small_reads_do_not_stall_the_spool, .init = mkdir_tmp, .fini = rm_tmp,
     .timeout = 30)
{
	int sp[2];
	cr_assert_eq(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, sp), 0);
	struct loop *l = loop_new();
	struct stream fifo;
	stream_pipe(&fifo, 64 << 10);
	done_calls = drained_calls = 0;
	struct copier *c = copier_new(l, sp[0], fifo.w, true, on_done, NULL);
	cr_assert_not_null(c);
	copier_set_spool(c, spool_new(dir, 16 << 10, 4 << 20), "test packets", on_drained);
	const size_t total = 1 << 20;
	size_t in = 0;
	int64_t deadline = now_ms(CLOCK_MONOTONIC) + 5000;
	while (in < total && now_ms(CLOCK_MONOTONIC) < deadline) {
		unsigned char pkt[128];
		for (;;) {
			for (size_t i = 0; i < sizeof(pkt); i++)
				pkt[i] = pat(in + i);
			if (in >= total || write(sp[1], pkt, sizeof(pkt)) != (ssize_t)sizeof(pkt))
				break;
			in += sizeof(pkt);
		}
		cr_assert_geq(loop_iterate(l, 5), 0);
	}
	cr_assert_eq(in, total, "the source took %zu of %zu bytes with nobody reading", in, total);
	fifo.out = 0;
	deadline = now_ms(CLOCK_MONOTONIC) + 10000;
	while (fifo.out < total && now_ms(CLOCK_MONOTONIC) < deadline)
		if (!take(&fifo))
			cr_assert_geq(loop_iterate(l, 5), 0);
	cr_assert_eq(fifo.out, total, "the reader got %zu of %zu bytes", fifo.out, total);
	close(sp[1]);
	copier_free(c);
	close(fifo.r);
	loop_free(l);
}
