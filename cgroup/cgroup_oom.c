/* OOM watching without threads (see cgroup_oom.h); the v1 half follows
 * containerd/cgroups memory.go memoryEvent and pkg/oom/v1, the v2 half
 * cgroups v2 MemoryEventFD/waitForEvents and pkg/oom/v2. */
#include "cgroup_oom.h"
#include "cgroup_file.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

/* Room for a batch of inotify events on files (they carry no name). */
#define INOTIFY_BUF (16 * sizeof(struct inotify_event))

static int watch_v1(const char *dir, struct cgroup_oom *w, struct cgroup_err *err)
{
	char path[PATH_MAX], line[64];
	int efd = -1, ofd = -1, cfd = -1, r = 0;
	ssize_t n;

	if ((size_t)snprintf(path, sizeof(path), "%s/memory.oom_control", dir) >= sizeof(path))
		return cgroup_err_set(err, -ENAMETOOLONG, "oom watch: path too long: %s", dir);
	ofd = open(path, O_RDONLY | O_CLOEXEC);
	if (ofd < 0) {
		r = cgroup_err_set(err, -errno, "oom watch: open %s: %s", path, strerror(errno));
		goto out;
	}
	efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (efd < 0) {
		r = cgroup_err_set(err, -errno, "oom watch: eventfd: %s", strerror(errno));
		goto out;
	}
	snprintf(path, sizeof(path), "%s/cgroup.event_control", dir);
	cfd = open(path, O_WRONLY | O_CLOEXEC);
	if (cfd < 0) {
		r = cgroup_err_set(err, -errno, "oom watch: open %s: %s", path, strerror(errno));
		goto out;
	}
	/* "<eventfd> <fd of memory.oom_control>": the kernel takes its own
	 * reference to both, so the oom_control fd is closed below. */
	snprintf(line, sizeof(line), "%d %d", efd, ofd);
	do
		n = write(cfd, line, strlen(line));
	while (n < 0 && errno == EINTR);
	if (n < 0) {
		r = cgroup_err_set(err, -errno, "oom watch: write %s: %s", path, strerror(errno));
		goto out;
	}
	w->fd = efd;
	efd = -1;
out:
	if (efd >= 0)
		close(efd);
	if (ofd >= 0)
		close(ofd);
	if (cfd >= 0)
		close(cfd);
	return r;
}

static int watch_v2(const char *dir, struct cgroup_oom *w, struct cgroup_err *err)
{
	static const char *const files[] = {"memory.events", "cgroup.events"};
	char path[PATH_MAX];
	int fd, r;

	fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (fd < 0)
		return cgroup_err_set(err, -errno, "oom watch: inotify: %s", strerror(errno));
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, files[i]) >= sizeof(path)) {
			close(fd);
			return cgroup_err_set(err, -ENAMETOOLONG, "oom watch: path too long: %s",
			                      dir);
		}
		if (inotify_add_watch(fd, path, IN_MODIFY) < 0) {
			r = -errno;
			close(fd);
			if (r == -ENOENT && i == 0 && access(dir, F_OK) == 0)
				return cgroup_err_set(
				    err, -EOPNOTSUPP,
				    "oom watch: memory controller not enabled in %s", dir);
			return cgroup_err_set(err, r, "oom watch: watch %s: %s", path,
			                      strerror(-r));
		}
	}
	w->fd = fd;
	return 0;
}

int cgroup_oom_watch(const struct cgroup_ref *ref, struct cgroup_oom *w, struct cgroup_err *err)
{
	const char *dir;
	int r;

	memset(w, 0, sizeof(*w));
	w->fd = -1;
	w->v2 = ref->mode == CGROUP_MODE_V2;
	dir = w->v2 ? ref->unified : ref->v1[CGROUP_MEMORY];
	if (ref->mode == CGROUP_MODE_UNAVAILABLE || !dir)
		return cgroup_err_set(err, -EOPNOTSUPP, "oom watch: no memory cgroup (%s mode)",
		                      cgroup_mode_name(ref->mode));
	w->path = strdup(dir);
	if (!w->path)
		return cgroup_err_set(err, -ENOMEM, "oom watch: out of memory");
	r = w->v2 ? watch_v2(dir, w, err) : watch_v1(dir, w, err);
	if (r < 0)
		cgroup_oom_release(w);
	return r;
}

static bool exists_at(const char *dir, const char *name)
{
	char path[PATH_MAX];
	struct stat st;

	if (!name)
		return lstat(dir, &st) == 0;
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	return lstat(path, &st) == 0;
}

static int read_v1(struct cgroup_oom *w, bool *oom)
{
	uint64_t count;
	ssize_t n;

	do
		n = read(w->fd, &count, sizeof(count));
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return errno == EAGAIN ? 0 : -errno;
	/* The kernel also signals when the cgroup is removed: containerd
	 * checks that the cgroup still exists before calling it an OOM. */
	if (!exists_at(w->path, NULL))
		return CGROUP_OOM_GONE;
	*oom = true;
	return 0;
}

struct key_value {
	const char *key;
	uint64_t value;
	bool found;
};

static int key_value_line(char *line, void *ctx)
{
	struct key_value *kv = ctx;
	char *k, *v;

	if (cgroup_split_kv(line, &k, &v) < 0)
		return -EINVAL;
	if (strcmp(k, kv->key) == 0 && cgroup_parse_u64(v, &kv->value) == 0)
		kv->found = true;
	return 0;
}

static int drain_inotify(int fd)
{
	char buf[INOTIFY_BUF] __attribute__((aligned(__alignof__(struct inotify_event))));
	ssize_t n;

	for (;;) {
		n = read(fd, buf, sizeof(buf));
		if (n > 0)
			continue;
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return 0;
		return n < 0 ? -errno : -EIO;
	}
}

static int read_v2(struct cgroup_oom *w, bool *oom)
{
	struct key_value ev = {.key = "oom_kill"}, pop = {.key = "populated"};
	int dfd, r;

	r = drain_inotify(w->fd);
	if (r < 0)
		return r;
	dfd = open(w->path, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return errno == ENOENT ? CGROUP_OOM_GONE : -errno;
	r = cgroup_file_lines(dfd, "memory.events", key_value_line, &ev);
	if (r < 0) {
		/* A removed cgroup can fail the read with ENODEV before the
		 * file disappears. */
		bool gone = cgroup_err_missing(r) || !exists_at(w->path, "memory.events");

		close(dfd);
		return gone ? CGROUP_OOM_GONE : r;
	}
	if (ev.found && ev.value > w->oom_kill)
		*oom = true;
	if (ev.found && ev.value > 0)
		w->oom_kill = ev.value;
	/* containerd stops once the cgroup is empty; a failed read counts as
	 * empty so a broken watch is not kept forever. */
	r = cgroup_file_lines(dfd, "cgroup.events", key_value_line, &pop);
	close(dfd);
	if (r < 0 || !pop.found || pop.value == 0)
		return CGROUP_OOM_GONE;
	return 0;
}

int cgroup_oom_read(struct cgroup_oom *w, bool *oom)
{
	int r;

	*oom = false;
	if (w->gone)
		return CGROUP_OOM_GONE;
	if (!w->path || w->fd < 0)
		return -EBADF;
	r = w->v2 ? read_v2(w, oom) : read_v1(w, oom);
	if (r == CGROUP_OOM_GONE)
		w->gone = true;
	return r;
}

bool cgroup_oom_gone(const struct cgroup_oom *w)
{
	return w->gone;
}

void cgroup_oom_release(struct cgroup_oom *w)
{
	if (!w)
		return;
	/* fd is only ours while path is set: a zeroed struct holds fd 0. */
	if (w->path && w->fd >= 0)
		close(w->fd);
	free(w->path);
	memset(w, 0, sizeof(*w));
	w->fd = -1;
}
