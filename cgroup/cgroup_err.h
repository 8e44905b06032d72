/* Error detail for the cgroup library: every call returns 0 or -errno and may
 * also fill one of these with a sentence saying what was done to which file. */
#pragma once

#define CGROUP_ERR_MAX 256

struct cgroup_err {
	int code;                 /* the -errno that was returned */
	char msg[CGROUP_ERR_MAX]; /* truncated if longer */
};

/* Fills e (NULL allowed) and returns code, so callers can write
 * `return cgroup_err_set(err, -ENOENT, "...")`. */
int cgroup_err_set(struct cgroup_err *e, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
