/* The pid files runc (and crun) write with --pid-file: "init.pid" for the
 * container's init, "<exec-id>.pid" for an exec, in the bundle directory. */
#pragma once

#include <sys/types.h>

#define BUNDLE_INIT_PID_FILE "init.pid"

/* Reads the decimal pid in name (relative to dirfd): 0, -ENOENT, or -EBADMSG
 * when it is empty, not a positive number, or carries more than one trailing
 * newline. */
int bundle_read_pid(int dirfd, const char *name, pid_t *out);
