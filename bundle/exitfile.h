/* Exit records: a process's exit status, kept in the bundle from the moment
 * the shim learns it, before the exit is announced, so that a new shim,
 * `delete` or the manager can still report it after the shim, its daemon or
 * both crashed (conmon's exit file, inside shim v2).
 *
 * One file per process: "init.exit" for the container's init, "<exec-id>.exit"
 * for an exec, holding one text line:
 *	pid=<pid> status=<status> exited_at=<seconds>.<nanoseconds 9 digits>\n
 * written atomically. */
#pragma once

#include <stdint.h>

#define BUNDLE_EXIT_SUFFIX ".exit"
#define BUNDLE_EXIT_INIT "init"

struct bundle_exit {
	int32_t pid;
	int32_t status; /* as containerd reports it: exit code, or 128 + signal */
	int64_t exited_sec;
	int32_t exited_nsec; /* 0..999999999 */
};

/* Writes the record of exec_id (NULL for init) atomically into the bundle
 * directory dirfd, mode 0600. -EINVAL for an invalid exec id (containerd's
 * identifier rules) or for the exec id "init", whose file would be init's;
 * -ERANGE for nanoseconds outside 0..999999999. */
int bundle_exit_write(int dirfd, const char *exec_id, const struct bundle_exit *e);

/* Reads it back: 0, -ENOENT (none written), -EBADMSG (truncated, corrupt or
 * not a record), -EINVAL (invalid exec id), or another -errno. */
int bundle_exit_read(int dirfd, const char *exec_id, struct bundle_exit *e);

/* Removes it; 0 also when there was none. */
int bundle_exit_remove(int dirfd, const char *exec_id);
