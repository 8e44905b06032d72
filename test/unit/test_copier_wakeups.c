/* The copier's cost per wake-up under small writes (a process writing a few
 * KiB at a time, as `yes | head` or a logging app does): each wake-up for
 * input should cost one splice and no poll() — the shim's CPU for such output
 * is mostly these calls. The libc calls are counted by wrapping them here (the
 * test executable's definitions win over libc's for the copier linked in).
 * Also: every byte arrives, and a full destination is still waited for. */
#include "copier.h"
#include "loop.h"

#include <criterion/criterion.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static atomic_int splices, polls;

ssize_t splice(int fd_in, loff_t *off_in, int fd_out, loff_t *off_out, size_t len,
	       unsigned int flags)
{
	atomic_fetch_add(&splices, 1);
	return syscall(SYS_splice, fd_in, off_in, fd_out, off_out, len, flags);
}

int poll(struct pollfd *fds, nfds_t nfds, int timeout)
{
	atomic_fetch_add(&polls, 1);
	return (int)syscall(SYS_poll, fds, nfds, timeout);
}

#define CHUNKS 200
#define CHUNK 4096

struct writer {
	int fd;
	pthread_t thr;
};

/* A slow writer: one small write, then a pause the copier sleeps through. */
static void *write_slowly(void *arg)
{
	struct writer *w = arg;
	char buf[CHUNK];
	memset(buf, 'y', sizeof(buf));
	for (int i = 0; i < CHUNKS; i++) {
		cr_assert_eq(write(w->fd, buf, sizeof(buf)), (ssize_t)sizeof(buf));
		usleep(500);
	}
	close(w->fd);
	return NULL;
}

static bool done;
static void on_done(struct copier *c, void *ud)
{
	done = true;
}

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

Test(copier_wakeups, one_splice_and_no_poll_per_small_write, .timeout = 30)
{
	struct loop *l = loop_new();
	int src[2], dst[2];
	cr_assert_eq(pipe2(src, O_CLOEXEC), 0);
	cr_assert_eq(pipe2(dst, O_CLOEXEC), 0);
	fcntl(dst[1], F_SETPIPE_SZ, 1 << 20); /* room for everything: no backpressure */
	done = false;
	struct copier *c = copier_new(l, src[0], dst[1], true, on_done, NULL);
	cr_assert_not_null(c);
	struct writer w = {.fd = src[1]};
	atomic_store(&splices, 0);
	atomic_store(&polls, 0);
	pthread_create(&w.thr, NULL, write_slowly, &w);
	int wakeups = 0;
	for (int64_t end = now_ms() + 20000; !done && now_ms() < end;)
		wakeups += loop_iterate(l, 100) > 0;
	pthread_join(w.thr, NULL);
	cr_assert(done, "copier never finished");
	int s = atomic_load(&splices), p = atomic_load(&polls);
	cr_log_info("%d wake-ups, %d splices, %d polls for %d writes", wakeups, s, p, CHUNKS);
	size_t total = 0;
	char buf[65536];
	fcntl(dst[0], F_SETFL, O_NONBLOCK);
	for (ssize_t n; (n = read(dst[0], buf, sizeof(buf))) > 0;)
		total += (size_t)n;
	cr_assert_eq(total, (size_t)CHUNKS * CHUNK, "got %zu bytes", total);
	cr_assert_leq(s, wakeups + 2, "%d splices for %d wake-ups", s, wakeups);
	cr_assert_leq(p, 2, "%d polls for %d wake-ups", p, wakeups);
	close(dst[0]);
	copier_free(c);
	loop_free(l);
}

/* A destination that fills: the copier must wait for room, not spin, and
 * deliver everything once the reader drains. */
Test(copier_wakeups, full_destination_is_waited_for, .timeout = 30)
{
	struct loop *l = loop_new();
	int src[2], dst[2];
	cr_assert_eq(pipe2(src, O_CLOEXEC), 0);
	cr_assert_eq(pipe2(dst, O_CLOEXEC), 0);
	fcntl(src[1], F_SETPIPE_SZ, 1 << 20);
	char buf[65536];
	memset(buf, 'z', sizeof(buf));
	size_t want = 0;
	for (int i = 0; i < 8; i++) /* 512 KiB: eight times what dst holds */
		want += (size_t)write(src[1], buf, sizeof(buf));
	close(src[1]);
	done = false;
	struct copier *c = copier_new(l, src[0], dst[1], true, on_done, NULL);
	cr_assert_not_null(c);
	/* nobody reads yet: the copier must go quiet */
	int busy = 0;
	for (int64_t end = now_ms() + 300; now_ms() < end;)
		busy += loop_iterate(l, 20) > 0;
	cr_assert_leq(busy, 3, "%d wake-ups while the destination was full", busy);
	fcntl(dst[0], F_SETFL, O_NONBLOCK);
	size_t total = 0;
	for (int64_t end = now_ms() + 10000; now_ms() < end;) {
		loop_iterate(l, 5);
		for (ssize_t n; (n = read(dst[0], buf, sizeof(buf))) > 0;)
			total += (size_t)n;
		if (done && total == want)
			break;
	}
	cr_assert(done);
	cr_assert_eq(total, want, "got %zu of %zu", total, want);
	close(dst[0]);
	copier_free(c);
	loop_free(l);
}
