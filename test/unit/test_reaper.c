/* The reaper in a pid namespace of the test's own, where pid reuse can be forced
 * (ns_last_pid): an exit left unclaimed by one process is never handed to a new
 * process that got the same pid (reaper_claim takes a pidfd of the live one), an
 * exit reaped after the runtime call began is, and an exit older than the call is
 * dropped. Needs root (a pid and a mount namespace, /proc mounted inside). */
#include "loop.h"
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

static struct reaper *rp; /* no loop: reaped when the test says */
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
		reaper_reap(rp);
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
	rp = reaper_new(NULL);
	CHECK(rp, 23);

	/* an orphan with pid 50 exits 7 and nobody claims it */
	pid_t old = fork_at(50, 7, false);
	CHECK(old == 50, 12);
	reap_until_gone(old);

	/* a runtime call begins, and the process it starts gets pid 50 again */
	int64_t since = reaper_now_ns();
	pid_t fresh = fork_at(50, 0, true);
	CHECK(fresh == 50, 13);
	int fd = reaper_claim(rp, fresh, since, &exited, &status, &when);
	CHECK(fd >= 0, 14);    /* the live process, held by a pidfd */
	CHECK(!exited, 15);    /* not the orphan's exit 7 */
	reaper_watch(rp, fresh, on_exit_cb, NULL);
	CHECK(syscall(SYS_pidfd_send_signal, fd, SIGKILL, NULL, 0) == 0, 17);
	reap_until_gone(fresh);
	CHECK(last_seen && last_status == 128 + SIGKILL, 18);
	close(fd);
	/* the stale exit 7 went with the claim, and the fresh one to its watcher:
	 * asked for any exit of pid 50 since boot, the reaper has none left */
	CHECK(reaper_claim(rp, fresh, 0, &exited, &status, &when) == -ESRCH, 16);
	CHECK(!exited, 24);

	/* a process that exits 5 before its pid is claimed: its exit is its own */
	since = reaper_now_ns();
	pid_t quick = fork_at(0, 5, false);
	reap_until_gone(quick);
	fd = reaper_claim(rp, quick, since, &exited, &status, &when);
	CHECK(fd == -ESRCH, 19);
	CHECK(exited && status == 5, 20);

	/* an exit reaped before the call began belongs to an older process */
	pid_t older = fork_at(0, 9, false);
	reap_until_gone(older);
	usleep(20000); /* past a clock tick */
	since = reaper_now_ns();
	fd = reaper_claim(rp, older, since, &exited, &status, &when);
	CHECK(fd == -ESRCH, 21);
	CHECK(!exited, 22);
	reaper_free(rp);
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

/* With a loop, the reaper reaps on SIGCHLD by itself, through its own signalfd. */
Test(reaper, reaps_on_sigchld_through_the_loop, .timeout = 30)
{
	struct loop *l = loop_new();
	cr_assert_not_null(l);
	struct reaper *r = reaper_new(l);
	cr_assert_not_null(r);
	last_seen = false;
	pid_t pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0)
		_exit(3);
	cr_assert_eq(reaper_watch(r, pid, on_exit_cb, NULL), 0);
	for (int i = 0; i < 500 && !last_seen; i++)
		loop_iterate(l, 20);
	cr_assert(last_seen, "no exit through the loop");
	cr_assert_eq(last_status, 3);
	reaper_free(r);
	loop_free(l);
}

/* A child that exited before its reaper existed is reaped at reaper_new, its exit
 * kept for a claim made by a call that began before it. */
Test(reaper, exit_before_the_reaper_is_kept_for_a_claim, .timeout = 30)
{
	struct loop *l = loop_new();
	cr_assert_not_null(l);
	sigset_t mask;
	sigemptyset(&mask);
	sigaddset(&mask, SIGCHLD);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	int64_t since = reaper_now_ns();
	pid_t pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0)
		_exit(4);
	siginfo_t si;
	cr_assert_eq(waitid(P_PID, (id_t)pid, &si, WEXITED | WNOWAIT), 0); /* a zombie now */
	struct reaper *r = reaper_new(l);
	cr_assert_not_null(r);
	bool exited = false;
	int status = -1;
	struct timespec when;
	cr_assert_eq(reaper_claim(r, pid, since, &exited, &status, &when), -ESRCH);
	cr_assert(exited);
	cr_assert_eq(status, 4);
	reaper_free(r);
	loop_free(l);
}
