/* Children of a nanoshim process: started with a clean signal state (the
 * process blocks SIGCHLD, SIGTERM, SIGINT and SIGPIPE for its signalfd, and a
 * blocked mask is inherited across exec — a logger or runtime started with it
 * would ignore SIGTERM and never see its own children exit), their stdio mapped,
 * stdout and stderr optionally captured, and one callback once the child has
 * exited and its captured output is all read (spawn_async), or a blocking run
 * to the end for a process without a loop (spawn_sync). */
#pragma once

#include "loop.h"
#include "reaper.h"

#include <spawn.h>
#include <stddef.h>
#include <sys/types.h>

enum { SPAWN_CAPTURE_STDOUT = 1, SPAWN_CAPTURE_STDERR = 2, SPAWN_SETSID = 4 };
#define SPAWN_OUTPUT_MAX (4u << 20) /* bytes kept per captured stream; the rest is read and dropped */

struct spawn_req {
	const char *const *argv; /* argv[0] looked up on PATH */
	const char *const *envp; /* NULL: the caller's environ */
	const char *cwd;         /* NULL: the caller's */
	int fds[3];              /* the child's stdin/stdout/stderr; -1: /dev/null, or the capture pipe when captured */
	unsigned flags;
};

/* Runs once the child has exited and every captured stream hit EOF. status: exit code, or
 * 128 + signal. out/err: captured bytes, NUL-terminated ("" and 0 when not captured). */
typedef void (*spawn_done_fn)(pid_t pid, int status, const char *out, size_t outlen,
			      const char *err, size_t errlen, void *userdata);

/* Starts the child with a clean signal state (empty mask, default dispositions). Returns its pid or -errno.
 * A captured stream takes the place of its fds[] entry (which is then ignored). r must
 * reap on l (reaper_new(l)), or be reaped by its owner: done runs from l once both the
 * exit and every EOF are in. The fds are not closed; the caller closes its copies. */
pid_t spawn_async(struct loop *l, struct reaper *r, const struct spawn_req *req, spawn_done_fn done, void *userdata);

/* Blocking: runs the child to its end with waitpid (no loop, no reaper — for a process that owns
 * no reaper, e.g. a CLI or the shim's delete action). *out (malloc'd, NUL-terminated; free it)
 * gets stdout when SPAWN_CAPTURE_STDOUT; stderr likewise into *err when SPAWN_CAPTURE_STDERR.
 * Returns the status (exit code or 128+signal) or -errno when it could not start.
 * out/outlen/err/errlen may be NULL (the stream is then read and dropped); a stream
 * not captured gives NULL and 0; a captured one is a string even when empty (-ENOMEM,
 * after the child's end, when it cannot be). */
int spawn_sync(const struct spawn_req *req, char **out, size_t *outlen, char **err, size_t *errlen);

/* posix_spawnattr_init + empty mask + default dispositions; destroy after use. */
void spawn_attr_init(posix_spawnattr_t *at, short extra_flags);
