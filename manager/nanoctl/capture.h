/* Running a program to completion and capturing its output, as Go's
 * exec.Cmd.Output/CombinedOutput do, for the shim's start and delete actions. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#define NANOCTL_SPAWN_OUTPUT_MAX (1u << 20) /* bytes kept per stream */

struct nanoctl_spawn {
	char *const *argv; /* argv[0]: a path */
	char *const *envp;
	const char *cwd; /* NULL: ours */
	bool combined;   /* stderr into the same capture as stdout */
	int timeout_ms;  /* for both exit and EOF; the child is killed past it */
};

struct nanoctl_spawn_result {
	int status; /* as from waitpid */
	char *out;  /* stdout (+ stderr when combined), NUL-terminated, malloc'ed */
	size_t out_len;
	char *err; /* stderr when not combined, NUL-terminated, malloc'ed */
	size_t err_len;
};

/* Runs the program in its own process group with stdin on /dev/null, reads
 * its output until EOF and reaps it. 0 with r filled (the caller frees out and
 * err, also on error), or -errno with why (one line) in errbuf: spawn failed,
 * output beyond NANOCTL_SPAWN_OUTPUT_MAX, or the deadline passed (-ETIMEDOUT;
 * also when the program exited but something it started still holds the
 * output open). */
int nanoctl_spawn_sync(const struct nanoctl_spawn *s, struct nanoctl_spawn_result *r, char *errbuf,
                       size_t errlen);
void nanoctl_spawn_result_free(struct nanoctl_spawn_result *r);
