/* cgroup library: parsing and mode detection on fixture files for v1, hybrid
 * and v2 hosts; Metrics field mapping on fake cgroup directories; and, on the
 * real cgroups of this host, a child process's ref, stats and OOM kill.
 * Every test removes the cgroups and temp dirs it made (.fini), after
 * reaping the only process it kills: its own child. */
#include "cgroup.h"
#include "cgroup_file.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef CGROUP2_SUPER_MAGIC
#define CGROUP2_SUPER_MAGIC 0x63677270
#endif

#define MiB (1024ull * 1024)
#define V1_ROOT "/sys/fs/cgroup"

typedef Io__Containerd__Cgroups__V1__Metrics V1Metrics;
typedef Io__Containerd__Cgroups__V2__Metrics V2Metrics;

/* ---- per-test state (Criterion runs each test in its own process) ---- */

enum { T_MEMORY, T_CPU, T_CPUACCT, T_PIDS, T_NV1 };
static const char *const t_v1_names[T_NV1] = {"memory", "cpu", "cpuacct", "pids"};

static struct {
	char name[64];
	char v1[T_NV1][PATH_MAX];       /* "" when that hierarchy is not there */
	char made[T_NV1 + 1][PATH_MAX]; /* directories to rmdir, in creation order */
	int nmade;
	char v2[PATH_MAX];
	char tmp[PATH_MAX]; /* fixture dir, removed recursively */
	pid_t child;
	int cmd_w, ack_r;
	struct cgroup_oom oom;
	struct cgroup_ref ref;
} T = {.child = -1, .cmd_w = -1, .ack_r = -1, .oom = {.fd = -1}};

/* dir + "/" + name into out (PATH_MAX bytes); the test fails if it does not fit. */
static char *pjoin(char *out, const char *dir, const char *name)
{
	size_t a = strlen(dir), b = strlen(name);

	cr_assert_lt(a + 1 + b, (size_t)PATH_MAX, "path too long: %s/%s", dir, name);
	memcpy(out, dir, a);
	out[a] = '/';
	memcpy(out + a + 1, name, b + 1);
	return out;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st, (void)flag, (void)ftw;
	remove(path);
	return 0;
}

static void reap_child(void)
{
	if (T.cmd_w >= 0)
		close(T.cmd_w);
	if (T.ack_r >= 0)
		close(T.ack_r);
	T.cmd_w = T.ack_r = -1;
	if (T.child > 0) {
		kill(T.child, SIGKILL);
		waitpid(T.child, NULL, 0);
		T.child = -1;
	}
}

/* rmdir can briefly see EBUSY right after the last task left. */
static int rmdir_retry(const char *dir)
{
	for (int i = 0; i < 100; i++) {
		if (rmdir(dir) == 0 || errno == ENOENT)
			return 0;
		if (errno != EBUSY)
			return -errno;
		usleep(10000);
	}
	return -EBUSY;
}

static void teardown(void)
{
	reap_child();
	cgroup_oom_release(&T.oom);
	cgroup_ref_release(&T.ref);
	for (int i = T.nmade - 1; i >= 0; i--)
		rmdir_retry(T.made[i]);
	T.nmade = 0;
	if (T.tmp[0])
		nftw(T.tmp, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	T.tmp[0] = '\0';
}

/* cr_skip ends the test without running .fini: clean up first. */
#define SKIP(...)                                                                                  \
	do {                                                                                       \
		teardown();                                                                        \
		cr_skip(__VA_ARGS__);                                                              \
	} while (0)

/* Removes what a crashed earlier run left: test cgroups named after a pid
 * that no longer exists (rmdir fails harmlessly on a busy one). */
static int sweep_entry(const char *name, void *ctx)
{
	char path[PATH_MAX];
	int pid;

	if (sscanf(name, "nanoshim-test-%d-", &pid) != 1 || pid <= 0 || kill(pid, 0) == 0 ||
	    errno != ESRCH)
		return 0;
	rmdir(pjoin(path, ctx, name));
	return 0;
}

static void sweep_stale(void)
{
	static const char *const roots[] = {V1_ROOT "/memory",  V1_ROOT "/cpu",
	                                    V1_ROOT "/cpuacct", V1_ROOT "/pids",
	                                    V1_ROOT "/unified", V1_ROOT};

	for (size_t i = 0; i < sizeof(roots) / sizeof(roots[0]); i++)
		cgroup_dir_list(AT_FDCWD, roots[i], sweep_entry, (void *)roots[i]);
}

static void setup(void)
{
	static int n;

	sweep_stale();
	snprintf(T.name, sizeof(T.name), "nanoshim-test-%d-%d", (int)getpid(), n++);
}

/* ---- small file helpers ---- */

static void put(const char *dir, const char *name, const char *content)
{
	char path[PATH_MAX];
	FILE *f;

	pjoin(path, dir, name);
	f = fopen(path, "w");
	cr_assert_not_null(f, "create %s: %s", path, strerror(errno));
	fputs(content, f);
	cr_assert_eq(fclose(f), 0);
}

static int write_file(const char *dir, const char *name, const char *content)
{
	char path[PATH_MAX];
	int fd, r = 0;

	pjoin(path, dir, name);
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (write(fd, content, strlen(content)) < 0)
		r = -errno;
	close(fd);
	return r;
}

static bool file_has_word(const char *dir, const char *name, const char *word)
{
	char buf[512], path[PATH_MAX], *save = NULL;

	pjoin(path, dir, name);
	if (cgroup_file_read(AT_FDCWD, path, buf, sizeof(buf)) < 0)
		return false;
	for (char *t = strtok_r(buf, " \n", &save); t; t = strtok_r(NULL, " \n", &save))
		if (strcmp(t, word) == 0)
			return true;
	return false;
}

static void make_tmp(void)
{
	snprintf(T.tmp, sizeof(T.tmp), "/tmp/nanoshim-cgtest-XXXXXX");
	cr_assert_not_null(mkdtemp(T.tmp));
}

static void subdir(char *out, const char *name)
{
	pjoin(out, T.tmp, name);
	cr_assert_eq(mkdir(out, 0755), 0, "mkdir %s: %s", out, strerror(errno));
}

static bool is_cgroup2(const char *path)
{
	struct statfs st;

	return statfs(path, &st) == 0 && (unsigned long)st.f_type == CGROUP2_SUPER_MAGIC;
}

/* ---- a child process driven over pipes ---- */

enum { CMD_TOUCH = 't', CMD_BUSY = 'b' };

struct cmd {
	char op;
	unsigned arg; /* MiB to touch, ms to spin */
};

/* Where the child's work goes, so the compiler cannot drop it. */
static char *volatile child_keep;
static volatile unsigned long child_sink;

static void child_main(int cmd_r, int ack_w)
{
	struct cmd c;

	while (read(cmd_r, &c, sizeof(c)) == (ssize_t)sizeof(c)) {
		if (c.op == CMD_TOUCH) {
			size_t len = c.arg * MiB;
			char *p = malloc(len);

			if (!p)
				_exit(2);
			for (size_t i = 0; i < len; i += 4096)
				p[i] = 1;
			child_keep = p; /* never freed: the memory stays charged */
		} else if (c.op == CMD_BUSY) {
			struct timespec a, b;

			clock_gettime(CLOCK_THREAD_CPUTIME_ID, &a);
			do {
				for (int i = 0; i < 100000; i++)
					child_sink += (unsigned long)i;
				clock_gettime(CLOCK_THREAD_CPUTIME_ID, &b);
			} while ((b.tv_sec - a.tv_sec) * 1000 + (b.tv_nsec - a.tv_nsec) / 1000000 <
			         (long)c.arg);
		}
		if (write(ack_w, "k", 1) != 1)
			_exit(3);
	}
	_exit(0);
}

static void start_child(void)
{
	int cmd[2], ack[2];

	cr_assert_eq(pipe2(cmd, O_CLOEXEC), 0);
	cr_assert_eq(pipe2(ack, O_CLOEXEC), 0);
	T.child = fork();
	cr_assert_geq(T.child, 0);
	if (T.child == 0) {
		close(cmd[1]);
		close(ack[0]);
		child_main(cmd[0], ack[1]);
	}
	close(cmd[0]);
	close(ack[1]);
	T.cmd_w = cmd[1];
	T.ack_r = ack[0];
}

/* Returns false when the child died instead of answering (OOM kill). */
static bool child_do(char op, unsigned arg)
{
	struct cmd c;
	char k;

	memset(&c, 0, sizeof(c)); /* no uninitialised padding on the pipe */
	c.op = op;
	c.arg = arg;

	cr_assert_eq(write(T.cmd_w, &c, sizeof(c)), (ssize_t)sizeof(c));
	return read(T.ack_r, &k, 1) == 1;
}

static void join(const char *dir, pid_t pid)
{
	char buf[32];
	int r;

	snprintf(buf, sizeof(buf), "%d", (int)pid);
	r = write_file(dir, "cgroup.procs", buf);
	cr_assert_eq(r, 0, "join %s: %s", dir, strerror(-r));
}

/* Creates <hierarchy>/<T.name> for memory, cpu, cpuacct and pids (once per
 * hierarchy when they are co-mounted). Skips the test on a host without v1. */
static void make_v1(void)
{
	char real[T_NV1][PATH_MAX];

	if (access(V1_ROOT "/memory/cgroup.procs", F_OK) != 0)
		SKIP("no cgroup v1 memory hierarchy at " V1_ROOT "/memory (pure cgroup v2 host)");
	for (int i = 0; i < T_NV1; i++) {
		char base[PATH_MAX];
		bool dup = false;

		T.v1[i][0] = real[i][0] = '\0';
		snprintf(base, sizeof(base), V1_ROOT "/%s", t_v1_names[i]);
		if (!realpath(base, real[i])) {
			real[i][0] = '\0';
			continue;
		}
		pjoin(T.v1[i], real[i], T.name);
		for (int j = 0; j < i; j++)
			dup |= strcmp(real[i], real[j]) == 0;
		if (dup)
			continue;
		cr_assert_eq(mkdir(T.v1[i], 0755), 0, "mkdir %s: %s", T.v1[i], strerror(errno));
		memcpy(T.made[T.nmade++], T.v1[i], PATH_MAX);
	}
}

static void join_v1(pid_t pid)
{
	for (int i = 0; i < T_NV1; i++) {
		bool dup = false;

		for (int j = 0; j < i; j++)
			dup |= strcmp(T.v1[i], T.v1[j]) == 0;
		if (T.v1[i][0] && !dup)
			join(T.v1[i], pid);
	}
}

/* The cgroup2 mount holding controllers or not: /sys/fs/cgroup on a v2 host,
 * …/unified on a hybrid one. */
static const char *v2_root(void)
{
	if (is_cgroup2(V1_ROOT))
		return V1_ROOT;
	if (is_cgroup2(V1_ROOT "/unified"))
		return V1_ROOT "/unified";
	return NULL;
}

static void make_v2(void)
{
	const char *root = v2_root();

	if (!root)
		SKIP("no cgroup2 mount at " V1_ROOT " or " V1_ROOT "/unified");
	pjoin(T.v2, root, T.name);
	cr_assert_eq(mkdir(T.v2, 0755), 0, "mkdir %s: %s", T.v2, strerror(errno));
	memcpy(T.made[T.nmade++], T.v2, PATH_MAX);
}

static int wait_readable(int fd, int ms)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};

	return poll(&p, 1, ms);
}

/* ---- file helpers ---- */

Test(cgroup_file, parse_u64_like_containerd)
{
	uint64_t v = 7;

	cr_assert_eq(cgroup_parse_u64("0", &v), 0);
	cr_assert_eq(v, 0);
	cr_assert_eq(cgroup_parse_u64("9223372036854771712", &v), 0);
	cr_assert_eq(v, 9223372036854771712ull);
	cr_assert_eq(cgroup_parse_u64("18446744073709551615", &v), 0);
	cr_assert_eq(v, UINT64_MAX);
	cr_assert_eq(cgroup_parse_u64("-1", &v), 0, "negative reads as 0");
	cr_assert_eq(v, 0);
	cr_assert_eq(cgroup_parse_u64("18446744073709551616", &v), -ERANGE);
	cr_assert_eq(cgroup_parse_u64("", &v), -EINVAL);
	cr_assert_eq(cgroup_parse_u64("12a", &v), -EINVAL);
	cr_assert_eq(cgroup_parse_u64(" 1", &v), -EINVAL);
	cr_assert_eq(cgroup_parse_u64("max", &v), -EINVAL);
	cr_assert_eq(cgroup_parse_u64("-", &v), -EINVAL);
}

static int count_line(char *line, void *ctx)
{
	size_t *n = ctx;

	cr_assert_eq(strlen(line) % 1000, 999, "line length %zu", strlen(line));
	(*n)++;
	return 0;
}

Test(cgroup_file, lines_long_and_unterminated, .init = setup, .fini = teardown)
{
	char *big = malloc(CGROUP_LINE_MAX + 10), path[PATH_MAX];
	size_t n = 0;
	uint64_t v;

	make_tmp();
	/* 2999 + 999 chars, the last without '\n', then one over the bound */
	memset(big, 'x', 2999);
	big[2999] = '\n';
	memset(big + 3000, 'y', 999);
	big[3999] = '\0';
	put(T.tmp, "lines", big);
	cr_assert_eq(cgroup_file_lines(AT_FDCWD, pjoin(path, T.tmp, "lines"), count_line, &n), 0);
	cr_assert_eq(n, 2);
	memset(big, 'z', CGROUP_LINE_MAX + 5);
	big[CGROUP_LINE_MAX + 5] = '\0';
	put(T.tmp, "huge", big);
	int dfd = open(T.tmp, O_PATH | O_DIRECTORY | O_CLOEXEC);
	cr_assert_eq(cgroup_file_lines(dfd, "huge", count_line, &n), -EOVERFLOW);
	cr_assert_eq(cgroup_file_lines(dfd, "absent", count_line, &n), -ENOENT);
	put(T.tmp, "value", "max\n");
	cr_assert_eq(cgroup_file_u64_or_max(dfd, "value", 42, &v), 0);
	cr_assert_eq(v, 42);
	cr_assert_eq(cgroup_file_u64(dfd, "value", &v), -EINVAL);
	put(T.tmp, "toolong",
	    "123456789012345678901234567890123456789012345678901234567890123456789");
	cr_assert_eq(cgroup_file_u64(dfd, "toolong", &v), -EFBIG);
	close(dfd);
	free(big);
}

/* ---- ref: parsing fixtures for each kind of host ---- */

static struct cgroup_ref ref_from_text(const char *mountinfo, const char *proc_cgroup, int *r,
                                       struct cgroup_err *err)
{
	struct cgroup_ref ref;
	char mi[PATH_MAX], pc[PATH_MAX];

	if (!T.tmp[0])
		make_tmp();
	put(T.tmp, "mountinfo", mountinfo);
	put(T.tmp, "cgroup", proc_cgroup);
	pjoin(mi, T.tmp, "mountinfo");
	pjoin(pc, T.tmp, "cgroup");
	*r = cgroup_ref_from_files(mi, pc, &ref, err);
	return ref;
}

static void assert_path(const char *got, const char *want)
{
	if (!want) {
		cr_assert_null(got, "expected no path, got %s", got);
		return;
	}
	cr_assert_not_null(got, "expected %s, got none", want);
	cr_assert_str_eq(got, want);
}

/* What this machine looks like: split v1 hierarchies plus cgroup2 at …/unified. */
static const char hybrid_mountinfo[] =
    "24 1 254:0 / / rw,relatime - ext4 /dev/vda rw\n"
    "30 22 0:27 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n"
    "31 30 0:28 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu\n"
    "32 30 0:29 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct\n"
    "34 30 0:31 / /sys/fs/cgroup/memory rw,relatime shared:9 - cgroup cgroup rw,memory\n"
    "37 30 0:34 / /sys/fs/cgroup/blkio rw,relatime - cgroup cgroup rw,blkio\n"
    "38 30 0:35 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids\n"
    "39 30 0:36 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd\n"
    "40 30 0:37 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n";

Test(cgroup_ref, hybrid_fixture, .init = setup, .fini = teardown)
{
	int r;

	T.ref =
	    ref_from_text(hybrid_mountinfo,
	                  "9:name=systemd:/\n8:pids:/default/c1\n4:memory:/default/c1\n"
	                  "2:cpuacct:/default/c1\n1:cpu:/default/c1\n7:blkio:/\n0::/default/c1\n",
	                  &r, NULL);
	cr_assert_eq(r, 0);
	cr_assert_eq(T.ref.mode, CGROUP_MODE_HYBRID);
	assert_path(T.ref.v1[CGROUP_MEMORY], "/sys/fs/cgroup/memory/default/c1");
	assert_path(T.ref.v1[CGROUP_CPU], "/sys/fs/cgroup/cpu/default/c1");
	assert_path(T.ref.v1[CGROUP_CPUACCT], "/sys/fs/cgroup/cpuacct/default/c1");
	assert_path(T.ref.v1[CGROUP_PIDS], "/sys/fs/cgroup/pids/default/c1");
	assert_path(T.ref.v1[CGROUP_BLKIO], "/sys/fs/cgroup/blkio");
	assert_path(T.ref.v1[CGROUP_HUGETLB], NULL);
	assert_path(T.ref.unified, "/sys/fs/cgroup/unified/default/c1");
}

Test(cgroup_ref, pure_v2_fixture, .init = setup, .fini = teardown)
{
	int r;

	T.ref = ref_from_text(
	    "24 1 254:0 / / rw - ext4 /dev/vda rw\n"
	    "30 22 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 "
	    "cgroup2 rw,nsdelegate,memory_recursiveprot\n",
	    "0::/system.slice/containerd.service/k8s.io/abc\n", &r, NULL);
	cr_assert_eq(r, 0);
	cr_assert_eq(T.ref.mode, CGROUP_MODE_V2);
	for (int i = 0; i < CGROUP_NCONTROLLERS; i++)
		assert_path(T.ref.v1[i], NULL);
	assert_path(T.ref.unified, "/sys/fs/cgroup/system.slice/containerd.service/k8s.io/abc");
}

Test(cgroup_ref, pure_v1_comounted_fixture, .init = setup, .fini = teardown)
{
	int r;

	T.ref = ref_from_text(
	    "25 18 0:22 / /sys/fs/cgroup rw - tmpfs tmpfs ro,mode=755\n"
	    "26 25 0:23 / /sys/fs/cgroup/systemd rw - cgroup cgroup rw,xattr,name=systemd\n"
	    "29 25 0:26 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct\n"
	    "30 25 0:27 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n"
	    "31 25 0:28 / /sys/fs/cgroup/hugetlb rw - cgroup cgroup rw,hugetlb\n",
	    "12:hugetlb:/docker/abc\n4:memory:/docker/abc\n3:cpu,cpuacct:/docker/abc\n"
	    "1:name=systemd:/docker/abc\n0::/\n",
	    &r, NULL);
	cr_assert_eq(r, 0);
	cr_assert_eq(T.ref.mode, CGROUP_MODE_V1, "no cgroup2 mount: legacy");
	assert_path(T.ref.v1[CGROUP_CPU], "/sys/fs/cgroup/cpu,cpuacct/docker/abc");
	assert_path(T.ref.v1[CGROUP_CPUACCT], "/sys/fs/cgroup/cpu,cpuacct/docker/abc");
	assert_path(T.ref.v1[CGROUP_MEMORY], "/sys/fs/cgroup/memory/docker/abc");
	assert_path(T.ref.v1[CGROUP_HUGETLB], "/sys/fs/cgroup/hugetlb/docker/abc");
	assert_path(T.ref.v1[CGROUP_PIDS], NULL);
	assert_path(T.ref.unified, NULL);
}

/* Inside a container that bind-mounts its own subtree: the mount root is
 * stripped from the process's path; paths outside the mount resolve to
 * nothing; mountinfo escapes are undone. */
Test(cgroup_ref, mount_root_and_escapes, .init = setup, .fini = teardown)
{
	int r;

	T.ref = ref_from_text(
	    "40 30 0:31 /docker/abc /sys/fs/cgroup/memory ro - cgroup cgroup rw,memory\n"
	    "41 30 0:35 /docker/abc /sys/fs/cgroup/pids ro - cgroup cgroup rw,pids\n"
	    "42 30 0:28 /docker/abc /mnt/cg\\040cpu ro - cgroup cgroup rw,cpu\n"
	    "43 30 0:29 /docker/abc /sys/fs/cgroup/cpuacct ro - cgroup cgroup rw,cpuacct\n"
	    "44 30 0:30 / /sys/fs/cgroup/blkio ro - cgroup cgroup rw,blkio\n",
	    "8:pids:/docker/abc\n4:memory:/docker/abc/sub\n1:cpu:/docker/abc/x\n"
	    "2:cpuacct:/docker/abcdef\n7:blkio:/../..\n",
	    &r, NULL);
	cr_assert_eq(r, 0);
	cr_assert_eq(T.ref.mode, CGROUP_MODE_V1);
	assert_path(T.ref.v1[CGROUP_PIDS], "/sys/fs/cgroup/pids");
	assert_path(T.ref.v1[CGROUP_MEMORY], "/sys/fs/cgroup/memory/sub");
	assert_path(T.ref.v1[CGROUP_CPU], "/mnt/cg cpu/x");
	assert_path(T.ref.v1[CGROUP_CPUACCT], NULL);
	assert_path(T.ref.v1[CGROUP_BLKIO], NULL);
}

Test(cgroup_ref, v2_only_on_unified_mount_is_v2, .init = setup, .fini = teardown)
{
	int r;

	/* A lone name=systemd v1 hierarchy carries no controller. */
	T.ref =
	    ref_from_text("39 30 0:36 / /sys/fs/cgroup/systemd rw - cgroup cgroup rw,name=systemd\n"
	                  "40 30 0:37 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw\n",
	                  "1:name=systemd:/a\n0::/a\n", &r, NULL);
	cr_assert_eq(r, 0);
	cr_assert_eq(T.ref.mode, CGROUP_MODE_V2);
	assert_path(T.ref.unified, "/sys/fs/cgroup/unified/a");
}

Test(cgroup_ref, errors, .init = setup, .fini = teardown)
{
	struct cgroup_err err = {0};
	int r;

	T.ref = ref_from_text("24 1 254:0 / / rw - ext4 /dev/vda rw\n", "0::/\n", &r, &err);
	cr_assert_eq(r, -EOPNOTSUPP);
	cr_assert_eq(err.code, -EOPNOTSUPP);
	cr_assert(strstr(err.msg, "no cgroup"), "%s", err.msg);
	T.ref = ref_from_text(hybrid_mountinfo, "garbage without colons\n", &r, &err);
	cr_assert_eq(r, -EINVAL);
	cr_assert(strstr(err.msg, "malformed"), "%s", err.msg);
	for (int i = 0; i < CGROUP_NCONTROLLERS; i++)
		cr_assert_null(T.ref.v1[i], "released on failure");
	cgroup_ref_release(NULL);
	cgroup_ref_release(&T.ref);
}

Test(cgroup_ref, no_such_pid)
{
	struct cgroup_ref ref;
	struct cgroup_err err = {0};
	pid_t pid = fork();

	cr_assert_geq(pid, 0);
	if (pid == 0)
		_exit(0);
	cr_assert_eq(waitpid(pid, NULL, 0), pid);
	cr_assert_eq(cgroup_ref_from_pid(pid, &ref, &err), -ESRCH);
	cr_assert(strstr(err.msg, "no such process"), "%s", err.msg);
}

Test(cgroup_ref, self_matches_host_mode)
{
	struct cgroup_ref ref;
	struct cgroup_err err = {0};
	enum cgroup_mode mode, want;

	/* containerd's Mode(): statfs of /sys/fs/cgroup, then …/unified. */
	if (is_cgroup2(V1_ROOT))
		want = CGROUP_MODE_V2;
	else if (is_cgroup2(V1_ROOT "/unified"))
		want = CGROUP_MODE_HYBRID;
	else
		want = CGROUP_MODE_V1;
	cr_assert_eq(cgroup_mode_detect(&mode, &err), 0, "%s", err.msg);
	cr_assert_eq(mode, want, "detected %s, statfs says %s", cgroup_mode_name(mode),
	             cgroup_mode_name(want));
	cr_assert_eq(cgroup_ref_from_pid(getpid(), &ref, &err), 0, "%s", err.msg);
	cr_assert_eq(ref.mode, want);
	cr_assert(cgroup_ref_exists(&ref));
	if (want == CGROUP_MODE_V2)
		cr_assert_not_null(ref.unified);
	else
		cr_assert_not_null(ref.v1[CGROUP_MEMORY]);
	cgroup_ref_release(&ref);
}

/* ---- real v1 cgroups ---- */

static void v1_unpack(const struct cgroup_ref *ref, V1Metrics **out)
{
	struct cgroup_err err = {0};
	char *url;
	uint8_t *buf;
	size_t len;

	cr_assert_eq(cgroup_stats(ref, &url, &buf, &len, &err), 0, "%s", err.msg);
	cr_assert_str_eq(url, "io.containerd.cgroups.v1.Metrics");
	*out = io__containerd__cgroups__v1__metrics__unpack(NULL, len, buf);
	cr_assert_not_null(*out, "packed v1 Metrics do not unpack");
	free(url);
	free(buf);
}

Test(cgroup_v1, ref_and_stats_of_a_child, .init = setup, .fini = teardown, .timeout = 60)
{
	struct cgroup_err err = {0};
	V1Metrics *m;
	uint64_t sum = 0;

	make_v1();
	cr_assert_eq(write_file(T.v1[T_MEMORY], "memory.limit_in_bytes", "536870912"), 0);
	if (T.v1[T_PIDS][0])
		cr_assert_eq(write_file(T.v1[T_PIDS], "pids.max", "100"), 0);
	start_child();
	join_v1(T.child);

	cr_assert_eq(cgroup_ref_from_pid(T.child, &T.ref, &err), 0, "%s", err.msg);
	cr_assert_neq(T.ref.mode, CGROUP_MODE_V2);
	for (int i = 0; i < T_NV1; i++) {
		static const enum cgroup_controller map[T_NV1] = {CGROUP_MEMORY, CGROUP_CPU,
		                                                  CGROUP_CPUACCT, CGROUP_PIDS};
		if (T.v1[i][0])
			assert_path(T.ref.v1[map[i]], T.v1[i]);
	}
	if (T.ref.mode == CGROUP_MODE_HYBRID)
		cr_assert_not_null(T.ref.unified, "hybrid: the child's cgroup2 path too");

	cr_assert(child_do(CMD_TOUCH, 32));
	cr_assert(child_do(CMD_BUSY, 300));
	v1_unpack(&T.ref, &m);

	cr_assert_not_null(m->memory);
	cr_assert_not_null(m->memory->usage);
	cr_assert_geq(m->memory->usage->usage, 32 * MiB, "usage %llu",
	              (unsigned long long)m->memory->usage->usage);
	cr_assert_geq(m->memory->usage->max, m->memory->usage->usage);
	cr_assert_eq(m->memory->usage->limit, 512 * MiB);
	cr_assert_geq(m->memory->rss + m->memory->rss_huge, 30 * MiB, "rss %llu",
	              (unsigned long long)m->memory->rss);
	cr_assert_geq(m->memory->total_rss + m->memory->total_rss_huge, 30 * MiB);
	cr_assert_gt(m->memory->pg_fault, 0);
	cr_assert_not_null(m->memory->swap);
	cr_assert_not_null(m->memory->kernel);
	cr_assert_not_null(m->memory->kernel_tcp);
	cr_assert_not_null(m->memory_oom_control);
	cr_assert_eq(m->memory_oom_control->oom_kill, 0);

	cr_assert_not_null(m->cpu);
	cr_assert_not_null(m->cpu->usage);
	cr_assert_not_null(m->cpu->throttling, "always sent, as containerd does");
	if (T.v1[T_CPUACCT][0]) {
		cr_assert_gt(m->cpu->usage->total, 200000000ull, "total %llu ns",
		             (unsigned long long)m->cpu->usage->total);
		cr_assert_gt(m->cpu->usage->user + m->cpu->usage->kernel, 0);
		cr_assert_eq(m->cpu->usage->user % (1000000000ull / sysconf(_SC_CLK_TCK)), 0,
		             "user is whole USER_HZ ticks in ns");
		cr_assert_geq(m->cpu->usage->n_per_cpu, 1);
		for (size_t i = 0; i < m->cpu->usage->n_per_cpu; i++)
			sum += m->cpu->usage->per_cpu[i];
		cr_assert_gt(sum, 0);
	}
	if (T.v1[T_PIDS][0]) {
		cr_assert_not_null(m->pids);
		cr_assert_geq(m->pids->current, 1);
		cr_assert_eq(m->pids->limit, 100);
	}
	if (T.ref.v1[CGROUP_BLKIO])
		cr_assert_not_null(m->blkio);
	io__containerd__cgroups__v1__metrics__free_unpacked(m, NULL);
}

Test(cgroup_v1, oom_kill_is_reported_then_removal_is_gone, .init = setup, .fini = teardown,
     .timeout = 60)
{
	struct cgroup_err err = {0};
	bool oom = true;
	int status, r;
	V1Metrics *m;

	make_v1();
	cr_assert_eq(write_file(T.v1[T_MEMORY], "memory.limit_in_bytes", "8388608"), 0);
	/* Without a memsw limit a host with swap would swap instead. */
	r = write_file(T.v1[T_MEMORY], "memory.memsw.limit_in_bytes", "8388608");
	cr_assert(r == 0 || r == -ENOENT, "memsw: %s", strerror(-r));
	start_child();
	join_v1(T.child);
	cr_assert_eq(cgroup_ref_from_pid(T.child, &T.ref, &err), 0, "%s", err.msg);
	cr_assert_eq(cgroup_oom_watch(&T.ref, &T.oom, &err), 0, "%s", err.msg);
	cr_assert_geq(T.oom.fd, 0);
	cr_assert(!T.oom.v2);

	cr_assert_eq(cgroup_oom_read(&T.oom, &oom), 0, "spurious wakeup is harmless");
	cr_assert(!oom);
	cr_assert(child_do(CMD_TOUCH, 2), "2 MiB fit");
	cr_assert_eq(wait_readable(T.oom.fd, 0), 0, "no event before the limit is hit");

	cr_assert(!child_do(CMD_TOUCH, 64), "the child must die allocating 64 MiB");
	cr_assert_eq(waitpid(T.child, &status, 0), T.child);
	T.child = -1;
	cr_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL, "status %#x", status);
	cr_assert_eq(wait_readable(T.oom.fd, 10000), 1, "eventfd not readable after OOM kill");
	cr_assert_eq(cgroup_oom_read(&T.oom, &oom), 0);
	cr_assert(oom, "OOM not reported");
	cr_assert(!cgroup_oom_gone(&T.oom));

	v1_unpack(&T.ref, &m);
	cr_assert_not_null(m->memory_oom_control);
	cr_assert_geq(m->memory_oom_control->oom_kill, 1);
	/* failcnt is not checked: with memsw limited this kernel counts no
	 * failures; the peak shows the limit was reached. */
	cr_assert_geq(m->memory->usage->max, 6 * MiB, "max_usage %llu",
	              (unsigned long long)m->memory->usage->max);
	cr_assert_eq(m->memory->usage->limit, 8 * MiB);
	io__containerd__cgroups__v1__metrics__free_unpacked(m, NULL);

	/* Removing the cgroup fires the eventfd once more: gone, not OOM. */
	cr_assert_eq(rmdir_retry(T.v1[T_MEMORY]), 0);
	cr_assert_eq(wait_readable(T.oom.fd, 10000), 1, "eventfd not readable after rmdir");
	cr_assert_eq(cgroup_oom_read(&T.oom, &oom), CGROUP_OOM_GONE);
	cr_assert(!oom);
	cr_assert(cgroup_oom_gone(&T.oom));
	cr_assert_eq(cgroup_oom_read(&T.oom, &oom), CGROUP_OOM_GONE, "stays gone");
}

Test(cgroup_v1, stats_of_removed_cgroup_is_enoent, .init = setup, .fini = teardown)
{
	struct cgroup_err err = {0};
	char *url;
	uint8_t *buf;
	size_t len;

	make_v1();
	start_child();
	join_v1(T.child);
	cr_assert_eq(cgroup_ref_from_pid(T.child, &T.ref, &err), 0, "%s", err.msg);
	reap_child();
	/* Keep only the paths of our own cgroups, then remove them. */
	for (int i = 0; i < CGROUP_NCONTROLLERS; i++) {
		if (T.ref.v1[i] && !strstr(T.ref.v1[i], T.name)) {
			free(T.ref.v1[i]);
			T.ref.v1[i] = NULL;
		}
	}
	for (int i = T.nmade - 1; i >= 0; i--)
		cr_assert_eq(rmdir_retry(T.made[i]), 0);
	cr_assert(!cgroup_ref_exists(&T.ref));
	cr_assert_eq(cgroup_stats(&T.ref, &url, &buf, &len, &err), -ENOENT);
	cr_assert_eq(cgroup_oom_watch(&T.ref, &T.oom, &err), -ENOENT, "%s", err.msg);
	cr_assert_eq(T.oom.fd, -1);
}

/* ---- real cgroup2 ---- */

static void v2_unpack(const struct cgroup_ref *ref, V2Metrics **out)
{
	struct cgroup_err err = {0};
	char *url;
	uint8_t *buf;
	size_t len;

	cr_assert_eq(cgroup_stats(ref, &url, &buf, &len, &err), 0, "%s", err.msg);
	cr_assert_str_eq(url, "io.containerd.cgroups.v2.Metrics");
	*out = io__containerd__cgroups__v2__metrics__unpack(NULL, len, buf);
	cr_assert_not_null(*out, "packed v2 Metrics do not unpack");
	free(url);
	free(buf);
}

/* A ref that reads the test cgroup as v2 whatever the host's mode. */
static struct cgroup_ref v2_ref(const char *dir)
{
	struct cgroup_ref ref = {.mode = CGROUP_MODE_V2, .unified = strdup(dir)};

	cr_assert_not_null(ref.unified);
	return ref;
}

Test(cgroup_v2, ref_and_cpu_stats_of_a_child, .init = setup, .fini = teardown, .timeout = 60)
{
	struct cgroup_err err = {0};
	struct cgroup_ref ref;
	V2Metrics *m;

	make_v2();
	start_child();
	join(T.v2, T.child);
	cr_assert_eq(cgroup_ref_from_pid(T.child, &T.ref, &err), 0, "%s", err.msg);
	assert_path(T.ref.unified, T.v2);
	cr_assert(child_do(CMD_BUSY, 300));

	ref = v2_ref(T.v2);
	v2_unpack(&ref, &m);
	cgroup_ref_release(&ref);
	cr_assert_not_null(m->cpu);
	cr_assert_gt(m->cpu->usage_usec, 200000, "usage_usec %llu",
	             (unsigned long long)m->cpu->usage_usec);
	cr_assert_gt(m->cpu->user_usec + m->cpu->system_usec, 0);
	cr_assert_not_null(m->pids, "always sent, as containerd does");
	cr_assert_not_null(m->memory);
	cr_assert_not_null(m->io);
	cr_assert_not_null(m->rdma);
	io__containerd__cgroups__v2__metrics__free_unpacked(m, NULL);
}

static void need_v2_controllers(void)
{
	if (!file_has_word(T.v2, "cgroup.controllers", "memory") ||
	    !file_has_word(T.v2, "cgroup.controllers", "pids"))
		SKIP("memory/pids controllers are not enabled for cgroup2 children of %s (on a "
		     "hybrid host they stay on v1)",
		     v2_root());
}

Test(cgroup_v2, memory_and_pids_stats_of_a_child, .init = setup, .fini = teardown, .timeout = 60)
{
	struct cgroup_ref ref;
	V2Metrics *m;

	make_v2();
	need_v2_controllers();
	cr_assert_eq(write_file(T.v2, "pids.max", "100"), 0);
	start_child();
	join(T.v2, T.child);
	cr_assert(child_do(CMD_TOUCH, 32));
	ref = v2_ref(T.v2);
	v2_unpack(&ref, &m);
	cgroup_ref_release(&ref);
	cr_assert_geq(m->memory->usage, 32 * MiB);
	cr_assert_geq(m->memory->anon, 30 * MiB);
	cr_assert_eq(m->memory->usage_limit, UINT64_MAX, "memory.max is \"max\"");
	cr_assert_geq(m->pids->current, 1);
	cr_assert_eq(m->pids->limit, 100);
	cr_assert_not_null(m->memory_events);
	io__containerd__cgroups__v2__metrics__free_unpacked(m, NULL);
}

Test(cgroup_v2, oom_kill_is_reported, .init = setup, .fini = teardown, .timeout = 60)
{
	struct cgroup_err err = {0};
	bool oom = false;
	int status, r;

	make_v2();
	need_v2_controllers();
	cr_assert_eq(write_file(T.v2, "memory.max", "8388608"), 0);
	r = write_file(T.v2, "memory.swap.max", "0");
	cr_assert(r == 0 || r == -ENOENT);
	start_child();
	join(T.v2, T.child);
	T.ref = v2_ref(T.v2);
	cr_assert_eq(cgroup_oom_watch(&T.ref, &T.oom, &err), 0, "%s", err.msg);
	cr_assert(T.oom.v2);
	cr_assert(!child_do(CMD_TOUCH, 64), "the child must die allocating 64 MiB");
	cr_assert_eq(waitpid(T.child, &status, 0), T.child);
	T.child = -1;
	cr_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
	for (int i = 0; i < 10 && !oom; i++) {
		cr_assert_eq(wait_readable(T.oom.fd, 10000), 1);
		r = cgroup_oom_read(&T.oom, &oom);
		cr_assert_geq(r, 0);
	}
	cr_assert(oom, "OOM kill not reported");
}

Test(cgroup_v2, oom_watch_without_memory_controller, .init = setup, .fini = teardown)
{
	struct cgroup_err err = {0};

	make_v2();
	if (file_has_word(T.v2, "cgroup.controllers", "memory"))
		SKIP("the memory controller is enabled here; nothing to refuse");
	T.ref = v2_ref(T.v2);
	cr_assert_eq(cgroup_oom_watch(&T.ref, &T.oom, &err), -EOPNOTSUPP, "%s", err.msg);
	cr_assert(strstr(err.msg, "memory controller"), "%s", err.msg);
	cr_assert_eq(T.oom.fd, -1);
	cr_assert_null(T.oom.path);
}

/* ---- Metrics field mapping on fake cgroup directories ---- */

/* Checks that the first n uint64 fields of msg, in field-number order, hold
 * 1..n: the fixtures number their keys in the proto's order. */
static void assert_numbered(const ProtobufCMessage *msg, unsigned n)
{
	const ProtobufCMessageDescriptor *d = msg->descriptor;

	for (unsigned i = 0; i < n; i++) {
		const ProtobufCFieldDescriptor *f = &d->fields[i];
		uint64_t v;

		cr_assert_eq(f->type, PROTOBUF_C_TYPE_UINT64, "%s", f->name);
		memcpy(&v, (const char *)msg + f->offset, sizeof(v));
		cr_assert_eq(v, i + 1, "%s.%s = %llu, want %u", d->name, f->name,
		             (unsigned long long)v, i + 1);
	}
}

static const char *const v1_memory_keys[] = {
    "cache",
    "rss",
    "rss_huge",
    "mapped_file",
    "dirty",
    "writeback",
    "pgpgin",
    "pgpgout",
    "pgfault",
    "pgmajfault",
    "inactive_anon",
    "active_anon",
    "inactive_file",
    "active_file",
    "unevictable",
    "hierarchical_memory_limit",
    "hierarchical_memsw_limit",
    "total_cache",
    "total_rss",
    "total_rss_huge",
    "total_mapped_file",
    "total_dirty",
    "total_writeback",
    "total_pgpgin",
    "total_pgpgout",
    "total_pgfault",
    "total_pgmajfault",
    "total_inactive_anon",
    "total_active_anon",
    "total_inactive_file",
    "total_active_file",
    "total_unevictable",
};

static void numbered_kv(const char *dir, const char *name, const char *const *keys, unsigned n,
                        const char *extra)
{
	char buf[4096] = "";
	size_t off = 0;

	for (unsigned i = 0; i < n; i++)
		off += (size_t)snprintf(buf + off, sizeof(buf) - off, "%s %u\n", keys[i], i + 1);
	snprintf(buf + off, sizeof(buf) - off, "%s", extra);
	put(dir, name, buf);
}

/* The first block device in /proc/partitions, to check device naming. */
static bool first_partition(unsigned *major, unsigned *minor, char *name, size_t len)
{
	FILE *f = fopen("/proc/partitions", "re");
	char line[256], nm[64];
	unsigned long long blocks;
	bool found = false;

	if (!f)
		return false;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "%u %u %llu %63s", major, minor, &blocks, nm) == 4) {
			snprintf(name, len, "/dev/%s", nm);
			found = true;
			break;
		}
	fclose(f);
	return found;
}

Test(cgroup_stats, v1_fields_from_fixture_files, .init = setup, .fini = teardown)
{
	char mem[PATH_MAX], cpu[PATH_MAX], acct[PATH_MAX], pids[PATH_MAX], blk[PATH_MAX],
	    hug[PATH_MAX], dev[80], buf[512];
	struct cgroup_ref ref = {.mode = CGROUP_MODE_V1};
	struct cgroup_err err = {0};
	unsigned major = 8, minor = 0;
	bool have_dev;
	V1Metrics *m;
	long hz = sysconf(_SC_CLK_TCK);

	make_tmp();
	subdir(mem, "memory");
	subdir(cpu, "cpu");
	subdir(acct, "cpuacct");
	subdir(pids, "pids");
	subdir(blk, "blkio");
	subdir(hug, "hugetlb");
	numbered_kv(mem, "memory.stat", v1_memory_keys, 32, "unknown_key 99\n");
	put(mem, "memory.usage_in_bytes", "100\n");
	put(mem, "memory.max_usage_in_bytes", "200\n");
	put(mem, "memory.failcnt", "3\n");
	put(mem, "memory.limit_in_bytes", "9223372036854771712\n");
	put(mem, "memory.kmem.usage_in_bytes", "11\n");
	put(mem, "memory.kmem.limit_in_bytes", "-1\n");
	put(mem, "memory.kmem.tcp.failcnt", "5\n");
	put(mem, "memory.oom_control", "oom_kill_disable 1\nunder_oom 0\noom_kill 4\n");
	put(cpu, "cpu.stat", "nr_periods 10\nnr_throttled 2\nthrottled_time 777\n");
	put(acct, "cpuacct.stat", "user 150\nsystem 25\n");
	put(acct, "cpuacct.usage", "123456789\n");
	put(acct, "cpuacct.usage_percpu", "10 20 30 40 \n");
	put(pids, "pids.current", "3\n");
	put(pids, "pids.max", "max\n");
	have_dev = first_partition(&major, &minor, dev, sizeof(dev));
	/* CFQ files present: they are used, the throttle files are not. */
	snprintf(buf, sizeof(buf),
	         "%u:%u Read 4096\n%u:%u Write 8192\n%u:%u Total 12288\nTotal 12288\n", major,
	         minor, major, minor, major, minor);
	put(blk, "blkio.io_service_bytes_recursive", buf);
	put(blk, "blkio.io_serviced_recursive", "Total 0\n");
	snprintf(buf, sizeof(buf), "%u:%u 64\n", major, minor);
	put(blk, "blkio.sectors_recursive", buf);
	put(blk, "blkio.throttle.io_serviced", "1:1 Read 1\n");
	put(hug, "hugetlb.2MB.usage_in_bytes", "4194304\n");
	put(hug, "hugetlb.2MB.max_usage_in_bytes", "6291456\n");
	put(hug, "hugetlb.2MB.failcnt", "1\n");
	ref.v1[CGROUP_MEMORY] = mem;
	ref.v1[CGROUP_CPU] = cpu;
	ref.v1[CGROUP_CPUACCT] = acct;
	ref.v1[CGROUP_PIDS] = pids;
	ref.v1[CGROUP_BLKIO] = blk;
	ref.v1[CGROUP_HUGETLB] = hug;

	cr_assert_eq(cgroup_stats_v1(&ref, &m, &err), 0, "%s", err.msg);
	assert_numbered(&m->memory->base, 32);
	cr_assert_eq(m->memory->usage->usage, 100);
	cr_assert_eq(m->memory->usage->max, 200);
	cr_assert_eq(m->memory->usage->failcnt, 3);
	cr_assert_eq(m->memory->usage->limit, 9223372036854771712ull);
	cr_assert_not_null(m->memory->swap, "present though memsw files are missing");
	cr_assert_eq(m->memory->swap->usage, 0);
	cr_assert_eq(m->memory->kernel->usage, 11);
	cr_assert_eq(m->memory->kernel->limit, 0, "-1 reads as 0");
	cr_assert_eq(m->memory->kernel_tcp->failcnt, 5);
	cr_assert_eq(m->memory_oom_control->oom_kill_disable, 1);
	cr_assert_eq(m->memory_oom_control->oom_kill, 4);
	cr_assert_eq(m->cpu->throttling->periods, 10);
	cr_assert_eq(m->cpu->throttling->throttled_periods, 2);
	cr_assert_eq(m->cpu->throttling->throttled_time, 777);
	cr_assert_eq(m->cpu->usage->total, 123456789);
	cr_assert_eq(m->cpu->usage->user, 150ull * 1000000000 / (unsigned long long)hz);
	cr_assert_eq(m->cpu->usage->kernel, 25ull * 1000000000 / (unsigned long long)hz);
	cr_assert_eq(m->cpu->usage->n_per_cpu, 4);
	cr_assert_eq(m->cpu->usage->per_cpu[3], 40);
	cr_assert_eq(m->pids->current, 3);
	cr_assert_eq(m->pids->limit, 0, "v1 reports no pids limit as 0");

	cr_assert_not_null(m->blkio);
	cr_assert_eq(m->blkio->n_io_service_bytes_recursive, 3, "Total without device skipped");
	cr_assert_str_eq(m->blkio->io_service_bytes_recursive[0]->op, "Read");
	cr_assert_eq(m->blkio->io_service_bytes_recursive[1]->value, 8192);
	cr_assert_eq(m->blkio->io_service_bytes_recursive[0]->major, major);
	cr_assert_eq(m->blkio->io_service_bytes_recursive[0]->minor, minor);
	if (have_dev)
		cr_assert_str_eq(m->blkio->io_service_bytes_recursive[0]->device, dev);
	cr_assert_eq(m->blkio->n_sectors_recursive, 1);
	cr_assert_str_eq(m->blkio->sectors_recursive[0]->op, "", "no op on a three-field line");
	cr_assert_eq(m->blkio->sectors_recursive[0]->value, 64);
	cr_assert_eq(m->blkio->n_io_serviced_recursive, 0, "throttle files unused");

	if (access("/sys/kernel/mm/hugepages/hugepages-2048kB", F_OK) == 0) {
		bool seen = false;

		for (size_t i = 0; i < m->n_hugetlb; i++) {
			if (strcmp(m->hugetlb[i]->pagesize, "2MB") != 0)
				continue;
			seen = true;
			cr_assert_eq(m->hugetlb[i]->usage, 4194304);
			cr_assert_eq(m->hugetlb[i]->max, 6291456);
			cr_assert_eq(m->hugetlb[i]->failcnt, 1);
		}
		cr_assert(seen, "no 2MB hugetlb entry");
	}
	io__containerd__cgroups__v1__metrics__free_unpacked(m, NULL);

	/* Without CFQ data the throttle files are read instead. */
	put(blk, "blkio.io_service_bytes_recursive", "");
	put(blk, "blkio.sectors_recursive", "");
	put(blk, "blkio.throttle.io_service_bytes", "1:1 Write 5\n");
	cr_assert_eq(cgroup_stats_v1(&ref, &m, &err), 0, "%s", err.msg);
	cr_assert_eq(m->blkio->n_io_serviced_recursive, 1);
	cr_assert_eq(m->blkio->io_serviced_recursive[0]->value, 1);
	cr_assert_eq(m->blkio->n_io_service_bytes_recursive, 1);
	cr_assert_str_eq(m->blkio->io_service_bytes_recursive[0]->op, "Write");
	io__containerd__cgroups__v1__metrics__free_unpacked(m, NULL);
}

Test(cgroup_stats, v1_errors, .init = setup, .fini = teardown)
{
	char mem[PATH_MAX], gone[PATH_MAX], path[PATH_MAX], *url;
	struct cgroup_ref ref = {.mode = CGROUP_MODE_V1};
	struct cgroup_err err = {0};
	uint8_t *buf;
	size_t len;
	V1Metrics *m;

	make_tmp();
	subdir(mem, "memory");
	pjoin(gone, T.tmp, "absent");
	put(mem, "memory.stat", "cache 1\nbroken line here\n");
	ref.v1[CGROUP_MEMORY] = mem;
	cr_assert_eq(cgroup_stats_v1(&ref, &m, &err), -EINVAL);
	cr_assert_null(m);
	cr_assert(strstr(err.msg, "memory.stat"), "%s", err.msg);
	put(mem, "memory.stat", "cache notanumber\n");
	cr_assert_eq(cgroup_stats_v1(&ref, &m, &err), -EINVAL);

	/* No memory.stat: no memory section, not an error. */
	unlink(pjoin(path, mem, "memory.stat"));
	cr_assert_eq(cgroup_stats_v1(&ref, &m, &err), 0, "%s", err.msg);
	cr_assert_null(m->memory);
	cr_assert_null(m->pids);
	cr_assert_not_null(m->cpu);
	io__containerd__cgroups__v1__metrics__free_unpacked(m, NULL);

	ref.v1[CGROUP_MEMORY] = gone;
	cr_assert_eq(cgroup_stats(&ref, &url, &buf, &len, &err), -ENOENT);
	ref.mode = CGROUP_MODE_UNAVAILABLE;
	cr_assert_eq(cgroup_stats(&ref, &url, &buf, &len, &err), -EOPNOTSUPP);
}

static const char *const v2_memory_keys[] = {
    "anon",
    "file",
    "kernel_stack",
    "slab",
    "sock",
    "shmem",
    "file_mapped",
    "file_dirty",
    "file_writeback",
    "anon_thp",
    "inactive_anon",
    "active_anon",
    "inactive_file",
    "active_file",
    "unevictable",
    "slab_reclaimable",
    "slab_unreclaimable",
    "pgfault",
    "pgmajfault",
    "workingset_refault",
    "workingset_activate",
    "workingset_nodereclaim",
    "pgrefill",
    "pgscan",
    "pgsteal",
    "pgactivate",
    "pgdeactivate",
    "pglazyfree",
    "pglazyfreed",
    "thp_fault_alloc",
    "thp_collapse_alloc",
};
static const char *const v2_cpu_keys[] = {"usage_usec", "user_usec",    "system_usec",
                                          "nr_periods", "nr_throttled", "throttled_usec"};
static const char *const v2_event_keys[] = {"low", "high", "max", "oom", "oom_kill"};

Test(cgroup_stats, v2_fields_from_fixture_files, .init = setup, .fini = teardown)
{
	struct cgroup_err err = {0};
	char path[PATH_MAX];
	V2Metrics *m;
	int seen = 0;

	make_tmp();
	numbered_kv(T.tmp, "memory.stat", v2_memory_keys, 31, "zswap 5\nfoo bar\n");
	numbered_kv(T.tmp, "cpu.stat", v2_cpu_keys, 6, "nr_bursts 0\nburst_usec 0\n");
	numbered_kv(T.tmp, "memory.events", v2_event_keys, 5, "oom_group_kill 0\n");
	put(T.tmp, "memory.current", "4096\n");
	put(T.tmp, "memory.max", "max\n");
	put(T.tmp, "memory.swap.current", "0\n");
	put(T.tmp, "memory.swap.max", "1048576\n");
	put(T.tmp, "pids.current", "2\n");
	put(T.tmp, "pids.max", "max\n");
	put(T.tmp, "io.stat",
	    "254:0 rbytes=1 wbytes=2 rios=3 wios=4 dbytes=0 dios=0\n"
	    "8:16 rbytes=10 wbytes=20 rios=30 wios=40\n");
	put(T.tmp, "hugetlb.2MB.current", "2097152\n");
	put(T.tmp, "hugetlb.2MB.max", "max\n");
	put(T.tmp, "hugetlb.2MB.rsvd.max", "max\n");
	put(T.tmp, "hugetlb.2MB.events", "max 0\n");
	put(T.tmp, "hugetlb.1GB.current", "0\n");
	put(T.tmp, "hugetlb.1GB.max", "0\n");
	T.ref.mode = CGROUP_MODE_V2;
	T.ref.unified = strdup(T.tmp);

	cr_assert_eq(cgroup_stats_v2(&T.ref, &m, &err), 0, "%s", err.msg);
	assert_numbered(&m->memory->base, 31);
	assert_numbered(&m->cpu->base, 6);
	cr_assert_not_null(m->memory_events);
	assert_numbered(&m->memory_events->base, 5);
	cr_assert_eq(m->memory->usage, 4096);
	cr_assert_eq(m->memory->usage_limit, UINT64_MAX);
	cr_assert_eq(m->memory->swap_usage, 0);
	cr_assert_eq(m->memory->swap_limit, 1048576);
	cr_assert_eq(m->pids->current, 2);
	cr_assert_eq(m->pids->limit, UINT64_MAX, "v2 reports no pids limit as max uint64");
	cr_assert_eq(m->io->n_usage, 2);
	cr_assert_eq(m->io->usage[0]->major, 254);
	cr_assert_eq(m->io->usage[0]->wios, 4);
	cr_assert_eq(m->io->usage[1]->minor, 16);
	cr_assert_eq(m->io->usage[1]->rbytes, 10);
	cr_assert_not_null(m->rdma);
	cr_assert_eq(m->n_hugetlb, 2);
	for (size_t i = 0; i < m->n_hugetlb; i++) {
		if (strcmp(m->hugetlb[i]->pagesize, "2MB") == 0) {
			seen |= 1;
			cr_assert_eq(m->hugetlb[i]->current, 2097152);
			cr_assert_eq(m->hugetlb[i]->max, UINT64_MAX);
		} else if (strcmp(m->hugetlb[i]->pagesize, "1GB") == 0) {
			seen |= 2;
		}
	}
	cr_assert_eq(seen, 3);
	io__containerd__cgroups__v2__metrics__free_unpacked(m, NULL);

	/* No memory.events: no memory_events section. */
	unlink(pjoin(path, T.tmp, "memory.events"));
	cr_assert_eq(cgroup_stats_v2(&T.ref, &m, &err), 0, "%s", err.msg);
	cr_assert_null(m->memory_events);
	io__containerd__cgroups__v2__metrics__free_unpacked(m, NULL);

	put(T.tmp, "cpu.stat", "usage_usec 1 2\n");
	cr_assert_eq(cgroup_stats_v2(&T.ref, &m, &err), -EINVAL);
	cr_assert(strstr(err.msg, "cpu.stat"), "%s", err.msg);
	free(T.ref.unified);
	T.ref.unified = strdup("/nonexistent/nanoshim-cgroup");
	cr_assert_eq(cgroup_stats_v2(&T.ref, &m, &err), -ENOENT);
}

/* ---- v2 OOM logic on regular files (inotify works on any file) ---- */

static void events(const char *oom_kill, const char *populated)
{
	char buf[256];
	int r;

	snprintf(buf, sizeof(buf), "low 0\nhigh 0\nmax 3\noom 2\noom_kill %s\noom_group_kill 0\n",
	         oom_kill);
	r = write_file(T.tmp, "memory.events", buf);
	cr_assert_eq(r, 0);
	snprintf(buf, sizeof(buf), "populated %s\nfrozen 0\n", populated);
	cr_assert_eq(write_file(T.tmp, "cgroup.events", buf), 0);
}

Test(cgroup_oom, v2_counts_oom_kill_increases, .init = setup, .fini = teardown)
{
	struct cgroup_err err = {0};
	bool oom = true;

	make_tmp();
	put(T.tmp, "memory.events", "low 0\nhigh 0\nmax 0\noom 0\noom_kill 0\n");
	put(T.tmp, "cgroup.events", "populated 1\nfrozen 0\n");
	T.ref.mode = CGROUP_MODE_V2;
	T.ref.unified = strdup(T.tmp);
	cr_assert_eq(cgroup_oom_watch(&T.ref, &T.oom, &err), 0, "%s", err.msg);
	cr_assert(T.oom.v2);
	cr_assert_eq(cgroup_oom_read(&T.oom, &oom), 0, "nothing pending");
	cr_assert(!oom);

	events("1", "1");
	cr_assert_eq(wait_readable(T.oom.fd, 1000), 1);
	cr_assert_eq(cgroup_oom_read(&T.oom, &oom), 0);
	cr_assert(oom, "oom_kill 0 -> 1");
	cr_assert_eq(wait_readable(T.oom.fd, 0), 0, "all events drained");

	events("1", "1");
	cr_assert_eq(wait_readable(T.oom.fd, 1000), 1);
	cr_assert_eq(cgroup_oom_read(&T.oom, &oom), 0);
	cr_assert(!oom, "unchanged counter is no OOM");

	/* A kill followed by the cgroup emptying: both seen in one read. */
	events("3", "0");
	cr_assert_eq(wait_readable(T.oom.fd, 1000), 1);
	cr_assert_eq(cgroup_oom_read(&T.oom, &oom), CGROUP_OOM_GONE);
	cr_assert(oom, "1 -> 3");
	cr_assert(cgroup_oom_gone(&T.oom));
	cgroup_oom_release(&T.oom);
	cgroup_oom_release(&T.oom);
	cgroup_oom_release(NULL);
	cr_assert_eq(T.oom.fd, -1);
}

Test(cgroup_oom, v2_first_count_is_reported_like_containerd, .init = setup, .fini = teardown)
{
	struct cgroup_err err = {0};
	bool oom = false;

	/* containerd starts from 0, so a kill between create and the watch
	 * is still reported at the first event. */
	make_tmp();
	put(T.tmp, "memory.events", "oom_kill 1\n");
	put(T.tmp, "cgroup.events", "populated 1\n");
	T.ref.mode = CGROUP_MODE_V2;
	T.ref.unified = strdup(T.tmp);
	cr_assert_eq(cgroup_oom_watch(&T.ref, &T.oom, &err), 0, "%s", err.msg);
	events("1", "1");
	cr_assert_eq(wait_readable(T.oom.fd, 1000), 1);
	cr_assert_eq(cgroup_oom_read(&T.oom, &oom), 0);
	cr_assert(oom);
}

Test(cgroup_oom, v2_removed_cgroup_is_gone, .init = setup, .fini = teardown)
{
	struct cgroup_err err = {0};
	char path[PATH_MAX];
	bool oom = true;

	make_tmp();
	put(T.tmp, "memory.events", "oom_kill 0\n");
	put(T.tmp, "cgroup.events", "populated 1\n");
	T.ref.mode = CGROUP_MODE_V2;
	T.ref.unified = strdup(T.tmp);
	cr_assert_eq(cgroup_oom_watch(&T.ref, &T.oom, &err), 0, "%s", err.msg);
	pjoin(path, T.tmp, "memory.events");
	cr_assert_eq(unlink(path), 0);
	cr_assert_eq(wait_readable(T.oom.fd, 1000), 1, "IN_IGNORED on removal");
	cr_assert_eq(cgroup_oom_read(&T.oom, &oom), CGROUP_OOM_GONE);
	cr_assert(!oom);
}

Test(cgroup_oom, watch_errors, .init = setup, .fini = teardown)
{
	struct cgroup_err err = {0};
	struct cgroup_ref ref = {.mode = CGROUP_MODE_HYBRID};
	bool oom;

	struct cgroup_oom zeroed = {0};
	bool had_stdin = fcntl(0, F_GETFD) >= 0;

	/* A zeroed watch (fd 0) is neither read nor closed. */
	cr_assert_eq(cgroup_oom_read(&zeroed, &oom), -EBADF);
	cgroup_oom_release(&zeroed);
	if (had_stdin)
		cr_assert_geq(fcntl(0, F_GETFD), 0, "fd 0 was closed");

	cr_assert_eq(cgroup_oom_watch(&ref, &T.oom, &err), -EOPNOTSUPP, "no v1 memory path");
	cr_assert(strstr(err.msg, "no memory cgroup"), "%s", err.msg);
	cr_assert_eq(T.oom.fd, -1);
	cr_assert_eq(cgroup_oom_read(&T.oom, &oom), -EBADF);
	ref.mode = CGROUP_MODE_UNAVAILABLE;
	cr_assert_eq(cgroup_oom_watch(&ref, &T.oom, &err), -EOPNOTSUPP);

	make_tmp();
	put(T.tmp, "cgroup.events", "populated 1\n");
	T.ref.mode = CGROUP_MODE_V2;
	T.ref.unified = strdup(T.tmp);
	cr_assert_eq(cgroup_oom_watch(&T.ref, &T.oom, &err), -EOPNOTSUPP, "no memory.events");
	cr_assert(strstr(err.msg, "memory controller not enabled"), "%s", err.msg);
	cr_assert_null(T.oom.path);
}
