/* specgen and caps: a config.json written by specgen_write and parsed back with
 * yajl_tree holds what was asked (args, env, cwd, user from a fake rootfs,
 * capabilities, network, resources) on top of containerd's default spec; bad input
 * fails with a one-line message and leaves no file; and runc and crun both run a
 * busybox container from a generated spec. */
#include "caps.h"
#include "netns.h"
#include "specgen.h"

#include <cap-ng.h>
#include <criterion/criterion.h>
#include <linux/capability.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <yajl/yajl_tree.h>

#define FMT(buf, ...) snprintf(buf, sizeof(buf), __VA_ARGS__)
#define LIST(...) ((const char *const[]){__VA_ARGS__, NULL})

static char tmp[64], bundle[128], rootfs[160], config[160];
static yajl_val doc;

static void setup(void)
{
	FMT(tmp, "/tmp/nanoshim-specgen-XXXXXX");
	cr_assert(mkdtemp(tmp));
	FMT(bundle, "%s/bundle", tmp);
	FMT(rootfs, "%s/rootfs", bundle);
	FMT(config, "%s/config.json", bundle);
	cr_assert_eq(mkdir(bundle, 0700), 0);
	cr_assert_eq(mkdir(rootfs, 0755), 0);
	doc = NULL;
}

static void teardown(void)
{
	char cmd[128];
	yajl_tree_free(doc);
	doc = NULL;
	if (!tmp[0])
		return;
	FMT(cmd, "rm -rf '%s'", tmp);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", tmp);
	tmp[0] = '\0';
}

TestSuite(caps);
TestSuite(specgen, .init = setup, .fini = teardown);

/* ---- helpers ---- */

static void put(const char *rel, const char *content)
{
	char path[256];
	FMT(path, "%s/%s", rootfs, rel);
	FILE *f = fopen(path, "w");
	cr_assert_not_null(f, "%s", path);
	fputs(content, f);
	fclose(f);
}

static void fake_etc(void)
{
	char path[256];
	FMT(path, "%s/etc", rootfs);
	cr_assert_eq(mkdir(path, 0755), 0);
	put("etc/passwd", "root:x:0:0:root:/root:/bin/sh\n"
			  "# a comment\n"
			  "daemon:x:1:1::/:/bin/false\n"
			  "bob:x:1000:1001:Bob:/home/bob:/bin/sh\n"
			  "broken line\n"
			  "carol:x:1002:1002::/home/carol:/bin/sh\n");
	put("etc/group", "root:x:0:\n"
			 "wheel:x:10:bob,carol\n"
			 "staff:x:50:\n"
			 "nomembers:x:77\n"
			 "bob:x:1001:bob\n"
			 "audio:x:29:carol,bob\n"
			 "users:x:100:root\n");
}

/* Parses config into doc (freeing a previous one). */
static yajl_val load(void)
{
	char err[256] = "", *buf;
	FILE *f = fopen(config, "re");
	cr_assert_not_null(f, "%s: %s", config, strerror(errno));
	cr_assert_eq(fseek(f, 0, SEEK_END), 0);
	long len = ftell(f);
	rewind(f);
	buf = calloc(1, (size_t)len + 1);
	cr_assert_eq(fread(buf, 1, (size_t)len, f), (size_t)len);
	fclose(f);
	yajl_tree_free(doc);
	doc = yajl_tree_parse(buf, err, sizeof(err));
	free(buf);
	cr_assert_not_null(doc, "config.json is not JSON: %s", err);
	cr_assert(YAJL_IS_OBJECT(doc));
	return doc;
}

static yajl_val get(yajl_val v, const char *a, const char *b, const char *c)
{
	const char *path[] = {a, b, c, NULL};
	return yajl_tree_get(v, path, yajl_t_any);
}

static const char *get_str(yajl_val v, const char *a, const char *b, const char *c)
{
	yajl_val s = get(v, a, b, c);
	cr_assert(s && YAJL_IS_STRING(s), "%s.%s.%s is not a string", a, b ? b : "", c ? c : "");
	return YAJL_GET_STRING(s);
}

static long long get_int(yajl_val v, const char *a, const char *b, const char *c)
{
	yajl_val n = get(v, a, b, c);
	cr_assert(n && YAJL_IS_INTEGER(n), "%s.%s.%s is not an integer", a, b ? b : "",
		  c ? c : "");
	return YAJL_GET_INTEGER(n);
}

/* Asserts that array v holds exactly the strings of want, in order. */
static void assert_strings(yajl_val v, const char *const *want, const char *what)
{
	size_t n = 0;
	while (want[n])
		n++;
	cr_assert(v && YAJL_IS_ARRAY(v), "%s is not an array", what);
	cr_assert_eq(v->u.array.len, n, "%s: %zu entries, want %zu", what, v->u.array.len, n);
	for (size_t i = 0; i < n; i++) {
		cr_assert(YAJL_IS_STRING(v->u.array.values[i]));
		cr_assert_str_eq(YAJL_GET_STRING(v->u.array.values[i]), want[i], "%s[%zu]", what, i);
	}
}

static bool has_string(yajl_val arr, const char *s)
{
	for (size_t i = 0; arr && YAJL_IS_ARRAY(arr) && i < arr->u.array.len; i++)
		if (YAJL_IS_STRING(arr->u.array.values[i]) &&
		    strcmp(arr->u.array.values[i]->u.string, s) == 0)
			return true;
	return false;
}

/* The linux.namespaces entry of type, or NULL. */
static yajl_val namespace(yajl_val d, const char *type)
{
	yajl_val nss = get(d, "linux", "namespaces", NULL);
	cr_assert(nss && YAJL_IS_ARRAY(nss));
	for (size_t i = 0; i < nss->u.array.len; i++) {
		yajl_val t = get(nss->u.array.values[i], "type", NULL, NULL);
		if (t && YAJL_IS_STRING(t) && strcmp(t->u.string, type) == 0)
			return nss->u.array.values[i];
	}
	return NULL;
}

static int cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The names in the bundle directory, sorted, ", "-joined. */
static void listing(char *out, size_t len)
{
	DIR *d = opendir(bundle);
	struct dirent *e;
	char *names[32];
	size_t n = 0;
	cr_assert_not_null(d);
	while ((e = readdir(d)))
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..") && n < 32)
			names[n++] = strdup(e->d_name);
	closedir(d);
	qsort(names, n, sizeof(names[0]), cmp_names);
	out[0] = '\0';
	for (size_t i = 0; i < n; i++) {
		snprintf(out + strlen(out), len - strlen(out), "%s%s", i ? ", " : "", names[i]);
		free(names[i]);
	}
}

/* config.json's content, or NULL when there is none. */
static char *slurp(void)
{
	FILE *f = fopen(config, "re");
	char *buf = NULL;
	size_t len = 0;
	if (!f)
		return NULL;
	FILE *m = open_memstream(&buf, &len);
	int c;
	while ((c = fgetc(f)) != EOF)
		fputc(c, m);
	fclose(m);
	fclose(f);
	return buf;
}

/* file scope: a compound literal inside base() would die with its call */
static const char *const echo_ok[] = {"sh", "-c", "echo ok", NULL};

static struct specgen base(void)
{
	return (struct specgen){.id = "c1", .rootfs = rootfs, .args = echo_ok};
}

static void write_ok(const struct specgen *s)
{
	char err[256] = "";
	int r = specgen_write(s, config, err, sizeof(err));
	cr_assert_eq(r, 0, "specgen_write: %d %s", r, err);
	load();
}

/* specgen_write fails with r and a one-line message holding want, and leaves the
 * bundle as it was: no config.json if there was none, the old one otherwise, and
 * no temp file. */
static void write_fails(const struct specgen *s, int r, const char *want)
{
	char err[256] = "", names[512];
	char *before = slurp();
	int got = specgen_write(s, config, err, sizeof(err));
	cr_assert_eq(got, r, "specgen_write: %d (%s), want %d", got, err, r);
	cr_assert(strstr(err, want), "message \"%s\" lacks \"%s\"", err, want);
	cr_assert_null(strchr(err, '\n'), "message is not one line: %s", err);
	listing(names, sizeof(names));
	cr_assert_str_eq(names, before ? "config.json, rootfs" : "rootfs", "left in the bundle: %s",
			 names);
	char *after = slurp();
	if (before)
		cr_assert(after && strcmp(before, after) == 0, "config.json changed");
	free(before);
	free(after);
}

static const char *const default_caps[] = {
	"CAP_CHOWN",   "CAP_DAC_OVERRIDE", "CAP_FSETID",	   "CAP_FOWNER",     "CAP_MKNOD",
	"CAP_NET_RAW", "CAP_SETGID",	   "CAP_SETUID",	   "CAP_SETFCAP",    "CAP_SETPCAP",
	"CAP_NET_BIND_SERVICE",	"CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE", NULL,
};

/* ---- caps ---- */

Test(caps, canonical_names)
{
	char out[CAPS_NAME_MAX];
	const char *spellings[] = {"net_admin", "NET_ADMIN", "cap_net_admin", "CAP_NET_ADMIN",
				   "Cap_Net_Admin"};
	for (size_t i = 0; i < sizeof(spellings) / sizeof(spellings[0]); i++) {
		cr_assert_eq(caps_canonical(spellings[i], out, sizeof(out)), 0, "%s", spellings[i]);
		cr_assert_str_eq(out, "CAP_NET_ADMIN");
	}
	cr_assert_eq(caps_canonical("all", out, sizeof(out)), 0);
	cr_assert_str_eq(out, "ALL");
	cr_assert_eq(caps_canonical("checkpoint_restore", out, sizeof(out)), 0);
	cr_assert_str_eq(out, "CAP_CHECKPOINT_RESTORE");
	const char *bad[] = {"CAP_FOO", "", "CAP_", "12", "net admin", "CAP_ALL", "net_admin\n"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		cr_assert_eq(caps_canonical(bad[i], out, sizeof(out)), -EINVAL, "\"%s\"", bad[i]);
	cr_assert_eq(caps_canonical(NULL, out, sizeof(out)), -EINVAL);
	cr_assert_eq(caps_canonical("kill", out, 5), -ENAMETOOLONG);
}

static size_t count(char **caps)
{
	size_t n = 0;
	while (caps[n])
		n++;
	return n;
}

static bool contains(char **caps, const char *name)
{
	for (size_t i = 0; caps[i]; i++)
		if (strcmp(caps[i], name) == 0)
			return true;
	return false;
}

Test(caps, defaults_add_drop_and_all)
{
	char err[128] = "";
	char **c = caps_effective(NULL, NULL, err, sizeof(err));
	cr_assert_not_null(c, "%s", err);
	cr_assert_eq(count(c), 14);
	for (size_t i = 0; default_caps[i]; i++)
		cr_assert_str_eq(c[i], default_caps[i]);
	caps_free(c);

	/* drop then add; an add wins over a drop, duplicates collapse */
	c = caps_effective(LIST("net_admin", "CAP_CHOWN", "NET_ADMIN"), LIST("kill", "chown"), err,
			   sizeof(err));
	cr_assert_not_null(c, "%s", err);
	cr_assert_eq(count(c), 14);
	cr_assert_not(contains(c, "CAP_KILL"));
	cr_assert_str_eq(c[12], "CAP_NET_ADMIN");
	cr_assert_str_eq(c[13], "CAP_CHOWN");
	caps_free(c);

	/* ALL: every capability libcap-ng names, minus explicit drops */
	c = caps_effective(LIST("ALL"), LIST("sys_admin"), err, sizeof(err));
	cr_assert_not_null(c, "%s", err);
	size_t all = 0;
	for (unsigned int i = 0; i <= CAP_LAST_CAP; i++)
		all += capng_capability_to_name(i) != NULL;
	cr_assert_geq(all, 38); /* through CAP_AUDIT_READ at least */
	cr_assert_eq(count(c), all - 1);
	cr_assert(contains(c, "CAP_SYS_PTRACE") && contains(c, "CAP_CHOWN"));
	cr_assert_not(contains(c, "CAP_SYS_ADMIN"));
	caps_free(c);

	c = caps_effective(LIST("sys_admin"), LIST("all"), err, sizeof(err));
	cr_assert_not_null(c, "%s", err);
	cr_assert_eq(count(c), 1);
	cr_assert_str_eq(c[0], "CAP_SYS_ADMIN");
	caps_free(c);

	c = caps_effective(NULL, LIST("ALL"), err, sizeof(err));
	cr_assert_not_null(c, "%s", err);
	cr_assert_eq(count(c), 0);
	caps_free(c);

	errno = 0;
	cr_assert_null(caps_effective(LIST("kill"), LIST("CAP_FOO"), err, sizeof(err)));
	cr_assert_eq(errno, EINVAL);
	cr_assert_str_eq(err, "unknown capability \"CAP_FOO\"");
	caps_free(NULL);
}

/* ---- the spec ---- */

Test(specgen, defaults_as_containerd_builds_them)
{
	struct specgen s = base();
	struct stat st;
	char names[512];
	write_ok(&s);

	cr_assert_eq(stat(config, &st), 0);
	cr_assert_eq(st.st_mode & 0777, 0644);
	listing(names, sizeof(names));
	cr_assert_str_eq(names, "config.json, rootfs", "temp files left: %s", names);

	cr_assert_str_eq(get_str(doc, "ociVersion", NULL, NULL), "1.0.2-dev");
	assert_strings(get(doc, "process", "args", NULL), LIST("sh", "-c", "echo ok"), "args");
	assert_strings(get(doc, "process", "env", NULL), LIST(SPECGEN_DEFAULT_PATH), "env");
	cr_assert_str_eq(get_str(doc, "process", "cwd", NULL), "/");
	cr_assert(YAJL_IS_FALSE(get(doc, "process", "terminal", NULL)));
	cr_assert(YAJL_IS_TRUE(get(doc, "process", "noNewPrivileges", NULL)));
	cr_assert_eq(get_int(doc, "process", "user", "uid"), 0);
	cr_assert_eq(get_int(doc, "process", "user", "gid"), 0);
	yajl_val rl = get(doc, "process", "rlimits", NULL);
	cr_assert(YAJL_IS_ARRAY(rl) && rl->u.array.len == 1);
	cr_assert_str_eq(get_str(rl->u.array.values[0], "type", NULL, NULL), "RLIMIT_NOFILE");
	cr_assert_eq(get_int(rl->u.array.values[0], "hard", NULL, NULL), 1024);
	cr_assert_eq(get_int(rl->u.array.values[0], "soft", NULL, NULL), 1024);

	cr_assert_str_eq(get_str(doc, "root", "path", NULL), rootfs);
	cr_assert_null(get(doc, "root", "readonly", NULL));
	cr_assert_str_eq(get_str(doc, "hostname", NULL, NULL), "c1");

	yajl_val mounts = get(doc, "mounts", NULL, NULL);
	const char *dst[] = {"/proc",	       "/dev", "/dev/pts", "/dev/shm", "/dev/mqueue",
			     "/sys", "/sys/fs/cgroup", "/run"};
	cr_assert(YAJL_IS_ARRAY(mounts));
	cr_assert_eq(mounts->u.array.len, 8);
	for (size_t i = 0; i < 8; i++)
		cr_assert_str_eq(get_str(mounts->u.array.values[i], "destination", NULL, NULL),
				 dst[i]);
	cr_assert_str_eq(get_str(mounts->u.array.values[1], "type", NULL, NULL), "tmpfs");
	cr_assert(has_string(get(mounts->u.array.values[5], "options", NULL, NULL), "ro"));
	cr_assert(has_string(get(mounts->u.array.values[6], "options", NULL, NULL), "ro"));
	cr_assert_str_eq(get_str(mounts->u.array.values[6], "type", NULL, NULL), "cgroup");

	/* pid, ipc, uts, mount, network (no path: the runtime makes one) */
	yajl_val nss = get(doc, "linux", "namespaces", NULL);
	cr_assert_eq(nss->u.array.len, 5);
	const char *types[] = {"pid", "ipc", "uts", "mount", "network"};
	for (size_t i = 0; i < 5; i++) {
		cr_assert_str_eq(get_str(nss->u.array.values[i], "type", NULL, NULL), types[i]);
		cr_assert_null(get(nss->u.array.values[i], "path", NULL, NULL));
	}
	cr_assert_eq(get(doc, "linux", "maskedPaths", NULL)->u.array.len, 10);
	cr_assert(has_string(get(doc, "linux", "maskedPaths", NULL), "/proc/kcore"));
	assert_strings(get(doc, "linux", "readonlyPaths", NULL),
		       LIST("/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"),
		       "readonlyPaths");
	yajl_val devs = get(doc, "linux", "resources", "devices");
	cr_assert(YAJL_IS_ARRAY(devs) && devs->u.array.len == 1);
	cr_assert(YAJL_IS_FALSE(get(devs->u.array.values[0], "allow", NULL, NULL)));
	cr_assert_str_eq(get_str(devs->u.array.values[0], "access", NULL, NULL), "rwm");
	cr_assert_null(get(doc, "linux", "resources", "memory"));
	cr_assert_null(get(doc, "linux", "resources", "cpu"));
	cr_assert_null(get(doc, "linux", "cgroupsPath", NULL));
}

Test(specgen, env_cwd_terminal_hostname)
{
	struct specgen s = base();
	s.env = LIST("FOO=1", "BAR=2", "FOO=3", "BAR", "EMPTY=");
	s.cwd = "/work";
	s.terminal = true;
	s.hostname = "web";
	write_ok(&s);
	/* FOO replaced in place, BAR unset, PATH default first, TERM for the tty */
	assert_strings(get(doc, "process", "env", NULL),
		       LIST(SPECGEN_DEFAULT_PATH, "FOO=3", "EMPTY=", "TERM=xterm"), "env");
	cr_assert_str_eq(get_str(doc, "process", "cwd", NULL), "/work");
	cr_assert(YAJL_IS_TRUE(get(doc, "process", "terminal", NULL)));
	cr_assert_str_eq(get_str(doc, "hostname", NULL, NULL), "web");

	/* a PATH of the caller's replaces the default; a TERM of its own is kept */
	s.env = LIST("TERM=vt100", "PATH=/bin");
	write_ok(&s);
	assert_strings(get(doc, "process", "env", NULL), LIST("PATH=/bin", "TERM=vt100"), "env");

	s.cwd = "work";
	write_fails(&s, -EINVAL, "cwd \"work\" is not absolute");
}

Test(specgen, user_by_number)
{
	struct specgen s = base();
	fake_etc();
	/* in passwd: its gid, and the groups listing its name */
	s.user = "1000";
	write_ok(&s);
	cr_assert_eq(get_int(doc, "process", "user", "uid"), 1000);
	cr_assert_eq(get_int(doc, "process", "user", "gid"), 1001);
	yajl_val g = get(doc, "process", "user", "additionalGids");
	cr_assert(YAJL_IS_ARRAY(g) && g->u.array.len == 3, "additionalGids");
	cr_assert_eq(YAJL_GET_INTEGER(g->u.array.values[0]), 1001);
	cr_assert_eq(YAJL_GET_INTEGER(g->u.array.values[1]), 10);
	cr_assert_eq(YAJL_GET_INTEGER(g->u.array.values[2]), 29);

	/* not in passwd: gid 0, no error */
	s.user = "4242";
	write_ok(&s);
	cr_assert_eq(get_int(doc, "process", "user", "uid"), 4242);
	cr_assert_eq(get_int(doc, "process", "user", "gid"), 0);

	/* uid:gid taken as is */
	s.user = "1000:50";
	write_ok(&s);
	cr_assert_eq(get_int(doc, "process", "user", "uid"), 1000);
	cr_assert_eq(get_int(doc, "process", "user", "gid"), 50);
	g = get(doc, "process", "user", "additionalGids");
	cr_assert_eq(YAJL_GET_INTEGER(g->u.array.values[0]), 50);

	/* no user: root, gid 0, and root's groups */
	s.user = NULL;
	write_ok(&s);
	cr_assert_eq(get_int(doc, "process", "user", "uid"), 0);
	cr_assert_eq(get_int(doc, "process", "user", "gid"), 0);
	g = get(doc, "process", "user", "additionalGids");
	cr_assert(YAJL_IS_ARRAY(g) && g->u.array.len == 2);
	cr_assert_eq(YAJL_GET_INTEGER(g->u.array.values[1]), 100);
}

Test(specgen, user_by_name)
{
	struct specgen s = base();
	fake_etc();
	s.user = "carol";
	write_ok(&s);
	cr_assert_eq(get_int(doc, "process", "user", "uid"), 1002);
	cr_assert_eq(get_int(doc, "process", "user", "gid"), 1002);

	s.user = "bob:staff";
	write_ok(&s);
	cr_assert_eq(get_int(doc, "process", "user", "uid"), 1000);
	cr_assert_eq(get_int(doc, "process", "user", "gid"), 50);

	s.user = "1002:wheel";
	write_ok(&s);
	cr_assert_eq(get_int(doc, "process", "user", "uid"), 1002);
	cr_assert_eq(get_int(doc, "process", "user", "gid"), 10);

	/* a relative rootfs is the bundle's */
	s.rootfs = "rootfs";
	s.user = "bob";
	write_ok(&s);
	cr_assert_str_eq(get_str(doc, "root", "path", NULL), "rootfs");
	cr_assert_eq(get_int(doc, "process", "user", "uid"), 1000);
}

Test(specgen, unknown_users_and_groups_fail)
{
	struct specgen s = base();
	char want[256];

	/* no passwd at all */
	s.user = "bob";
	FMT(want, "user \"bob\" not found in %s/etc/passwd", rootfs);
	write_fails(&s, -ENOENT, want);

	fake_etc();
	s.user = "alice";
	FMT(want, "user \"alice\" not found in %s/etc/passwd", rootfs);
	write_fails(&s, -ENOENT, want);

	s.user = "bob:nogroup";
	FMT(want, "group \"nogroup\" not found in %s/etc/group", rootfs);
	write_fails(&s, -ENOENT, want);

	s.user = "bob:";
	write_fails(&s, -EINVAL, "invalid user \"bob:\"");
	s.user = "1:2:3";
	write_fails(&s, -EINVAL, "invalid user \"1:2:3\"");
}

Test(specgen, passwd_is_read_inside_the_rootfs)
{
	/* etc/passwd links out of the rootfs to a file naming "mallory": the link is
	 * resolved as if the rootfs were "/", so mallory is not found */
	char path[256], link[256];
	struct specgen s = base();
	FMT(path, "%s/outside", tmp);
	cr_assert_eq(mkdir(path, 0755), 0);
	FMT(path, "%s/outside/passwd", tmp);
	FILE *f = fopen(path, "w");
	cr_assert_not_null(f);
	fputs("mallory:x:666:666::/:/bin/sh\n", f);
	fclose(f);
	FMT(path, "%s/etc", rootfs);
	cr_assert_eq(mkdir(path, 0755), 0);
	FMT(link, "%s/etc/passwd", rootfs);
	cr_assert_eq(symlink("../../../outside/passwd", link), 0);
	s.user = "mallory";
	write_fails(&s, -ENOENT, "user \"mallory\" not found");

	/* an absolute link inside the rootfs is followed within it */
	cr_assert_eq(unlink(link), 0);
	cr_assert_eq(symlink("/etc/real-passwd", link), 0);
	put("etc/real-passwd", "mallory:x:7:8::/:/bin/sh\n");
	write_ok(&s);
	cr_assert_eq(get_int(doc, "process", "user", "uid"), 7);
	cr_assert_eq(get_int(doc, "process", "user", "gid"), 8);
}

Test(specgen, capabilities)
{
	struct specgen s = base();
	const char *sets[] = {"bounding", "effective", "permitted"};
	write_ok(&s);
	for (size_t i = 0; i < 3; i++)
		assert_strings(get(doc, "process", "capabilities", sets[i]), default_caps, sets[i]);
	cr_assert_null(get(doc, "process", "capabilities", "inheritable"));
	cr_assert_null(get(doc, "process", "capabilities", "ambient"));

	s.cap_add = LIST("net_admin");
	s.cap_drop = LIST("CAP_KILL");
	write_ok(&s);
	for (size_t i = 0; i < 3; i++) {
		yajl_val c = get(doc, "process", "capabilities", sets[i]);
		cr_assert(has_string(c, "CAP_NET_ADMIN"), "%s lacks CAP_NET_ADMIN", sets[i]);
		cr_assert_not(has_string(c, "CAP_KILL"), "%s keeps CAP_KILL", sets[i]);
		cr_assert(has_string(c, "CAP_CHOWN"));
		cr_assert_eq(c->u.array.len, 14);
	}
}

Test(specgen, bad_capability_fails_and_leaves_no_file)
{
	struct specgen s = base();
	s.cap_add = LIST("CAP_FOO");
	write_fails(&s, -EINVAL, "unknown capability \"CAP_FOO\"");
	s.cap_add = NULL;
	s.cap_drop = LIST("kill", "bogus");
	write_fails(&s, -EINVAL, "unknown capability \"bogus\"");
	/* a hostile name cannot make the message two lines */
	s.cap_drop = LIST("kill\nCAP_FORGED");
	write_fails(&s, -EINVAL, "unknown capability \"kill\\nCAP_FORGED\"");
}

Test(specgen, a_failed_write_keeps_the_previous_file)
{
	struct specgen s = base();
	char names[512];
	write_ok(&s);
	s.cap_add = LIST("CAP_FOO");
	char err[256];
	cr_assert_eq(specgen_write(&s, config, err, sizeof(err)), -EINVAL);
	load();
	cr_assert_str_eq(get_str(doc, "hostname", NULL, NULL), "c1");
	listing(names, sizeof(names));
	cr_assert_str_eq(names, "config.json, rootfs");
	/* invalid UTF-8 is refused by the generator, not written */
	s.cap_add = NULL;
	s.args = LIST("sh", "\xff\xfe");
	cr_assert_eq(specgen_write(&s, config, err, sizeof(err)), -EILSEQ);
	cr_assert(strstr(err, "UTF-8"), "%s", err);
	load();
	assert_strings(get(doc, "process", "args", NULL), LIST("sh", "-c", "echo ok"), "args");
}

Test(specgen, network)
{
	struct specgen s = base();
	s.net = SPECGEN_NET_NONE;
	s.netns_path = "/run/nanoshim/netns/c1";
	write_ok(&s);
	yajl_val ns = namespace(doc, "network");
	cr_assert_not_null(ns);
	cr_assert_str_eq(get_str(ns, "path", NULL, NULL), "/run/nanoshim/netns/c1");

	s.net = SPECGEN_NET_HOST;
	write_ok(&s);
	cr_assert_null(namespace(doc, "network"));
	cr_assert_not_null(namespace(doc, "uts"));
	cr_assert_eq(get(doc, "linux", "namespaces", NULL)->u.array.len, 4);

	s.net = SPECGEN_NET_NONE;
	s.netns_path = "relative/ns";
	write_fails(&s, -EINVAL, "is not absolute");
}

Test(specgen, resources_cgroups_readonly)
{
	struct specgen s = base();
	s.memory_limit = 64 << 20;
	s.cpus = 1.5;
	s.cgroups_path = "/nanoshim/c1";
	s.readonly_rootfs = true;
	write_ok(&s);
	yajl_val mem = get(doc, "linux", "resources", "memory");
	cr_assert_eq(get_int(mem, "limit", NULL, NULL), 64 << 20);
	yajl_val cpu = get(doc, "linux", "resources", "cpu");
	cr_assert_eq(get_int(cpu, "quota", NULL, NULL), 150000);
	cr_assert_eq(get_int(cpu, "period", NULL, NULL), 100000);
	cr_assert_str_eq(get_str(doc, "linux", "cgroupsPath", NULL), "/nanoshim/c1");
	cr_assert(YAJL_IS_TRUE(get(doc, "root", "readonly", NULL)));

	s.cpus = 0.001;
	write_fails(&s, -EINVAL, "below the kernel's minimum CFS quota");
	s.cpus = -1;
	write_fails(&s, -EINVAL, "invalid cpus");
	s.cpus = 0;
	s.memory_limit = -1;
	write_fails(&s, -EINVAL, "negative memory limit");
}

Test(specgen, missing_input)
{
	struct specgen s = base();
	char err[128];
	s.args = LIST("");
	write_fails(&s, -EINVAL, "no process args");
	s.args = NULL;
	write_fails(&s, -EINVAL, "no process args");
	s = base();
	s.rootfs = NULL;
	write_fails(&s, -EINVAL, "no rootfs");
	s = base();
	s.env = LIST("=x");
	write_fails(&s, -EINVAL, "invalid env entry \"=x\"");
	s = base();
	s.cap_add = LIST("nope");
	cr_assert_eq(specgen_write(&s, config, NULL, 0), -EINVAL, "no message buffer is fine");
	s = base();
	cr_assert_eq(specgen_write(&s, "/nonexistent-dir/config.json", err, sizeof(err)), -ENOENT);
	cr_assert(strstr(err, "/nonexistent-dir/config.json"), "%s", err);
}

/* ---- the real runtimes accept what we generate ---- */

static char rt_root[160], rt_id[64], rt_netns[160];
static const char *rt_runtime;

static void runtime_setup(void)
{
	if (geteuid() != 0)
		cr_skip_test("running runc and crun needs root");
	/* a private mount namespace: the netns bind mount and anything a runtime leaves
	 * mounted die with the test process */
	cr_assert_eq(unshare(CLONE_NEWNS), 0, "unshare: %s", strerror(errno));
	cr_assert_eq(mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL), 0);
	setup();
	FMT(rt_root, "%s/state", tmp);
	FMT(rt_netns, "%s/netns/c1", tmp);
	rt_runtime = NULL;
	rt_id[0] = '\0';
}

/* Runs argv (stdin /dev/null), its stdout into out and stderr into errout; its exit
 * status, or -1 if it ran longer than timeout seconds (it is then killed). */
static int run(const char *const argv[], char *out, size_t outlen, char *errout, size_t errlen,
	       int timeout)
{
	int po[2], pe[2], status;
	cr_assert_eq(pipe2(po, O_CLOEXEC), 0);
	cr_assert_eq(pipe2(pe, O_CLOEXEC), 0);
	pid_t pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		int null = open("/dev/null", O_RDONLY);
		if (null < 0 || dup2(null, 0) < 0 || dup2(po[1], 1) < 0 || dup2(pe[1], 2) < 0)
			_exit(126);
		execvp(argv[0], (char *const *)argv);
		_exit(127);
	}
	close(po[1]);
	close(pe[1]);
	struct pollfd fds[2] = {{.fd = po[0], .events = POLLIN}, {.fd = pe[0], .events = POLLIN}};
	size_t used[2] = {0, 0}, cap[2] = {outlen - 1, errlen - 1};
	char *buf[2] = {out, errout};
	time_t end = time(NULL) + timeout;
	int open_fds = 2, timed_out = 0;
	while (open_fds > 0) {
		int left = (int)(end - time(NULL));
		if (left <= 0 || poll(fds, 2, left * 1000) == 0) {
			timed_out = 1;
			break;
		}
		for (int i = 0; i < 2; i++) {
			if (fds[i].fd < 0 || !fds[i].revents)
				continue;
			char chunk[512];
			ssize_t n = read(fds[i].fd, chunk, sizeof(chunk));
			if (n <= 0) {
				close(fds[i].fd);
				fds[i].fd = -1;
				open_fds--;
				continue;
			}
			size_t take = (size_t)n < cap[i] - used[i] ? (size_t)n : cap[i] - used[i];
			memcpy(buf[i] + used[i], chunk, take);
			used[i] += take;
		}
	}
	out[used[0]] = errout[used[1]] = '\0';
	for (int i = 0; i < 2; i++)
		if (fds[i].fd >= 0)
			close(fds[i].fd);
	if (timed_out)
		kill(pid, SIGKILL);
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	if (timed_out)
		return -1;
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static void runtime_teardown(void)
{
	char out[256], errout[1024];
	if (rt_runtime && rt_id[0]) {
		const char *argv[] = {rt_runtime, "--root", rt_root, "delete", "-f", rt_id, NULL};
		run(argv, out, sizeof(out), errout, sizeof(errout), 30);
	}
	rt_id[0] = '\0';
	if (rt_netns[0])
		netns_remove(rt_netns);
	rt_netns[0] = '\0';
	teardown();
}

TestSuite(runtime, .init = runtime_setup, .fini = runtime_teardown);

/* A rootfs of busybox with sh and echo. */
static void busybox_rootfs(void)
{
	char path[256], cmd[512];
	FMT(path, "%s/bin", rootfs);
	cr_assert_eq(mkdir(path, 0755), 0);
	FMT(cmd, "cp /bin/busybox '%s/bin/busybox'", rootfs);
	cr_assert_eq(system(cmd), 0, "%s", cmd);
	const char *links[] = {"sh", "echo"};
	for (size_t i = 0; i < 2; i++) {
		FMT(path, "%s/bin/%s", rootfs, links[i]);
		cr_assert_eq(symlink("busybox", path), 0);
	}
}

/* crun 1.8 refuses a hybrid cgroup layout (v1 controllers under a tmpfs at
 * /sys/fs/cgroup, cgroup2 at unified/) while hugetlb sits on the cgroup2 mount: it
 * finds no v1 hierarchy for hugetlb. Mounting one fixes it (as test/e2e/lib.sh
 * does); here in the test's private mount namespace, so it goes with the test. */
static void fix_hybrid_hugetlb(void)
{
	struct statfs sfs;
	char line[4096], ctl[1024] = "";
	bool in_v2 = false, v1 = false;

	if (statfs("/sys/fs/cgroup", &sfs) < 0 || sfs.f_type != 0x01021994 /* TMPFS_MAGIC */)
		return;
	FILE *f = fopen("/sys/fs/cgroup/unified/cgroup.controllers", "re");
	if (!f)
		return;
	if (fgets(ctl, sizeof(ctl), f))
		for (char *save = NULL, *w = strtok_r(ctl, " \n", &save); w;
		     w = strtok_r(NULL, " \n", &save))
			in_v2 |= strcmp(w, "hugetlb") == 0;
	fclose(f);
	if (!in_v2)
		return;
	f = fopen("/proc/self/mountinfo", "re");
	cr_assert_not_null(f);
	while (fgets(line, sizeof(line), f)) {
		/* optional fields end at " - ": then fstype, source, super options */
		char *sep = strstr(line, " - "), type[64], opts[1024];
		if (sep && sscanf(sep + 3, "%63s %*s %1023s", type, opts) == 2 &&
		    strcmp(type, "cgroup") == 0 && strstr(opts, "hugetlb"))
			v1 = true;
	}
	fclose(f);
	if (v1)
		return;
	if (mkdir("/sys/fs/cgroup/hugetlb", 0755) < 0)
		cr_assert_eq(errno, EEXIST, "mkdir /sys/fs/cgroup/hugetlb: %s", strerror(errno));
	cr_assert_eq(mount("cgroup", "/sys/fs/cgroup/hugetlb", "cgroup", 0, "hugetlb"), 0,
		     "crun needs a v1 hugetlb hierarchy here; mounting one failed: %s",
		     strerror(errno));
}

static char rt_cgroup[96];
static const char *const rt_cap_add[] = {"net_admin", NULL};
static const char *const rt_cap_drop[] = {"kill", NULL};

/* The spec the runtime tests start from: its own namespace of netns_create's, a
 * hostname, NET_ADMIN added and KILL dropped, memory and cpu limits, a cgroup. */
static struct specgen container_spec(const char *runtime, const char *name,
				     const char *const *args)
{
	struct specgen s = base();
	rt_runtime = runtime;
	FMT(rt_id, "nanoshim-specgen-%d-%s", (int)getpid(), name);
	FMT(rt_cgroup, "/%s", rt_id);
	s.id = rt_id;
	s.args = args;
	s.hostname = "web";
	s.net = SPECGEN_NET_NONE;
	s.netns_path = rt_netns;
	s.cap_add = rt_cap_add; /* not LIST(): that would die with this call */
	s.cap_drop = rt_cap_drop;
	s.memory_limit = 64 << 20;
	s.cpus = 0.5;
	s.cgroups_path = rt_cgroup;
	return s;
}

/* Writes s and runs it to its end with rt_runtime (`run`, then `delete`); the
 * container's stdout in out. */
static void run_container(const struct specgen *s, char *out, size_t outlen)
{
	char errout[4096], delout[1024];
	write_ok(s);

	const char *argv[] = {rt_runtime, "--root", rt_root, "run", "--bundle", bundle, rt_id,
			      NULL};
	int status = run(argv, out, outlen, errout, sizeof(errout), 60);
	cr_assert_eq(status, 0, "%s run: status %d, stdout \"%s\", stderr: %s", rt_runtime,
		     status, out, errout);
	const char *del[] = {rt_runtime, "--root", rt_root, "delete", "-f", rt_id, NULL};
	status = run(del, delout, sizeof(delout), errout, sizeof(errout), 30);
	cr_assert_eq(status, 0, "%s delete: %s", rt_runtime, errout);
	rt_id[0] = '\0';
}

static void accepted_by(const char *runtime)
{
	char err[256] = "", out[1024], want[256];
	struct specgen s;
	struct stat st;

	busybox_rootfs();
	fake_etc();
	cr_assert_eq(netns_create(rt_netns, err, sizeof(err)), 0, "%s", err);

	s = container_spec(runtime, "echo", LIST("sh", "-c", "echo ok"));
	run_container(&s, out, sizeof(out));
	cr_assert_str_eq(out, "ok\n");

	/* the hostname is ours, the network namespace is the one netns_create made
	 * (not one of the runtime's, which would also have lo up), and the capabilities
	 * are ours: CAP_NET_ADMIN (12) in, CAP_KILL (5) out */
	cr_assert_eq(stat(rt_netns, &st), 0);
	s = container_spec(runtime, "look",
			   LIST("sh", "-c",
				"busybox hostname; busybox readlink /proc/self/ns/net; "
				"busybox grep CapEff /proc/self/status"));
	run_container(&s, out, sizeof(out));
	FMT(want, "web\nnet:[%lu]\nCapEff:\t%016llx\n", (unsigned long)st.st_ino,
	    (1ULL << 0) | (1ULL << 1) | (1ULL << 3) | (1ULL << 4) | (1ULL << 6) | (1ULL << 7) |
		    (1ULL << 8) | (1ULL << 10) | (1ULL << 12) | (1ULL << 13) | (1ULL << 18) |
		    (1ULL << 27) | (1ULL << 29) | (1ULL << 31));
	cr_assert_str_eq(out, want);

	/* the host's network namespace (ours), and a read-only rootfs */
	cr_assert_eq(stat("/proc/self/ns/net", &st), 0);
	s = container_spec(runtime, "host",
			   LIST("sh", "-c",
				"busybox readlink /proc/self/ns/net; "
				"echo x 2>/dev/null >/x && echo rw || echo ro"));
	s.net = SPECGEN_NET_HOST;
	s.readonly_rootfs = true;
	run_container(&s, out, sizeof(out));
	FMT(want, "net:[%lu]\nro\n", (unsigned long)st.st_ino);
	cr_assert_str_eq(out, want);

	/* a user by name from the rootfs's passwd, with its groups */
	s = container_spec(runtime, "user",
			   LIST("sh", "-c", "busybox id -u; busybox id -g; busybox id -G"));
	s.user = "bob";
	run_container(&s, out, sizeof(out));
	cr_assert_str_eq(out, "1000\n1001\n1001 10 29\n");
}

Test(runtime, runc_runs_the_spec)
{
	accepted_by("runc");
}

Test(runtime, crun_runs_the_spec)
{
	fix_hybrid_hugetlb();
	accepted_by("crun");
}
