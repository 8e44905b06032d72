/* Reaper (see reaper.h). Small linear tables: a process owns a handful of pids. */
#include "reaper.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

struct watch {
	pid_t pid;
	reaper_fn fn;
	void *userdata;
	struct watch *next;
};

struct unclaimed {
	pid_t pid;
	int status;
	struct timespec when;
	int64_t reaped_ns; /* reaper_now_ns() */
	struct unclaimed *next;
};

struct reaper {
	struct watch *watches;
	struct unclaimed *unclaimed;
	unsigned n_unclaimed;
	int sfd;		  /* SIGCHLD's signalfd, -1 without a loop */
	struct loop_source *src; /* sfd on the loop */
};

int reaper_exit_code(int ws)
{
	if (WIFEXITED(ws))
		return WEXITSTATUS(ws);
	if (WIFSIGNALED(ws))
		return 128 + WTERMSIG(ws);
	return 255;
}

int64_t reaper_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_BOOTTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int64_t reaper_start_ns(pid_t pid)
{
	char path[64], buf[1024];
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	int err = errno;
	close(fd);
	if (n <= 0)
		return n < 0 ? -err : -EBADMSG;
	buf[n] = '\0';
	/* "pid (comm) state ppid ...": comm may hold anything, so count the
	 * fields after its last ')'; starttime is field 22, the 20th after it. */
	char *p = strrchr(buf, ')');
	if (!p)
		return -EBADMSG;
	for (int field = 2; field < 22; field++) {
		p = strchr(p + 1, ' ');
		if (!p)
			return -EBADMSG;
	}
	unsigned long long ticks = strtoull(p + 1, NULL, 10);
	long hz = sysconf(_SC_CLK_TCK);
	if (hz <= 0)
		hz = 100;
	return (int64_t)(ticks * (1000000000ULL / (unsigned long long)hz));
}

static void discard_exit(pid_t pid, int status, const struct timespec *when, void *ud)
{
}

void reaper_discard(struct reaper *r, pid_t pid)
{
	reaper_unwatch(r, pid);
	reaper_watch(r, pid, discard_exit, NULL);
}

static void drop_unclaimed(struct reaper *r, pid_t pid)
{
	for (struct unclaimed **pp = &r->unclaimed; *pp;) {
		struct unclaimed *u = *pp;
		if (u->pid == pid) {
			*pp = u->next;
			free(u);
			r->n_unclaimed--;
		} else {
			pp = &u->next;
		}
	}
}

int reaper_claim(struct reaper *r, pid_t pid, int64_t since_ns, bool *exited, int *status, struct timespec *when)
{
	*exited = false;
	int64_t started = reaper_start_ns(pid);
	long hz = sysconf(_SC_CLK_TCK);
	int64_t tick = 1000000000LL / (hz > 0 ? hz : 100);
	/* start times are whole ticks, rounded down: one tick of slack */
	if (started >= 0 && started + tick > since_ns) {
		int fd = (int)syscall(SYS_pidfd_open, pid, 0);
		if (fd < 0 && errno != ENOSYS) /* it went between the two reads */
			goto gone;
		if (fd >= 0)
			fcntl(fd, F_SETFD, FD_CLOEXEC);
		/* the pid is this process's until we reap it: older exits of
		 * the same pid belong to processes long gone */
		drop_unclaimed(r, pid);
		return fd >= 0 ? fd : -ENOSYS;
	}
gone:
	for (struct unclaimed **pp = &r->unclaimed; *pp; pp = &(*pp)->next) {
		struct unclaimed *u = *pp;
		if (u->pid == pid && u->reaped_ns >= since_ns) {
			*pp = u->next;
			*status = u->status;
			*when = u->when;
			free(u);
			r->n_unclaimed--;
			*exited = true;
			break;
		}
	}
	drop_unclaimed(r, pid); /* whatever is left is older than the call */
	return -ESRCH;
}

int reaper_watch(struct reaper *r, pid_t pid, reaper_fn fn, void *userdata)
{
	struct watch *w = calloc(1, sizeof(*w));
	if (!w)
		return -ENOMEM;
	*w = (struct watch){.pid = pid, .fn = fn, .userdata = userdata, .next = r->watches};
	r->watches = w;
	return 0;
}

void reaper_unwatch(struct reaper *r, pid_t pid)
{
	for (struct watch **pp = &r->watches; *pp; pp = &(*pp)->next) {
		if ((*pp)->pid == pid) {
			struct watch *w = *pp;
			*pp = w->next;
			free(w);
			return;
		}
	}
}

static void keep_unclaimed(struct reaper *r, pid_t pid, int status, const struct timespec *when)
{
	int64_t now = reaper_now_ns();
	/* newest first: cut the list where entries grow too old to claim */
	for (struct unclaimed **pp = &r->unclaimed; *pp; pp = &(*pp)->next) {
		if (now - (*pp)->reaped_ns > REAPER_UNCLAIMED_TTL_NS) {
			while (*pp) {
				struct unclaimed *u = *pp;
				*pp = u->next;
				free(u);
				r->n_unclaimed--;
			}
			break;
		}
	}
	if (r->n_unclaimed >= REAPER_MAX_UNCLAIMED) {
		/* Drop the oldest: an orphan of the container we never learn about. */
		struct unclaimed **pp = &r->unclaimed;
		while ((*pp)->next)
			pp = &(*pp)->next;
		free(*pp);
		*pp = NULL;
		r->n_unclaimed--;
	}
	struct unclaimed *u = calloc(1, sizeof(*u));
	if (!u)
		return;
	*u = (struct unclaimed){.pid = pid, .status = status, .when = *when, .reaped_ns = now,
				.next = r->unclaimed};
	r->unclaimed = u;
	r->n_unclaimed++;
}

void reaper_reap(struct reaper *r)
{
	for (;;) {
		int ws;
		pid_t pid = waitpid(-1, &ws, WNOHANG);
		if (pid <= 0)
			return;
		struct timespec when;
		clock_gettime(CLOCK_REALTIME, &when);
		int status = reaper_exit_code(ws);
		struct watch *w = r->watches;
		while (w && w->pid != pid)
			w = w->next;
		if (!w) {
			keep_unclaimed(r, pid, status, &when);
			continue;
		}
		reaper_fn fn = w->fn;
		void *ud = w->userdata;
		reaper_unwatch(r, pid);
		fn(pid, status, &when, ud);
	}
}

static void on_sigchld(struct loop_source *src, int fd, uint32_t events, void *ud)
{
	struct signalfd_siginfo si;
	while (read(fd, &si, sizeof(si)) == sizeof(si))
		; /* one waitpid loop serves every SIGCHLD queued */
	reaper_reap(ud);
}

struct reaper *reaper_new(struct loop *l)
{
	struct reaper *r = calloc(1, sizeof(*r));
	if (!r)
		return NULL;
	r->sfd = -1;
	if (!l)
		return r;
	sigset_t mask;
	sigemptyset(&mask);
	sigaddset(&mask, SIGCHLD);
	/* a SIGCHLD that is not blocked never reaches the signalfd */
	if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0)
		goto fail;
	r->sfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
	if (r->sfd < 0)
		goto fail;
	r->src = loop_add_io(l, r->sfd, EPOLLIN, on_sigchld, r);
	if (!r->src)
		goto fail;
	reaper_reap(r); /* anything that exited before the signalfd existed */
	return r;
fail:;
	int err = errno;
	reaper_free(r);
	errno = err;
	return NULL;
}

void reaper_free(struct reaper *r)
{
	if (!r)
		return;
	loop_io_remove(r->src);
	if (r->sfd >= 0)
		close(r->sfd);
	while (r->watches) {
		struct watch *w = r->watches;
		r->watches = w->next;
		free(w);
	}
	while (r->unclaimed) {
		struct unclaimed *u = r->unclaimed;
		r->unclaimed = u->next;
		free(u);
	}
	free(r);
}
