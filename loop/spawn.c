/* Children with a clean signal state, their stdio mapped and optionally
 * captured (see spawn.h). One capture reader serves both the loop's callbacks
 * and spawn_sync's poll. */
#include "spawn.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

/* How much one wake-up of the loop reads from one stream before it lets the
 * other sources run (epoll is level-triggered: the rest comes next turn). */
#define CAPTURE_BURST (256u << 10)

void spawn_attr_init(posix_spawnattr_t *at, short extra_flags)
{
	sigset_t none, dflt;
	sigemptyset(&none);
	sigemptyset(&dflt);
	sigaddset(&dflt, SIGCHLD);
	sigaddset(&dflt, SIGTERM);
	sigaddset(&dflt, SIGINT);
	sigaddset(&dflt, SIGPIPE);
	posix_spawnattr_init(at);
	posix_spawnattr_setsigmask(at, &none);
	posix_spawnattr_setsigdefault(at, &dflt);
	posix_spawnattr_setflags(at, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | extra_flags);
}

struct capture {
	struct loop_source *src; /* spawn_async only */
	int fd;			 /* our (non-blocking) read end, -1 once at EOF */
	char *buf;		 /* up to SPAWN_OUTPUT_MAX bytes and a NUL */
	size_t len, cap;
};

/* Reads what the stream has, at most burst bytes: 1 while more may come, 0 at
 * EOF (or a read error, which ends the stream the same way). Past
 * SPAWN_OUTPUT_MAX (or when memory runs out) bytes are read and dropped, so the
 * child never blocks on a full pipe. */
static int capture_read(struct capture *cap, size_t burst)
{
	char sink[4096];
	for (size_t taken = 0; taken < burst;) {
		if (cap->cap - cap->len < sizeof(sink) + 1 && cap->cap < SPAWN_OUTPUT_MAX + 1) {
			size_t ncap = cap->cap ? cap->cap * 2 : 8192;
			if (ncap > SPAWN_OUTPUT_MAX + 1)
				ncap = SPAWN_OUTPUT_MAX + 1;
			char *nb = realloc(cap->buf, ncap);
			if (nb) {
				cap->buf = nb;
				cap->cap = ncap;
			}
		}
		size_t room = cap->cap > cap->len + 1 ? cap->cap - cap->len - 1 : 0;
		char *dst = room ? cap->buf + cap->len : sink;
		ssize_t r = read(cap->fd, dst, room ? room : sizeof(sink));
		if (r > 0) {
			if (room)
				cap->len += (size_t)r;
			taken += (size_t)r;
			continue;
		}
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0 && errno == EAGAIN)
			return 1;
		return 0;
	}
	return 1;
}

static void capture_close(struct capture *cap)
{
	loop_io_remove(cap->src);
	cap->src = NULL;
	if (cap->fd >= 0)
		close(cap->fd);
	cap->fd = -1;
}

/* Opens the pipe of a captured stream: our end non-blocking in cap->fd, the
 * child's end in *child_end (CLOEXEC: posix_spawn dups it into place). */
static int capture_open(struct capture *cap, int *child_end)
{
	int p[2];
	if (pipe2(p, O_CLOEXEC) < 0)
		return -errno;
	if (fcntl(p[0], F_SETFL, O_NONBLOCK) < 0) {
		int err = errno;
		close(p[0]);
		close(p[1]);
		return -err;
	}
	cap->fd = p[0];
	*child_end = p[1];
	return 0;
}

/* posix_spawnp with fds as the child's 0, 1, 2 (-1: /dev/null). */
static int start_child(const struct spawn_req *req, const int fds[3], pid_t *pid)
{
	int child[3], moved[3] = {-1, -1, -1}, devnull = -1, rc = 0;
	for (int i = 0; i < 3; i++) {
		child[i] = fds[i];
		if (child[i] < 0 && devnull < 0 &&
		    (devnull = open("/dev/null", O_RDWR | O_CLOEXEC)) < 0)
			return -errno;
		if (child[i] < 0)
			child[i] = devnull;
	}
	/* The dup2s run in order 0, 1, 2: a source that is itself one of 0..2,
	 * other than its own target, would be overwritten by an earlier one. */
	for (int i = 0; i < 3; i++) {
		if (child[i] < 3 && child[i] != i) {
			moved[i] = fcntl(child[i], F_DUPFD_CLOEXEC, 3);
			if (moved[i] < 0) {
				rc = -errno;
				goto out;
			}
			child[i] = moved[i];
		}
	}
	posix_spawn_file_actions_t fa;
	if ((rc = -posix_spawn_file_actions_init(&fa)) < 0)
		goto out;
	for (int i = 0; i < 3 && rc == 0; i++)
		rc = -posix_spawn_file_actions_adddup2(&fa, child[i], i);
	if (rc == 0 && req->cwd)
		rc = -posix_spawn_file_actions_addchdir_np(&fa, req->cwd);
	if (rc == 0) {
		posix_spawnattr_t at;
		spawn_attr_init(&at, (req->flags & SPAWN_SETSID) ? POSIX_SPAWN_SETSID : 0);
		rc = -posix_spawnp(pid, req->argv[0], &fa, &at, (char *const *)req->argv,
				   req->envp ? (char *const *)req->envp : environ);
		posix_spawnattr_destroy(&at);
	}
	posix_spawn_file_actions_destroy(&fa);
out:
	for (int i = 0; i < 3; i++)
		if (moved[i] >= 0)
			close(moved[i]);
	if (devnull >= 0)
		close(devnull);
	return rc;
}

/* Opens the captures req asks for, and fills child[] with the fds the child gets. */
static int open_captures(const struct spawn_req *req, struct capture caps[2], int child[3],
			 int ends[2])
{
	for (int i = 0; i < 3; i++)
		child[i] = req->fds[i];
	static const unsigned flag[2] = {SPAWN_CAPTURE_STDOUT, SPAWN_CAPTURE_STDERR};
	for (int i = 0; i < 2; i++) {
		if (!(req->flags & flag[i]))
			continue;
		int rc = capture_open(&caps[i], &ends[i]);
		if (rc < 0)
			return rc;
		child[i + 1] = ends[i];
	}
	return 0;
}

static void close_ends(int ends[2])
{
	for (int i = 0; i < 2; i++) {
		if (ends[i] >= 0)
			close(ends[i]);
		ends[i] = -1;
	}
}

/* ---- asynchronous ------------------------------------------------------ */

struct spawn_call {
	pid_t pid;
	int status;
	bool exited;
	struct capture caps[2]; /* stdout, stderr */
	spawn_done_fn done;
	void *userdata;
};

static void call_free(struct spawn_call *c)
{
	for (int i = 0; i < 2; i++) {
		capture_close(&c->caps[i]);
		free(c->caps[i].buf);
	}
	free(c);
}

static void finish_if_done(struct spawn_call *c)
{
	if (!c->exited || c->caps[0].fd >= 0 || c->caps[1].fd >= 0)
		return;
	const char *text[2];
	for (int i = 0; i < 2; i++) {
		struct capture *cap = &c->caps[i];
		if (cap->buf)
			cap->buf[cap->len] = '\0';
		text[i] = cap->buf ? cap->buf : "";
	}
	c->done(c->pid, c->status, text[0], c->caps[0].len, text[1], c->caps[1].len, c->userdata);
	call_free(c);
}

static void on_capture(struct loop_source *src, int fd, uint32_t events, void *ud)
{
	struct spawn_call *c = ud;
	struct capture *cap = src == c->caps[0].src ? &c->caps[0] : &c->caps[1];
	if (capture_read(cap, CAPTURE_BURST))
		return;
	capture_close(cap);
	finish_if_done(c);
}

static void on_exit_cb(pid_t pid, int status, const struct timespec *when, void *ud)
{
	struct spawn_call *c = ud;
	c->status = status;
	c->exited = true;
	finish_if_done(c);
}

pid_t spawn_async(struct loop *l, struct reaper *r, const struct spawn_req *req,
		  spawn_done_fn done, void *userdata)
{
	struct spawn_call *c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->done = done;
	c->userdata = userdata;
	c->caps[0].fd = c->caps[1].fd = -1;
	int child[3], ends[2] = {-1, -1};
	int rc = open_captures(req, c->caps, child, ends);
	for (int i = 0; i < 2 && rc == 0; i++) {
		if (c->caps[i].fd < 0)
			continue;
		c->caps[i].src = loop_add_io(l, c->caps[i].fd, EPOLLIN, on_capture, c);
		if (!c->caps[i].src)
			rc = errno ? -errno : -ENOMEM;
	}
	pid_t pid = 0;
	if (rc == 0)
		rc = start_child(req, child, &pid);
	close_ends(ends); /* the child has its copies: EOF comes when it (and its heirs) close them */
	if (rc == 0 && (rc = reaper_watch(r, pid, on_exit_cb, c)) < 0) {
		/* a child nobody could announce: stop it rather than let it run unseen */
		kill(pid, SIGKILL);
	}
	if (rc < 0) {
		call_free(c);
		return rc;
	}
	c->pid = pid;
	return pid;
}

/* ---- synchronous ------------------------------------------------------- */

/* Gives a captured stream to the caller (a string even when empty): 0, or
 * -ENOMEM when not even an empty one could be made. */
static int hand_out(struct capture *cap, bool captured, char **buf, size_t *len)
{
	if (buf)
		*buf = NULL;
	if (len)
		*len = 0;
	if (!captured || !buf)
		return 0;
	if (!cap->buf && !(cap->buf = calloc(1, 1)))
		return -ENOMEM;
	cap->buf[cap->len] = '\0';
	*buf = cap->buf;
	cap->buf = NULL;
	if (len)
		*len = cap->len;
	return 0;
}

int spawn_sync(const struct spawn_req *req, char **out, size_t *outlen, char **err,
	       size_t *errlen)
{
	struct capture caps[2] = {{.fd = -1}, {.fd = -1}};
	int child[3], ends[2] = {-1, -1};
	pid_t pid = 0;
	hand_out(&caps[0], false, out, outlen);
	hand_out(&caps[1], false, err, errlen);
	int rc = open_captures(req, caps, child, ends);
	if (rc == 0)
		rc = start_child(req, child, &pid);
	close_ends(ends);
	/* both streams at once: a child blocked on a full stderr never closes stdout */
	while (rc == 0 && (caps[0].fd >= 0 || caps[1].fd >= 0)) {
		struct pollfd pfd[2];
		int n = 0;
		for (int i = 0; i < 2; i++)
			if (caps[i].fd >= 0)
				pfd[n++] = (struct pollfd){.fd = caps[i].fd, .events = POLLIN};
		if (poll(pfd, (nfds_t)n, -1) < 0) {
			if (errno == EINTR)
				continue;
			rc = -errno; /* cannot happen short of EFAULT/ENOMEM; the waitpid below still runs */
			break;
		}
		for (int i = 0; i < n; i++) {
			struct capture *cap = pfd[i].fd == caps[0].fd ? &caps[0] : &caps[1];
			if (pfd[i].revents && !capture_read(cap, SIZE_MAX))
				capture_close(cap);
		}
	}
	for (int i = 0; i < 2; i++)
		capture_close(&caps[i]);
	if (pid > 0) {
		int ws;
		pid_t w;
		while ((w = waitpid(pid, &ws, 0)) < 0 && errno == EINTR)
			;
		if (rc == 0)
			rc = w < 0 ? -errno : reaper_exit_code(ws);
	}
	if (rc >= 0 && (hand_out(&caps[0], req->flags & SPAWN_CAPTURE_STDOUT, out, outlen) < 0 ||
			hand_out(&caps[1], req->flags & SPAWN_CAPTURE_STDERR, err, errlen) < 0)) {
		if (out) {
			free(*out);
			*out = NULL;
		}
		if (outlen)
			*outlen = 0;
		rc = -ENOMEM;
	}
	free(caps[0].buf);
	free(caps[1].buf);
	return rc;
}
