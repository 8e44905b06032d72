/* The stream copier: every byte arrives and EOF is passed on, through splice
 * (pipe to pipe) and through the buffered path (pipe to socket, as for a pty),
 * "finish when idle" (CloseIO) never drops what is still buffered while the
 * reader drains the destination concurrently, and a copier whose destination
 * is full sleeps (no loop wake-ups, no CPU) however long its reader stalls,
 * even after its source hung up. Every wait here is bounded by time, never by
 * a count of loop iterations. */
#include "copier.h"
#include "loop.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

struct sink {
	int fd;
	size_t total;
	pthread_t thr;
};

/* Reads the destination until EOF, slowly at first, like a busy process. */
static void *drain(void *arg)
{
	struct sink *s = arg;
	char buf[4096];
	int slow = 16;
	for (;;) {
		ssize_t n = read(s->fd, buf, sizeof(buf));
		if (n <= 0)
			break;
		s->total += (size_t)n;
		if (slow-- > 0)
			usleep(200);
	}
	return NULL;
}

static bool done_flag;

static void on_done(struct copier *c, void *ud)
{
	done_flag = true;
}

static int64_t now_ms(clockid_t clock)
{
	struct timespec ts;
	clock_gettime(clock, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Runs the loop until the copier is done or ms of wall time have passed. */
static void run_until_done(struct loop *l, int ms)
{
	int64_t deadline = now_ms(CLOCK_MONOTONIC) + ms;
	while (!done_flag && now_ms(CLOCK_MONOTONIC) < deadline)
		cr_assert_geq(loop_iterate(l, 5), 0);
}

/* Runs the loop for ms of wall time; returns how many iterations had events. */
static int run_for(struct loop *l, int ms)
{
	int woken = 0;
	int64_t deadline = now_ms(CLOCK_MONOTONIC) + ms;
	while (now_ms(CLOCK_MONOTONIC) < deadline) {
		int n = loop_iterate(l, 10);
		cr_assert_geq(n, 0);
		woken += n > 0;
	}
	return woken;
}

static void fill(int fd, size_t n)
{
	char buf[4096];
	memset(buf, 'x', sizeof(buf));
	while (n) {
		size_t k = n < sizeof(buf) ? n : sizeof(buf);
		ssize_t w = write(fd, buf, k);
		cr_assert(w > 0);
		n -= (size_t)w;
	}
}

/* src: a pipe holding `bytes`, its writer kept open (a FIFO whose client has
 * not closed yet); finish_when_idle as CloseIO does; everything must arrive. */
static void close_io_keeps_bytes(bool socket_dst, size_t bytes)
{
	struct loop *l = loop_new();
	int src[2], dst[2];
	cr_assert_eq(pipe2(src, O_CLOEXEC), 0);
	fcntl(src[1], F_SETPIPE_SZ, 1 << 20);
	if (socket_dst)
		cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, dst), 0);
	else
		cr_assert_eq(pipe2(dst, O_CLOEXEC), 0);
	/* dst[0] is the reader's end; for a socketpair the copier writes dst[1] */
	fill(src[1], bytes);
	done_flag = false;
	struct copier *c = copier_new(l, src[0], dst[1], true, on_done, NULL);
	cr_assert_not_null(c);
	struct sink s = {.fd = dst[0]};
	pthread_create(&s.thr, NULL, drain, &s);
	for (int i = 0; i < 3; i++)
		loop_iterate(l, 1);
	copier_finish_when_idle(c);
	run_until_done(l, 10000);
	cr_assert(done_flag, "copier finished");
	pthread_join(s.thr, NULL); /* EOF: the copier closed its destination */
	cr_assert_eq(s.total, bytes, "got %zu of %zu bytes", s.total, bytes);
	copier_free(c);
	close(src[1]);
	close(dst[0]);
	loop_free(l);
}

Test(copier, close_io_keeps_buffered_bytes_splice, .timeout = 60)
{
	for (int i = 0; i < 30; i++)
		close_io_keeps_bytes(false, 256 << 10);
}

Test(copier, close_io_keeps_buffered_bytes_buffered_path, .timeout = 60)
{
	for (int i = 0; i < 10; i++)
		close_io_keeps_bytes(true, 256 << 10);
}

Test(copier, eof_of_source_passes_on, .timeout = 30)
{
	struct loop *l = loop_new();
	int src[2], dst[2];
	cr_assert_eq(pipe2(src, O_CLOEXEC), 0);
	cr_assert_eq(pipe2(dst, O_CLOEXEC), 0);
	fcntl(src[1], F_SETPIPE_SZ, 1 << 20); /* the fill below must not block */
	done_flag = false;
	struct copier *c = copier_new(l, src[0], dst[1], true, on_done, NULL);
	struct sink s = {.fd = dst[0]};
	pthread_create(&s.thr, NULL, drain, &s);
	fill(src[1], 100000);
	close(src[1]); /* the process exits: its end of the pipe closes */
	run_until_done(l, 10000);
	cr_assert(done_flag);
	pthread_join(s.thr, NULL);
	cr_assert_eq(s.total, 100000);
	copier_free(c);
	close(dst[0]);
	loop_free(l);
}

/* A stalled destination: the source holds more than the destination can take
 * and nobody reads the destination for STALL_MS. The copier must sleep through
 * the stall: at most a handful of loop wake-ups and a few ms of CPU (a spinning
 * copier wakes the loop hundreds of thousands of times and burns the whole
 * stall in CPU). Then the reader comes back and every byte arrives, in order,
 * followed by EOF when the source hung up. */
#define STALL_MS 300

enum src_kind { SRC_PIPE, SRC_FIFO };

static void stalled_reader(enum src_kind kind, bool socket_dst, bool hang_up)
{
	struct loop *l = loop_new();
	int src_r, src_w, dst[2];
	char fifo[64] = "";
	if (kind == SRC_FIFO) {
		/* stdin as the shim opens it: the FIFO read end, O_NONBLOCK,
		 * before the client (ctr) opens its end and writes */
		snprintf(fifo, sizeof(fifo), "/tmp/test-copier-fifo.%d", getpid());
		unlink(fifo);
		cr_assert_eq(mkfifo(fifo, 0600), 0);
		src_r = open(fifo, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
		src_w = open(fifo, O_WRONLY | O_CLOEXEC);
		cr_assert(src_r >= 0 && src_w >= 0);
	} else {
		int p[2];
		cr_assert_eq(pipe2(p, O_CLOEXEC), 0);
		src_r = p[0];
		src_w = p[1];
	}
	fcntl(src_w, F_SETPIPE_SZ, 1 << 20);
	if (socket_dst)
		cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, dst), 0);
	else
		cr_assert_eq(pipe2(dst, O_CLOEXEC), 0);
	/* a 64 KiB pipe (or a socket's buffer) in front of 600 KiB: most of it
	 * must wait in the source while the reader stalls */
	const size_t bytes = 600 << 10;
	unsigned char *want = malloc(bytes);
	for (size_t i = 0; i < bytes; i++)
		want[i] = (unsigned char)(i * 7 + i / 4096);
	done_flag = false;
	struct copier *c = copier_new(l, src_r, dst[1], true, on_done, NULL);
	cr_assert_not_null(c);
	for (size_t off = 0; off < bytes;) {
		ssize_t w = write(src_w, want + off, bytes - off);
		cr_assert(w > 0);
		off += (size_t)w;
	}
	if (hang_up) {
		close(src_w); /* the client closed stdin / the process exited */
		src_w = -1;
	}

	int64_t cpu0 = now_ms(CLOCK_PROCESS_CPUTIME_ID);
	int woken = run_for(l, STALL_MS);
	int64_t cpu = now_ms(CLOCK_PROCESS_CPUTIME_ID) - cpu0;
	cr_assert_not(done_flag, "nothing can finish while the reader stalls");
	cr_assert_leq(woken, 20, "the loop woke %d times in %d ms of a stalled reader", woken,
		      STALL_MS);
	cr_assert_leq(cpu, STALL_MS / 10, "the copier used %lld ms of CPU in %d ms of a stall",
		      (long long)cpu, STALL_MS);

	/* the reader comes back: everything arrives in order */
	unsigned char *got = malloc(bytes + 1);
	size_t total = 0;
	fcntl(dst[0], F_SETFL, O_NONBLOCK);
	int64_t deadline = now_ms(CLOCK_MONOTONIC) + 10000;
	while (total < bytes && now_ms(CLOCK_MONOTONIC) < deadline) {
		ssize_t n = read(dst[0], got + total, bytes + 1 - total);
		if (n > 0)
			total += (size_t)n;
		else
			cr_assert_geq(loop_iterate(l, 5), 0);
	}
	cr_assert_eq(total, bytes, "got %zu of %zu bytes", total, bytes);
	cr_assert_eq(memcmp(got, want, bytes), 0, "bytes arrive in order");
	if (hang_up) {
		run_until_done(l, 10000);
		cr_assert(done_flag, "EOF passed on once everything was written");
		ssize_t n;
		do
			n = read(dst[0], got, 1);
		while (n < 0 && errno == EAGAIN && (loop_iterate(l, 5), true));
		cr_assert_eq(n, 0, "the reader sees EOF");
	} else {
		cr_assert_not(done_flag, "a source still open is not finished");
	}
	copier_free(c);
	if (src_w >= 0)
		close(src_w);
	close(dst[0]);
	if (fifo[0])
		unlink(fifo);
	free(want);
	free(got);
	loop_free(l);
}

Test(copier, sleeps_while_reader_stalls_after_source_hung_up, .timeout = 30)
{
	stalled_reader(SRC_PIPE, false, true);
}

Test(copier, sleeps_while_reader_stalls_source_open, .timeout = 30)
{
	stalled_reader(SRC_PIPE, false, false);
}

Test(copier, sleeps_while_reader_stalls_buffered_path, .timeout = 30)
{
	stalled_reader(SRC_PIPE, true, true);
}

Test(copier, sleeps_while_process_leaves_stdin_unread, .timeout = 30)
{
	stalled_reader(SRC_FIFO, false, true);
}
