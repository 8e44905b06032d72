/* A bundle's config.json for a container nanoshimd starts itself: the OCI runtime
 * spec (1.0.2) that containerd 1.6's oci.WithDefaultSpec builds for Linux, with the
 * few options `ctr run` offers on top (args, env, cwd, user, tty, hostname,
 * network, capabilities, memory, cpus, cgroups path, read-only rootfs). */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* containerd's defaultUnixEnv, added when env has no PATH */
#define SPECGEN_DEFAULT_PATH "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
/* the CFS period `ctr run --cpus` uses; quota = cpus * period */
#define SPECGEN_CPU_PERIOD 100000
/* the kernel refuses a CFS quota under 1 ms */
#define SPECGEN_CPU_QUOTA_MIN 1000
/* bounds on what is read from the rootfs to resolve a user */
#define SPECGEN_ETC_FILE_MAX (4 * 1024 * 1024)
#define SPECGEN_GROUPS_MAX 256

enum specgen_net {
	SPECGEN_NET_NONE, /* a network namespace of its own (netns_path, or a new one) */
	SPECGEN_NET_HOST, /* the host's: no network namespace entry */
};

/* Every pointer is borrowed for the duration of specgen_write only. */
struct specgen {
	const char *id;          /* container id: the default hostname; may be NULL */
	const char *rootfs;      /* absolute, or relative to the bundle (config.json's dir) */
	const char *const *args; /* NULL-terminated, at least one */
	/* NULL-terminated "K=V", may be NULL. Applied over the default PATH as containerd
	 * applies WithEnv: "K=V" replaces K or is appended, a bare "K" unsets K. */
	const char *const *env;
	const char *cwd; /* NULL: "/" */
	/* NULL: root (uid 0, gid 0). Otherwise as containerd's WithUser: "UID", "NAME",
	 * "UID:GID", "NAME:GROUP" (or mixed). A name is looked up in <rootfs>/etc/passwd or
	 * <rootfs>/etc/group (resolved inside the rootfs) and must exist; a lone UID takes
	 * its gid from passwd, or 0 when passwd or the entry is missing. additionalGids is
	 * the gid plus the groups of <rootfs>/etc/group listing the user's name. */
	const char *user;
	bool terminal;        /* also adds TERM=xterm when env has no TERM */
	const char *hostname; /* NULL: id */
	enum specgen_net net;
	/* SPECGEN_NET_NONE: the namespace netns_create made, joined by path; NULL: the
	 * runtime makes a new one (loopback down). Ignored for SPECGEN_NET_HOST. */
	const char *netns_path;
	const char *const *cap_add; /* NULL-terminated names, validated; "ALL" allowed */
	const char *const *cap_drop;
	int64_t memory_limit;     /* bytes, 0: none */
	double cpus;              /* 0: none; else quota = cpus * SPECGEN_CPU_PERIOD */
	const char *cgroups_path; /* NULL: none (the runtime picks one) */
	bool readonly_rootfs;
};

/* Writes config.json at path (temp file + fsync + rename + directory fsync, mode
 * 0644): process (rlimits NOFILE 1024/1024, noNewPrivileges, capabilities bounding,
 * effective and permitted = caps_effective(cap_add, cap_drop)), root, hostname,
 * mounts (containerd's defaults: /proc, /dev, /dev/pts, /dev/shm, /dev/mqueue, /sys
 * ro, /run; plus /sys/fs/cgroup ro), linux namespaces (pid, ipc, uts, mount, and
 * network unless SPECGEN_NET_HOST), maskedPaths, readonlyPaths, resources (devices
 * deny all, memory limit, cpu quota/period) and cgroupsPath. Generated with
 * yajl_gen. Returns 0, or -errno with one line in err (err may be NULL), e.g.
 * `unknown capability "CAP_FOO"`, `user "bob" not found in /x/rootfs/etc/passwd`;
 * nothing is left at path (nor a temp file) on failure. */
int specgen_write(const struct specgen *s, const char *path, char *err, size_t errlen);
