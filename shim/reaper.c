/* Reaper (see reaper.h). Small linear tables: a shim owns a handful of pids. */
#include "reaper.h"
#include "log.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

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
	struct unclaimed *next;
};

static struct watch *watches;
static struct unclaimed *unclaimed;
static unsigned n_unclaimed;

int reaper_exit_code(int ws)
{
	if (WIFEXITED(ws))
		return WEXITSTATUS(ws);
	if (WIFSIGNALED(ws))
		return 128 + WTERMSIG(ws);
	return 255;
}

int reaper_watch(pid_t pid, reaper_fn fn, void *userdata)
{
	struct watch *w = calloc(1, sizeof(*w));
	if (!w)
		return -ENOMEM;
	*w = (struct watch){.pid = pid, .fn = fn, .userdata = userdata, .next = watches};
	watches = w;
	return 0;
}

void reaper_unwatch(pid_t pid)
{
	for (struct watch **pp = &watches; *pp; pp = &(*pp)->next) {
		if ((*pp)->pid == pid) {
			struct watch *w = *pp;
			*pp = w->next;
			free(w);
			return;
		}
	}
}

bool reaper_take_unclaimed(pid_t pid, int *status, struct timespec *when)
{
	for (struct unclaimed **pp = &unclaimed; *pp; pp = &(*pp)->next) {
		if ((*pp)->pid == pid) {
			struct unclaimed *u = *pp;
			*pp = u->next;
			*status = u->status;
			*when = u->when;
			free(u);
			n_unclaimed--;
			return true;
		}
	}
	return false;
}

static void keep_unclaimed(pid_t pid, int status, const struct timespec *when)
{
	if (n_unclaimed >= REAPER_MAX_UNCLAIMED) {
		/* Drop the oldest: an orphan of the container we never learn about. */
		struct unclaimed **pp = &unclaimed;
		while ((*pp)->next)
			pp = &(*pp)->next;
		free(*pp);
		*pp = NULL;
		n_unclaimed--;
	}
	struct unclaimed *u = calloc(1, sizeof(*u));
	if (!u)
		return;
	*u = (struct unclaimed){.pid = pid, .status = status, .when = *when, .next = unclaimed};
	unclaimed = u;
	n_unclaimed++;
}

void reaper_reap(void)
{
	for (;;) {
		int ws;
		pid_t pid = waitpid(-1, &ws, WNOHANG);
		if (pid <= 0)
			return;
		struct timespec when;
		clock_gettime(CLOCK_REALTIME, &when);
		int status = reaper_exit_code(ws);
		struct watch *w = watches;
		while (w && w->pid != pid)
			w = w->next;
		if (!w) {
			keep_unclaimed(pid, status, &when);
			continue;
		}
		reaper_fn fn = w->fn;
		void *ud = w->userdata;
		reaper_unwatch(pid);
		fn(pid, status, &when, ud);
	}
}
