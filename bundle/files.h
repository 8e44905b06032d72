/* The names of the files a shim keeps in its bundle beside containerd's (and
 * the manager reads back), with typed accessors: one place for the contract
 * instead of literals in each reader. init.pid, <exec>.exit and options.json
 * have their own headers (pidfile.h, exitfile.h, runcopts.h). */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#define BUNDLE_ADDRESS_FILE "address"	/* the shim's ttrpc address, as `start` printed it */
#define BUNDLE_SHIM_PID_FILE "shim.pid" /* the serving shim's pid */
#define BUNDLE_LOG_FILE "log"		/* FIFO containerd reads the shim's log from */
#define BUNDLE_PID_SUFFIX ".pid"	/* <exec-id>.pid, written by the runtime */

/* Exec ids whose pid file would be one of the bundle's own (init.pid,
 * shim.pid): a shim refuses them. */
bool bundle_exec_id_reserved(const char *exec_id);
/* "<exec-id>.pid" into out: 0, -EINVAL for a reserved or empty id,
 * -ENAMETOOLONG if out is too small. */
int bundle_exec_pid_name(const char *exec_id, char *out, size_t outlen);
/* The address file's content (no trailing newline) into out: 0, -ENOENT,
 * -EBADMSG when empty or not one line, -ENAMETOOLONG if out is too small. */
int bundle_read_address(int dirfd, char *out, size_t outlen);
/* The serving shim's pid: 0, -ENOENT, -EBADMSG (as bundle_read_pid). */
int bundle_read_shim_pid(int dirfd, pid_t *pid);
