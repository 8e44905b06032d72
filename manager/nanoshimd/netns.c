/* Network namespaces (see netns.h): unshare(CLONE_NEWNET) on the calling thread,
 * a bind mount of /proc/thread-self/ns/net to keep the namespace once the thread
 * leaves it, and netlink sockets opened inside a namespace: a socket stays bound
 * to the namespace it was created in, so the thread can leave right away. */
#include "netns.h"

#include "quote.h"
#include "seterr.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <net/if.h>
#include <netlink/netlink.h>
#include <netlink/route/link.h>
#include <sched.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

/* the thread's own: /proc/self is the main thread's, whatever thread calls us */
#define SELF_NETNS "/proc/thread-self/ns/net"


/* libnl's error codes (negative NLE_*) as -errno. */
static int nl_errno(int nlerr)
{
	switch (nlerr < 0 ? -nlerr : nlerr) {
	case NLE_NOMEM:
		return -ENOMEM;
	case NLE_PERM:
		return -EPERM;
	case NLE_NODEV:
	case NLE_OBJ_NOTFOUND:
		return -ENODEV;
	case NLE_INVAL:
		return -EINVAL;
	case NLE_BUSY:
		return -EBUSY;
	case NLE_AGAIN:
		return -EAGAIN;
	case NLE_EXIST:
		return -EEXIST;
	default:
		return -EIO;
	}
}

/* A connected NETLINK_ROUTE socket in the thread's current namespace; 0 or -NLE_*. */
static int route_socket(struct nl_sock **out)
{
	struct nl_sock *sk = nl_socket_alloc();
	int r;

	*out = NULL;
	if (!sk)
		return -NLE_NOMEM;
	r = nl_connect(sk, NETLINK_ROUTE);
	if (r < 0) {
		nl_socket_free(sk);
		return r;
	}
	*out = sk;
	return 0;
}

/* Sets IFF_UP on "lo" of the socket's namespace; 0 or -NLE_*. */
static int loopback_up(struct nl_sock *sk)
{
	struct rtnl_link *lo = NULL, *change;
	int r = rtnl_link_get_kernel(sk, 0, "lo", &lo);

	if (r < 0)
		return r;
	change = rtnl_link_alloc();
	if (!change) {
		rtnl_link_put(lo);
		return -NLE_NOMEM;
	}
	rtnl_link_set_flags(change, IFF_UP);
	r = rtnl_link_change(sk, lo, change, 0);
	rtnl_link_put(change);
	rtnl_link_put(lo);
	return r;
}

/* mkdir -p of path's parent directories, 0755 (umask aside). */
static int mkdir_parents(const char *path)
{
	char dir[PATH_MAX];
	int n = snprintf(dir, sizeof(dir), "%s", path);

	if (n < 0 || (size_t)n >= sizeof(dir))
		return -ENAMETOOLONG;
	for (char *p = dir + 1; (p = strchr(p, '/')); p++) {
		*p = '\0';
		if (mkdir(dir, 0755) < 0 && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	return 0;
}

int netns_create(const char *path, char *err, size_t errlen)
{
	struct nl_sock *sk = NULL;
	bool entered = false, mounted = false;
	int orig = -1, fd, r, nr;

	char q[BUNDLE_QUOTE_MAX];
	if (!path || path[0] != '/')
		return set_err(err, errlen, -EINVAL,
			       "create network namespace %s: the path is not absolute",
			       bundle_quote(q, sizeof(q), path));
	r = mkdir_parents(path);
	if (r < 0)
		return set_err(err, errlen, r,
			       "create network namespace %s: create its directory: %s", path,
			       strerror(-r));
	/* the mount point; O_EXCL makes "must not exist" race-free */
	fd = open(path, O_RDONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0);
	if (fd < 0) {
		r = -errno;
		return set_err(err, errlen, r, "create network namespace %s: %s", path,
			       r == -EEXIST ? "the path already exists" : strerror(-r));
	}
	close(fd);

	orig = open(SELF_NETNS, O_RDONLY | O_CLOEXEC);
	if (orig < 0) {
		r = -errno;
		set_err(err, errlen, r, "create network namespace %s: open %s: %s", path,
			SELF_NETNS, strerror(-r));
		goto out;
	}
	if (unshare(CLONE_NEWNET) < 0) {
		r = -errno;
		set_err(err, errlen, r, "create network namespace %s: unshare: %s", path,
			strerror(-r));
		goto out;
	}
	entered = true;
	if (mount(SELF_NETNS, path, NULL, MS_BIND, NULL) < 0) {
		r = -errno;
		set_err(err, errlen, r, "create network namespace %s: bind mount: %s", path,
			strerror(-r));
		goto out;
	}
	mounted = true;
	nr = route_socket(&sk);
	if (nr == 0)
		nr = loopback_up(sk);
	if (nr < 0) {
		r = nl_errno(nr);
		set_err(err, errlen, r, "create network namespace %s: bring lo up: %s", path,
			nl_geterror(nr));
	}
out:
	nl_socket_free(sk);
	if (entered && setns(orig, CLONE_NEWNET) < 0) {
		/* cannot happen short of a kernel bug: the fd holds the namespace */
		int e = -errno;
		if (r == 0)
			r = set_err(err, errlen, e,
				    "create network namespace %s: return to the caller's namespace: %s",
				    path, strerror(-e));
	}
	if (orig >= 0)
		close(orig);
	if (r < 0) {
		if (mounted)
			umount2(path, MNT_DETACH | UMOUNT_NOFOLLOW);
		unlink(path);
	}
	return r;
}

int netns_remove(const char *path)
{
	if (!path || !*path)
		return -EINVAL;
	/* EINVAL: not a mount point (a create that failed half-way, or a second remove) */
	if (umount2(path, MNT_DETACH | UMOUNT_NOFOLLOW) < 0 && errno != EINVAL && errno != ENOENT)
		return -errno;
	if (unlink(path) < 0 && errno != ENOENT)
		return -errno;
	return 0;
}

/* A route socket in the namespace at path (NULL: the thread's own); 0 or -errno. */
static int socket_in(const char *path, struct nl_sock **sk)
{
	int ns, orig, r = 0, nr;

	*sk = NULL;
	if (!path) {
		nr = route_socket(sk);
		return nr < 0 ? nl_errno(nr) : 0;
	}
	ns = open(path, O_RDONLY | O_CLOEXEC);
	if (ns < 0)
		return -errno;
	orig = open(SELF_NETNS, O_RDONLY | O_CLOEXEC);
	if (orig < 0) {
		r = -errno;
		close(ns);
		return r;
	}
	if (setns(ns, CLONE_NEWNET) < 0) {
		r = -errno; /* EINVAL: not a network namespace */
	} else {
		nr = route_socket(sk);
		if (nr < 0)
			r = nl_errno(nr);
		if (setns(orig, CLONE_NEWNET) < 0 && r == 0) {
			r = -errno;
			nl_socket_free(*sk);
			*sk = NULL;
		}
	}
	close(orig);
	close(ns);
	return r;
}

static void fill(struct netns_if_stats *st, struct rtnl_link *l)
{
	const char *name = rtnl_link_get_name(l);

	memset(st, 0, sizeof(*st));
	snprintf(st->name, sizeof(st->name), "%s", name ? name : "");
	st->ifindex = rtnl_link_get_ifindex(l);
	st->flags = rtnl_link_get_flags(l);
	st->rx_bytes = rtnl_link_get_stat(l, RTNL_LINK_RX_BYTES);
	st->rx_packets = rtnl_link_get_stat(l, RTNL_LINK_RX_PACKETS);
	st->rx_errors = rtnl_link_get_stat(l, RTNL_LINK_RX_ERRORS);
	st->rx_dropped = rtnl_link_get_stat(l, RTNL_LINK_RX_DROPPED);
	st->tx_bytes = rtnl_link_get_stat(l, RTNL_LINK_TX_BYTES);
	st->tx_packets = rtnl_link_get_stat(l, RTNL_LINK_TX_PACKETS);
	st->tx_errors = rtnl_link_get_stat(l, RTNL_LINK_TX_ERRORS);
	st->tx_dropped = rtnl_link_get_stat(l, RTNL_LINK_TX_DROPPED);
}

int netns_stats(const char *path, struct netns_if_stats *out, size_t max)
{
	struct nl_sock *sk;
	struct nl_cache *cache = NULL;
	size_t n = 0;
	int r, nr;

	if (!out && max)
		return -EINVAL;
	r = socket_in(path, &sk);
	if (r < 0)
		return r;
	nr = rtnl_link_alloc_cache(sk, AF_UNSPEC, &cache);
	if (nr < 0) {
		nl_socket_free(sk);
		return nl_errno(nr);
	}
	for (struct nl_object *o = nl_cache_get_first(cache); o; o = nl_cache_get_next(o), n++)
		if (n < max)
			fill(&out[n], (struct rtnl_link *)o);
	nl_cache_free(cache);
	nl_socket_free(sk);
	return n > INT_MAX ? INT_MAX : (int)n;
}
