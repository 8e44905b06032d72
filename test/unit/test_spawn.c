/* spawn (loop/spawn.c): captured stdout and stderr, exit codes and 128 + signal,
 * cwd, envp, /dev/null for -1, a given fd as stdio, a clean signal mask, a new
 * session, output past SPAWN_OUTPUT_MAX read and dropped without a hang, a
 * missing binary as -ENOENT; each for spawn_async (on a loop with its reaper)
 * and spawn_sync where it applies. No timing assertions: every wait ends with
 * the child, bounded only by the test's timeout. */
#include "loop.h"
#include "reaper.h"
#include "spawn.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct result {
	bool done;
	pid_t pid;
	int status;
	char *out, *err;
	size_t outlen, errlen;
};

static void on_done(pid_t pid, int status, const char *out, size_t outlen, const char *err,
		    size_t errlen, void *ud)
{
	struct result *r = ud;
	r->done = true;
	r->pid = pid;
	r->status = status;
	/* the buffers are the spawn's: copy them, NUL included */
	r->out = malloc(outlen + 1);
	r->err = malloc(errlen + 1);
	memcpy(r->out, out, outlen + 1);
	memcpy(r->err, err, errlen + 1);
	r->outlen = outlen;
	r->errlen = errlen;
}

/* Runs req with spawn_async on a loop of its own and waits for done. */
static pid_t run_async(const struct spawn_req *req, struct result *res)
{
	memset(res, 0, sizeof(*res));
	struct loop *l = loop_new();
	cr_assert_not_null(l);
	struct reaper *rp = reaper_new(l);
	cr_assert_not_null(rp);
	pid_t pid = spawn_async(l, rp, req, on_done, res);
	while (pid > 0 && !res->done)
		cr_assert_geq(loop_iterate(l, -1), 0);
	reaper_free(rp);
	loop_free(l);
	return pid;
}

static void result_free(struct result *r)
{
	free(r->out);
	free(r->err);
}

#define SH(script) ((const char *const[]){"sh", "-c", script, NULL})

Test(spawn, async_captures_stdout_and_stderr_and_the_exit_code, .timeout = 20)
{
	struct spawn_req req = {.argv = SH("printf hello; printf oops >&2; exit 3"),
				.fds = {-1, -1, -1},
				.flags = SPAWN_CAPTURE_STDOUT | SPAWN_CAPTURE_STDERR};
	struct result r;
	pid_t pid = run_async(&req, &r);
	cr_assert_gt(pid, 0);
	cr_assert(r.done);
	cr_assert_eq(r.pid, pid);
	cr_assert_eq(r.status, 3);
	cr_assert_str_eq(r.out, "hello");
	cr_assert_eq(r.outlen, 5);
	cr_assert_str_eq(r.err, "oops");
	cr_assert_eq(r.errlen, 4);
	result_free(&r);
}

Test(spawn, async_uncaptured_streams_give_empty_strings, .timeout = 20)
{
	struct spawn_req req = {.argv = SH("echo lost; echo lost >&2"), .fds = {-1, -1, -1}};
	struct result r;
	cr_assert_gt(run_async(&req, &r), 0);
	cr_assert_eq(r.status, 0);
	cr_assert_str_eq(r.out, "");
	cr_assert_eq(r.outlen, 0);
	cr_assert_str_eq(r.err, "");
	cr_assert_eq(r.errlen, 0);
	result_free(&r);
}

Test(spawn, async_killed_child_is_128_plus_signal, .timeout = 20)
{
	struct spawn_req req = {.argv = SH("kill -TERM $$"), .fds = {-1, -1, -1},
				.flags = SPAWN_CAPTURE_STDOUT};
	struct result r;
	cr_assert_gt(run_async(&req, &r), 0);
	cr_assert_eq(r.status, 128 + SIGTERM);
	result_free(&r);
}

Test(spawn, async_cwd_and_envp, .timeout = 20)
{
	char dir[] = "/tmp/nanoshim-spawn-XXXXXX";
	cr_assert_not_null(mkdtemp(dir));
	const char *const envp[] = {"NANOSHIM_SPAWN_TEST=from envp", NULL};
	struct spawn_req req = {.argv = SH("pwd; printf '%s|%s' \"$NANOSHIM_SPAWN_TEST\" \"$HOME\""),
				.envp = envp,
				.cwd = dir,
				.fds = {-1, -1, -1},
				.flags = SPAWN_CAPTURE_STDOUT};
	struct result r;
	cr_assert_gt(run_async(&req, &r), 0);
	char want[PATH_MAX + 64];
	snprintf(want, sizeof(want), "%s\nfrom envp|", dir); /* HOME is not in envp */
	cr_assert_str_eq(r.out, want);
	result_free(&r);
	rmdir(dir);
}

Test(spawn, async_minus_one_is_dev_null_and_a_given_fd_is_used, .timeout = 20)
{
	int p[2];
	cr_assert_eq(pipe2(p, O_CLOEXEC), 0);
	struct spawn_req req = {
		.argv = SH("readlink /proc/self/fd/0 >&2; readlink /proc/self/fd/1 >&2; echo given"),
		.fds = {-1, p[1], -1},
		.flags = SPAWN_CAPTURE_STDERR};
	struct result r;
	cr_assert_gt(run_async(&req, &r), 0);
	close(p[1]);
	char buf[64] = "";
	cr_assert_eq(read(p[0], buf, sizeof(buf) - 1), 6);
	cr_assert_str_eq(buf, "given\n");
	close(p[0]);
	/* stdin /dev/null; stdout the pipe we gave */
	cr_assert(strncmp(r.err, "/dev/null\npipe:[", 16) == 0, "%s", r.err);
	result_free(&r);
}

Test(spawn, async_child_starts_with_a_clean_signal_mask_in_a_new_session, .timeout = 20)
{
	sigset_t mask;
	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	struct spawn_req req = {
		.argv = SH("grep SigBlk /proc/self/status; "
			   "test \"$(cut -d' ' -f6 /proc/$$/stat)\" = $$ && echo leader"),
		.fds = {-1, -1, -1},
		.flags = SPAWN_CAPTURE_STDOUT | SPAWN_SETSID};
	struct result r;
	cr_assert_gt(run_async(&req, &r), 0);
	cr_assert_str_eq(r.out, "SigBlk:\t0000000000000000\nleader\n");
	result_free(&r);
}

Test(spawn, async_output_past_the_cap_is_dropped_without_a_hang, .timeout = 60)
{
	/* both streams over the cap at once: neither pipe may stall the other */
	struct spawn_req req = {
		.argv = SH("head -c 6000000 /dev/zero >&2 & head -c 5000000 /dev/zero; wait; exit 7"),
		.fds = {-1, -1, -1},
		.flags = SPAWN_CAPTURE_STDOUT | SPAWN_CAPTURE_STDERR};
	struct result r;
	cr_assert_gt(run_async(&req, &r), 0);
	cr_assert_eq(r.status, 7);
	cr_assert_eq(r.outlen, SPAWN_OUTPUT_MAX);
	cr_assert_eq(r.errlen, SPAWN_OUTPUT_MAX);
	cr_assert_eq(r.out[r.outlen], '\0');
	result_free(&r);
}

Test(spawn, async_missing_binary_is_enoent, .timeout = 20)
{
	const char *const argv[] = {"nanoshim-no-such-binary", NULL};
	struct spawn_req req = {.argv = argv, .fds = {-1, -1, -1}, .flags = SPAWN_CAPTURE_STDOUT};
	struct result r;
	cr_assert_eq(run_async(&req, &r), -ENOENT);
	cr_assert(!r.done);
	const char *const abs[] = {"/nonexistent/nanoshim", NULL};
	req.argv = abs;
	cr_assert_eq(run_async(&req, &r), -ENOENT);
}

Test(spawn, async_missing_cwd_is_an_error, .timeout = 20)
{
	struct spawn_req req = {.argv = SH("true"), .cwd = "/nonexistent/nanoshim",
				.fds = {-1, -1, -1}};
	struct result r;
	cr_assert_eq(run_async(&req, &r), -ENOENT);
}

Test(spawn, sync_captures_stdout_and_stderr_and_the_exit_code, .timeout = 20)
{
	struct spawn_req req = {.argv = SH("printf hello; printf oops >&2; exit 3"),
				.fds = {-1, -1, -1},
				.flags = SPAWN_CAPTURE_STDOUT | SPAWN_CAPTURE_STDERR};
	char *out = NULL, *err = NULL;
	size_t outlen = 99, errlen = 99;
	cr_assert_eq(spawn_sync(&req, &out, &outlen, &err, &errlen), 3);
	cr_assert_str_eq(out, "hello");
	cr_assert_eq(outlen, 5);
	cr_assert_str_eq(err, "oops");
	cr_assert_eq(errlen, 4);
	free(out);
	free(err);
}

Test(spawn, sync_stream_not_captured_is_null, .timeout = 20)
{
	struct spawn_req req = {.argv = SH("echo out"), .fds = {-1, -1, -1},
				.flags = SPAWN_CAPTURE_STDERR};
	char *out = (char *)"x", *err = NULL;
	size_t outlen = 99, errlen = 99;
	cr_assert_eq(spawn_sync(&req, &out, &outlen, &err, &errlen), 0);
	cr_assert_null(out);
	cr_assert_eq(outlen, 0);
	cr_assert_str_eq(err, ""); /* captured, empty */
	cr_assert_eq(errlen, 0);
	free(err);
}

Test(spawn, sync_signal_cwd_envp_dev_null, .timeout = 20)
{
	struct spawn_req req = {.argv = SH("kill -KILL $$"), .fds = {-1, -1, -1}};
	cr_assert_eq(spawn_sync(&req, NULL, NULL, NULL, NULL), 128 + SIGKILL);

	const char *const envp[] = {"NANOSHIM_SPAWN_TEST=sync", NULL};
	struct spawn_req req2 = {
		.argv = SH("pwd; printf %s \"$NANOSHIM_SPAWN_TEST\"; readlink /proc/self/fd/0 >&2"),
		.envp = envp,
		.cwd = "/",
		.fds = {-1, -1, -1},
		.flags = SPAWN_CAPTURE_STDOUT | SPAWN_CAPTURE_STDERR};
	char *out = NULL, *err = NULL;
	cr_assert_eq(spawn_sync(&req2, &out, NULL, &err, NULL), 0);
	cr_assert_str_eq(out, "/\nsync");
	cr_assert_str_eq(err, "/dev/null\n");
	free(out);
	free(err);
}

Test(spawn, sync_output_past_the_cap_is_dropped_without_a_hang, .timeout = 60)
{
	struct spawn_req req = {
		.argv = SH("head -c 6000000 /dev/zero >&2 & head -c 5000000 /dev/zero; wait"),
		.fds = {-1, -1, -1},
		.flags = SPAWN_CAPTURE_STDOUT | SPAWN_CAPTURE_STDERR};
	char *out = NULL, *err = NULL;
	size_t outlen = 0, errlen = 0;
	cr_assert_eq(spawn_sync(&req, &out, &outlen, &err, &errlen), 0);
	cr_assert_eq(outlen, SPAWN_OUTPUT_MAX);
	cr_assert_eq(errlen, SPAWN_OUTPUT_MAX);
	cr_assert_eq(out[outlen], '\0');
	free(out);
	free(err);
}

Test(spawn, sync_missing_binary_is_enoent, .timeout = 20)
{
	const char *const argv[] = {"nanoshim-no-such-binary", NULL};
	struct spawn_req req = {.argv = argv, .fds = {-1, -1, -1},
				.flags = SPAWN_CAPTURE_STDOUT | SPAWN_CAPTURE_STDERR};
	char *out = (char *)"x", *err = (char *)"x";
	cr_assert_eq(spawn_sync(&req, &out, NULL, &err, NULL), -ENOENT);
	cr_assert_null(out);
	cr_assert_null(err);
}
