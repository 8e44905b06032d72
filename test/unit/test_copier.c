/* The stream copier: every byte arrives and EOF is passed on, through splice
 * (pipe to pipe) and through the buffered path (pipe to socket, as for a pty),
 * and "finish when idle" (CloseIO) never drops what is still buffered while
 * the reader drains the destination concurrently. */
#include "copier.h"
#include "loop.h"

#include <criterion/criterion.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
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
	for (int i = 0; i < 2000 && !done_flag; i++)
		loop_iterate(l, 5);
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
	for (int i = 0; i < 2000 && !done_flag; i++)
		loop_iterate(l, 5);
	cr_assert(done_flag);
	pthread_join(s.thr, NULL);
	cr_assert_eq(s.total, 100000);
	copier_free(c);
	close(dst[0]);
	loop_free(l);
}
