/* netns: a namespace made by netns_create has lo up (read through netns_stats and
 * through netlink from inside), leaves the caller where it was, counts traffic sent
 * on its lo by a process that joins it, and is gone (mount and file) after
 * netns_remove. Each test runs in a private mount namespace, so even a crash
 * leaves no bind mount behind, and removes its namespaces in teardown. */
#include "netns.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <net/if.h>
#include <netlink/netlink.h>
#include <netlink/route/link.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static char tmp[64];
static char ns_path[128], ns_other[128];

#define FMT(buf, ...) snprintf(buf, sizeof(buf), __VA_ARGS__)

static void setup(void)
{
	if (geteuid() != 0)
		cr_skip_test("network namespace tests need root");
	cr_assert_eq(unshare(CLONE_NEWNS), 0, "unshare: %s", strerror(errno));
	cr_assert_eq(mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL), 0);
	FMT(tmp, "/tmp/nanoshim-netns-XXXXXX");
	cr_assert(mkdtemp(tmp));
	FMT(ns_path, "%s/run/netns/c1", tmp);
	FMT(ns_other, "%s/run/netns/c2", tmp);
}

static void teardown(void)
{
	char cmd[128];
	if (!tmp[0])
		return;
	netns_remove(ns_path);
	netns_remove(ns_other);
	FMT(cmd, "rm -rf '%s'", tmp);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", tmp);
	tmp[0] = '\0';
}

TestSuite(netns, .init = setup, .fini = teardown);

static ino_t self_netns(void)
{
	struct stat st;
	cr_assert_eq(stat("/proc/self/ns/net", &st), 0);
	return st.st_ino;
}

/* How many mounts have mount point path. */
static int mounts_at(const char *path)
{
	char line[4096], mp[4096];
	int n = 0;
	FILE *f = fopen("/proc/self/mountinfo", "re");
	cr_assert_not_null(f);
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "%*s %*s %*s %*s %4095s", mp) == 1 && strcmp(mp, path) == 0)
			n++;
	fclose(f);
	return n;
}

/* lo's entry from netns_stats of path. */
static struct netns_if_stats lo_stats(const char *path)
{
	struct netns_if_stats st[16];
	int n = netns_stats(path, st, 16);
	cr_assert_gt(n, 0, "netns_stats(%s): %s", path ? path : "self", strerror(n < 0 ? -n : 0));
	for (int i = 0; i < n && i < 16; i++)
		if (strcmp(st[i].name, "lo") == 0)
			return st[i];
	cr_assert_fail("no lo in %s", path ? path : "self");
	return st[0];
}

/* Runs fn(path) in a child that has joined the namespace at path; its exit code. */
static int in_ns(const char *path, int (*fn)(void))
{
	pid_t pid = fork();
	int status;
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		int fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0 || setns(fd, CLONE_NEWNET) < 0)
			_exit(100);
		_exit(fn());
	}
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	cr_assert(WIFEXITED(status));
	return WEXITSTATUS(status);
}

/* 0 if lo is up as netlink reports it from inside the namespace. */
static int lo_up_by_netlink(void)
{
	struct nl_sock *sk = nl_socket_alloc();
	struct rtnl_link *lo = NULL;
	if (!sk || nl_connect(sk, NETLINK_ROUTE) < 0)
		return 101;
	if (rtnl_link_get_kernel(sk, 0, "lo", &lo) < 0)
		return 102;
	int up = (rtnl_link_get_flags(lo) & IFF_UP) != 0;
	rtnl_link_put(lo);
	nl_socket_free(sk);
	return up ? 0 : 1;
}

/* 0 if a UDP datagram to 127.0.0.1 comes back (needs lo up). */
static int udp_over_lo(void)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t alen = sizeof(a);
	char buf[16];
	int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (s < 0 || bind(s, (struct sockaddr *)&a, sizeof(a)) < 0 ||
	    getsockname(s, (struct sockaddr *)&a, &alen) < 0)
		return 101;
	if (sendto(s, "hello", 5, 0, (struct sockaddr *)&a, sizeof(a)) != 5)
		return 102;
	if (recv(s, buf, sizeof(buf), 0) != 5 || memcmp(buf, "hello", 5) != 0)
		return 103;
	close(s);
	return 0;
}

Test(netns, create_brings_lo_up_and_leaves_the_caller_where_it_was)
{
	char err[256] = "";
	struct stat st;
	ino_t before = self_netns();

	cr_assert_eq(netns_create(ns_path, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(self_netns(), before, "the caller's network namespace changed");
	/* the path is the namespace's nsfs file, not the caller's namespace */
	cr_assert_eq(stat(ns_path, &st), 0);
	cr_assert_neq(st.st_ino, before);
	cr_assert_eq(mounts_at(ns_path), 1);

	struct netns_if_stats lo = lo_stats(ns_path);
	cr_assert(lo.flags & IFF_UP, "lo flags %#x", lo.flags);
	cr_assert(lo.flags & IFF_LOOPBACK);
	cr_assert_eq(in_ns(ns_path, lo_up_by_netlink), 0, "lo is not up inside");

	/* the parent directories were made 0755 */
	char dir[128];
	FMT(dir, "%s/run/netns", tmp);
	cr_assert_eq(stat(dir, &st), 0);
	cr_assert(S_ISDIR(st.st_mode));
	mode_t mask = umask(0);
	umask(mask);
	cr_assert_eq(st.st_mode & 0777, 0755 & ~mask, "mode %o", st.st_mode & 0777);
}

Test(netns, traffic_on_lo_shows_in_its_counters)
{
	char err[256] = "";
	cr_assert_eq(netns_create(ns_path, err, sizeof(err)), 0, "%s", err);
	struct netns_if_stats a = lo_stats(ns_path);
	cr_assert_eq(in_ns(ns_path, udp_over_lo), 0, "UDP over lo inside the namespace");
	struct netns_if_stats b = lo_stats(ns_path);
	cr_assert_geq(b.rx_packets, a.rx_packets + 1, "rx_packets %llu -> %llu",
		      (unsigned long long)a.rx_packets, (unsigned long long)b.rx_packets);
	cr_assert_geq(b.tx_packets, a.tx_packets + 1);
	cr_assert_gt(b.rx_bytes, a.rx_bytes);
	cr_assert_eq(b.rx_errors, 0);
	cr_assert_eq(b.rx_dropped, 0);
}

Test(netns, traffic_stays_in_its_namespace)
{
	char err[256] = "";
	cr_assert_eq(netns_create(ns_path, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(netns_create(ns_other, err, sizeof(err)), 0, "%s", err);
	struct netns_if_stats a = lo_stats(ns_other);
	cr_assert_eq(in_ns(ns_path, udp_over_lo), 0);
	struct netns_if_stats b = lo_stats(ns_other);
	cr_assert_eq(b.rx_packets, a.rx_packets, "traffic of c1 counted on c2's lo");
}

Test(netns, remove_leaves_no_mount_and_no_file)
{
	char err[256] = "";
	struct stat st;
	cr_assert_eq(netns_create(ns_path, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(mounts_at(ns_path), 1);
	cr_assert_eq(netns_remove(ns_path), 0);
	cr_assert_eq(mounts_at(ns_path), 0);
	cr_assert_eq(lstat(ns_path, &st), -1);
	cr_assert_eq(errno, ENOENT);
	/* already gone is fine */
	cr_assert_eq(netns_remove(ns_path), 0);
}

Test(netns, create_on_an_existing_path_fails)
{
	char err[256] = "", dir[128];
	FMT(dir, "%s/run/netns", tmp);
	cr_assert_eq(netns_create(ns_path, err, sizeof(err)), 0, "%s", err);
	err[0] = '\0';
	cr_assert_eq(netns_create(ns_path, err, sizeof(err)), -EEXIST);
	cr_assert(strstr(err, ns_path) && strstr(err, "already exists"), "err: %s", err);
	/* the first namespace is untouched */
	cr_assert_eq(mounts_at(ns_path), 1);
	cr_assert(lo_stats(ns_path).flags & IFF_UP);

	/* a plain file is not replaced either */
	char file[160];
	FMT(file, "%s/plain", dir);
	int fd = open(file, O_WRONLY | O_CREAT | O_EXCL, 0600);
	cr_assert_geq(fd, 0);
	close(fd);
	cr_assert_eq(netns_create(file, err, sizeof(err)), -EEXIST);
	cr_assert_eq(mounts_at(file), 0);
	struct stat st;
	cr_assert_eq(stat(file, &st), 0, "the existing file was removed");
}

Test(netns, bad_paths)
{
	char err[256] = "";
	struct netns_if_stats st[4];
	cr_assert_eq(netns_create("relative/ns", err, sizeof(err)), -EINVAL);
	cr_assert(strstr(err, "not absolute"), "err: %s", err);
	/* a regular file is not a namespace */
	char file[128];
	FMT(file, "%s/file", tmp);
	int fd = open(file, O_WRONLY | O_CREAT | O_EXCL, 0600);
	cr_assert_geq(fd, 0);
	close(fd);
	cr_assert_eq(netns_stats(file, st, 4), -EINVAL);
	cr_assert_eq(netns_stats(ns_path, st, 4), -ENOENT);
}

Test(netns, stats_of_the_callers_namespace_and_a_short_array)
{
	char err[256] = "";
	struct netns_if_stats st[1];
	/* the caller's own namespace has a lo too */
	cr_assert_str_eq(lo_stats(NULL).name, "lo");
	/* max 0: just the count */
	cr_assert_eq(netns_create(ns_path, err, sizeof(err)), 0, "%s", err);
	int n = netns_stats(ns_path, NULL, 0);
	cr_assert_geq(n, 1);
	cr_assert_eq(netns_stats(ns_path, st, 1), n);
}

Test(netns, a_failed_create_leaves_nothing)
{
	char err[256] = "", file[128], under[160];
	struct stat st;
	ino_t before = self_netns();
	/* a parent that is a file: the directory cannot be made */
	FMT(file, "%s/file", tmp);
	int fd = open(file, O_WRONLY | O_CREAT | O_EXCL, 0600);
	cr_assert_geq(fd, 0);
	close(fd);
	FMT(under, "%s/sub/ns", file);
	cr_assert_eq(netns_create(under, err, sizeof(err)), -ENOTDIR);
	cr_assert(strstr(err, under), "err: %s", err);
	cr_assert_eq(self_netns(), before);
	/* no message buffer is fine too */
	cr_assert_eq(netns_create(file, NULL, 0), -EEXIST);
	cr_assert_eq(stat(file, &st), 0);
	cr_assert(S_ISREG(st.st_mode));
	cr_assert_eq(mounts_at(file), 0);
}
