/* `delete`: what containerd runs after a shim is gone (or after every task
 * delete, in 1.6): runtime delete, rootfs unmount, the stale socket removed,
 * and the exit the shim recorded (else SIGKILL's) printed as a DeleteResponse. */
#include "cli.h"
#include "runc.h"
#include "sockdir.h"

#include "bundle/address.h"
#include "bundle/atomic.h"
#include "bundle/exitfile.h"
#include "bundle/files.h"
#include "bundle/mount.h"
#include "bundle/pidfile.h"
#include "bundle/runcopts.h"
#include "containerd/task/v2/shim.pb-c.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

/* A SIGKILLed shim can still be exiting when containerd runs this: the kernel
 * may release its listening socket milliseconds after the connection whose
 * close made containerd call us. */
#define EXITING_SHIM_WAIT_MS 2000

/* True when pid is in the kernel's exit path (PF_EXITING) and not yet a
 * zombie: its files may still be open. */
static bool pid_exiting(pid_t pid)
{
	char path[64], buf[1024];
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	FILE *fp = fopen(path, "re");
	if (!fp)
		return false;
	size_t n = fread(buf, 1, sizeof(buf) - 1, fp);
	fclose(fp);
	buf[n] = '\0';
	const char *p = strrchr(buf, ')'); /* after the command name */
	char state;
	unsigned long flags;
	/* ") S ppid pgrp session tty tpgid flags" */
	if (!p || sscanf(p + 1, " %c %*d %*d %*d %*d %*d %lu", &state, &flags) != 2)
		return false;
	return state != 'Z' && state != 'X' && (flags & 0x4 /* PF_EXITING */);
}

/* Waits (bounded) for the shim named by the bundle's shim.pid if it is
 * exiting; true if it was. */
static bool wait_exiting_shim(int dirfd)
{
	pid_t pid;
	if (dirfd < 0 || bundle_read_pid(dirfd, BUNDLE_SHIM_PID_FILE, &pid) < 0 || pid <= 0)
		return false;
	int pfd = (int)syscall(SYS_pidfd_open, pid, 0);
	if (pfd < 0)
		return false;
	bool exiting = pid_exiting(pid);
	if (exiting) {
		struct pollfd p = {.fd = pfd, .events = POLLIN};
		poll(&p, 1, EXITING_SHIM_WAIT_MS);
	}
	close(pfd);
	return exiting;
}

/* A dead shim leaves its socket behind; a live one removes its own. The
 * address is the bundle's address file, or, when containerd 1.6 is removing
 * the bundle while this runs (a task Delete that lost its shim races its own
 * cleanup) or has removed it (dirfd < 0), the socket a shim of this id alone
 * would have. */
static void remove_stale_socket(int dirfd, const struct shim_flags *f)
{
	char *addr = NULL;
	size_t alen = 0;
	char spath[128], own[BUNDLE_ADDRESS_MAX];
	if ((dirfd < 0 || bundle_read_file(dirfd, BUNDLE_ADDRESS_FILE, &addr, &alen, 4096) < 0) &&
	    f->address && bundle_socket_address(f->address, f->ns, f->id, own, sizeof(own)) == 0)
		addr = strdup(own);
	if (addr && bundle_socket_path(addr, spath, sizeof(spath)) == 0) {
		/* (not under the lock: a start in the directory must not wait) */
		if (shim_socket_connectable(spath))
			wait_exiting_shim(dirfd);
		int lock = shim_socket_lock(spath);
		if (!shim_socket_connectable(spath))
			unlink(spath);
		if (lock >= 0)
			close(lock);
	}
	free(addr);
}

int shim_delete(const struct shim_flags *f)
{
	const char *bundle = f->bundle && f->bundle[0] ? f->bundle : ".";
	int dirfd = open(bundle, O_DIRECTORY | O_RDONLY | O_CLOEXEC);
	if (dirfd < 0) {
		fprintf(stderr, "open bundle %s: %s\n", bundle, strerror(errno));
		remove_stale_socket(-1, f);
		return 1;
	}
	char cwd[PATH_MAX];
	if (!realpath(bundle, cwd))
		snprintf(cwd, sizeof(cwd), "%s", bundle);
	struct ttrpc_status st;
	Containerd__Runc__V1__Options *o = NULL;
	if (bundle_options_read(dirfd, &o, &st) < 0) {
		fprintf(stderr, "%s\n", st.message); /* logged by containerd as a warning */
		o = NULL;
	}
	char root[PATH_MAX];
	snprintf(root, sizeof(root), "%s/%s", o ? bundle_options_root(o) : BUNDLE_DEFAULT_RUNC_ROOT,
		 f->ns);
	struct runc_config rc_cfg = {.binary = o ? bundle_options_binary(o) : BUNDLE_DEFAULT_RUNTIME,
				     .root = root,
				     .systemd_cgroup = o && o->systemd_cgroup,
				     .log_dir = cwd};
	/* containerd 1.6 runs this after every task delete: when the runtime
	 * holds no state for the container any more, there is nothing to delete
	 * and no reason to pay for starting it. */
	char state_dir[PATH_MAX];
	snprintf(state_dir, sizeof(state_dir), "%s/%s", root, f->id);
	if (access(state_dir, F_OK) == 0) {
		const char *args[] = {"delete", "--force", f->id, NULL};
		char err[512] = "";
		int status = runc_run_sync(&rc_cfg, args, err, sizeof(err));
		if (status != 0 && !strstr(err, "does not exist"))
			fprintf(stderr, "runc delete %s: %s\n", f->id, err);
	}
	int rc = bundle_unmount_rootfs(cwd);
	if (rc < 0)
		fprintf(stderr, "unmount rootfs: %s\n", strerror(-rc));
	/* The real exit, if the shim wrote it before dying; else SIGKILL's. */
	struct bundle_exit ex;
	Containerd__Task__V2__DeleteResponse r = CONTAINERD__TASK__V2__DELETE_RESPONSE__INIT;
	Google__Protobuf__Timestamp ts = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
	pid_t pid = 0;
	if (bundle_exit_read(dirfd, NULL, &ex) == 0) {
		r.pid = (uint32_t)ex.pid;
		r.exit_status = (uint32_t)ex.status;
		ts.seconds = ex.exited_sec;
		ts.nanos = ex.exited_nsec;
	} else {
		if (bundle_read_pid(dirfd, BUNDLE_INIT_PID_FILE, &pid) == 0)
			r.pid = (uint32_t)pid;
		r.exit_status = 128 + SIGKILL;
		struct timespec now;
		clock_gettime(CLOCK_REALTIME, &now);
		ts.seconds = now.tv_sec;
		ts.nanos = (int32_t)now.tv_nsec;
	}
	r.exited_at = &ts;
	remove_stale_socket(dirfd, f);
	bundle_options_free(o);
	close(dirfd);
	size_t len = containerd__task__v2__delete_response__get_packed_size(&r);
	uint8_t *buf = malloc(len + 1);
	containerd__task__v2__delete_response__pack(&r, buf);
	fwrite(buf, 1, len, stdout);
	free(buf);
	return 0;
}
