/* Linked into every unit test binary: runs a program as containerd runs a shim's
 * actions, stdin from given bytes, stdout and stderr captured. */
#pragma once

#include <stddef.h>
#include <stdint.h>

/* In a child: stdin reads in[0..len), stdout and stderr go to files under dir,
 * setup(ud) runs (environment, working dir; NULL: nothing), then argv[0] is
 * exec'd. *out gets stdout (malloc'd and NUL-terminated, its length in
 * *out_len), err stderr (at most errlen - 1 bytes, NUL-terminated). Returns
 * the exit code, or 128 + the signal; a file it cannot make fails the test. */
int run_captured(const char *dir, char *const argv[], const uint8_t *in, size_t len,
		 void (*setup)(void *ud), void *ud, char **out, size_t *out_len, char *err,
		 size_t errlen);
