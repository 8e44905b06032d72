/* Where a process's cgroup lives: the host's cgroup mode and, for the
 * controllers nanoshim reads, absolute directories resolved against this
 * process's own mounts (/proc/self/mountinfo). */
#pragma once

#include "cgroup_err.h"

#include <stdbool.h>
#include <sys/types.h>

/* Same split as containerd/cgroups Mode(): hybrid keeps the controllers on
 * v1, so it is read as v1. */
enum cgroup_mode {
	CGROUP_MODE_UNAVAILABLE = 0, /* no cgroup filesystem mounted */
	CGROUP_MODE_V1,              /* legacy: controllers on v1 hierarchies only */
	CGROUP_MODE_HYBRID,          /* v1 controllers plus a cgroup2 mount (…/unified) */
	CGROUP_MODE_V2,              /* unified: cgroup2 at /sys/fs/cgroup */
};

/* The v1 controllers stats and OOM watching use. */
enum cgroup_controller {
	CGROUP_MEMORY,
	CGROUP_CPU,
	CGROUP_CPUACCT,
	CGROUP_PIDS,
	CGROUP_BLKIO,
	CGROUP_HUGETLB,
	CGROUP_NCONTROLLERS,
};

struct cgroup_ref {
	enum cgroup_mode mode;
	/* Owned, malloc'd; NULL where the controller is not mounted, the
	 * process's cgroup is outside the mount, or (after
	 * cgroup_ref_from_pid) the directory does not exist. Only set in
	 * V1 and HYBRID modes. */
	char *v1[CGROUP_NCONTROLLERS];
	/* Owned, malloc'd: the cgroup2 directory, or NULL. In HYBRID mode it
	 * usually holds no controllers; stats and OOM use v1. */
	char *unified;
};

const char *cgroup_mode_name(enum cgroup_mode mode);
const char *cgroup_controller_name(enum cgroup_controller c);

/* The host's mode, from /proc/self/mountinfo. */
int cgroup_mode_detect(enum cgroup_mode *mode, struct cgroup_err *err);

/* Fills out (which the caller releases) with the cgroup of pid, as seen from
 * this process; directories that no longer exist are dropped. -ESRCH: no
 * such process; -ENOENT: its cgroup is gone; -EOPNOTSUPP: no cgroups. */
int cgroup_ref_from_pid(pid_t pid, struct cgroup_ref *out, struct cgroup_err *err);

/* The parsing behind cgroup_ref_from_pid, from a mountinfo file and a
 * /proc/<pid>/cgroup file; it does not look at the resolved directories. */
int cgroup_ref_from_files(const char *mountinfo, const char *proc_cgroup, struct cgroup_ref *out,
                          struct cgroup_err *err);

/* True while the directories that define the cgroup still exist (v1
 * controllers in V1/HYBRID modes, the unified directory in V2). */
bool cgroup_ref_exists(const struct cgroup_ref *ref);

/* Frees the paths and zeroes ref; NULL and zeroed refs are fine. */
void cgroup_ref_release(struct cgroup_ref *ref);
