/* Network namespaces for containers that get no host network: made empty with the
 * loopback up, kept alive by a bind mount at a path the spec joins, and read back
 * for interface counters. All through netlink (libnl-route-3), no `ip` command. */
#pragma once

#include <stddef.h>
#include <stdint.h>

/* A new network namespace bind-mounted at path (an absolute path that must not
 * exist; missing parent directories are created 0755), with loopback up. The
 * calling thread is back in its own network namespace afterwards, on failure too
 * (the namespace is entered and left with setns on /proc/thread-self/ns/net).
 * Returns 0, or -errno with one line in err (err may be NULL): -EEXIST when path
 * exists; on failure nothing is left at path. */
int netns_create(const char *path, char *err, size_t errlen);

/* Unmounts path (MNT_DETACH) and unlinks it. 0, also when it was already gone;
 * else -errno. */
int netns_remove(const char *path);

struct netns_if_stats {
	char name[16]; /* IFNAMSIZ */
	uint64_t rx_bytes, rx_packets, rx_errors, rx_dropped;
	uint64_t tx_bytes, tx_packets, tx_errors, tx_dropped;
	int ifindex;
	unsigned int flags; /* IFF_UP, IFF_LOOPBACK, ... */
};

/* Counters of every interface of the namespace at path (NULL: the calling
 * thread's own), read through netlink (rtnl_link_alloc_cache +
 * rtnl_link_get_stat). Fills out with up to max entries and returns how many
 * interfaces there are, which is more than max when out was too small; or -errno
 * (-EINVAL: path is not a network namespace). */
int netns_stats(const char *path, struct netns_if_stats *out, size_t max);
