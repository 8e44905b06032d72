/* Finding a process's cgroup: mode detection and path resolution from
 * /proc/self/mountinfo and /proc/<pid>/cgroup (see cgroup_ref.h). */
#include "cgroup_ref.h"
#include "cgroup_file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define CGROUP_ROOT "/sys/fs/cgroup"
#define CGROUP_UNIFIED_HYBRID "/sys/fs/cgroup/unified"

static const char *const controller_names[CGROUP_NCONTROLLERS] = {
    [CGROUP_MEMORY] = "memory", [CGROUP_CPU] = "cpu",     [CGROUP_CPUACCT] = "cpuacct",
    [CGROUP_PIDS] = "pids",     [CGROUP_BLKIO] = "blkio", [CGROUP_HUGETLB] = "hugetlb",
};

/* Every v1 controller the kernel knows: a v1 mount carrying any of them means
 * controllers live on v1 (a lone name=systemd hierarchy does not). */
static const char *const v1_kernel_controllers[] = {
    "cpu",      "cpuacct", "cpuset",     "memory",  "devices", "freezer", "net_cls",
    "net_prio", "blkio",   "perf_event", "hugetlb", "pids",    "rdma",    "misc",
};

const char *cgroup_mode_name(enum cgroup_mode mode)
{
	switch (mode) {
	case CGROUP_MODE_V1:
		return "v1";
	case CGROUP_MODE_HYBRID:
		return "hybrid";
	case CGROUP_MODE_V2:
		return "v2";
	default:
		return "unavailable";
	}
}

const char *cgroup_controller_name(enum cgroup_controller c)
{
	return c >= 0 && c < CGROUP_NCONTROLLERS ? controller_names[c] : "?";
}

struct mount {
	char *point; /* where it is mounted */
	char *root;  /* which directory of the hierarchy is mounted there */
};

struct scan {
	struct mount v1[CGROUP_NCONTROLLERS];
	struct mount v2;
	int v2_rank; /* prefer /sys/fs/cgroup, then …/unified, then the first */
	bool any_v1;
	/* from /proc/<pid>/cgroup */
	char *v1_path[CGROUP_NCONTROLLERS];
	char *v2_path;
};

static void mount_free(struct mount *m)
{
	free(m->point);
	free(m->root);
	m->point = m->root = NULL;
}

static void scan_free(struct scan *s)
{
	for (int i = 0; i < CGROUP_NCONTROLLERS; i++) {
		mount_free(&s->v1[i]);
		free(s->v1_path[i]);
	}
	mount_free(&s->v2);
	free(s->v2_path);
}

static int mount_set(struct mount *m, const char *point, const char *root)
{
	char *p = strdup(point), *r = strdup(root);

	if (!p || !r) {
		free(p);
		free(r);
		return -ENOMEM;
	}
	mount_free(m);
	m->point = p;
	m->root = r;
	return 0;
}

/* mountinfo escapes space, tab, newline and backslash as \ooo. */
static void unescape_octal(char *s)
{
	char *w = s;

	for (char *r = s; *r;) {
		if (r[0] == '\\' && r[1] >= '0' && r[1] <= '3' && r[2] >= '0' && r[2] <= '7' &&
		    r[3] >= '0' && r[3] <= '7') {
			*w++ = (char)((r[1] - '0') << 6 | (r[2] - '0') << 3 | (r[3] - '0'));
			r += 4;
		} else {
			*w++ = *r++;
		}
	}
	*w = '\0';
}

static int controller_index(const char *name)
{
	for (int i = 0; i < CGROUP_NCONTROLLERS; i++)
		if (strcmp(controller_names[i], name) == 0)
			return i;
	return -1;
}

static bool is_v1_controller(const char *name)
{
	for (size_t i = 0; i < sizeof(v1_kernel_controllers) / sizeof(v1_kernel_controllers[0]);
	     i++)
		if (strcmp(v1_kernel_controllers[i], name) == 0)
			return true;
	return false;
}

/* "36 25 0:31 / /sys/fs/cgroup/memory rw,relatime shared:14 - cgroup cgroup rw,memory" */
static int mountinfo_line(char *line, void *ctx)
{
	struct scan *s = ctx;
	char *root = NULL, *point = NULL, *fstype = NULL, *super = NULL, *tok, *p = line;
	int i = 0, after = -1, r;

	while ((tok = strsep(&p, " "))) {
		if (i == 3)
			root = tok;
		else if (i == 4)
			point = tok;
		else if (i >= 6 && after < 0 && strcmp(tok, "-") == 0)
			after = 0;
		else if (after >= 0) {
			if (after == 0)
				fstype = tok;
			else if (after == 2)
				super = tok;
			after++;
		}
		i++;
	}
	if (!root || !point || !fstype || !super)
		return 0; /* not a mount line we understand; containerd skips those too */
	if (strcmp(fstype, "cgroup2") == 0) {
		int rank;

		unescape_octal(point);
		unescape_octal(root);
		rank = strcmp(point, CGROUP_ROOT) == 0             ? 3
		       : strcmp(point, CGROUP_UNIFIED_HYBRID) == 0 ? 2
		                                                   : 1;
		if (rank > s->v2_rank) {
			r = mount_set(&s->v2, point, root);
			if (r < 0)
				return r;
			s->v2_rank = rank;
		}
		return 0;
	}
	if (strcmp(fstype, "cgroup") != 0)
		return 0;
	unescape_octal(point);
	unescape_octal(root);
	while ((tok = strsep(&super, ","))) {
		int c;

		if (is_v1_controller(tok))
			s->any_v1 = true;
		c = controller_index(tok);
		/* The first mount of a hierarchy wins, as in containerd. */
		if (c >= 0 && !s->v1[c].point) {
			r = mount_set(&s->v1[c], point, root);
			if (r < 0)
				return r;
		}
	}
	return 0;
}

/* "4:memory:/kubepods/pod1/abc", "1:cpu,cpuacct:/x", "0::/system.slice/x" */
static int proc_cgroup_line(char *line, void *ctx)
{
	struct scan *s = ctx;
	char *ctrls, *path, *tok;

	ctrls = strchr(line, ':');
	if (!ctrls)
		return -EINVAL;
	*ctrls++ = '\0';
	path = strchr(ctrls, ':');
	if (!path)
		return -EINVAL;
	*path++ = '\0';
	if (*ctrls == '\0') {
		char *dup = strdup(path);

		if (!dup)
			return -ENOMEM;
		free(s->v2_path);
		s->v2_path = dup;
		return 0;
	}
	while ((tok = strsep(&ctrls, ","))) {
		int c = controller_index(tok);
		char *dup;

		if (c < 0)
			continue;
		dup = strdup(path);
		if (!dup)
			return -ENOMEM;
		free(s->v1_path[c]);
		s->v1_path[c] = dup;
	}
	return 0;
}

static enum cgroup_mode scan_mode(const struct scan *s)
{
	if (s->v2_rank == 3)
		return CGROUP_MODE_V2;
	if (s->any_v1)
		return s->v2.point ? CGROUP_MODE_HYBRID : CGROUP_MODE_V1;
	return s->v2.point ? CGROUP_MODE_V2 : CGROUP_MODE_UNAVAILABLE;
}

static bool has_dotdot(const char *path)
{
	for (const char *p = path; (p = strstr(p, "..")); p += 2)
		if ((p == path || p[-1] == '/') && (p[2] == '\0' || p[2] == '/'))
			return true;
	return false;
}

/* The cgroup path as the kernel shows it is relative to the hierarchy's root
 * (of our cgroup namespace); the mount may show only a subtree of it. Sets
 * *out to NULL when the path is not reachable through this mount. */
static int resolve(const struct mount *m, const char *path, char **out)
{
	const char *rel = path;
	size_t rl;

	*out = NULL;
	if (!m->point || !path || path[0] != '/')
		return 0;
	rl = strlen(m->root);
	if (strcmp(m->root, "/") != 0) {
		if (strncmp(path, m->root, rl) != 0 || (path[rl] != '\0' && path[rl] != '/'))
			return 0;
		rel = path + rl;
	}
	if (has_dotdot(rel))
		return 0;
	while (*rel == '/')
		rel++;
	if (*rel == '\0')
		*out = strdup(m->point);
	else if (asprintf(out, "%s%s%s", m->point, m->point[strlen(m->point) - 1] == '/' ? "" : "/",
	                  rel) < 0)
		*out = NULL;
	return *out ? 0 : -ENOMEM;
}

static int scan_mountinfo(const char *mountinfo, struct scan *s, struct cgroup_err *err)
{
	int r = cgroup_file_lines(AT_FDCWD, mountinfo, mountinfo_line, s);

	if (r < 0)
		return cgroup_err_set(err, r, "read %s: %s", mountinfo, strerror(-r));
	return 0;
}

int cgroup_mode_detect(enum cgroup_mode *mode, struct cgroup_err *err)
{
	struct scan s = {0};
	int r = scan_mountinfo("/proc/self/mountinfo", &s, err);

	if (r == 0)
		*mode = scan_mode(&s);
	scan_free(&s);
	return r;
}

int cgroup_ref_from_files(const char *mountinfo, const char *proc_cgroup, struct cgroup_ref *out,
                          struct cgroup_err *err)
{
	struct scan s = {0};
	int r;

	memset(out, 0, sizeof(*out));
	r = scan_mountinfo(mountinfo, &s, err);
	if (r < 0)
		goto done;
	out->mode = scan_mode(&s);
	if (out->mode == CGROUP_MODE_UNAVAILABLE) {
		r = cgroup_err_set(err, -EOPNOTSUPP, "no cgroup filesystem in %s", mountinfo);
		goto done;
	}
	r = cgroup_file_lines(AT_FDCWD, proc_cgroup, proc_cgroup_line, &s);
	if (r < 0) {
		cgroup_err_set(err, r, "read %s: %s", proc_cgroup,
		               r == -EINVAL ? "malformed line" : strerror(-r));
		goto done;
	}
	if (out->mode != CGROUP_MODE_V2) {
		for (int i = 0; i < CGROUP_NCONTROLLERS; i++) {
			r = resolve(&s.v1[i], s.v1_path[i], &out->v1[i]);
			if (r < 0)
				goto nomem;
		}
	}
	r = resolve(&s.v2, s.v2_path, &out->unified);
	if (r < 0)
		goto nomem;
	goto done;
nomem:
	cgroup_err_set(err, r, "resolve cgroup paths of %s: out of memory", proc_cgroup);
done:
	scan_free(&s);
	if (r < 0)
		cgroup_ref_release(out);
	return r;
}

static bool dir_exists(const char *path)
{
	struct stat st;

	return path && lstat(path, &st) == 0;
}

int cgroup_ref_from_pid(pid_t pid, struct cgroup_ref *out, struct cgroup_err *err)
{
	char proc[64];
	bool any = false;
	int r;

	snprintf(proc, sizeof(proc), "/proc/%d/cgroup", (int)pid);
	r = cgroup_ref_from_files("/proc/self/mountinfo", proc, out, err);
	if (r == -ENOENT && access(proc, F_OK) != 0)
		return cgroup_err_set(err, -ESRCH, "cgroup of pid %d: no such process", (int)pid);
	if (r < 0)
		return r;
	for (int i = 0; i < CGROUP_NCONTROLLERS; i++) {
		if (out->v1[i] && !dir_exists(out->v1[i])) {
			free(out->v1[i]);
			out->v1[i] = NULL;
		}
		any |= out->v1[i] != NULL;
	}
	if (out->unified && !dir_exists(out->unified)) {
		free(out->unified);
		out->unified = NULL;
	}
	if (out->mode == CGROUP_MODE_V2)
		any = out->unified != NULL;
	if (!any) {
		enum cgroup_mode mode = out->mode;

		cgroup_ref_release(out);
		return cgroup_err_set(err, -ENOENT, "cgroup of pid %d (%s mode) does not exist",
		                      (int)pid, cgroup_mode_name(mode));
	}
	return 0;
}

bool cgroup_ref_exists(const struct cgroup_ref *ref)
{
	if (ref->mode == CGROUP_MODE_V2)
		return dir_exists(ref->unified);
	for (int i = 0; i < CGROUP_NCONTROLLERS; i++)
		if (dir_exists(ref->v1[i]))
			return true;
	return false;
}

void cgroup_ref_release(struct cgroup_ref *ref)
{
	if (!ref)
		return;
	for (int i = 0; i < CGROUP_NCONTROLLERS; i++)
		free(ref->v1[i]);
	free(ref->unified);
	memset(ref, 0, sizeof(*ref));
}
