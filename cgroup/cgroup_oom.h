/* OOM notifications for one cgroup, made for a single-threaded epoll loop, as
 * containerd's pkg/oom does them: on v1 and hybrid hosts an eventfd
 * registered on memory.oom_control through cgroup.event_control; on v2 an
 * inotify watch on memory.events (and cgroup.events), reporting an OOM when
 * its oom_kill counter grows. */
#pragma once

#include "cgroup_ref.h"

#include <stdbool.h>
#include <stdint.h>

/* cgroup_oom_read's result once nothing more can come: the cgroup was
 * removed (v1, v2) or has no processes left (v2). Remove fd from epoll and
 * release the watch. */
#define CGROUP_OOM_GONE 1

struct cgroup_oom {
	int fd;            /* add to epoll for EPOLLIN; -1 when not watching */
	bool v2;           /* inotify on memory.events rather than a v1 eventfd */
	bool gone;         /* CGROUP_OOM_GONE was returned */
	uint64_t oom_kill; /* v2: the last oom_kill count seen */
	char *path;        /* owned: the memory cgroup (v1) or the cgroup2 directory */
};

/* Starts watching ref's memory cgroup; w is overwritten. -EOPNOTSUPP: no
 * memory controller for this cgroup; -ENOENT: the cgroup is gone. */
int cgroup_oom_watch(const struct cgroup_ref *ref, struct cgroup_oom *w, struct cgroup_err *err);

/* Call when w->fd is readable (a spurious call is harmless). Sets *oom when
 * the cgroup went out of memory since the last call. Returns 0 while the
 * watch goes on, CGROUP_OOM_GONE when it has ended (*oom is still valid for
 * this last call: a v2 OOM kill is often followed at once by the cgroup
 * emptying), or -errno. On v1 the eventfd also fires when the cgroup is
 * removed; like containerd, that is told apart by the cgroup no longer
 * existing, and reported as gone, not as an OOM. */
int cgroup_oom_read(struct cgroup_oom *w, bool *oom);

bool cgroup_oom_gone(const struct cgroup_oom *w);

/* Closes the fd and frees the path. NULL, zeroed, failed and released
 * watches are fine (a zeroed one's fd 0 is left alone). */
void cgroup_oom_release(struct cgroup_oom *w);
