/* containerd.task.v2.Task served over ttrpc: every method, answered without
 * blocking the loop (runc runs as a child; the reply goes out when it exits). */
#include "crash.h"
#include "events.h"
#include "log.h"
#include "oom.h"
#include "container.h"
#include "process.h"
#include "reaper.h"
#include "shim.h"
#include "timing.h"

#include "bundle/atomic.h"
#include "bundle/exitfile.h"
#include "bundle/files.h"
#include "bundle/id.h"
#include "bundle/mount.h"
#include "bundle/options.h"
#include "bundle/pidfile.h"
#include "bundle/runcopts.h"
#include "bundle/spec.h"
#include "cgroup/cgroup_ref.h"
#include "cgroup/cgroup_stats.h"

#include "containerd/events/task.pb-c.h"
#include "containerd/runc/v1/oci.pb-c.h"
#include "containerd/task/v2/shim.pb-c.h"
#include "google/protobuf/empty.pb-c.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

/* A Delete that finds runtime calls in flight on the init waits for them (as
 * the Go shim's process lock makes it); after this long, calls on an init that
 * is gone are killed (a hung runc must not keep a dead container), and a
 * Delete of a live init gives up. */
#define DELETE_GRACE_MS 1000
#define VERSION_STRING "nanoshim 0.1"

struct shim shim;

enum task_status { /* containerd.v1.types.Status */
	ST_UNKNOWN = 0,
	ST_CREATED = 1,
	ST_RUNNING = 2,
	ST_STOPPED = 3,
	ST_PAUSED = 4,
	ST_PAUSING = 5,
};

/* ---- helpers ---------------------------------------------------------- */

static bool empty(const char *s)
{
	return !s || !*s;
}

/* Finds the container and process a request names, or fails the call. */
static bool lookup(struct ttrpc_call *call, const char *id, const char *exec_id,
		   struct container **cp, struct process **pp)
{
	struct container *c = container_find(id ? id : "");
	if (!c) {
		ttrpc_call_fail(call, TTRPC_NOT_FOUND, "container %s: not found", id ? id : "");
		return false;
	}
	*cp = c;
	if (pp) {
		if (empty(exec_id)) {
			*pp = &c->init;
		} else if (!(*pp = container_find_exec(c, exec_id))) {
			ttrpc_call_fail(call, TTRPC_NOT_FOUND, "process %s: not found", exec_id);
			return false;
		}
	}
	return true;
}

static enum task_status visible_status(const struct process *p)
{
	switch (p->state) {
	case PROC_CREATED:
		return ST_CREATED;
	case PROC_RUNNING:
		return ST_RUNNING;
	case PROC_PAUSED:
		return ST_PAUSED;
	case PROC_STOPPED:
		return ST_STOPPED;
	}
	return ST_UNKNOWN;
}

/* ---- Create ----------------------------------------------------------- */

struct create_op {
	struct ttrpc_call *call;
	struct container *c;
	const Containerd__Task__V2__CreateTaskRequest *req; /* the call's; valid until it is answered */
	int64_t since_ns;
	int64_t recv_ns, rt_done_ns; /* timing.h */
	int runc_pidfd;
	struct ttrpc_status failure; /* answered once the runtime state is undone */
};

static void create_cancelled(struct ttrpc_call *call, void *ud)
{
	struct create_op *op = ud;
	/* containerd gave up on this Create: stop the runtime rather than
	 * leave a container nobody asked for (create_done undoes it) */
	if (op->runc_pidfd >= 0)
		shim_pidfd_signal(op->runc_pidfd, SIGKILL);
}

static void create_fail_end(struct create_op *op)
{
	struct container *c = op->c;
	if (op->runc_pidfd >= 0)
		close(op->runc_pidfd);
	if (c->rootfs_mounted)
		bundle_unmount_rootfs(c->bundle);
	c->deleted = true;
	ttrpc_call_fail_status(op->call, &op->failure);
	container_unref(c);
	free(op);
}

static void create_undone(int status, const char *err, const char *out, size_t n, void *ud)
{
	struct create_op *op = ud;
	if (status != 0)
		log_warn("undo create of %s: %s", op->c->id, err);
	create_fail_end(op);
}

static void apply_options(struct container *c, const Google__Protobuf__Any *any,
			  struct ttrpc_status *st)
{
	Containerd__Runc__V1__Options *o = NULL;
	if (bundle_options_decode(any ? any->type_url : NULL, any ? any->value.data : NULL,
				any ? any->value.len : 0, &o, st) < 0)
		return;
	snprintf(c->runc_binary, sizeof(c->runc_binary), "%s", bundle_options_binary(o));
	snprintf(c->runc_root, sizeof(c->runc_root), "%s/%s", bundle_options_root(o), shim.ns);
	c->no_pivot_root = o->no_pivot_root;
	c->no_new_keyring = o->no_new_keyring;
	c->io_uid = o->io_uid;
	c->io_gid = o->io_gid;
	if (bundle_options_spool_max(any ? any->type_url : NULL, any ? any->value.data : NULL,
				     any ? any->value.len : 0, &c->spool_max, st) < 0) {
		bundle_options_free(o);
		return;
	}
	c->runc.systemd_cgroup = o->systemd_cgroup;
	snprintf(c->criu_path, sizeof(c->criu_path), "%s", o->criu_path ? o->criu_path : "");
	if (!empty(o->criu_image_path))
		c->criu_image_path = strdup(o->criu_image_path);
	if (!empty(o->criu_work_path))
		c->criu_work_path = strdup(o->criu_work_path);
	c->runc.binary = c->runc_binary;
	c->runc.root = c->runc_root;
	c->runc.criu = c->criu_path[0] ? c->criu_path : NULL;
	c->runc.log_dir = c->bundle;
	/* what `delete` needs to find this container's runtime state later */
	struct ttrpc_status wst;
	if (bundle_options_write(c->bundle_fd, o, &wst) < 0)
		log_warn("write options.json: %s", wst.message);
	bundle_options_free(o);
}

static void create_done(int status, const char *err, const char *out, size_t n, void *ud)
{
	struct create_op *op = ud;
	struct container *c = op->c;
	struct process *p = &c->init;
	op->rt_done_ns = reaper_now_ns();
	if (status != 0) {
		bool cancelled = ttrpc_call_cancelled(op->call);
		ttrpc_status_set(&op->failure, cancelled ? TTRPC_DEADLINE_EXCEEDED : TTRPC_UNKNOWN,
				 "OCI runtime create failed: %s", err);
		if (!cancelled) { /* the runtime cleaned up after itself */
			create_fail_end(op);
			return;
		}
		goto fail_started; /* killed midway, it may have left its container */
	}
	pid_t pid;
	int rc = bundle_read_pid(c->bundle_fd, BUNDLE_INIT_PID_FILE, &pid);
	if (rc < 0) {
		ttrpc_status_set(&op->failure, TTRPC_INTERNAL, "read init.pid of %s: %s", c->id,
				 strerror(-rc));
		goto fail_started;
	}
	process_track_pid(p, pid, op->since_ns);
	if (ttrpc_call_cancelled(op->call)) {
		ttrpc_status_set(&op->failure, TTRPC_DEADLINE_EXCEEDED,
				 "create %s: cancelled before the runtime finished", c->id);
		goto fail_started;
	}
	if (pio_after_start(p->io, &op->failure) < 0)
		goto fail_started;
	/* an init that died before anyone started it still needs its exit told */
	Containerd__Events__TaskCreate ev = CONTAINERD__EVENTS__TASK_CREATE__INIT;
	Containerd__Events__TaskIO io = CONTAINERD__EVENTS__TASK_IO__INIT;
	io.stdin = p->stdin_path;
	io.stdout = p->stdout_path;
	io.stderr = p->stderr_path;
	io.terminal = p->terminal;
	ev.container_id = c->id;
	ev.bundle = c->bundle;
	ev.io = &io;
	ev.pid = (uint32_t)pid;
	ev.n_rootfs = op->req->n_rootfs;
	ev.rootfs = op->req->rootfs;
	ev.checkpoint = op->req->checkpoint;
	events_publish("/tasks/create", &ev.base);
	Containerd__Task__V2__CreateTaskResponse r = CONTAINERD__TASK__V2__CREATE_TASK_RESPONSE__INIT;
	r.pid = (uint32_t)pid;
	shim_crash_point("create-runc-done");
	timing_log("create", c->id, op->recv_ns, op->since_ns, op->rt_done_ns);
	ttrpc_call_reply(op->call, &r.base);
	p->announcing = false;
	if (p->reaped)
		process_finalize_exit(p); /* an init that died before anyone started it */
	if (op->runc_pidfd >= 0)
		close(op->runc_pidfd);
	container_unref(c);
	free(op);
	return;
fail_started: {
	/* Undo the runtime's container before answering, without blocking the
	 * loop: the id stays taken until it is gone. */
	const char *args[] = {"delete", "--force", c->id, NULL};
	const int fds[3] = {-1, -1, -1};
	if (runc_run(shim.loop, shim.reaper, &c->runc, args, fds, 0, create_undone, op) < 0)
		create_fail_end(op);
}
}

static void create_run(void *ud, int err);

static void task_create(struct ttrpc_call *call, const ProtobufCMessage *m, void *ud)
{
	const Containerd__Task__V2__CreateTaskRequest *req = (const void *)m;
	struct ttrpc_status st;
	if (bundle_validate_id("container id", req->id, &st) < 0) {
		ttrpc_call_fail_status(call, &st);
		return;
	}
	if (container_find(req->id)) {
		ttrpc_call_fail(call, TTRPC_ALREADY_EXISTS, "container %s: already exists", req->id);
		return;
	}
	if (empty(req->bundle) || req->bundle[0] != '/') {
		ttrpc_call_fail(call, TTRPC_INVALID_ARGUMENT, "create %s: bundle path %s is not absolute",
				req->id, req->bundle ? req->bundle : "");
		return;
	}
	struct container *c = calloc(1, sizeof(*c));
	struct create_op *op = calloc(1, sizeof(*op));
	if (op)
		op->recv_ns = reaper_now_ns();
	if (!c || !op) {
		free(c);
		free(op);
		ttrpc_call_fail(call, TTRPC_RESOURCE_EXHAUSTED, "out of memory");
		return;
	}
	c->id = strdup(req->id);
	c->bundle = strdup(req->bundle);
	c->bundle_fd = open(req->bundle, O_DIRECTORY | O_RDONLY | O_CLOEXEC);
	c->init.c = c;
	c->init.state = PROC_CREATED;
	c->init.pidfd = -1;
	c->init.announcing = true;
	c->refs = 1;
	container_add(c);
	op->call = call;
	op->c = c;
	op->req = req;
	op->runc_pidfd = -1;
	if (c->bundle_fd < 0) {
		ttrpc_call_fail(call, TTRPC_NOT_FOUND, "create %s: open bundle %s: %s", req->id,
				req->bundle, strerror(errno));
		goto fail;
	}
	ttrpc_status_ok(&st);
	c->runc.log_dir = c->bundle;
	apply_options(c, req->options, &st);
	if (st.code) {
		ttrpc_call_fail_status(call, &st);
		goto fail;
	}
	struct bundle_spec_info *info = calloc(1, sizeof(*info));
	if (info && bundle_spec_info(c->bundle_fd, info, &st) == 0)
		c->private_pidns = info->private_pid_ns;
	else
		c->private_pidns = true; /* runc refuses such a bundle anyway */
	free(info);
	ttrpc_status_ok(&st);
	if (req->n_rootfs) {
		if (bundle_mount_rootfs(c->bundle, (Containerd__Types__Mount *const *)req->rootfs,
					req->n_rootfs, &st) < 0) {
			ttrpc_call_fail_status(call, &st);
			goto fail;
		}
		c->rootfs_mounted = true;
	}
	struct process *p = &c->init;
	p->stdin_path = strdup(req->stdin ? req->stdin : "");
	p->stdout_path = strdup(req->stdout ? req->stdout : "");
	p->stderr_path = strdup(req->stderr ? req->stderr : "");
	p->terminal = req->terminal;
	struct pio_config pc = {.stdin_path = req->stdin, .stdout_path = req->stdout,
				.stderr_path = req->stderr, .terminal = req->terminal,
				.io_uid = c->io_uid, .io_gid = c->io_gid, .ns = shim.ns, .id = c->id,
				.reaper = shim.reaper, .spool_max = c->spool_max, .spool_dir = c->bundle};
	if (pio_create(shim.loop, &pc, &p->io, &st) < 0) {
		ttrpc_call_fail_status(call, &st);
		goto fail_mounted;
	}
	pio_when_ready(p->io, create_run, op);
	return;
fail_mounted:
	if (c->rootfs_mounted)
		bundle_unmount_rootfs(c->bundle);
fail:
	c->deleted = true;
	container_unref(c);
	free(op);
}

/* The rest of Create, once the init's stdio is ready (a binary:// logger has
 * signalled). */
static void create_run(void *ud, int err)
{
	struct create_op *op = ud;
	struct ttrpc_call *call = op->call;
	const Containerd__Task__V2__CreateTaskRequest *req = op->req;
	struct container *c = op->c;
	struct process *p = &c->init;
	if (err < 0) {
		ttrpc_call_fail(call, ttrpc_code_from_errno(-err), "create %s: stdout logger: %s",
				c->id, err == -ETIMEDOUT ? "never became ready" : strerror(-err));
		goto fail_mounted;
	}
	if (ttrpc_call_cancelled(call)) {
		ttrpc_call_fail(call, TTRPC_CANCELLED, "create %s: cancelled", c->id);
		goto fail_mounted;
	}
	shim_crash_point("create-rootfs-mounted");
	char pidfile[PATH_MAX];
	snprintf(pidfile, sizeof(pidfile), "%s/%s", c->bundle, BUNDLE_INIT_PID_FILE);
	const char *args[RUNC_CREATE_ARGS_MAX];
	struct runc_create_args ca = {
		.image_path = !empty(req->checkpoint) ? req->checkpoint : NULL,
		.work_path = c->criu_work_path ? c->criu_work_path : c->bundle,
		.bundle = c->bundle,
		.pid_file = pidfile,
		.console_socket = pio_console_socket(p->io),
		.no_pivot = c->no_pivot_root,
		.no_new_keyring = c->no_new_keyring,
		.id = c->id,
	};
	runc_create_argv(&ca, args);
	int fds[3];
	pio_child_fds(p->io, fds);
	op->since_ns = reaper_now_ns();
	pid_t pid = runc_run(shim.loop, shim.reaper, &c->runc, args, fds, RUNC_STDIO_TO_CONTAINER,
			     create_done, op);
	if (pid < 0) {
		ttrpc_call_fail(call, TTRPC_INTERNAL, "create %s: run %s: %s", c->id, c->runc.binary,
				strerror(-pid));
		goto fail_mounted;
	}
	op->runc_pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	ttrpc_call_on_cancel(call, create_cancelled, op);
	return;
fail_mounted:
	if (c->rootfs_mounted)
		bundle_unmount_rootfs(c->bundle);
	c->deleted = true;
	container_unref(c);
	free(op);
}

/* ---- Start ------------------------------------------------------------ */

/* A runtime call on behalf of one request. When the request is cancelled
 * (its deadline passed, or its connection died) the runtime is killed, as
 * go-runc's CommandContext does: nothing acts for a caller who gave up, and a
 * hung runtime holds nothing past its caller's deadline. */
struct proc_op {
	struct ttrpc_call *call;
	struct process *p;
	struct proc_op *next; /* in p->ops */
	int runc_pidfd;
	int64_t since_ns;
	int64_t recv_ns; /* timing.h */
	char path[PATH_MAX]; /* a temp file to remove when done */
	uint32_t signal;
};

static void proc_op_kill(struct proc_op *op)
{
	if (op->runc_pidfd >= 0)
		shim_pidfd_signal(op->runc_pidfd, SIGKILL);
}

static void proc_op_cancelled(struct ttrpc_call *call, void *ud)
{
	proc_op_kill(ud);
}

static struct proc_op *proc_op_new(struct ttrpc_call *call, struct process *p)
{
	struct proc_op *op = calloc(1, sizeof(*op));
	if (!op) {
		ttrpc_call_fail(call, TTRPC_RESOURCE_EXHAUSTED, "out of memory");
		return NULL;
	}
	op->call = call;
	op->p = p;
	op->recv_ns = reaper_now_ns();
	op->runc_pidfd = -1;
	op->next = p->ops;
	p->ops = op;
	container_ref(p->c);
	p->busy++;
	ttrpc_call_on_cancel(call, proc_op_cancelled, op);
	return op;
}

/* Runs the runtime for op; its pidfd lets a cancel kill exactly that child. */
static pid_t proc_op_run(struct proc_op *op, const char *const *args, const int fds[3],
			 unsigned flags, runc_done_fn done)
{
	op->since_ns = reaper_now_ns();
	pid_t pid = runc_run(shim.loop, shim.reaper, &op->p->c->runc, args, fds, flags, done, op);
	if (pid > 0) {
		op->runc_pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
		if (ttrpc_call_cancelled(op->call))
			proc_op_kill(op);
	}
	return pid;
}

static void delete_init(struct ttrpc_call *call, struct container *c);

static void delete_grace_over(void *ud)
{
	struct container *c = ud;
	c->delete_timer = NULL;
	if (!c->delete_call)
		return;
	if (c->init.reaped) {
		/* The init is gone: whatever the runtime still does to it (a hung
		 * kill, ps or update) acts on nothing. Stop those calls; the
		 * Delete runs when they end. */
		for (struct proc_op *op = c->init.ops; op; op = op->next)
			proc_op_kill(op);
		return;
	}
	struct ttrpc_call *call = c->delete_call;
	c->delete_call = NULL;
	ttrpc_call_on_cancel(call, NULL, NULL);
	ttrpc_call_fail(call, TTRPC_FAILED_PRECONDITION, "delete %s: an operation is in progress",
			c->id);
}

static void delete_cancelled(struct ttrpc_call *call, void *ud)
{
	struct container *c = ud;
	if (c->delete_call == call) {
		c->delete_call = NULL;
		loop_timer_cancel(c->delete_timer);
		c->delete_timer = NULL;
		ttrpc_call_fail(call, TTRPC_CANCELLED, "delete %s: cancelled", c->id);
	}
}

static void proc_op_end(struct proc_op *op)
{
	struct process *p = op->p;
	struct container *c = p->c;
	for (struct proc_op **pp = &p->ops; *pp; pp = &(*pp)->next) {
		if (*pp == op) {
			*pp = op->next;
			break;
		}
	}
	p->busy--;
	if (op->runc_pidfd >= 0)
		close(op->runc_pidfd);
	if (op->path[0])
		unlink(op->path);
	if (!p->busy && !p->exec_id && c->delete_call && !c->deleted) {
		/* a Delete waited for the runtime calls on a dead init to end */
		struct ttrpc_call *call = c->delete_call;
		c->delete_call = NULL;
		loop_timer_cancel(c->delete_timer);
		c->delete_timer = NULL;
		ttrpc_call_on_cancel(call, NULL, NULL);
		delete_init(call, c);
	}
	container_unref(c);
	free(op);
}

static void start_init_done(int status, const char *err, const char *out, size_t n, void *ud)
{
	struct proc_op *op = ud;
	struct process *p = op->p;
	struct container *c = p->c;
	int64_t rt_done = reaper_now_ns();
	p->announcing = false;
	if (status != 0) {
		ttrpc_call_fail(op->call, TTRPC_UNKNOWN, "OCI runtime start failed: %s", err);
		if (p->reaped)
			process_finalize_exit(p); /* the init died while runc start failed */
		proc_op_end(op);
		return;
	}
	if (p->state == PROC_CREATED)
		p->state = PROC_RUNNING;
	if (!p->reaped) /* a reaped pid's /proc/<pid>/cgroup may be another's */
		oom_watch_start(c);
	Containerd__Events__TaskStart ev = CONTAINERD__EVENTS__TASK_START__INIT;
	ev.container_id = c->id;
	ev.pid = (uint32_t)p->pid;
	events_publish("/tasks/start", &ev.base);
	p->start_announced = true;
	Containerd__Task__V2__StartResponse r = CONTAINERD__TASK__V2__START_RESPONSE__INIT;
	r.pid = (uint32_t)p->pid;
	shim_crash_point("start-runc-done");
	timing_log("start", c->id, op->recv_ns, op->since_ns, rt_done);
	ttrpc_call_reply(op->call, &r.base);
	if (p->reaped)
		process_finalize_exit(p);
	proc_op_end(op);
}

static void start_exec_done(int status, const char *err, const char *out, size_t n, void *ud)
{
	struct proc_op *op = ud;
	struct process *p = op->p;
	struct container *c = p->c;
	struct ttrpc_status st;
	char name[PATH_MAX];
	bundle_exec_pid_name(p->exec_id, name, sizeof(name));
	p->announcing = false;
	if (status == 0 && ttrpc_call_cancelled(op->call)) {
		status = -1;
		err = "cancelled before the runtime finished";
	}
	if (status != 0) {
		ttrpc_call_fail(op->call, TTRPC_UNKNOWN, "OCI runtime exec failed: %s", err);
		/* runc killed (cancelled) after it spawned the process: a ghost
		 * nobody would wait for or see */
		process_kill_ghost(c->bundle_fd, name, op->since_ns);
		unlinkat(c->bundle_fd, name, 0);
		pio_free(p->io);
		p->io = NULL;
		/* it never ran: it is over, and whoever waits for it learns so */
		p->exit_status = 255;
		clock_gettime(CLOCK_REALTIME, &p->exited_at);
		p->state = PROC_STOPPED;
		process_answer_waiters(p);
		proc_op_end(op);
		return;
	}
	pid_t pid;
	int rc = bundle_read_pid(c->bundle_fd, name, &pid);
	if (rc < 0) {
		ttrpc_call_fail(op->call, TTRPC_INTERNAL, "read %s: %s", name, strerror(-rc));
		proc_op_end(op);
		return;
	}
	if (pio_after_start(p->io, &st) < 0)
		log_warn("exec %s: %s", p->exec_id, st.message);
	if (p->state == PROC_CREATED)
		p->state = PROC_RUNNING;
	process_track_pid(p, pid, op->since_ns);
	Containerd__Events__TaskExecStarted ev = CONTAINERD__EVENTS__TASK_EXEC_STARTED__INIT;
	ev.container_id = c->id;
	ev.exec_id = p->exec_id;
	ev.pid = (uint32_t)pid;
	events_publish("/tasks/exec-started", &ev.base);
	p->start_announced = true;
	Containerd__Task__V2__StartResponse r = CONTAINERD__TASK__V2__START_RESPONSE__INIT;
	r.pid = (uint32_t)pid;
	shim_crash_point("exec-start-runc-done");
	ttrpc_call_reply(op->call, &r.base);
	if (p->reaped)
		process_finalize_exit(p);
	proc_op_end(op);
}

static void exec_run(void *ud, int err);

static void start_exec(struct ttrpc_call *call, struct process *p)
{
	struct container *c = p->c;
	if ((c->init.state != PROC_RUNNING && c->init.state != PROC_CREATED) || c->init.reaped) {
		ttrpc_call_fail(call, TTRPC_FAILED_PRECONDITION,
				"exec %s: container %s is not running", p->exec_id, c->id);
		return;
	}
	struct ttrpc_status st;
	struct pio_config pc = {.stdin_path = p->stdin_path, .stdout_path = p->stdout_path,
				.stderr_path = p->stderr_path, .terminal = p->terminal,
				.io_uid = c->io_uid, .io_gid = c->io_gid, .ns = shim.ns, .id = c->id,
				.reaper = shim.reaper, .spool_max = c->spool_max, .spool_dir = c->bundle,
				.exec_id = p->exec_id};
	if (pio_create(shim.loop, &pc, &p->io, &st) < 0) {
		ttrpc_call_fail_status(call, &st);
		return;
	}
	struct proc_op *op = proc_op_new(call, p);
	if (!op) {
		pio_free(p->io);
		p->io = NULL;
		return;
	}
	p->announcing = true;
	pio_when_ready(p->io, exec_run, op);
}

/* The rest of an exec's Start, once its stdio is ready (a binary:// logger
 * has signalled). */
static void exec_run(void *ud, int err)
{
	struct proc_op *op = ud;
	struct ttrpc_call *call = op->call;
	struct process *p = op->p;
	struct container *c = p->c;
	if (err < 0) {
		ttrpc_call_fail(call, ttrpc_code_from_errno(-err), "exec %s: stdout logger: %s",
				p->exec_id, err == -ETIMEDOUT ? "never became ready" : strerror(-err));
		pio_free(p->io);
		p->io = NULL;
		p->announcing = false;
		proc_op_end(op);
		return;
	}
	char spec_name[PATH_MAX];
	snprintf(spec_name, sizeof(spec_name), ".%s-process.json", p->exec_id);
	int rc = bundle_write_file_volatile(c->bundle_fd, spec_name, p->spec, p->spec_len, 0600);
	if (rc < 0) {
		ttrpc_call_fail(call, TTRPC_INTERNAL, "exec %s: write process spec: %s", p->exec_id,
				strerror(-rc));
		pio_free(p->io);
		p->io = NULL;
		p->announcing = false;
		proc_op_end(op);
		return;
	}
	snprintf(op->path, sizeof(op->path), "%s/%s", c->bundle, spec_name);
	char pidfile[PATH_MAX];
	snprintf(pidfile, sizeof(pidfile), "%s/%s%s", c->bundle, p->exec_id, BUNDLE_PID_SUFFIX);
	const char *args[RUNC_EXEC_ARGS_MAX];
	runc_exec_argv(pidfile, op->path, pio_console_socket(p->io), c->id, args);
	int fds[3];
	pio_child_fds(p->io, fds);
	pid_t pid = proc_op_run(op, args, fds, RUNC_STDIO_TO_CONTAINER, start_exec_done);
	if (pid < 0) {
		ttrpc_call_fail(call, TTRPC_INTERNAL, "exec %s: run %s: %s", p->exec_id,
				c->runc.binary, strerror(-pid));
		pio_free(p->io);
		p->io = NULL;
		p->announcing = false;
		proc_op_end(op);
	}
}

static void task_start(struct ttrpc_call *call, const ProtobufCMessage *m, void *ud)
{
	const Containerd__Task__V2__StartRequest *req = (const void *)m;
	struct container *c;
	struct process *p;
	if (!lookup(call, req->id, req->exec_id, &c, &p))
		return;
	if (p->state != PROC_CREATED || p->busy || p->start_announced) {
		ttrpc_call_fail(call, TTRPC_FAILED_PRECONDITION, "start %s: process is %s",
				process_name(p), p->state == PROC_STOPPED ? "stopped" : "already started");
		return;
	}
	if (p->exec_id) {
		start_exec(call, p);
		return;
	}
	if (p->reaped) {
		ttrpc_call_fail(call, TTRPC_FAILED_PRECONDITION, "start %s: process is stopped",
				c->id);
		return;
	}
	struct proc_op *op = proc_op_new(call, p);
	if (!op)
		return;
	p->announcing = true;
	const char *args[] = {"start", c->id, NULL};
	const int fds[3] = {-1, -1, -1};
	pid_t pid = proc_op_run(op, args, fds, 0, start_init_done);
	if (pid < 0) {
		ttrpc_call_fail(call, TTRPC_INTERNAL, "start %s: run %s: %s", c->id, c->runc.binary,
				strerror(-pid));
		p->announcing = false;
		proc_op_end(op);
	}
}

/* ---- State, Wait, Connect, Pids ---------------------------------------- */

static void task_state(struct ttrpc_call *call, const ProtobufCMessage *m, void *ud)
{
	const Containerd__Task__V2__StateRequest *req = (const void *)m;
	struct container *c;
	struct process *p;
	if (!lookup(call, req->id, req->exec_id, &c, &p))
		return;
	Containerd__Task__V2__StateResponse r = CONTAINERD__TASK__V2__STATE_RESPONSE__INIT;
	Google__Protobuf__Timestamp ts;
	r.id = (char *)process_name(p); /* as the Go shim: the exec's id for an exec */
	r.bundle = c->bundle;
	r.pid = (uint32_t)p->pid;
	r.status = (Containerd__V1__Types__Status)visible_status(p);
	r.stdin = p->stdin_path;
	r.stdout = p->stdout_path;
	r.stderr = p->stderr_path;
	r.terminal = p->terminal;
	r.exit_status = p->state == PROC_STOPPED ? (uint32_t)p->exit_status : 0;
	process_timestamp(&ts, p->state == PROC_STOPPED ? &p->exited_at : NULL);
	r.exited_at = &ts;
	ttrpc_call_reply(call, &r.base);
}

static void wait_cancelled(struct ttrpc_call *call, void *ud)
{
	struct process *p = ud;
	for (struct waiter **pp = &p->waiters; *pp; pp = &(*pp)->next) {
		if ((*pp)->call == call) {
			struct waiter *w = *pp;
			*pp = w->next;
			free(w);
			break;
		}
	}
	ttrpc_call_fail(call, TTRPC_CANCELLED, "wait cancelled");
}

static void task_wait(struct ttrpc_call *call, const ProtobufCMessage *m, void *ud)
{
	const Containerd__Task__V2__WaitRequest *req = (const void *)m;
	struct container *c;
	struct process *p;
	if (!lookup(call, req->id, req->exec_id, &c, &p))
		return;
	/* a Wait may last as long as the process: keep it off the in-flight cap */
	if (ttrpc_call_park(call) < 0) {
		ttrpc_call_fail(call, TTRPC_RESOURCE_EXHAUSTED, "wait %s: too many waits", process_name(p));
		return;
	}
	struct waiter *w = calloc(1, sizeof(*w));
	if (!w) {
		ttrpc_call_fail(call, TTRPC_RESOURCE_EXHAUSTED, "out of memory");
		return;
	}
	w->call = call;
	w->next = p->waiters;
	p->waiters = w;
	ttrpc_call_on_cancel(call, wait_cancelled, p);
	if (p->state == PROC_STOPPED)
		process_answer_waiters(p);
}

static void task_connect(struct ttrpc_call *call, const ProtobufCMessage *m, void *ud)
{
	const Containerd__Task__V2__ConnectRequest *req = (const void *)m;
	Containerd__Task__V2__ConnectResponse r = CONTAINERD__TASK__V2__CONNECT_RESPONSE__INIT;
	struct container *c = container_find(req->id ? req->id : "");
	r.shim_pid = (uint32_t)getpid();
	r.task_pid = c ? (uint32_t)c->init.pid : 0;
	r.version = VERSION_STRING;
	ttrpc_call_reply(call, &r.base);
}

/* A PidsResponse of bare pids. */
static void reply_pids(struct ttrpc_call *call, const pid_t *pids, size_t n)
{
	Containerd__V1__Types__ProcessInfo infos[4], *pinfos[4];
	Containerd__Task__V2__PidsResponse r = CONTAINERD__TASK__V2__PIDS_RESPONSE__INIT;
	if (n > 4)
		n = 4; /* callers pass at most one */
	for (size_t i = 0; i < n; i++) {
		containerd__v1__types__process_info__init(&infos[i]);
		infos[i].pid = (uint32_t)pids[i];
		pinfos[i] = &infos[i];
	}
	r.n_processes = n;
	r.processes = n ? pinfos : NULL;
	ttrpc_call_reply(call, &r.base);
}

static void pids_done(int status, const char *err, const char *out, size_t n, void *ud)
{
	struct proc_op *op = ud;
	struct container *c = op->p->c;
	if (status != 0) {
		ttrpc_call_fail(op->call, TTRPC_UNKNOWN, "OCI runtime ps failed: %s", err);
		proc_op_end(op);
		return;
	}
	char ebuf[128];
	struct runc_ps *v = NULL;
	int rc = runc_ps_parse(out, &v, ebuf, sizeof(ebuf));
	if (rc == -ENOMEM) {
		ttrpc_call_fail(op->call, TTRPC_RESOURCE_EXHAUSTED, "out of memory");
		proc_op_end(op);
		return;
	}
	if (rc < 0) {
		ttrpc_call_fail(op->call, TTRPC_INTERNAL, "ps %s: unexpected output: %s", c->id, ebuf);
		proc_op_end(op);
		return;
	}
	/* runc prints null, Go's nil slice, for a container with no process */
	if (v->null) {
		reply_pids(op->call, NULL, 0);
		free(v);
		proc_op_end(op);
		return;
	}
	size_t cnt = v->n;
	Containerd__V1__Types__ProcessInfo *infos = calloc(cnt + 1, sizeof(*infos));
	Containerd__V1__Types__ProcessInfo **pinfos = calloc(cnt + 1, sizeof(*pinfos));
	Google__Protobuf__Any *anys = calloc(cnt + 1, sizeof(*anys));
	uint8_t **bufs = calloc(cnt + 1, sizeof(*bufs));
	Containerd__Task__V2__PidsResponse r = CONTAINERD__TASK__V2__PIDS_RESPONSE__INIT;
	if (!infos || !pinfos || !anys || !bufs) {
		ttrpc_call_fail(op->call, TTRPC_RESOURCE_EXHAUSTED, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < cnt; i++) {
		containerd__v1__types__process_info__init(&infos[i]);
		infos[i].pid = v->pids[i];
		pinfos[i] = &infos[i];
		for (struct process *e = c->execs; e; e = e->next) {
			if (e->pid && (uint32_t)e->pid == infos[i].pid) {
				Containerd__Runc__V1__ProcessDetails d =
					CONTAINERD__RUNC__V1__PROCESS_DETAILS__INIT;
				d.exec_id = e->exec_id;
				google__protobuf__any__init(&anys[i]);
				anys[i].type_url = "containerd.runc.v1.ProcessDetails";
				anys[i].value.len = containerd__runc__v1__process_details__get_packed_size(&d);
				bufs[i] = malloc(anys[i].value.len + 1);
				if (!bufs[i]) {
					ttrpc_call_fail(op->call, TTRPC_RESOURCE_EXHAUSTED,
							"out of memory");
					goto out;
				}
				containerd__runc__v1__process_details__pack(&d, bufs[i]);
				anys[i].value.data = bufs[i];
				infos[i].info = &anys[i];
			}
		}
	}
	r.n_processes = cnt;
	r.processes = pinfos;
	ttrpc_call_reply(op->call, &r.base);
out:
	for (size_t i = 0; bufs && i < cnt; i++)
		free(bufs[i]);
	free(bufs);
	free(anys);
	free(pinfos);
	free(infos);
	free(v);
	proc_op_end(op);
}

/* Runs a simple runc subcommand on a container; done gets the proc_op. */
static void run_simple(struct ttrpc_call *call, struct process *p, const char *const *args,
		       unsigned flags, runc_done_fn done)
{
	struct proc_op *op = proc_op_new(call, p);
	if (!op)
		return;
	const int fds[3] = {-1, -1, -1};
	pid_t pid = proc_op_run(op, args, fds, flags, done);
	if (pid < 0) {
		ttrpc_call_fail(call, TTRPC_INTERNAL, "%s %s: run %s: %s", args[0], p->c->id,
				p->c->runc.binary, strerror(-pid));
		proc_op_end(op);
	}
}

static void task_pids(struct ttrpc_call *call, const ProtobufCMessage *m, void *ud)
{
	const Containerd__Task__V2__PidsRequest *req = (const void *)m;
	struct container *c;
	if (!lookup(call, req->id, NULL, &c, NULL))
		return;
	/* Init has exited and the task is not deleted: its pid, not runc's
	 * empty list (or error). containerd 2.0 to 2.3.3, reloading after a
	 * restart, deletes a task whose Pids is empty or fails as a leaked
	 * shim, losing its exit status (core/runtime/v2/shim_load.go); with
	 * this it keeps the task and reports it stopped. A task that was never
	 * created, or is deleted, stays NotFound above, so truly leaked shims
	 * are still cleaned up. */
	if (c->init.reaped || c->init.state == PROC_STOPPED) {
		reply_pids(call, &c->init.pid, 1);
		return;
	}
	const char *args[] = {"ps", "--format", "json", c->id, NULL};
	run_simple(call, &c->init, args, RUNC_CAPTURE_STDOUT, pids_done);
}

/* ---- Pause, Resume, Update, Checkpoint ---------------------------------- */

static void reply_empty(struct ttrpc_call *call)
{
	Google__Protobuf__Empty e = GOOGLE__PROTOBUF__EMPTY__INIT;
	ttrpc_call_reply(call, &e.base);
}

static void pause_done(int status, const char *err, const char *out, size_t n, void *ud)
{
	struct proc_op *op = ud;
	struct process *p = op->p;
	if (status != 0) {
		ttrpc_call_fail(op->call, TTRPC_UNKNOWN, "OCI runtime pause failed: %s", err);
	} else {
		if (p->state == PROC_RUNNING)
			p->state = PROC_PAUSED;
		Containerd__Events__TaskPaused ev = CONTAINERD__EVENTS__TASK_PAUSED__INIT;
		ev.container_id = p->c->id;
		events_publish("/tasks/paused", &ev.base);
		reply_empty(op->call);
	}
	proc_op_end(op);
}

static void resume_done(int status, const char *err, const char *out, size_t n, void *ud)
{
	struct proc_op *op = ud;
	struct process *p = op->p;
	if (status != 0) {
		ttrpc_call_fail(op->call, TTRPC_UNKNOWN, "OCI runtime resume failed: %s", err);
	} else {
		if (p->state == PROC_PAUSED)
			p->state = PROC_RUNNING;
		Containerd__Events__TaskResumed ev = CONTAINERD__EVENTS__TASK_RESUMED__INIT;
		ev.container_id = p->c->id;
		events_publish("/tasks/resumed", &ev.base);
		reply_empty(op->call);
	}
	proc_op_end(op);
}

static bool require_state(struct ttrpc_call *call, struct process *p, const char *what,
			  enum proc_state want)
{
	if (p->state == want && !p->reaped)
		return true;
	static const char *const names[] = {"created", "running", "paused", "stopped"};
	ttrpc_call_fail(call, TTRPC_FAILED_PRECONDITION, "%s %s: process is %s", what, process_name(p),
			p->reaped ? "stopped" : names[p->state]);
	return false;
}

static void task_pause(struct ttrpc_call *call, const ProtobufCMessage *m, void *ud)
{
	const Containerd__Task__V2__PauseRequest *req = (const void *)m;
	struct container *c;
	if (!lookup(call, req->id, NULL, &c, NULL) ||
	    !require_state(call, &c->init, "pause", PROC_RUNNING))
		return;
	const char *args[] = {"pause", c->id, NULL};
	run_simple(call, &c->init, args, 0, pause_done);
}

static void task_resume(struct ttrpc_call *call, const ProtobufCMessage *m, void *ud)
{
	const Containerd__Task__V2__ResumeRequest *req = (const void *)m;
	struct container *c;
	if (!lookup(call, req->id, NULL, &c, NULL) ||
	    !require_state(call, &c->init, "resume", PROC_PAUSED))
		return;
	const char *args[] = {"resume", c->id, NULL};
	run_simple(call, &c->init, args, 0, resume_done);
}

static void plain_done(int status, const char *err, const char *out, size_t n, void *ud)
{
	struct proc_op *op = ud;
	if (status != 0)
		ttrpc_call_fail(op->call, TTRPC_UNKNOWN, "OCI runtime %s failed: %s",
				ttrpc_call_method(op->call), err);
	else
		reply_empty(op->call);
	proc_op_end(op);
}

static void task_update(struct ttrpc_call *call, const ProtobufCMessage *m, void *ud)
{
	const Containerd__Task__V2__UpdateTaskRequest *req = (const void *)m;
	struct container *c;
	if (!lookup(call, req->id, NULL, &c, NULL))
		return;
	if (c->init.state == PROC_STOPPED || c->init.reaped) {
		ttrpc_call_fail(call, TTRPC_FAILED_PRECONDITION, "update %s: container is stopped",
				c->id);
		return;
	}
	if (!req->resources || !req->resources->value.len) {
		ttrpc_call_fail(call, TTRPC_INVALID_ARGUMENT, "update %s: no resources given", c->id);
		return;
	}
	static unsigned long seq;
	char name[64];
	snprintf(name, sizeof(name), ".update-%lu.json", ++seq);
	int rc = bundle_write_file_volatile(c->bundle_fd, name, req->resources->value.data,
					  req->resources->value.len, 0600);
	if (rc < 0) {
		ttrpc_call_fail(call, TTRPC_INTERNAL, "update %s: write resources: %s", c->id,
				strerror(-rc));
		return;
	}
	char path[PATH_MAX + 64];
	snprintf(path, sizeof(path), "%s/%s", c->bundle, name);
	const char *args[] = {"update", "--resources", path, c->id, NULL};
	struct proc_op *op = proc_op_new(call, &c->init);
	if (!op) {
		unlinkat(c->bundle_fd, name, 0);
		return;
	}
	snprintf(op->path, sizeof(op->path), "%s", path);
	const int fds[3] = {-1, -1, -1};
	pid_t pid = proc_op_run(op, args, fds, 0, plain_done);
	if (pid < 0) {
		ttrpc_call_fail(call, TTRPC_INTERNAL, "update %s: %s", c->id, strerror(-pid));
		proc_op_end(op);
	}
}

static void checkpoint_done(int status, const char *err, const char *out, size_t n, void *ud)
{
	struct proc_op *op = ud;
	if (status != 0) {
		char criu[512];
		runc_criu_error(err, criu, sizeof(criu));
		ttrpc_call_fail(op->call, TTRPC_UNKNOWN, "OCI runtime checkpoint failed: %s%s%s", err,
				criu[0] ? ": " : "", criu);
	} else {
		Containerd__Events__TaskCheckpointed ev = CONTAINERD__EVENTS__TASK_CHECKPOINTED__INIT;
		ev.container_id = op->p->c->id;
		ev.checkpoint = op->path;
		events_publish("/tasks/checkpointed", &ev.base);
		reply_empty(op->call);
	}
	op->path[0] = '\0'; /* the image stays */
	proc_op_end(op);
}

static void task_checkpoint(struct ttrpc_call *call, const ProtobufCMessage *m, void *ud)
{
	const Containerd__Task__V2__CheckpointTaskRequest *req = (const void *)m;
	struct container *c;
	if (!lookup(call, req->id, NULL, &c, NULL))
		return;
	if (c->init.state != PROC_RUNNING && c->init.state != PROC_PAUSED) {
		ttrpc_call_fail(call, TTRPC_FAILED_PRECONDITION, "checkpoint %s: container is not running",
				c->id);
		return;
	}
	Containerd__Runc__V1__CheckpointOptions *o = NULL;
	if (req->options && req->options->type_url &&
	    strcmp(req->options->type_url, "containerd.runc.v1.CheckpointOptions") == 0)
		o = containerd__runc__v1__checkpoint_options__unpack(NULL, req->options->value.len,
								      req->options->value.data);
	const char *image = o && !empty(o->image_path) ? o->image_path : req->path;
	if (empty(image)) {
		ttrpc_call_fail(call, TTRPC_INVALID_ARGUMENT, "checkpoint %s: no image path", c->id);
		goto out;
	}
	char work[PATH_MAX];
	snprintf(work, sizeof(work), "%s", o && !empty(o->work_path) ? o->work_path : c->bundle);
	const char *args[RUNC_CHECKPOINT_ARGS_MAX];
	struct runc_checkpoint_args ka = {
		.image_path = image,
		.work_path = work,
		.leave_running = !o || !o->exit,
		.tcp_established = o && o->open_tcp,
		.ext_unix_sk = o && o->external_unix_sockets,
		.shell_job = o && o->terminal,
		.file_locks = o && o->file_locks,
		.id = c->id,
	};
	runc_checkpoint_argv(&ka, args);
	struct proc_op *op = proc_op_new(call, &c->init);
	if (!op)
		goto out;
	snprintf(op->path, sizeof(op->path), "%s", image);
	const int fds[3] = {-1, -1, -1};
	pid_t pid = proc_op_run(op, args, fds, 0, checkpoint_done);
	if (pid < 0) {
		ttrpc_call_fail(call, TTRPC_INTERNAL, "checkpoint %s: %s", c->id, strerror(-pid));
		op->path[0] = '\0';
		proc_op_end(op);
	}
out:
	if (o)
		containerd__runc__v1__checkpoint_options__free_unpacked(o, NULL);
}

/* ---- Kill -------------------------------------------------------------- */

static void kill_done(int status, const char *err, const char *out, size_t n, void *ud)
{
	struct proc_op *op = ud;
	if (status != 0) {
		/* runc's words for a process that is gone become NotFound, as containerd's shim does */
		bool gone = runc_error_process_gone(err);
		ttrpc_call_fail(op->call, gone ? TTRPC_NOT_FOUND : TTRPC_UNKNOWN,
				"%s: %s", gone ? "process already finished" : "OCI runtime kill failed", err);
	} else {
		shim_crash_point("kill-runc-done");
		reply_empty(op->call);
	}
	proc_op_end(op);
}

static void task_kill(struct ttrpc_call *call, const ProtobufCMessage *m, void *ud)
{
	const Containerd__Task__V2__KillRequest *req = (const void *)m;
	struct container *c;
	struct process *p;
	if (!lookup(call, req->id, req->exec_id, &c, &p))
		return;
	if (req->signal == 0) {
		/* signal 0 probes for life, as kill(2) does */
		bool alive = p->pid && !p->reaped && p->state != PROC_STOPPED;
		if (alive)
			reply_empty(call);
		else
			ttrpc_call_fail(call, TTRPC_NOT_FOUND, "kill %s: process already finished",
					process_name(p));
		return;
	}
	if (req->signal >= 65) {
		ttrpc_call_fail(call, TTRPC_INVALID_ARGUMENT, "kill %s: invalid signal %u", process_name(p),
				req->signal);
		return;
	}
	if (p->exec_id) {
		if (!p->pid) {
			ttrpc_call_fail(call, TTRPC_FAILED_PRECONDITION, "kill %s: process not created",
					p->exec_id);
			return;
		}
		/* through its pidfd: never another process that got the pid */
		if (p->state == PROC_STOPPED || process_signal(p, (int)req->signal) < 0) {
			ttrpc_call_fail(call, TTRPC_NOT_FOUND, "kill %s: process already finished",
					p->exec_id);
			return;
		}
		reply_empty(call);
		return;
	}
	if (p->reaped && !req->all) {
		ttrpc_call_fail(call, TTRPC_NOT_FOUND, "kill %s: process already finished", c->id);
		return;
	}
	char sig[16];
	snprintf(sig, sizeof(sig), "%u", req->signal);
	const char *args[6];
	int k = 0;
	args[k++] = "kill";
	if (req->all)
		args[k++] = "--all";
	args[k++] = c->id;
	args[k++] = sig;
	args[k] = NULL;
	run_simple(call, p, args, 0, kill_done);
}

/* ---- Exec, ResizePty, CloseIO ----------------------------------------- */

static void task_exec(struct ttrpc_call *call, const ProtobufCMessage *m, void *ud)
{
	const Containerd__Task__V2__ExecProcessRequest *req = (const void *)m;
	struct container *c;
	struct ttrpc_status st;
	if (!lookup(call, req->id, NULL, &c, NULL))
		return;
	if (bundle_validate_id("exec id", req->exec_id, &st) < 0) {
		ttrpc_call_fail_status(call, &st);
		return;
	}
	if (bundle_exec_id_reserved(req->exec_id)) {
		/* its pid file would be the bundle's own init.pid / shim.pid */
		ttrpc_call_fail(call, TTRPC_INVALID_ARGUMENT,
				"exec id %s: reserved (the bundle's %s.pid)", req->exec_id,
				req->exec_id);
		return;
	}
	if (container_find_exec(c, req->exec_id)) {
		ttrpc_call_fail(call, TTRPC_ALREADY_EXISTS, "id %s: already exists", req->exec_id);
		return;
	}
	if (c->init.reaped || c->init.state == PROC_STOPPED) {
		ttrpc_call_fail(call, TTRPC_FAILED_PRECONDITION, "exec %s: container %s is stopped",
				req->exec_id, c->id);
		return;
	}
	if (!req->spec || !req->spec->value.len) {
		ttrpc_call_fail(call, TTRPC_INVALID_ARGUMENT, "exec %s: no process spec", req->exec_id);
		return;
	}
	/* the process runs with the request's terminal, whatever its spec says,
	 * as in the Go shim (containerd's client sets only the request's) */
	char *spec = NULL;
	size_t spec_len = 0;
	int rc = bundle_process_set_terminal((const char *)req->spec->value.data,
					     req->spec->value.len, req->terminal, &spec, &spec_len, &st);
	if (rc < 0) {
		if (rc == -ENOMEM)
			ttrpc_status_set(&st, TTRPC_RESOURCE_EXHAUSTED, "out of memory");
		ttrpc_call_fail(call, st.code, "exec %s: %s", req->exec_id, st.message);
		return;
	}
	struct process *p = calloc(1, sizeof(*p));
	if (!p) {
		free(spec);
		ttrpc_call_fail(call, TTRPC_RESOURCE_EXHAUSTED, "out of memory");
		return;
	}
	p->c = c;
	p->pidfd = -1;
	p->exec_id = strdup(req->exec_id);
	p->state = PROC_CREATED;
	p->stdin_path = strdup(req->stdin ? req->stdin : "");
	p->stdout_path = strdup(req->stdout ? req->stdout : "");
	p->stderr_path = strdup(req->stderr ? req->stderr : "");
	p->terminal = req->terminal;
	p->spec = spec;
	p->spec_len = spec_len;
	p->next = c->execs;
	c->execs = p;
	Containerd__Events__TaskExecAdded ev = CONTAINERD__EVENTS__TASK_EXEC_ADDED__INIT;
	ev.container_id = c->id;
	ev.exec_id = p->exec_id;
	events_publish("/tasks/exec-added", &ev.base);
	reply_empty(call);
}

static void task_resize_pty(struct ttrpc_call *call, const ProtobufCMessage *m, void *ud)
{
	const Containerd__Task__V2__ResizePtyRequest *req = (const void *)m;
	struct container *c;
	struct process *p;
	if (!lookup(call, req->id, req->exec_id, &c, &p))
		return;
	int rc = p->io ? pio_resize(p->io, req->width, req->height) : 0;
	if (rc < 0) {
		ttrpc_call_fail(call, ttrpc_code_from_errno(rc), "resize %s: %s", process_name(p),
				strerror(-rc));
		return;
	}
	reply_empty(call);
}

static void task_close_io(struct ttrpc_call *call, const ProtobufCMessage *m, void *ud)
{
	const Containerd__Task__V2__CloseIORequest *req = (const void *)m;
	struct container *c;
	struct process *p;
	if (!lookup(call, req->id, req->exec_id, &c, &p))
		return;
	if (req->stdin && p->io)
		pio_close_stdin(p->io);
	reply_empty(call);
}

/* ---- Delete ------------------------------------------------------------ */

static void reply_delete(struct ttrpc_call *call, struct process *p)
{
	Containerd__Task__V2__DeleteResponse r = CONTAINERD__TASK__V2__DELETE_RESPONSE__INIT;
	Google__Protobuf__Timestamp ts;
	r.pid = (uint32_t)p->pid;
	r.exit_status = (uint32_t)p->exit_status;
	process_timestamp(&ts, &p->exited_at);
	r.exited_at = &ts;
	ttrpc_call_reply(call, &r.base);
}

static void delete_init_done(int status, const char *err, const char *out, size_t n, void *ud)
{
	struct proc_op *op = ud;
	struct process *p = op->p;
	struct container *c = p->c;
	if (status != 0 && err && !runc_error_not_exist(err)) {
		ttrpc_call_fail(op->call, TTRPC_UNKNOWN, "OCI runtime delete failed: %s", err);
		proc_op_end(op);
		return;
	}
	shim_crash_point("delete-runc-done");
	if (p->pid && !p->reaped)
		/* a created init killed by delete: nobody waits for it */
		reaper_discard(shim.reaper, p->pid);
	pio_free(p->io);
	p->io = NULL;
	if (c->rootfs_mounted) {
		int rc = bundle_unmount_rootfs(c->bundle);
		if (rc < 0)
			log_warn("unmount rootfs of %s: %s", c->id, strerror(-rc));
		c->rootfs_mounted = false;
	}
	Containerd__Events__TaskDelete ev = CONTAINERD__EVENTS__TASK_DELETE__INIT;
	Google__Protobuf__Timestamp ts;
	process_timestamp(&ts, &p->exited_at);
	ev.container_id = c->id;
	ev.pid = (uint32_t)p->pid;
	ev.exit_status = (uint32_t)p->exit_status;
	ev.exited_at = &ts;
	ev.id = c->id;
	events_publish("/tasks/delete", &ev.base);
	shim_crash_point("delete-event-queued");
	reply_delete(op->call, p);
	c->deleted = true;
	proc_op_end(op);
}

static void task_delete(struct ttrpc_call *call, const ProtobufCMessage *m, void *ud)
{
	const Containerd__Task__V2__DeleteRequest *req = (const void *)m;
	struct container *c;
	struct process *p;
	if (!lookup(call, req->id, req->exec_id, &c, &p))
		return;
	if (c->delete_call) {
		ttrpc_call_fail(call, TTRPC_FAILED_PRECONDITION, "delete %s: already in progress",
				c->id);
		return;
	}
	if (p->busy && !p->exec_id) {
		/* runtime calls on the init in flight (a Kill whose runc has not
		 * exited yet, a ps): Delete runs once they end */
		c->delete_call = call;
		ttrpc_call_on_cancel(call, delete_cancelled, c);
		c->delete_timer = loop_add_timer_ms(shim.loop, DELETE_GRACE_MS, delete_grace_over, c);
		return;
	}
	if (p->busy) {
		ttrpc_call_fail(call, TTRPC_FAILED_PRECONDITION, "delete %s: an operation is in progress",
				process_name(p));
		return;
	}
	if (p->exec_id) {
		if (p->state != PROC_STOPPED && p->state != PROC_CREATED) {
			ttrpc_call_fail(call, TTRPC_FAILED_PRECONDITION,
					"delete %s: cannot delete a running process", p->exec_id);
			return;
		}
		for (struct process **pp = &c->execs; *pp; pp = &(*pp)->next) {
			if (*pp == p) {
				*pp = p->next;
				break;
			}
		}
		char name[PATH_MAX];
		bundle_exec_pid_name(p->exec_id, name, sizeof(name));
		unlinkat(c->bundle_fd, name, 0);
		/* its status is reported now: nothing reads the record again */
		bundle_exit_remove(c->bundle_fd, p->exec_id);
		/* everything of it is released before the caller hears so */
		struct process gone = {.c = c, .pid = p->pid, .exit_status = p->exit_status,
				       .exited_at = p->exited_at};
		process_free_fields(p);
		free(p);
		reply_delete(call, &gone);
		return;
	}
	delete_init(call, c);
}

static void delete_init(struct ttrpc_call *call, struct container *c)
{
	struct process *p = &c->init;
	if (p->state != PROC_STOPPED && p->state != PROC_CREATED) {
		ttrpc_call_fail(call, TTRPC_FAILED_PRECONDITION,
				"delete %s: cannot delete a running process", c->id);
		return;
	}
	for (struct process *e = c->execs; e; e = e->next) {
		if (e->state != PROC_STOPPED && e->state != PROC_CREATED) {
			ttrpc_call_fail(call, TTRPC_FAILED_PRECONDITION,
					"delete %s: exec %s is still running", c->id, e->exec_id);
			return;
		}
		if (e->busy) { /* an exec Start in flight would outlive its container */
			ttrpc_call_fail(call, TTRPC_FAILED_PRECONDITION,
					"delete %s: exec %s is starting", c->id, e->exec_id);
			return;
		}
	}
	const char *args[5];
	int k = 0;
	args[k++] = "delete";
	if (p->state == PROC_CREATED)
		args[k++] = "--force";
	args[k++] = c->id;
	args[k] = NULL;
	run_simple(call, p, args, 0, delete_init_done);
}

/* ---- Stats, Shutdown --------------------------------------------------- */

static void task_stats(struct ttrpc_call *call, const ProtobufCMessage *m, void *ud)
{
	const Containerd__Task__V2__StatsRequest *req = (const void *)m;
	struct container *c;
	if (!lookup(call, req->id, NULL, &c, NULL))
		return;
	if (!c->init.pid || c->init.reaped) {
		ttrpc_call_fail(call, TTRPC_FAILED_PRECONDITION, "stats %s: container is not running",
				c->id);
		return;
	}
	struct cgroup_ref ref = {0};
	struct cgroup_err err = {0};
	char *type_url = NULL;
	uint8_t *value = NULL;
	size_t len = 0;
	int rc = cgroup_ref_from_pid(c->init.pid, &ref, &err);
	if (rc == 0)
		rc = cgroup_stats(&ref, &type_url, &value, &len, &err);
	cgroup_ref_release(&ref);
	if (rc < 0) {
		ttrpc_call_fail(call, ttrpc_code_from_errno(rc), "stats %s: %s", c->id,
				err.msg[0] ? err.msg : strerror(-rc));
		return;
	}
	Google__Protobuf__Any any = GOOGLE__PROTOBUF__ANY__INIT;
	any.type_url = type_url;
	any.value.data = value;
	any.value.len = len;
	Containerd__Task__V2__StatsResponse r = CONTAINERD__TASK__V2__STATS_RESPONSE__INIT;
	r.stats = &any;
	ttrpc_call_reply(call, &r.base);
	free(type_url);
	free(value);
}

bool shim_task_empty(void)
{
	for (struct container *c = shim.containers; c; c = c->next)
		if (!c->deleted)
			return false;
	return true;
}

static void task_shutdown(struct ttrpc_call *call, const ProtobufCMessage *m, void *ud)
{
	reply_empty(call);
	/* With containers left (a grouped shim), Shutdown is a no-op. */
	if (shim_task_empty())
		shim.shutdown_requested = true;
}

void shim_task_shutdown(void)
{
	while (shim.containers) {
		struct container *c = shim.containers;
		c->refs = 0;
		container_free(c);
	}
}

/* Method order of containerd.task.v2.Task in shim.proto. */
const ttrpc_handler_fn shim_task_handlers[] = {
	task_state, task_create, task_start, task_delete, task_pids, task_pause,
	task_resume, task_checkpoint, task_kill, task_exec, task_resize_pty, task_close_io,
	task_update, task_wait, task_stats, task_connect, task_shutdown,
};
