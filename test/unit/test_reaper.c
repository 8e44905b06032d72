/* The reaper in a pid namespace of the test's own, where pid reuse can be forced
 * (ns_last_pid): an exit left unclaimed by one process is never handed to a new
 * process that got the same pid (reaper_claim takes a pidfd of the live one), an
 * exit reaped after the runtime call began is, and an exit older than the call is
 * dropped. Needs root (a pid and a mount namespace, /proc mounted inside). */
#include "reaper.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int last_status;
static bool last_seen;

static void on_exit_cb(pid_t pid, int status, const struct timespec *when, void *ud)
{
	last_status = status;
	last_seen = true;
}

/* Reaps until pid's exit went through the reaper (as SIGCHLD would make it). */
static void reap_until_gone(pid_t pid)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	for (int i = 0; i < 500; i++) {
		reaper_reap();
		if (access(path, F_OK) < 0)
			return;
		usleep(2000);
	}
}

static pid_t fork_at(pid_t want, int exit_code, bool linger)
{
	if (want) {
		char buf[16];
		int fd = open("/proc/sys/kernel/ns_last_pid", O_WRONLY);
		if (fd < 0)
			return -1;
		int n = snprintf(buf, sizeof(buf), "%d", (int)want - 1);
		if (write(fd, buf, (size_t)n) != n) {
			close(fd);
			return -1;
		}
		close(fd);
	}
	pid_t pid = fork();
	if (pid == 0) {
		if (linger)
			pause();
		_exit(exit_code);
	}
	return pid;
}

#define CHECK(cond, code)                                                                  \
	do {                                                                               \
		if (!(cond)) {                                                             \
			fprintf(stderr, "check failed: %s (line %d)\n", #cond, __LINE__); \
			_exit(code);                                                       \
		}                                                                          \
	} while (0)

/* Runs as pid 1 of the new namespace. */
static void inside(void)
{
	CHECK(mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) == 0, 10);
	CHECK(mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) == 0, 11);
	bool exited;
	int status;
	struct timespec when;

	/* an orphan with pid 50 exits 7 and nobody claims it */
	pid_t old = fork_at(50, 7, false);
	CHECK(old == 50, 12);
	reap_until_gone(old);

	/* a runtime call begins, and the process it starts gets pid 50 again */
	int64_t since = reaper_now_ns();
	pid_t fresh = fork_at(50, 0, true);
	CHECK(fresh == 50, 13);
	int fd = reaper_claim(fresh, since, &exited, &status, &when);
	CHECK(fd >= 0, 14);    /* the live process, held by a pidfd */
	CHECK(!exited, 15);    /* not the orphan's exit 7 */
	CHECK(!reaper_take_unclaimed(fresh, &status, &when), 16); /* the stale exit is gone */
	reaper_watch(fresh, on_exit_cb, NULL);
	CHECK(syscall(SYS_pidfd_send_signal, fd, SIGKILL, NULL, 0) == 0, 17);
	reap_until_gone(fresh);
	CHECK(last_seen && last_status == 128 + SIGKILL, 18);
	close(fd);

	/* a process that exits 5 before its pid is claimed: its exit is its own */
	since = reaper_now_ns();
	pid_t quick = fork_at(0, 5, false);
	reap_until_gone(quick);
	fd = reaper_claim(quick, since, &exited, &status, &when);
	CHECK(fd == -ESRCH, 19);
	CHECK(exited && status == 5, 20);

	/* an exit reaped before the call began belongs to an older process */
	pid_t older = fork_at(0, 9, false);
	reap_until_gone(older);
	usleep(20000); /* past a clock tick */
	since = reaper_now_ns();
	fd = reaper_claim(older, since, &exited, &status, &when);
	CHECK(fd == -ESRCH, 21);
	CHECK(!exited, 22);
	_exit(0);
}

Test(reaper, old_exit_never_goes_to_a_reused_pid, .timeout = 30)
{
	cr_assert_eq(geteuid(), 0, "needs root: a pid namespace of its own");
	pid_t outer = fork();
	cr_assert_geq(outer, 0);
	if (outer == 0) {
		if (unshare(CLONE_NEWPID | CLONE_NEWNS) < 0)
			_exit(2);
		pid_t init = fork();
		if (init == 0)
			inside();
		int ws;
		if (init < 0 || waitpid(init, &ws, 0) != init)
			_exit(3);
		_exit(WIFEXITED(ws) ? WEXITSTATUS(ws) : 4);
	}
	int ws;
	cr_assert_eq(waitpid(outer, &ws, 0), outer);
	cr_assert(WIFEXITED(ws), "the namespace's init died of a signal");
	cr_assert_eq(WEXITSTATUS(ws), 0, "check %d failed (see stderr)", WEXITSTATUS(ws));
}
