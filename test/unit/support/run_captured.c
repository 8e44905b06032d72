/* See run_captured.h. */
#include "run_captured.h"

#include <criterion/criterion.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#define OUT_MAX (1u << 20)

int run_captured(const char *dir, char *const argv[], const uint8_t *in, size_t len,
		 void (*setup)(void *ud), void *ud, char **out, size_t *out_len, char *err,
		 size_t errlen)
{
	char inpath[PATH_MAX + 16], outpath[PATH_MAX + 16], errpath[PATH_MAX + 16];
	snprintf(inpath, sizeof(inpath), "%s/stdin", dir);
	snprintf(outpath, sizeof(outpath), "%s/stdout", dir);
	snprintf(errpath, sizeof(errpath), "%s/stderr", dir);
	FILE *f = fopen(inpath, "w");
	cr_assert_not_null(f, "%s", inpath);
	cr_assert_eq(fwrite(in, 1, len, f), len);
	fclose(f);
	pid_t pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		int i = open(inpath, O_RDONLY),
		    o = open(outpath, O_WRONLY | O_CREAT | O_TRUNC, 0600),
		    e = open(errpath, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		if (i < 0 || o < 0 || e < 0 || dup2(i, 0) < 0 || dup2(o, 1) < 0 || dup2(e, 2) < 0)
			_exit(125);
		if (setup)
			setup(ud);
		execv(argv[0], argv);
		_exit(127);
	}
	int status;
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	f = fopen(outpath, "r");
	cr_assert_not_null(f, "%s", outpath);
	*out = malloc(OUT_MAX + 1);
	cr_assert_not_null(*out);
	*out_len = fread(*out, 1, OUT_MAX, f);
	(*out)[*out_len] = '\0';
	fclose(f);
	f = fopen(errpath, "r");
	cr_assert_not_null(f, "%s", errpath);
	size_t n = fread(err, 1, errlen - 1, f);
	err[n] = '\0';
	fclose(f);
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}
