/* The exit protocol and the process states it drives: reap -> record on
 * disk -> drain output -> announce TaskExit -> answer waiters; an init's exit
 * goes out after its execs'. */
#include "container.h"
#include "crash.h"
#include "events.h"
#include "log.h"
#include "oom.h"
#include "process.h"
#include "reaper.h"
#include "shim.h"

#include "bundle/exitfile.h"
#include "bundle/pidfile.h"

#include "containerd/events/task.pb-c.h"
#include "containerd/task/v2/shim.pb-c.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#define DRAIN_TIMEOUT_MS 2000
#define GO_ZERO_TIME_SEC (-62135596800LL) /* Go's time.Time{} as a Timestamp */

void process_timestamp(Google__Protobuf__Timestamp *ts, const struct timespec *t)
{
	google__protobuf__timestamp__init(ts);
	if (t && (t->tv_sec || t->tv_nsec)) {
		ts->seconds = t->tv_sec;
		ts->nanos = (int32_t)t->tv_nsec;
	} else {
		ts->seconds = GO_ZERO_TIME_SEC; /* what Go sends for "not exited" */
	}
}

static void publish_exit(struct process *p);

static bool execs_pending(struct container *c)
{
	for (struct process *e = c->execs; e; e = e->next)
		if (e->pid && e->state != PROC_STOPPED)
			return true;
	return false;
}

void process_answer_waiters(struct process *p)
{
	while (p->waiters) {
		struct waiter *w = p->waiters;
		p->waiters = w->next;
		Containerd__Task__V2__WaitResponse r = CONTAINERD__TASK__V2__WAIT_RESPONSE__INIT;
		Google__Protobuf__Timestamp ts;
		process_timestamp(&ts, &p->exited_at);
		r.exit_status = (uint32_t)p->exit_status;
		r.exited_at = &ts;
		ttrpc_call_reply(w->call, &r.base);
		free(w);
	}
}

/* Output drained (or timed out): announce the exit (on disk since the reap). */
static void exit_drained(void *ud)
{
	struct process *p = ud;
	struct container *c = p->c;
	p->finalizing = false;
	if (!p->exec_id && execs_pending(c)) {
		/* init's exit goes out after every exec's, as containerd 1.7 orders it */
		return;
	}
	publish_exit(p);
	if (p->exec_id && c->init.reaped && !c->init.finalizing &&
	    c->init.state != PROC_STOPPED && !execs_pending(c))
		publish_exit(&c->init);
}

static void publish_exit(struct process *p)
{
	struct container *c = p->c;
	if (p->state == PROC_STOPPED)
		return;
	p->state = PROC_STOPPED;
	if (!p->exec_id)
		oom_check_now(c); /* an OOM kill is announced before the exit */
	Containerd__Events__TaskExit e = CONTAINERD__EVENTS__TASK_EXIT__INIT;
	Google__Protobuf__Timestamp ts;
	process_timestamp(&ts, &p->exited_at);
	e.container_id = c->id;
	e.id = (char *)process_name(p);
	e.pid = (uint32_t)p->pid;
	e.exit_status = (uint32_t)p->exit_status;
	e.exited_at = &ts;
	events_publish("/tasks/exit", &e.base);
	shim_crash_point("exit-event-queued");
	process_answer_waiters(p);
	if (!p->exec_id)
		oom_watch_free(c);
}

void process_finalize_exit(struct process *p)
{
	/* A Create or Start in flight announces first and finishes this; an
	 * init created but never started (killed, or dead on its own) is
	 * announced now, as the Go shim does. */
	if (p->announcing || p->finalizing || p->state == PROC_STOPPED)
		return;
	p->finalizing = true;
	if (p->io)
		pio_when_drained(p->io, DRAIN_TIMEOUT_MS, exit_drained, p);
	else
		exit_drained(p);
}

static void kill_all_cb(int status, const char *err, const char *out, size_t n, void *ud)
{
	struct container *c = ud;
	if (status != 0)
		log_debug("kill --all after init exit: %s", err);
	container_unref(c);
}

static void on_process_exit(pid_t pid, int status, const struct timespec *when, void *ud)
{
	struct process *p = ud;
	struct container *c = p->c;
	p->reaped = true;
	p->exit_status = status;
	p->exited_at = *when;
	if (p->pidfd >= 0)
		close(p->pidfd);
	p->pidfd = -1;
	log_debug("%s (pid %d) exited with %d", process_name(p), pid, status);
	/* On disk at once: a shim killed while output drains (up to
	 * DRAIN_TIMEOUT_MS) or while Start fails still leaves the status for
	 * `delete`, a new shim or the manager. */
	struct bundle_exit rec = {.pid = pid, .status = status, .exited_sec = when->tv_sec,
				  .exited_nsec = (int32_t)when->tv_nsec};
	int rc = bundle_exit_write(c->bundle_fd, p->exec_id, &rec);
	if (rc < 0)
		log_error("record exit of %s: %s", process_name(p), strerror(-rc));
	shim_crash_point("exit-recorded");
	if (!p->exec_id && !c->private_pidns) {
		/* the pid namespace is shared: nothing else takes the rest down */
		const char *args[] = {"kill", "--all", c->id, "9", NULL};
		const int fds[3] = {-1, -1, -1};
		container_ref(c);
		if (runc_run(shim.loop, shim.reaper, &c->runc, args, fds, 0, kill_all_cb, c) < 0)
			container_unref(c);
	}
	process_finalize_exit(p);
}

/* Registers the pid the runtime reported for a process it started in a call
 * that began at since_ns. The process is held by a pidfd from here on; if it
 * is already gone, only an exit reaped after the call began can be its own. */
void process_track_pid(struct process *p, pid_t pid, int64_t since_ns)
{
	bool exited;
	int status;
	struct timespec when;
	p->pid = pid;
	int fd = reaper_claim(shim.reaper, pid, since_ns, &exited, &status, &when);
	if (fd >= 0 || fd == -ENOSYS) {
		p->pidfd = fd >= 0 ? fd : -1;
		reaper_watch(shim.reaper, pid, on_process_exit, p);
		return;
	}
	if (!exited) {
		log_warn("%s: pid %d is gone and its exit is unknown", process_name(p), pid);
		status = 255;
		clock_gettime(CLOCK_REALTIME, &when);
	}
	on_process_exit(pid, status, &when, p);
}

/* Signals the process behind pidfd: 0 or -errno (-ESRCH once it is reaped). */
int shim_pidfd_signal(int pidfd, int sig)
{
	return syscall(SYS_pidfd_send_signal, pidfd, sig, NULL, 0) < 0 ? -errno : 0;
}

/* Signals a process the shim tracks; -ESRCH once it is gone. */
int process_signal(struct process *p, int sig)
{
	if (p->reaped || p->pid <= 0)
		return -ESRCH;
	if (p->pidfd >= 0)
		return shim_pidfd_signal(p->pidfd, sig);
	return kill(p->pid, sig) < 0 ? -errno : 0; /* unreaped: still ours */
}

/* A process the runtime started for a request that failed or was cancelled
 * (runc killed after it spawned the process): nobody will ever wait for it. */
void process_kill_ghost(int bundle_fd, const char *pidfile, int64_t since_ns)
{
	pid_t pid;
	bool exited;
	int status;
	struct timespec when;
	if (bundle_read_pid(bundle_fd, pidfile, &pid) < 0)
		return;
	int fd = reaper_claim(shim.reaper, pid, since_ns, &exited, &status, &when);
	if (fd < 0)
		return;
	log_warn("killing pid %d, started for a request that failed", pid);
	shim_pidfd_signal(fd, SIGKILL);
	close(fd);
	reaper_discard(shim.reaper, pid);
}
