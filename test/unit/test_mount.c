/* Rootfs mounts for real: option plans (pure), then bind, read-only bind,
 * overlay (also with a lowerdir list longer than a page), loop, stacked and
 * targeted mounts into a temp bundle's rootfs, failures that must leave
 * nothing mounted, and idempotent unmounts. Each test runs in a mount
 * namespace of its own, so even a crashed test leaves no mount behind; fini
 * unmounts and removes its temp dir. */
#include "bundle.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

static char tmp[PATH_MAX], bundle[PATH_MAX], rootfs[PATH_MAX];

/* snprintf that fails the test instead of truncating */
#define FMT(buf, ...)                                                                          \
	do {                                                                                   \
		int n_ = snprintf(buf, sizeof(buf), __VA_ARGS__);                            \
		cr_assert(n_ >= 0 && (size_t)n_ < sizeof(buf), "path too long");              \
	} while (0)

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	remove(path);
	return 0;
}

static void path_of(char *out, const char *rel)
{
	int n = snprintf(out, PATH_MAX, "%s/%s", tmp, rel);
	cr_assert(n >= 0 && n < PATH_MAX, "path too long");
}

static void mkdir_in(const char *rel)
{
	char p[PATH_MAX];
	path_of(p, rel);
	cr_assert(mkdir(p, 0755) == 0 || errno == EEXIST, "mkdir %s: %s", p, strerror(errno));
}

static void write_in(const char *rel, const char *content)
{
	char p[PATH_MAX];
	path_of(p, rel);
	FILE *f = fopen(p, "w");
	cr_assert(f, "create %s: %s", p, strerror(errno));
	fputs(content, f);
	fclose(f);
}

/* Content of a file under rootfs, or NULL if it cannot be read. */
static char *rootfs_file(const char *rel)
{
	static char buf[256];
	char p[PATH_MAX];
	FMT(p, "%s/%s", rootfs, rel);
	FILE *f = fopen(p, "r");
	if (!f)
		return NULL;
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	return buf;
}

/* Mount points at or below dir in this namespace; the optional fields of the
 * last one found go to opts if not NULL. */
static int mounts_under(const char *dir, char *opts, size_t optslen)
{
	char line[8192];
	int n = 0;
	size_t dl = strlen(dir);
	FILE *f = fopen("/proc/self/mountinfo", "r");
	cr_assert(f);
	while (fgets(line, sizeof(line), f)) {
		char mp[PATH_MAX], rest[4096] = "";
		if (sscanf(line, "%*s %*s %*s %*s %4095s %*s %4095[^-]", mp, rest) < 1)
			continue;
		if (strncmp(mp, dir, dl) == 0 && (mp[dl] == '\0' || mp[dl] == '/')) {
			n++;
			if (opts)
				snprintf(opts, optslen, "%s", rest);
		}
	}
	fclose(f);
	return n;
}

static void setup(void)
{
	if (geteuid() != 0)
		cr_skip_test("mount tests need root");
	/* a private mount namespace: nothing here is seen by, or outlives, the test */
	cr_assert_eq(unshare(CLONE_NEWNS), 0, "unshare: %s", strerror(errno));
	cr_assert_eq(mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL), 0);
	FMT(tmp, "/tmp/nanoshim-mount-XXXXXX");
	cr_assert(mkdtemp(tmp));
	path_of(bundle, "bundle");
	cr_assert_eq(mkdir(bundle, 0700), 0);
	FMT(rootfs, "%s/rootfs", bundle);
}

static void teardown(void)
{
	if (!tmp[0])
		return;
	bundle_unmount_rootfs(bundle);
	/* FTW_MOUNT: never walk into something still mounted */
	nftw(tmp, rm_entry, 16, FTW_DEPTH | FTW_PHYS | FTW_MOUNT);
	tmp[0] = '\0';
}

TestSuite(mountopt);
TestSuite(mount, .init = setup, .fini = teardown);

static Containerd__Types__Mount mk(const char *type, const char *source, char **options,
				  size_t n)
{
	Containerd__Types__Mount m = CONTAINERD__TYPES__MOUNT__INIT;
	m.type = (char *)type;
	m.source = (char *)source;
	m.options = options;
	m.n_options = n;
	return m;
}

/* ---- option plans ---- */

Test(mountopt, flags_and_data)
{
	struct bundle_mount_plan p;
	char *bind[] = {"rbind", "ro", "nosuid", "nodev", "noexec"};
	cr_assert_eq(bundle_mount_plan("bind", bind, 5, &p), 0);
	cr_assert_eq(p.flags, MS_BIND | MS_REC | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC);
	cr_assert_str_eq(p.data, "");
	cr_assert(!p.loop && !p.propagation && !p.chdir);
	bundle_mount_plan_release(&p);

	char *toggles[] = {"ro", "rw", "nosuid", "suid", "noatime", "atime", "sync", "async"};
	cr_assert_eq(bundle_mount_plan("ext4", toggles, 8, &p), 0);
	cr_assert_eq(p.flags, 0);
	bundle_mount_plan_release(&p);

	char *last_wins[] = {"rw", "ro", "dirsync", "relatime", "strictatime", "mand", "remount"};
	cr_assert_eq(bundle_mount_plan("ext4", last_wins, 7, &p), 0);
	cr_assert_eq(p.flags, MS_RDONLY | MS_DIRSYNC | MS_RELATIME | MS_STRICTATIME |
				      MS_MANDLOCK | MS_REMOUNT);
	bundle_mount_plan_release(&p);

	char *overlay[] = {"index=off", "defaults", "workdir=/w", "upperdir=/u",
			   "lowerdir=/l1:/l2", "rprivate", "loop", ""};
	cr_assert_eq(bundle_mount_plan("overlay", overlay, 8, &p), 0);
	cr_assert_str_eq(p.data, "index=off,workdir=/w,upperdir=/u,lowerdir=/l1:/l2");
	cr_assert_eq(p.propagation, MS_PRIVATE | MS_REC);
	cr_assert(p.loop);
	cr_assert_null(p.chdir, "short options are left alone");
	bundle_mount_plan_release(&p);

	char *props[] = {"shared", "slave", "runbindable"};
	cr_assert_eq(bundle_mount_plan("bind", props, 3, &p), 0);
	cr_assert_eq(p.propagation, MS_UNBINDABLE | MS_REC);
	bundle_mount_plan_release(&p);

	cr_assert_eq(bundle_mount_plan("tmpfs", NULL, 0, &p), 0);
	cr_assert_str_eq(p.data, "");
	bundle_mount_plan_release(&p);
}

/* Options of an overlay mount with n lower layers under base. */
static char **overlay_options(const char *base, int n, size_t *count)
{
	size_t len = strlen("lowerdir=") + 1;
	for (int i = n; i >= 1; i--)
		len += strlen(base) + 16;
	char *lower = malloc(len), *w = lower;
	cr_assert(lower);
	w += sprintf(w, "lowerdir=");
	for (int i = n; i >= 1; i--)
		w += sprintf(w, "%s%s/%d/fs", i == n ? "" : ":", base, i);
	char **o = calloc(4, sizeof(char *));
	cr_assert(o);
	o[0] = strdup("index=off");
	o[1] = lower;
	o[2] = malloc(strlen(base) + 32);
	sprintf(o[2], "upperdir=%s/%d/fs", base, n + 1);
	o[3] = malloc(strlen(base) + 32);
	sprintf(o[3], "workdir=%s/%d/work", base, n + 1);
	*count = 4;
	return o;
}

static void free_options(char **o, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(o[i]);
	free(o);
}

Test(mountopt, long_lowerdir_is_compacted_like_containerd)
{
	const char *base = "/var/lib/containerd/io.containerd.snapshotter.v1.overlayfs/snapshots";
	struct bundle_mount_plan p;
	size_t n;
	char **o = overlay_options(base, 60, &n);
	cr_assert_eq(bundle_mount_plan("overlay", o, n, &p), 0);
	cr_assert_str_eq(p.chdir, "/var/lib/containerd/io.containerd.snapshotter.v1.overlayfs/"
				  "snapshots/");
	/* lowerdir moves to the end, each entry relative to chdir */
	char want[4096];
	int w = sprintf(want, "index=off,%s,%s,lowerdir=", o[2], o[3]);
	for (int i = 60; i >= 1; i--)
		w += sprintf(want + w, "%s%d/fs", i == 60 ? "" : ":", i);
	cr_assert_str_eq(p.data, want);
	bundle_mount_plan_release(&p);

	/* the same layers without compaction would not fit in a page */
	p.chdir = NULL;
	cr_assert_eq(bundle_mount_plan("notoverlay", o, n, &p), -E2BIG);
	free_options(o, n);

	/* nothing in common but "/": left as is, and too long */
	char **wide = overlay_options("/x", 3, &n);
	char *big = malloc(8192), *bw = big;
	bw += sprintf(bw, "lowerdir=");
	for (int i = 0; i < 400; i++)
		bw += sprintf(bw, "%s/a%d/b%d", i ? ":" : "", i, i);
	free(wide[1]);
	wide[1] = big;
	cr_assert_eq(bundle_mount_plan("overlay", wide, n, &p), -E2BIG);
	free_options(wide, n);
}

Test(mountopt, numbered_parents_are_not_confused)
{
	/* entries ".../snapshots/1/fs" and ".../snapshots/12/fs" share
	 * ".../snapshots/1"; the parent is ".../snapshots/" */
	char lower[8192], *w = lower;
	w += sprintf(w, "lowerdir=");
	for (int i = 0; i < 200; i++)
		w += sprintf(w, "%s/var/lib/c/snapshots/1%d/fs", i ? ":" : "", i);
	char *o[] = {lower};
	struct bundle_mount_plan p;
	cr_assert_eq(bundle_mount_plan("overlay", o, 1, &p), 0);
	cr_assert_str_eq(p.chdir, "/var/lib/c/snapshots/");
	cr_assert(strncmp(p.data, "lowerdir=10/fs:11/fs:", 21) == 0, "%.40s", p.data);
	bundle_mount_plan_release(&p);
}

/* ---- real mounts ---- */

Test(mount, bind_mount_then_unmount)
{
	mkdir_in("src");
	write_in("src/hello", "hi from src");
	char src[PATH_MAX];
	path_of(src, "src");
	char *opts[] = {"rbind", "rw"};
	Containerd__Types__Mount m = mk("bind", src, opts, 2), *ms[] = {&m};
	struct ttrpc_status st = {0};

	cr_assert_eq(bundle_mount_rootfs(bundle, ms, 1, &st), 0, "%s", st.message);
	char *c = rootfs_file("hello");
	cr_assert(c);
	cr_assert_str_eq(c, "hi from src");
	cr_assert_eq(mounts_under(rootfs, NULL, 0), 1);

	cr_assert_eq(bundle_unmount_rootfs(bundle), 0);
	cr_assert_null(rootfs_file("hello"));
	cr_assert_eq(mounts_under(rootfs, NULL, 0), 0);
	cr_assert_eq(bundle_unmount_rootfs(bundle), 0, "idempotent");
	struct stat sb;
	cr_assert_eq(stat(rootfs, &sb), 0);
	cr_assert_eq(sb.st_mode & 07777, 0711, "rootfs is created 0711");
}

Test(mount, read_only_bind_is_remounted)
{
	mkdir_in("src");
	write_in("src/f", "x");
	char src[PATH_MAX], p[PATH_MAX];
	path_of(src, "src");
	char *opts[] = {"bind", "ro"};
	Containerd__Types__Mount m = mk("bind", src, opts, 2), *ms[] = {&m};
	cr_assert_eq(bundle_mount_rootfs(bundle, ms, 1, NULL), 0);

	struct statvfs sv;
	cr_assert_eq(statvfs(rootfs, &sv), 0);
	cr_assert(sv.f_flag & ST_RDONLY);
	FMT(p, "%s/new", rootfs);
	cr_assert_eq(open(p, O_WRONLY | O_CREAT, 0600), -1);
	cr_assert_eq(errno, EROFS);
	/* only the bind is read-only, not its source */
	path_of(p, "src/new");
	int fd = open(p, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
	cr_assert(fd >= 0);
	close(fd);
	cr_assert_eq(bundle_unmount_rootfs(bundle), 0);
}

Test(mount, overlay_mount_then_unmount)
{
	mkdir_in("lower1");
	mkdir_in("lower2");
	mkdir_in("upper");
	mkdir_in("work");
	write_in("lower1/top", "from lower1");
	write_in("lower2/top", "hidden by lower1");
	write_in("lower2/base", "from lower2");
	char o1[PATH_MAX * 2 + 16], o2[PATH_MAX + 16], o3[PATH_MAX + 16];
	FMT(o1, "lowerdir=%s/lower1:%s/lower2", tmp, tmp);
	FMT(o2, "upperdir=%s/upper", tmp);
	FMT(o3, "workdir=%s/work", tmp);
	char *opts[] = {"index=off", o3, o2, o1};
	Containerd__Types__Mount m = mk("overlay", "overlay", opts, 4), *ms[] = {&m};
	struct ttrpc_status st = {0};
	cr_assert_eq(bundle_mount_rootfs(bundle, ms, 1, &st), 0, "%s", st.message);

	cr_assert_str_eq(rootfs_file("top"), "from lower1");
	cr_assert_str_eq(rootfs_file("base"), "from lower2");
	char p[PATH_MAX];
	FMT(p, "%s/written", rootfs);
	FILE *f = fopen(p, "w");
	cr_assert(f);
	fclose(f);
	path_of(p, "upper/written");
	cr_assert_eq(access(p, F_OK), 0, "writes land in upperdir");

	cr_assert_eq(bundle_unmount_rootfs(bundle), 0);
	cr_assert_null(rootfs_file("top"));
	cr_assert_eq(mounts_under(rootfs, NULL, 0), 0);
}

Test(mount, overlay_with_lowerdir_longer_than_a_page)
{
	char base[PATH_MAX], rel[64], cwd_before[PATH_MAX], cwd_after[PATH_MAX];
	const int layers = 120;
	mkdir_in("snapshots");
	for (int i = 1; i <= layers + 1; i++) {
		FMT(rel, "snapshots/%d", i);
		mkdir_in(rel);
		FMT(rel, "snapshots/%d/fs", i);
		mkdir_in(rel);
	}
	FMT(rel, "snapshots/%d/work", layers + 1);
	mkdir_in(rel);
	write_in("snapshots/57/fs/layer57", "deep");
	path_of(base, "snapshots");
	size_t n;
	char **o = overlay_options(base, layers, &n);
	size_t total = 0;
	for (size_t i = 0; i < n; i++)
		total += strlen(o[i]);
	cr_assert(total > 4096, "options are %zu bytes, more than a page", total);

	cr_assert(getcwd(cwd_before, sizeof(cwd_before)));
	Containerd__Types__Mount m = mk("overlay", "overlay", o, n), *ms[] = {&m};
	struct ttrpc_status st = {0};
	cr_assert_eq(bundle_mount_rootfs(bundle, ms, 1, &st), 0, "%s", st.message);
	cr_assert(getcwd(cwd_after, sizeof(cwd_after)));
	cr_assert_str_eq(cwd_after, cwd_before, "the working directory is restored");
	cr_assert_str_eq(rootfs_file("layer57"), "deep");
	cr_assert_eq(bundle_unmount_rootfs(bundle), 0);
	cr_assert_null(rootfs_file("layer57"));
	free_options(o, n);
}

Test(mount, stacked_mounts_all_come_off)
{
	char *ro[] = {"ro"};
	Containerd__Types__Mount a = mk("tmpfs", "one", NULL, 0), b = mk("tmpfs", "two", NULL, 0),
				 c = mk("tmpfs", "three", ro, 1), *ms[] = {&a, &b, &c};
	cr_assert_eq(bundle_mount_rootfs(bundle, ms, 3, NULL), 0);
	cr_assert_eq(mounts_under(rootfs, NULL, 0), 3);
	struct statvfs sv;
	cr_assert_eq(statvfs(rootfs, &sv), 0);
	cr_assert(sv.f_flag & ST_RDONLY, "the last one is on top");
	cr_assert_eq(bundle_unmount_rootfs(bundle), 0);
	cr_assert_eq(mounts_under(rootfs, NULL, 0), 0);
}

Test(mount, propagation_option)
{
	mkdir_in("src");
	char src[PATH_MAX], opts_seen[4096] = "";
	path_of(src, "src");
	char *opts[] = {"rbind", "rshared"};
	Containerd__Types__Mount m = mk("bind", src, opts, 2), *ms[] = {&m};
	struct ttrpc_status st = {0};
	cr_assert_eq(bundle_mount_rootfs(bundle, ms, 1, &st), 0, "%s", st.message);
	cr_assert_eq(mounts_under(rootfs, opts_seen, sizeof(opts_seen)), 1);
	cr_assert(strstr(opts_seen, "shared:"), "optional fields: %s", opts_seen);
}

Test(mount, failure_unmounts_what_was_mounted)
{
	mkdir_in("src");
	char src[PATH_MAX], missing[PATH_MAX];
	path_of(src, "src");
	path_of(missing, "does-not-exist");
	char *opts[] = {"rbind"};
	Containerd__Types__Mount good = mk("bind", src, opts, 1),
				 bad = mk("bind", missing, opts, 1), *ms[] = {&good, &bad};
	struct ttrpc_status st = {0};
	cr_assert_eq(bundle_mount_rootfs(bundle, ms, 2, &st), -ENOENT);
	cr_assert_eq(st.code, TTRPC_NOT_FOUND);
	char want[PATH_MAX * 3];
	snprintf(want, sizeof(want),
		 "mount rootfs component 2 of 2 (type \"bind\", source \"%s\", target \"%s\", "
		 "options \"rbind\"): mount: No such file or directory",
		 missing, rootfs);
	cr_assert_str_eq(st.message, want);
	cr_assert_eq(mounts_under(rootfs, NULL, 0), 0, "the first component is undone");

	/* an fs type the kernel does not know */
	Containerd__Types__Mount weird = mk("nosuchfs", "x", NULL, 0), *w[] = {&good, &weird};
	cr_assert(bundle_mount_rootfs(bundle, w, 2, &st) < 0);
	cr_assert(strstr(st.message, "component 2 of 2 (type \"nosuchfs\""), "%s", st.message);
	cr_assert_eq(mounts_under(rootfs, NULL, 0), 0);
}

Test(mount, refused_requests)
{
	struct ttrpc_status st = {0};
	Containerd__Types__Mount fuse = mk("fuse3.fuse-overlayfs", "overlay", NULL, 0),
				 *ms[BUNDLE_MOUNTS_MAX + 1] = {&fuse};
	cr_assert_eq(bundle_mount_rootfs(bundle, ms, 1, &st), -EOPNOTSUPP);
	cr_assert_eq(st.code, TTRPC_UNIMPLEMENTED);
	cr_assert(strstr(st.message, "fuse3.fuse-overlayfs"), "%s", st.message);

	for (int i = 0; i <= BUNDLE_MOUNTS_MAX; i++)
		ms[i] = &fuse;
	cr_assert_eq(bundle_mount_rootfs(bundle, ms, BUNDLE_MOUNTS_MAX + 1, &st), -E2BIG);
	cr_assert_eq(st.code, TTRPC_INVALID_ARGUMENT);

	ms[1] = NULL;
	cr_assert_eq(bundle_mount_rootfs(bundle, ms, 2, &st), -EINVAL);

	/* nothing to mount: nothing done, not even the rootfs dir */
	char other[PATH_MAX], other_rootfs[PATH_MAX];
	mkdir_in("other");
	path_of(other, "other");
	path_of(other_rootfs, "other/rootfs");
	cr_assert_eq(bundle_mount_rootfs(other, ms, 0, &st), 0);
	cr_assert_eq(access(other_rootfs, F_OK), -1);
	cr_assert_eq(bundle_unmount_rootfs(other), 0, "no rootfs is fine");
	path_of(other, "no-such-bundle");
	cr_assert_eq(bundle_unmount_rootfs(other), 0);
}

Test(mount, targets_stay_inside_rootfs)
{
	/* the image: a dir to mount on, and symlinks that point out of it */
	mkdir_in("image");
	mkdir_in("image/sub");
	char p[PATH_MAX], img[PATH_MAX], extra[PATH_MAX];
	path_of(p, "image/evil");
	cr_assert_eq(symlink("/../../../../..", p), 0);
	path_of(p, "image/evil2");
	cr_assert_eq(symlink("../../../../../sub", p), 0);
	mkdir_in("extra");
	write_in("extra/marker", "extra");
	path_of(img, "image");
	path_of(extra, "extra");

	char *rbind[] = {"rbind"};
	Containerd__Types__Mount base = mk("bind", img, rbind, 1), sub = mk("bind", extra, rbind, 1),
				 *ms[] = {&base, &sub};
	struct ttrpc_status st = {0};

	sub.target = "sub";
	cr_assert_eq(bundle_mount_rootfs(bundle, ms, 2, &st), 0, "%s", st.message);
	cr_assert_str_eq(rootfs_file("sub/marker"), "extra");
	cr_assert_eq(mounts_under(rootfs, NULL, 0), 2);
	cr_assert_eq(bundle_unmount_rootfs(bundle), 0);
	cr_assert_eq(mounts_under(rootfs, NULL, 0), 0);

	/* "..", absolute paths and symlinks all resolve inside the rootfs */
	static const char *const escapes[] = {"../../../sub", "/sub", "evil2", "evil/sub"};
	for (size_t i = 0; i < sizeof(escapes) / sizeof(escapes[0]); i++) {
		sub.target = (char *)escapes[i];
		cr_assert_eq(bundle_mount_rootfs(bundle, ms, 2, &st), 0, "%s: %s", escapes[i],
			     st.message);
		cr_assert_str_eq(rootfs_file("sub/marker"), "extra", "%s", escapes[i]);
		cr_assert_eq(mounts_under(tmp, NULL, 0), 2, "%s: nothing outside rootfs",
			     escapes[i]);
		cr_assert_eq(bundle_unmount_rootfs(bundle), 0);
	}

	/* a target that does not exist inside the rootfs is an error, not a mkdir */
	sub.target = "../bundle";
	cr_assert_eq(bundle_mount_rootfs(bundle, ms, 2, &st), -ENOENT);
	cr_assert(strstr(st.message, "open the target"), "%s", st.message);
	cr_assert_eq(mounts_under(tmp, NULL, 0), 0);
}

Test(mount, targets_without_a_rootfs_mount_are_swept)
{
	char r[PATH_MAX], extra[PATH_MAX];
	cr_assert_eq(mkdir(rootfs, 0711), 0);
	FMT(r, "%s/a", rootfs);
	cr_assert_eq(mkdir(r, 0755), 0);
	FMT(r, "%s/b", rootfs);
	cr_assert_eq(mkdir(r, 0755), 0);
	mkdir_in("extra");
	path_of(extra, "extra");
	char *rbind[] = {"rbind"};
	Containerd__Types__Mount a = mk("bind", extra, rbind, 1), b = mk("tmpfs", "t", NULL, 0),
				 *ms[] = {&a, &b};
	a.target = "a";
	b.target = "b";
	cr_assert_eq(bundle_mount_rootfs(bundle, ms, 2, NULL), 0);
	cr_assert_eq(mounts_under(rootfs, NULL, 0), 2);
	cr_assert_eq(bundle_unmount_rootfs(bundle), 0);
	cr_assert_eq(mounts_under(rootfs, NULL, 0), 0);
}

Test(mount, loop_mount_of_an_image)
{
	if (access("/dev/loop-control", F_OK) != 0 || system("command -v mkfs.ext4 >/dev/null"))
		cr_skip_test("no loop devices or mkfs.ext4");
	char cmd[PATH_MAX * 3], img[PATH_MAX];
	mkdir_in("content");
	write_in("content/inside", "in the image");
	path_of(img, "fs.img");
	FMT(cmd, "mkfs.ext4 -q -F -d %s/content %s 4M >/dev/null 2>&1", tmp,
		 img);
	cr_assert_eq(system(cmd), 0, "%s", cmd);

	char *opts[] = {"loop", "ro"};
	Containerd__Types__Mount m = mk("ext4", img, opts, 2), *ms[] = {&m};
	struct ttrpc_status st = {0};
	cr_assert_eq(bundle_mount_rootfs(bundle, ms, 1, &st), 0, "%s", st.message);
	cr_assert_str_eq(rootfs_file("inside"), "in the image");
	struct statvfs sv;
	cr_assert_eq(statvfs(rootfs, &sv), 0);
	cr_assert(sv.f_flag & ST_RDONLY);
	cr_assert_eq(bundle_unmount_rootfs(bundle), 0);
	cr_assert_null(rootfs_file("inside"));
}

Test(mount, rootfs_replaced_by_a_symlink_is_refused)
{
	char elsewhere[PATH_MAX], src[PATH_MAX];
	mkdir_in("elsewhere");
	mkdir_in("src");
	path_of(elsewhere, "elsewhere");
	path_of(src, "src");
	cr_assert_eq(symlink(elsewhere, rootfs), 0);
	char *opts[] = {"rbind"};
	Containerd__Types__Mount m = mk("bind", src, opts, 1), *ms[] = {&m};
	struct ttrpc_status st = {0};
	int r = bundle_mount_rootfs(bundle, ms, 1, &st);
	cr_assert(r == -ENOTDIR || r == -ELOOP, "%d: %s", r, st.message);
	cr_assert(strstr(st.message, "open the target"), "%s", st.message);
	cr_assert_eq(mounts_under(tmp, NULL, 0), 0);
	cr_assert_eq(bundle_unmount_rootfs(bundle), 0);
}
