/* Runs the OCI runtime (runc, crun: any binary with runc's command line)
 * without blocking: each invocation is a spawn_async child (loop/spawn.h), its
 * stdout optionally captured, its error message taken from its own JSON log
 * (`--log-format json`), the way containerd's runc shim reports errors. */
#pragma once

#include "loop.h"
#include "reaper.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
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

/* ---- runc's command line and its words ---- */

/* `create`, or `restore --detach` when image_path is set. */
struct runc_create_args {
	const char *image_path;	    /* checkpoint to restore, or NULL */
	const char *work_path;	    /* restore only */
	const char *bundle;
	const char *pid_file;
	const char *console_socket; /* or NULL */
	bool no_pivot, no_new_keyring;
	const char *id;
};
#define RUNC_CREATE_ARGS_MAX 24
/* Fills args (RUNC_CREATE_ARGS_MAX, NULL-terminated) for runc_run. */
void runc_create_argv(const struct runc_create_args *a, const char **args);

#define RUNC_EXEC_ARGS_MAX 16
/* `exec --detach` of the process spec at process_path in container id. */
void runc_exec_argv(const char *pid_file, const char *process_path, const char *console_socket,
		    const char *id, const char **args);

struct runc_checkpoint_args {
	const char *image_path;
	const char *work_path;
	bool leave_running, tcp_established, ext_unix_sk, shell_job, file_locks;
	const char *id;
};
#define RUNC_CHECKPOINT_ARGS_MAX 24
void runc_checkpoint_argv(const struct runc_checkpoint_args *a, const char **args);

/* runc's words (err may be NULL) for a process that is already gone. */
bool runc_error_process_gone(const char *err);
/* runc's words for a container that does not exist. */
bool runc_error_not_exist(const char *err);
/* runc names criu's log ("log file: PATH"); out gets the last error criu
 * wrote there, or "". */
void runc_criu_error(const char *err, char *out, size_t outlen);

/* `runc ps --format json`: a list of pids, or null (Go's nil slice) for a
 * container with no process. */
struct runc_ps {
	bool null;
	size_t n;
	uint32_t pids[];
};
/* 0 with *ret (free() it), -EINVAL with err filled, or -ENOMEM. */
int runc_ps_parse(const char *out, struct runc_ps **ret, char *err, size_t errlen);
