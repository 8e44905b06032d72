/* config.json generation (see specgen.h): everything is validated and resolved
 * (capabilities, user, env) before a byte is generated, the document is built with
 * yajl_gen in containerd's field order, and written atomically with bundle/'s
 * helper, so a failure leaves nothing behind. */
#include "specgen.h"

#include "atomic.h"
#include "caps.h"
#include "quote.h"
#include "seterr.h"
#include "spec.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <yajl/yajl_gen.h>

#define OCI_VERSION "1.0.2-dev" /* specs-go's Version, as containerd 1.6 writes it */
#define NAME_LEN 256            /* user and group names we keep */

/* a caller's string, quoted for a one-line message (into a compound literal, which
 * lives to the end of the enclosing block) */
#define Q(s) bundle_quote((char[BUNDLE_QUOTE_MAX]){0}, BUNDLE_QUOTE_MAX, (s))


/* ---- the user, from the rootfs's /etc/passwd and /etc/group ---- */

struct ids {
	uint32_t uid, gid;
	uint32_t gids[SPECGEN_GROUPS_MAX]; /* additionalGids: gid first */
	size_t ngids;
};

/* The rootfs being read: an O_PATH fd (-1 when the directory does not exist, which
 * reads as "no such file") and its path for messages. */
struct root {
	int fd;
	char path[PATH_MAX];
};

/* A decimal id in [0, INT32_MAX] (runc's limit, which containerd follows), or -1. */
static int64_t parse_id(const char *s, size_t len)
{
	int64_t v = 0;
	if (len == 0 || len > 10)
		return -1;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	return v <= INT32_MAX ? v : -1;
}

/* Opens rel ("etc/passwd") inside the rootfs, symlinks resolved as if the rootfs
 * were "/", so an image cannot point us at the host's files. A FILE* or NULL with
 * -errno in *r (-ENOENT when the file or the rootfs is missing). */
static FILE *open_etc(const struct root *root, const char *rel, int *r)
{
	struct open_how how = {
		.flags = O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK,
		.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS,
	};
	struct stat st;
	FILE *f;
	int fd;

	*r = 0;
	if (root->fd < 0) {
		*r = -ENOENT;
		return NULL;
	}
	fd = (int)syscall(SYS_openat2, root->fd, rel, &how, sizeof(how));
	if (fd < 0) {
		*r = -errno;
		return NULL;
	}
	if (fstat(fd, &st) < 0)
		*r = -errno;
	else if (!S_ISREG(st.st_mode))
		*r = -EINVAL;
	else if (st.st_size > SPECGEN_ETC_FILE_MAX)
		*r = -EFBIG;
	if (*r < 0) {
		close(fd);
		return NULL;
	}
	f = fdopen(fd, "re");
	if (!f) {
		*r = -errno;
		close(fd);
	}
	return f;
}

/* Splits a passwd/group line at ':' into at most max fields (pointers into line,
 * NUL-terminated; the missing ones NULL); returns the number of fields. */
static size_t split_fields(char *line, char **fields, size_t max)
{
	size_t n = 0;
	for (size_t i = 0; i < max; i++)
		fields[i] = NULL;
	line[strcspn(line, "\n")] = '\0';
	while (n < max) {
		fields[n++] = line;
		char *c = strchr(line, ':');
		if (!c)
			break;
		*c = '\0';
		line = c + 1;
	}
	return n;
}

struct pwent {
	char name[NAME_LEN];
	uint32_t uid, gid;
};

/* Finds the first passwd entry named name (or, name NULL, with uid uid).
 * 1 found, 0 not, -errno (-ENOENT: no passwd). */
static int passwd_find(const struct root *root, const char *name, uint32_t uid,
		       struct pwent *out)
{
	char *line = NULL, *f[4];
	size_t cap = 0;
	int r = 0;
	FILE *fp = open_etc(root, "etc/passwd", &r);

	if (!fp)
		return r;
	while (r == 0 && getline(&line, &cap, fp) >= 0) {
		if (line[0] == '#' || split_fields(line, f, 4) < 4)
			continue;
		int64_t u = parse_id(f[2], strlen(f[2])), g = parse_id(f[3], strlen(f[3]));
		if (u < 0 || g < 0 || strlen(f[0]) >= NAME_LEN)
			continue;
		if (name ? strcmp(f[0], name) == 0 : (uint32_t)u == uid) {
			snprintf(out->name, sizeof(out->name), "%s", f[0]);
			out->uid = (uint32_t)u;
			out->gid = (uint32_t)g;
			r = 1;
		}
	}
	if (r == 0 && ferror(fp))
		r = -EIO;
	free(line);
	fclose(fp);
	return r;
}

static int add_gid(struct ids *ids, uint32_t gid)
{
	for (size_t i = 0; i < ids->ngids; i++)
		if (ids->gids[i] == gid)
			return 0;
	if (ids->ngids == SPECGEN_GROUPS_MAX)
		return -E2BIG;
	ids->gids[ids->ngids++] = gid;
	return 0;
}

/* With group set: finds the gid of that group into *gid (1 found, 0 not). With
 * member set: adds to ids the gid of every group listing member (except the group
 * named after it, as containerd does), returning 0. -errno as passwd_find. */
static int group_scan(const struct root *root, const char *group, uint32_t *gid,
		      const char *member, struct ids *ids)
{
	char *line = NULL, *f[4];
	size_t cap = 0;
	int r = 0;
	FILE *fp = open_etc(root, "etc/group", &r);

	if (!fp)
		return r;
	while (r == 0 && getline(&line, &cap, fp) >= 0) {
		if (line[0] == '#' || split_fields(line, f, 4) < 3)
			continue;
		int64_t g = parse_id(f[2], strlen(f[2]));
		if (g < 0)
			continue;
		if (group) {
			if (strcmp(f[0], group) == 0) {
				*gid = (uint32_t)g;
				r = 1;
			}
			continue;
		}
		if (strcmp(f[0], member) == 0 || !f[3])
			continue;
		for (char *save = NULL, *m = strtok_r(f[3], ",", &save); m && r == 0;
		     m = strtok_r(NULL, ",", &save))
			if (strcmp(m, member) == 0)
				r = add_gid(ids, (uint32_t)g);
	}
	if (r >= 0 && ferror(fp))
		r = -EIO;
	free(line);
	fclose(fp);
	return r;
}

static int etc_error(char *err, size_t errlen, const struct root *root, const char *file, int r)
{
	if (r == -EFBIG)
		return set_err(err, errlen, r, "read %s/%s: larger than %d bytes", root->path, file,
			       SPECGEN_ETC_FILE_MAX);
	return set_err(err, errlen, r, "read %s/%s: %s", root->path, file,
		       r == -EINVAL ? "not a regular file" : strerror(-r));
}

/* The user's uid, gid and additionalGids from spec user string user (see specgen.h). */
static int resolve_user(const struct root *root, const char *user, struct ids *ids, char *err,
			size_t errlen)
{
	const char *colon = user ? strchr(user, ':') : NULL;
	char uname[NAME_LEN] = "";
	struct pwent pw;
	int r;

	ids->uid = ids->gid = 0;
	ids->ngids = 0;
	if (user && *user) {
		size_t ulen = colon ? (size_t)(colon - user) : strlen(user);
		const char *group = colon ? colon + 1 : NULL;
		int64_t uid = parse_id(user, ulen);

		if (ulen == 0 || ulen >= NAME_LEN || (group && (!*group || strchr(group, ':'))))
			return set_err(err, errlen, -EINVAL, "invalid user %s", Q(user));
		if (uid < 0) {
			/* a name: it must be in passwd */
			memcpy(uname, user, ulen);
			uname[ulen] = '\0';
			r = passwd_find(root, uname, 0, &pw);
			if (r == 0 || r == -ENOENT)
				return set_err(err, errlen, -ENOENT, "user %s not found in %s/etc/passwd",
					       Q(uname), root->path);
			if (r < 0)
				return etc_error(err, errlen, root, "etc/passwd", r);
			ids->uid = pw.uid;
			ids->gid = pw.gid;
		} else {
			/* a number: passwd only lends the gid and the name, if it has them */
			ids->uid = (uint32_t)uid;
			r = passwd_find(root, NULL, ids->uid, &pw);
			if (r < 0 && r != -ENOENT)
				return etc_error(err, errlen, root, "etc/passwd", r);
			if (r == 1) {
				ids->gid = pw.gid;
				snprintf(uname, sizeof(uname), "%s", pw.name);
			}
		}
		if (group) {
			int64_t gid = parse_id(group, strlen(group));
			if (gid >= 0) {
				ids->gid = (uint32_t)gid;
			} else {
				r = group_scan(root, group, &ids->gid, NULL, NULL);
				if (r == 0 || r == -ENOENT)
					return set_err(err, errlen, -ENOENT,
						       "group %s not found in %s/etc/group", Q(group),
						       root->path);
				if (r < 0)
					return etc_error(err, errlen, root, "etc/group", r);
			}
		}
	} else if (passwd_find(root, NULL, 0, &pw) == 1) {
		/* root keeps gid 0 (containerd's default spec), but its groups count */
		snprintf(uname, sizeof(uname), "%s", pw.name);
	}

	ids->gids[ids->ngids++] = ids->gid;
	if (*uname) {
		r = group_scan(root, NULL, NULL, uname, ids);
		if (r == -E2BIG)
			return set_err(err, errlen, r, "user %s: more than %d groups in %s/etc/group",
				       Q(uname), SPECGEN_GROUPS_MAX, root->path);
		if (r < 0 && r != -ENOENT)
			return etc_error(err, errlen, root, "etc/group", r);
	}
	return 0;
}

/* ---- env ---- */

static size_t env_key_len(const char *e)
{
	const char *eq = strchr(e, '=');
	return eq ? (size_t)(eq - e) : strlen(e);
}

static ssize_t env_find(const char **env, size_t n, const char *key, size_t klen)
{
	for (size_t i = 0; i < n; i++)
		if (env[i] && env_key_len(env[i]) == klen && strncmp(env[i], key, klen) == 0)
			return (ssize_t)i;
	return -1;
}

/* containerd's replaceOrAppendEnvValues over its default PATH, then WithTTY's TERM.
 * A malloc'd NULL-terminated array of borrowed strings, or NULL (ENOMEM). */
static const char **build_env(const struct specgen *s)
{
	size_t n = 0, cap = 3;
	for (size_t i = 0; s->env && s->env[i]; i++)
		cap++;
	const char **env = calloc(cap, sizeof(*env));
	if (!env)
		return NULL;
	env[n++] = SPECGEN_DEFAULT_PATH;
	for (size_t i = 0; s->env && s->env[i]; i++) {
		const char *e = s->env[i];
		size_t klen = env_key_len(e);
		ssize_t at = env_find(env, n, e, klen);
		if (!e[klen]) {
			if (at >= 0)
				env[at] = NULL; /* a bare "K" unsets K */
		} else if (at < 0) {
			env[n++] = e;
		} else {
			env[at] = e;
		}
	}
	if (s->terminal && env_find(env, n, "TERM", 4) < 0)
		env[n++] = "TERM=xterm";
	/* squeeze out the unset ones */
	size_t w = 0;
	for (size_t i = 0; i < n; i++)
		if (env[i])
			env[w++] = env[i];
	env[w] = NULL;
	return env;
}

/* ---- generation ---- */

struct gen {
	yajl_gen g;
	yajl_gen_status st; /* the first failure */
};

static void check(struct gen *j, yajl_gen_status st)
{
	if (j->st == yajl_gen_status_ok)
		j->st = st;
}

static void str(struct gen *j, const char *s)
{
	if (j->st == yajl_gen_status_ok)
		check(j, yajl_gen_string(j->g, (const unsigned char *)s, strlen(s)));
}

static void num(struct gen *j, long long v)
{
	if (j->st == yajl_gen_status_ok)
		check(j, yajl_gen_integer(j->g, v));
}

static void boolean(struct gen *j, bool v)
{
	if (j->st == yajl_gen_status_ok)
		check(j, yajl_gen_bool(j->g, v));
}

static void open_map(struct gen *j)
{
	if (j->st == yajl_gen_status_ok)
		check(j, yajl_gen_map_open(j->g));
}

static void close_map(struct gen *j)
{
	if (j->st == yajl_gen_status_ok)
		check(j, yajl_gen_map_close(j->g));
}

static void open_array(struct gen *j)
{
	if (j->st == yajl_gen_status_ok)
		check(j, yajl_gen_array_open(j->g));
}

static void close_array(struct gen *j)
{
	if (j->st == yajl_gen_status_ok)
		check(j, yajl_gen_array_close(j->g));
}

static void kv_str(struct gen *j, const char *k, const char *v)
{
	str(j, k);
	str(j, v);
}

static void kv_num(struct gen *j, const char *k, long long v)
{
	str(j, k);
	num(j, v);
}

static void str_array(struct gen *j, const char *k, const char *const *list)
{
	str(j, k);
	open_array(j);
	for (size_t i = 0; list && list[i]; i++)
		str(j, list[i]);
	close_array(j);
}

struct mount {
	const char *dst, *type, *src;
	const char *const *opts;
};

#define OPTS(...) ((const char *const[]){__VA_ARGS__, NULL})

/* containerd's defaultMounts, with /sys/fs/cgroup (read-only, as CRI and Docker add
 * it) right after /sys */
static const struct mount default_mounts[] = {
	{"/proc", "proc", "proc", OPTS("nosuid", "noexec", "nodev")},
	{"/dev", "tmpfs", "tmpfs", OPTS("nosuid", "strictatime", "mode=755", "size=65536k")},
	{"/dev/pts", "devpts", "devpts",
	 OPTS("nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5")},
	{"/dev/shm", "tmpfs", "shm", OPTS("nosuid", "noexec", "nodev", "mode=1777", "size=65536k")},
	{"/dev/mqueue", "mqueue", "mqueue", OPTS("nosuid", "noexec", "nodev")},
	{"/sys", "sysfs", "sysfs", OPTS("nosuid", "noexec", "nodev", "ro")},
	{"/sys/fs/cgroup", "cgroup", "cgroup", OPTS("nosuid", "noexec", "nodev", "relatime", "ro")},
	{"/run", "tmpfs", "tmpfs", OPTS("nosuid", "strictatime", "mode=755", "size=65536k")},
};

static const char *const masked_paths[] = {
	"/proc/acpi",	     "/proc/asound",	 "/proc/kcore",	      "/proc/keys",
	"/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug",
	"/sys/firmware",     "/proc/scsi",	 NULL,
};

static const char *const readonly_paths[] = {
	"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger", NULL,
};

static const char *const namespaces[] = {"pid", "ipc", "uts", "mount"};

struct resolved {
	struct ids ids;
	char **caps;
	const char **env;
	long long cpu_quota; /* 0: none */
};

static void gen_process(struct gen *j, const struct specgen *s, const struct resolved *rv)
{
	str(j, "process");
	open_map(j);
	str(j, "terminal");
	boolean(j, s->terminal);
	str(j, "user");
	open_map(j);
	kv_num(j, "uid", rv->ids.uid);
	kv_num(j, "gid", rv->ids.gid);
	str(j, "additionalGids");
	open_array(j);
	for (size_t i = 0; i < rv->ids.ngids; i++)
		num(j, rv->ids.gids[i]);
	close_array(j);
	close_map(j);
	str_array(j, "args", s->args);
	str_array(j, "env", rv->env);
	kv_str(j, "cwd", s->cwd ? s->cwd : "/");
	str(j, "capabilities");
	open_map(j);
	/* not inheritable or ambient: a non-root user gets no capabilities by exec */
	str_array(j, "bounding", (const char *const *)rv->caps);
	str_array(j, "effective", (const char *const *)rv->caps);
	str_array(j, "permitted", (const char *const *)rv->caps);
	close_map(j);
	str(j, "rlimits");
	open_array(j);
	open_map(j);
	kv_str(j, "type", "RLIMIT_NOFILE");
	kv_num(j, "hard", 1024);
	kv_num(j, "soft", 1024);
	close_map(j);
	close_array(j);
	str(j, "noNewPrivileges");
	boolean(j, true);
	close_map(j);
}

static void gen_linux(struct gen *j, const struct specgen *s, const struct resolved *rv)
{
	str(j, "linux");
	open_map(j);

	str(j, "resources");
	open_map(j);
	str(j, "devices");
	open_array(j);
	open_map(j);
	str(j, "allow");
	boolean(j, false);
	kv_str(j, "access", "rwm");
	close_map(j);
	close_array(j);
	if (s->memory_limit > 0) {
		str(j, "memory");
		open_map(j);
		kv_num(j, "limit", s->memory_limit);
		close_map(j);
	}
	if (rv->cpu_quota > 0) {
		str(j, "cpu");
		open_map(j);
		kv_num(j, "quota", rv->cpu_quota);
		kv_num(j, "period", SPECGEN_CPU_PERIOD);
		close_map(j);
	}
	close_map(j);

	if (s->cgroups_path)
		kv_str(j, "cgroupsPath", s->cgroups_path);

	str(j, "namespaces");
	open_array(j);
	for (size_t i = 0; i < sizeof(namespaces) / sizeof(namespaces[0]); i++) {
		open_map(j);
		kv_str(j, "type", namespaces[i]);
		close_map(j);
	}
	if (s->net == SPECGEN_NET_NONE) {
		open_map(j);
		kv_str(j, "type", "network");
		if (s->netns_path)
			kv_str(j, "path", s->netns_path);
		close_map(j);
	}
	close_array(j);

	str_array(j, "maskedPaths", masked_paths);
	str_array(j, "readonlyPaths", readonly_paths);
	close_map(j);
}

static void gen_spec(struct gen *j, const struct specgen *s, const struct resolved *rv)
{
	const char *hostname = s->hostname ? s->hostname : s->id;

	open_map(j);
	kv_str(j, "ociVersion", OCI_VERSION);
	gen_process(j, s, rv);
	str(j, "root");
	open_map(j);
	kv_str(j, "path", s->rootfs);
	if (s->readonly_rootfs) {
		str(j, "readonly");
		boolean(j, true);
	}
	close_map(j);
	if (hostname)
		kv_str(j, "hostname", hostname);
	str(j, "mounts");
	open_array(j);
	for (size_t i = 0; i < sizeof(default_mounts) / sizeof(default_mounts[0]); i++) {
		const struct mount *m = &default_mounts[i];
		open_map(j);
		kv_str(j, "destination", m->dst);
		kv_str(j, "type", m->type);
		kv_str(j, "source", m->src);
		str_array(j, "options", m->opts);
		close_map(j);
	}
	close_array(j);
	gen_linux(j, s, rv);
	close_map(j);
}

/* ---- validation and the write ---- */

static int check_input(const struct specgen *s, const char *path, struct resolved *rv,
		       char *err, size_t errlen)
{
	if (!s || !path || !*path)
		return set_err(err, errlen, -EINVAL, "write config.json: no spec or path");
	if (!s->rootfs || !*s->rootfs)
		return set_err(err, errlen, -EINVAL, "spec %s: no rootfs", path);
	if (!s->args || !s->args[0] || !*s->args[0])
		return set_err(err, errlen, -EINVAL, "spec %s: no process args", path);
	if (s->cwd && s->cwd[0] != '/')
		return set_err(err, errlen, -EINVAL, "spec %s: cwd %s is not absolute", path,
			       Q(s->cwd));
	for (size_t i = 0; s->env && s->env[i]; i++)
		if (!*s->env[i] || s->env[i][0] == '=')
			return set_err(err, errlen, -EINVAL, "spec %s: invalid env entry %s",
				       path, Q(s->env[i]));
	if (s->net != SPECGEN_NET_NONE && s->net != SPECGEN_NET_HOST)
		return set_err(err, errlen, -EINVAL, "spec %s: unknown network mode %d", path,
			       (int)s->net);
	if (s->net == SPECGEN_NET_NONE && s->netns_path && s->netns_path[0] != '/')
		return set_err(err, errlen, -EINVAL,
			       "spec %s: network namespace path %s is not absolute", path,
			       Q(s->netns_path));
	if (s->memory_limit < 0)
		return set_err(err, errlen, -EINVAL, "spec %s: negative memory limit %lld", path,
			       (long long)s->memory_limit);
	/* the bound keeps cpus * period well inside an int64 */
	if (!isfinite(s->cpus) || s->cpus < 0 || s->cpus > 1e9)
		return set_err(err, errlen, -EINVAL, "spec %s: invalid cpus %g", path, s->cpus);
	rv->cpu_quota = (long long)(s->cpus * SPECGEN_CPU_PERIOD);
	if (s->cpus > 0 && rv->cpu_quota < SPECGEN_CPU_QUOTA_MIN)
		return set_err(err, errlen, -EINVAL,
			       "spec %s: cpus %g is below the kernel's minimum CFS quota (%g)", path,
			       s->cpus, (double)SPECGEN_CPU_QUOTA_MIN / SPECGEN_CPU_PERIOD);
	return 0;
}

/* Splits path into its directory (opened O_PATH) and last component. */
static int open_parent(const char *path, int *dirfd, const char **base)
{
	const char *slash = strrchr(path, '/');
	char dir[PATH_MAX];

	if (!slash) {
		*dirfd = AT_FDCWD;
		*base = path;
		return 0;
	}
	if ((size_t)(slash - path) >= sizeof(dir))
		return -ENAMETOOLONG;
	if (slash == path)
		snprintf(dir, sizeof(dir), "/");
	else
		snprintf(dir, sizeof(dir), "%.*s", (int)(slash - path), path);
	*base = slash + 1;
	*dirfd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
	return *dirfd < 0 ? -errno : 0;
}

/* The rootfs as the runtime will see it: relative paths are the bundle's. */
static int open_root(const struct specgen *s, const char *path, struct root *root)
{
	const char *slash = strrchr(path, '/');
	int n;

	if (s->rootfs[0] == '/')
		n = snprintf(root->path, sizeof(root->path), "%s", s->rootfs);
	else if (slash)
		n = snprintf(root->path, sizeof(root->path), "%.*s/%s", (int)(slash - path), path,
			     s->rootfs);
	else
		n = snprintf(root->path, sizeof(root->path), "%s", s->rootfs);
	if (n < 0 || (size_t)n >= sizeof(root->path))
		return -ENAMETOOLONG;
	root->fd = open(root->path, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (root->fd < 0 && errno != ENOENT)
		return -errno;
	return 0;
}

int specgen_write(const struct specgen *s, const char *path, char *err, size_t errlen)
{
	struct resolved *rv;
	struct root root = {.fd = -1};
	struct gen j = {0};
	char cerr[256];
	const unsigned char *buf;
	size_t len;
	const char *base;
	int dirfd = -1, r;

	if (err && errlen)
		err[0] = '\0';
	/* ids hold SPECGEN_GROUPS_MAX gids: off the stack */
	rv = calloc(1, sizeof(*rv));
	if (!rv)
		return set_err(err, errlen, -ENOMEM, "spec: out of memory");
	r = check_input(s, path, rv, err, errlen);
	if (r < 0)
		goto out;

	rv->caps = caps_effective(s->cap_add, s->cap_drop, cerr, sizeof(cerr));
	if (!rv->caps) {
		r = set_err(err, errlen, -errno, "spec %s: %s", path, cerr);
		goto out;
	}

	r = open_root(s, path, &root);
	if (r < 0) {
		r = set_err(err, errlen, r, "spec %s: open rootfs %s: %s", path, root.path,
			    strerror(-r));
		goto out;
	}
	r = resolve_user(&root, s->user, &rv->ids, err, errlen);
	if (r < 0)
		goto out;

	rv->env = build_env(s);
	j.g = yajl_gen_alloc(NULL);
	if (!rv->env || !j.g) {
		r = set_err(err, errlen, -ENOMEM, "spec %s: out of memory", path);
		goto out;
	}
	yajl_gen_config(j.g, yajl_gen_beautify, 1);
	yajl_gen_config(j.g, yajl_gen_indent_string, "\t");
	yajl_gen_config(j.g, yajl_gen_validate_utf8, 1);
	gen_spec(&j, s, rv);
	check(&j, yajl_gen_get_buf(j.g, &buf, &len));
	if (j.st != yajl_gen_status_ok) {
		r = set_err(err, errlen, j.st == yajl_gen_invalid_string ? -EILSEQ : -EINVAL,
			    "spec %s: %s", path,
			    j.st == yajl_gen_invalid_string ? "a string is not valid UTF-8"
							    : "JSON generation failed");
		goto out;
	}
	if (len > BUNDLE_SPEC_MAX) {
		r = set_err(err, errlen, -EFBIG, "spec %s: %zu bytes, more than the %d a shim reads",
			    path, len, BUNDLE_SPEC_MAX);
		goto out;
	}

	r = open_parent(path, &dirfd, &base);
	if (r == 0)
		r = bundle_write_file_atomic(dirfd, base, buf, len, 0644);
	if (r < 0)
		set_err(err, errlen, r, "write %s: %s", path, strerror(-r));
out:
	if (j.g)
		yajl_gen_free(j.g);
	if (dirfd >= 0)
		close(dirfd);
	if (root.fd >= 0)
		close(root.fd);
	caps_free(rv->caps);
	free(rv->env);
	free(rv);
	return r;
}
