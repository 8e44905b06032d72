/* nanoctl_spawn_sync: posix_spawn with pipes on stdout/stderr, drained with
 * poll until EOF, then the child reaped; all under one deadline. */
#include "capture.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int fail(char *errbuf, size_t errlen, int rc, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int fail(char *errbuf, size_t errlen, int rc, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(errbuf, errlen, fmt, ap);
	va_end(ap);
	return rc;
}

struct capture {
	int fd;
	char *buf;
	size_t len;
};

/* One read into c; 1 at EOF (fd closed), 0 otherwise, -errno. */
static int capture_read(struct capture *c)
{
	char tmp[4096];
	ssize_t n = read(c->fd, tmp, sizeof(tmp));
	if (n < 0)
		return errno == EINTR || errno == EAGAIN ? 0 : -errno;
	if (n == 0) {
		close(c->fd);
		c->fd = -1;
		return 1;
	}
	if (c->len + (size_t)n > NANOCTL_SPAWN_OUTPUT_MAX)
		return -EFBIG;
	char *nb = realloc(c->buf, c->len + (size_t)n + 1);
	if (!nb)
		return -ENOMEM;
	memcpy(nb + c->len, tmp, (size_t)n);
	c->buf = nb;
	c->len += (size_t)n;
	c->buf[c->len] = '\0';
	return 0;
}

static void kill_and_reap(pid_t pid)
{
	kill(pid, SIGKILL); /* our own child, by its pid */
	while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
		;
}

int nanoctl_spawn_sync(const struct nanoctl_spawn *s, struct nanoctl_spawn_result *r, char *errbuf,
                       size_t errlen)
{
	memset(r, 0, sizeof(*r));
	int outp[2], errp[2] = {-1, -1};
	if (pipe2(outp, O_CLOEXEC) < 0)
		return fail(errbuf, errlen, -errno, "pipe: %s", strerror(errno));
	if (!s->combined && pipe2(errp, O_CLOEXEC) < 0) {
		int e = errno;
		close(outp[0]);
		close(outp[1]);
		return fail(errbuf, errlen, -e, "pipe: %s", strerror(e));
	}
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t at;
	posix_spawn_file_actions_init(&fa);
	posix_spawnattr_init(&at);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_adddup2(&fa, outp[1], 1);
	posix_spawn_file_actions_adddup2(&fa, s->combined ? outp[1] : errp[1], 2);
	if (s->cwd)
		posix_spawn_file_actions_addchdir_np(&fa, s->cwd);
	sigset_t none, all;
	sigemptyset(&none);
	sigfillset(&all);
	posix_spawnattr_setsigmask(&at, &none);
	posix_spawnattr_setsigdefault(&at, &all);
	posix_spawnattr_setpgroup(&at, 0); /* its own group, as containerd starts shims */
	posix_spawnattr_setflags(&at, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK |
	                                  POSIX_SPAWN_SETSIGDEF);
	pid_t pid;
	int rc = posix_spawn(&pid, s->argv[0], &fa, &at, s->argv, s->envp);
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&at);
	close(outp[1]);
	if (errp[1] >= 0)
		close(errp[1]);
	struct capture caps[2] = {{.fd = outp[0]}, {.fd = errp[0]}};
	if (rc != 0) {
		close(outp[0]);
		if (errp[0] >= 0)
			close(errp[0]);
		return fail(errbuf, errlen, -rc, "run %s: %s", s->argv[0], strerror(rc));
	}

	int64_t deadline = now_ms() + s->timeout_ms;
	int ret = 0;
	while (caps[0].fd >= 0 || caps[1].fd >= 0) {
		int64_t left = deadline - now_ms();
		if (left <= 0) {
			ret = -ETIMEDOUT;
			break;
		}
		struct pollfd p[2];
		nfds_t np = 0;
		int which[2];
		for (int i = 0; i < 2; i++)
			if (caps[i].fd >= 0) {
				p[np] = (struct pollfd){.fd = caps[i].fd, .events = POLLIN};
				which[np++] = i;
			}
		int n = poll(p, np, (int)left);
		if (n < 0 && errno != EINTR) {
			ret = fail(errbuf, errlen, -errno, "poll: %s", strerror(errno));
			break;
		}
		for (nfds_t k = 0; n > 0 && k < np; k++) {
			if (!p[k].revents)
				continue;
			int cr = capture_read(&caps[which[k]]);
			if (cr < 0) {
				ret = fail(errbuf, errlen, cr, "output of %s: %s", s->argv[0],
				           cr == -EFBIG ? "more than the bound of 1 MiB"
				                        : strerror(-cr));
				break;
			}
		}
		if (ret)
			break;
	}
	for (int i = 0; i < 2; i++)
		if (caps[i].fd >= 0)
			close(caps[i].fd);
	r->out = caps[0].buf;
	r->out_len = caps[0].len;
	r->err = caps[1].buf;
	r->err_len = caps[1].len;

	if (ret && ret != -ETIMEDOUT) {
		kill_and_reap(pid);
		return ret;
	}
	/* reap, within what is left of the deadline */
	for (;;) {
		pid_t w = waitpid(pid, &r->status, WNOHANG);
		if (w == pid)
			break;
		if (w < 0 && errno != EINTR)
			return fail(errbuf, errlen, -errno, "waitpid: %s", strerror(errno));
		if (now_ms() >= deadline) {
			kill_and_reap(pid);
			return fail(errbuf, errlen, -ETIMEDOUT, "%s did not finish within %d ms",
			            s->argv[0], s->timeout_ms);
		}
		usleep(5000);
	}
	if (ret == -ETIMEDOUT)
		return fail(errbuf, errlen, ret,
		            "%s exited, but its output stayed open for %d ms: a process it "
		            "started keeps its stdout or stderr",
		            s->argv[0], s->timeout_ms);
	return ret;
}

void nanoctl_spawn_result_free(struct nanoctl_spawn_result *r)
{
	free(r->out);
	free(r->err);
	r->out = r->err = NULL;
}
