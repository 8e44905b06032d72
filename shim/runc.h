/* Runs the OCI runtime (runc, crun: any binary with runc's command line)
 * without blocking: each invocation is a spawn_async child (loop/spawn.h), its
 * stdout optionally captured, its error message taken from its own JSON log
 * (`--log-format json`), the way containerd's runc shim reports errors. */
#pragma once

#include "loop.h"
#include "reaper.h"

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

struct runc_config {
	const char *binary; /* "runc" by default: resolved on PATH */
	const char *root;   /* --root, already including the namespace */
	const char *criu;   /* --criu, or NULL */
	bool systemd_cgroup;
	const char *log_dir; /* where per-call JSON logs go (the bundle) */
};

enum {
	RUNC_CAPTURE_STDOUT = 1, /* stdout to a buffer handed to the callback (SPAWN_OUTPUT_MAX) */
	/* create/exec: the container inherits runc's stdio, so nothing of it may
	 * be a capture pipe (it would never see EOF); -1 means /dev/null. */
	RUNC_STDIO_TO_CONTAINER = 2,
};

/* status: exit code (128+signal if killed). err: runc's last error message, or
 * its stderr, or "exit status N"; NULL on success. out: captured stdout. */
typedef void (*runc_done_fn)(int status, const char *err, const char *out, size_t outlen,
			     void *userdata);

/* args: the subcommand and its arguments, NULL-terminated. fds: the child's
 * stdin/stdout/stderr, -1 for /dev/null (stderr -1 is captured for errors
 * unless RUNC_STDIO_TO_CONTAINER).
 * Returns the child pid or -errno. */
pid_t runc_run(struct loop *l, struct reaper *r, const struct runc_config *cfg, const char *const *args,
	       const int fds[3], unsigned flags, runc_done_fn done, void *userdata);

/* Synchronous variant for the `delete` action (no loop): returns the exit status,
 * err filled with the message on failure. */
int runc_run_sync(const struct runc_config *cfg, const char *const *args, char *err,
		  size_t errlen);
