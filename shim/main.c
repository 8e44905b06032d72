/* containerd-shim-nano-v2: the shim v2 command line. `start` creates the
 * socket and the serving shim and prints its address (start.c); `delete`
 * cleans up after a shim that is gone (delete.c); no action serves
 * containerd.task.v2.Task and v3 (serve.c); `-info` prints a RuntimeInfo
 * (info.c).
 *
 * `start` puts the socket in /run/containerd/s, as containerd's own shims do,
 * unless the environment has NANOSHIM_SOCKET_DIR: an absolute directory
 * (created 0700 if missing) that then holds the socket instead, named the same
 * way (<dir>/<sha256 of address/namespace/group>). nanoshimd sets it so the
 * shims it owns never share containerd's socket directory. Without it, the
 * socket_dir of containerd 2.3+'s BootstrapParams on stdin is used, if set
 * (bootstrap.h). Whatever the caller, `start` answers with the plain address
 * (shim protocol 2; README, "containerd 2.x", says why). */
#include "cli.h"
#include "crash.h"
#include "upgrade.h"

#include "bundle/id.h"
#include "ttrpc.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int usage(void)
{
	fprintf(stderr, "usage: %s -namespace NS -id ID -address ADDR [-bundle DIR] [-debug] "
			"[-socket PATH] [start|delete]\n       %s -v\n       %s -info   (RuntimeInfo on stdout; options on stdin)\n       %s -crash-points   (the points NANOSHIM_CRASH_AT=POINT arms)\n       %s -upgrade-version   (the live-upgrade state version it takes)\n",
		SHIM_NAME, SHIM_NAME, SHIM_NAME, SHIM_NAME, SHIM_NAME);
	return 2;
}

/* Go's flag package: -name or --name, value after '=' or as the next arg. */
static int parse_flags(int argc, char **argv, struct shim_flags *f)
{
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (a[0] != '-') {
			if (f->action)
				return -EINVAL;
			f->action = a;
			continue;
		}
		a += a[1] == '-' ? 2 : 1;
		char name[32];
		const char *eq = strchr(a, '='), *val = NULL;
		size_t n = eq ? (size_t)(eq - a) : strlen(a);
		if (n >= sizeof(name))
			return -EINVAL;
		memcpy(name, a, n);
		name[n] = '\0';
		if (strcmp(name, "debug") == 0 || strcmp(name, "v") == 0 ||
		    strcmp(name, "version") == 0 || strcmp(name, "crash-points") == 0 ||
		    strcmp(name, "info") == 0 || strcmp(name, "upgrade-version") == 0 ||
		    strcmp(name, "upgrade-fallback") == 0) {
			bool on = !eq || strcmp(eq + 1, "true") == 0 || strcmp(eq + 1, "1") == 0;
			if (name[0] == 'd')
				f->debug = on;
			else if (name[0] == 'c')
				f->crash_points = on;
			else if (strcmp(name, "upgrade-fallback") == 0)
				f->upgrade_fallback = on;
			else if (name[0] == 'u')
				f->upgrade_version = on;
			else if (name[0] == 'i')
				f->info = on;
			else
				f->version = on;
			continue;
		}
		if (eq)
			val = eq + 1;
		else if (i + 1 < argc)
			val = argv[++i];
		else
			return -EINVAL;
		if (strcmp(name, "namespace") == 0)
			f->ns = val;
		else if (strcmp(name, "id") == 0)
			f->id = val;
		else if (strcmp(name, "address") == 0)
			f->address = val;
		else if (strcmp(name, "publish-binary") == 0)
			f->publish_binary = val;
		else if (strcmp(name, "bundle") == 0)
			f->bundle = val;
		else if (strcmp(name, "socket") == 0)
			f->socket = val;
		else if (strcmp(name, "upgrade-resume") == 0) {
			char *end;
			long fd = strtol(val, &end, 10);
			if (*end || fd < 3 || fd > INT_MAX)
				return -EINVAL;
			f->resume_fd = (int)fd;
		}
		else
			return -EINVAL;
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct shim_flags f = {.argv0 = argv[0], .resume_fd = -1};
	/* The soft RLIMIT_NOFILE up to the hard one, as every Go binary since
	 * Go 1.19 does (os package init, go.dev/issue/46279), Debian's
	 * containerd-shim-runc-v2 (go1.19.8) included: a shim serving many
	 * containers and execs must not run out of fds at containerd's soft
	 * limit. Children inherit the raised limit, as from that Go shim;
	 * restoring the original soft limit in exec'd children came only with
	 * Go 1.21 (syscall.origRlimitNofile). A container's own limit comes from
	 * its spec's rlimits either way. */
	ttrpc_raise_nofile_limit();
	if (parse_flags(argc, argv, &f) < 0)
		return usage();
	if (f.crash_points) {
		shim_crash_list();
		return 0;
	}
	if (f.version) {
		printf("%s:\n  Version:  %s\n", SHIM_NAME, SHIM_VERSION);
		return 0;
	}
	if (f.info)
		return shim_info(&f);
	if (f.upgrade_version)
		return upgrade_print_version();
	if (!f.ns) {
		const char *env = getenv("NAMESPACE");
		f.ns = env && env[0] ? env : NULL;
	}
	if (!f.ns || !f.id) {
		fprintf(stderr, "%s: -namespace and -id are required\n", SHIM_NAME);
		return usage();
	}
	struct ttrpc_status st;
	if (bundle_validate_id("namespace", f.ns, &st) < 0 ||
	    bundle_validate_id("container id", f.id, &st) < 0) {
		fprintf(stderr, "%s: %s\n", SHIM_NAME, st.message);
		return 1;
	}
	if (!f.address)
		f.address = "/run/containerd/containerd.sock";
	if (!f.action)
		return shim_serve(&f);
	if (f.resume_fd >= 0) {
		fprintf(stderr, "%s: -upgrade-resume serves: no action with it\n", SHIM_NAME);
		return usage();
	}
	if (strcmp(f.action, "start") == 0)
		return shim_start(&f);
	if (strcmp(f.action, "delete") == 0)
		return shim_delete(&f);
	fprintf(stderr, "%s: unknown action %s\n", SHIM_NAME, f.action);
	return usage();
}
