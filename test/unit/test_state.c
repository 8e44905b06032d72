/* The bundle contract's file names and the state directory scanner: typed
 * reads of address and shim.pid, exec pid file names (reserved ids refused),
 * <state>/<ns>/<id> listed and classified (empty, half-made, live) with odd
 * entries skipped, and removal that refuses a bundle with a mount inside
 * before touching anything. */
#include "files.h"
#include "state.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

static char root[64];

static void setup(void)
{
	snprintf(root, sizeof(root), "/tmp/test-state.XXXXXX");
	cr_assert_not_null(mkdtemp(root));
}

static void teardown(void)
{
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root);
	cr_assert_eq(system(cmd), 0);
}

TestSuite(state, .init = setup, .fini = teardown);
TestSuite(files, .init = setup, .fini = teardown);

static void put(const char *rel, const char *content)
{
	char path[256];
	snprintf(path, sizeof(path), "%s/%s", root, rel);
	FILE *f = fopen(path, "w");
	cr_assert_not_null(f, "%s", path);
	fputs(content, f);
	fclose(f);
}

static void mkd(const char *rel)
{
	char path[256];
	snprintf(path, sizeof(path), "%s/%s", root, rel);
	cr_assert_eq(mkdir(path, 0700), 0, "%s", path);
}

static bool exists(const char *rel)
{
	char path[256];
	struct stat st;
	snprintf(path, sizeof(path), "%s/%s", root, rel);
	return lstat(path, &st) == 0;
}

Test(files, exec_pid_names_and_reserved_ids)
{
	char name[32];
	cr_assert_eq(bundle_exec_pid_name("e1", name, sizeof(name)), 0);
	cr_assert_str_eq(name, "e1.pid");
	cr_assert_eq(bundle_exec_pid_name("init", name, sizeof(name)), -EINVAL);
	cr_assert_eq(bundle_exec_pid_name("shim", name, sizeof(name)), -EINVAL);
	cr_assert_eq(bundle_exec_pid_name("", name, sizeof(name)), -EINVAL);
	cr_assert_eq(bundle_exec_pid_name("a/b", name, sizeof(name)), -EINVAL);
	cr_assert_eq(bundle_exec_pid_name("long-exec-id", name, 8), -ENAMETOOLONG);
	cr_assert(bundle_exec_id_reserved("init") && bundle_exec_id_reserved("shim"));
	cr_assert_not(bundle_exec_id_reserved("initx") || bundle_exec_id_reserved(NULL));
}

Test(files, address_and_shim_pid)
{
	int dfd = open(root, O_RDONLY | O_DIRECTORY);
	char addr[128];
	pid_t pid;
	cr_assert_eq(bundle_read_address(dfd, addr, sizeof(addr)), -ENOENT);
	put(BUNDLE_ADDRESS_FILE, "unix:///run/containerd/s/abc\n");
	cr_assert_eq(bundle_read_address(dfd, addr, sizeof(addr)), 0);
	cr_assert_str_eq(addr, "unix:///run/containerd/s/abc");
	cr_assert_eq(bundle_read_address(dfd, addr, 10), -ENAMETOOLONG);
	put(BUNDLE_ADDRESS_FILE, "unix:///a\nunix:///b\n");
	cr_assert_eq(bundle_read_address(dfd, addr, sizeof(addr)), -EBADMSG);
	put(BUNDLE_ADDRESS_FILE, "");
	cr_assert_eq(bundle_read_address(dfd, addr, sizeof(addr)), -EBADMSG);
	cr_assert_eq(bundle_read_shim_pid(dfd, &pid), -ENOENT);
	put(BUNDLE_SHIM_PID_FILE, "1234");
	cr_assert_eq(bundle_read_shim_pid(dfd, &pid), 0);
	cr_assert_eq(pid, 1234);
	close(dfd);
}

struct seen {
	char names[8][160];
	enum bundle_kind kinds[8];
	int n;
};

static int collect(const struct bundle_entry *e, int dirfd, void *ud)
{
	struct seen *s = ud;
	cr_assert_lt(s->n, 8);
	struct stat st;
	cr_assert_eq(fstat(dirfd, &st), 0);
	cr_assert(S_ISDIR(st.st_mode));
	snprintf(s->names[s->n], sizeof(s->names[0]), "%s/%s", e->ns, e->id);
	s->kinds[s->n++] = e->kind;
	return 0;
}

static enum bundle_kind kind_of(const struct seen *s, const char *name)
{
	for (int i = 0; i < s->n; i++)
		if (strcmp(s->names[i], name) == 0)
			return s->kinds[i];
	cr_assert_fail("%s not listed", name);
	return BUNDLE_EMPTY;
}

Test(state, scan_lists_and_classifies)
{
	struct seen s = {0};
	char missing[96];
	snprintf(missing, sizeof(missing), "%s/none", root);
	cr_assert_eq(bundle_state_scan(missing, collect, &s), -ENOENT);
	mkd("default");
	mkd("k8s.io");
	mkd("default/empty");
	mkd("default/half");
	put("default/half/config.json", "{}");
	mkd("default/live");
	put("default/live/config.json", "{}");
	put("default/live/" BUNDLE_ADDRESS_FILE, "unix:///run/x\n");
	mkd("k8s.io/c1");
	put("k8s.io/c1/" BUNDLE_ADDRESS_FILE, "unix:///run/y");
	/* skipped: invalid names, a file, symlinks */
	mkd("default/bad name");
	put("default/afile", "x");
	mkd("bad ns!");
	mkd("bad ns!/c2");
	char target[128], link[128];
	snprintf(target, sizeof(target), "%s/default/live", root);
	snprintf(link, sizeof(link), "%s/default/alias", root);
	cr_assert_eq(symlink(target, link), 0);
	snprintf(target, sizeof(target), "%s/default", root);
	snprintf(link, sizeof(link), "%s/nslink", root);
	cr_assert_eq(symlink(target, link), 0);
	cr_assert_eq(bundle_state_scan(root, collect, &s), 0);
	cr_assert_eq(s.n, 4, "listed %d bundles", s.n);
	cr_assert_eq(kind_of(&s, "default/empty"), BUNDLE_EMPTY);
	cr_assert_eq(kind_of(&s, "default/half"), BUNDLE_HALF_MADE);
	cr_assert_eq(kind_of(&s, "default/live"), BUNDLE_LIVE);
	cr_assert_eq(kind_of(&s, "k8s.io/c1"), BUNDLE_LIVE);
}

static int stop_at_first(const struct bundle_entry *e, int dirfd, void *ud)
{
	++*(int *)ud;
	return 7;
}

Test(state, scan_stops_when_told)
{
	mkd("ns");
	mkd("ns/a");
	mkd("ns/b");
	int calls = 0;
	cr_assert_eq(bundle_state_scan(root, stop_at_first, &calls), 7);
	cr_assert_eq(calls, 1);
}

Test(state, remove_takes_the_whole_bundle)
{
	mkd("ns");
	mkd("ns/c");
	put("ns/c/config.json", "{}");
	mkd("ns/c/rootfs");
	mkd("ns/c/rootfs/etc");
	put("ns/c/rootfs/etc/hostname", "c");
	char target[128], link[128];
	snprintf(target, sizeof(target), "%s/ns", root);
	snprintf(link, sizeof(link), "%s/ns/c/escape", root);
	cr_assert_eq(symlink(target, link), 0); /* removed as a link, never followed */
	mkd("ns/other");
	cr_assert_eq(bundle_state_remove(root, "ns", "c"), 0);
	cr_assert_not(exists("ns/c"));
	cr_assert(exists("ns/other"), "a sibling survives");
	cr_assert_eq(bundle_state_remove(root, "ns", "c"), 0, "gone already is fine");
	cr_assert_eq(bundle_state_remove(root, "ns", "../ns"), -EINVAL);
	cr_assert_eq(bundle_state_remove(root, "..", "ns"), -EINVAL);
}

Test(state, remove_refuses_a_bundle_with_a_mount_inside)
{
	cr_assert_eq(geteuid(), 0, "needs root: a tmpfs in a mount namespace of its own");
	cr_assert_eq(unshare(CLONE_NEWNS), 0);
	cr_assert_eq(mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL), 0);
	mkd("ns");
	mkd("ns/c");
	put("ns/c/config.json", "{}");
	mkd("ns/c/rootfs");
	char path[128];
	snprintf(path, sizeof(path), "%s/ns/c/rootfs", root);
	cr_assert_eq(mount("tmpfs", path, "tmpfs", 0, NULL), 0);
	put("ns/c/rootfs/data", "x");
	cr_assert_eq(bundle_state_remove(root, "ns", "c"), -EBUSY);
	cr_assert(exists("ns/c/config.json"), "nothing removed before the refusal");
	cr_assert(exists("ns/c/rootfs/data"), "nothing inside the mount touched");
	cr_assert_eq(umount(path), 0);
	cr_assert_eq(bundle_state_remove(root, "ns", "c"), 0);
	cr_assert_not(exists("ns/c"));
}
