/* The serving shim: containerd.task.v2.Task (and v3, the same) on the listener `start` handed
 * it as fd 3 (or on -socket), one loop with the reaper's SIGCHLD and
 * SIGTERM/SIGINT, shutdown once events and loggers are done, and the heap
 * trimmed when idle. */
#include "cli.h"
#include "crash.h"
#include "events.h"
#include "log.h"
#include "orphan.h"
#include "pio.h"
#include "reaper.h"
#include "shim.h"
#include "sockdir.h"
#include "upgrade.h"

#include "bundle/files.h"
#include "containerd/task/v2/shim.pb-c.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/close_range.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#define SHUTDOWN_EVENTS_WAIT_MS 5000

/* containerd.task.v3.Task is containerd.task.v2.Task under another name
 * (containerd 2.x's api/runtime/task/v3/shim.proto differs from v2's only in
 * its package): the same methods, messages and handlers, so the v2
 * descriptor under the v3 name. ttrpc dispatches on the service name alone;
 * replies keep their v2 message descriptors, whose bytes are the v3 ones. */
static const ProtobufCServiceDescriptor task_v3_descriptor = {
	.magic = PROTOBUF_C__SERVICE_DESCRIPTOR_MAGIC,
	.name = "containerd.task.v3.Task",
	.short_name = "Task",
	.c_name = "Containerd__Task__V3__Task",
	.package = "containerd.task.v3",
};

/* Every Task method goes through here: a request, whatever it asks, tells a
 * taskless shim that its peer is not a containerd about to Create
 * (orphan.h); then the method's own handler. */
static void noted(struct ttrpc_call *call, const ProtobufCMessage *req, void *ud)
{
	const ProtobufCServiceDescriptor *d = &containerd__task__v2__task__descriptor;
	const char *name = ttrpc_call_method(call);
	shim_orphan_note_request();
	for (unsigned i = 0; i < d->n_methods; i++) {
		if (strcmp(d->methods[i].name, name) == 0) {
			shim_task_handlers[i](call, req, ud);
			return;
		}
	}
	ttrpc_call_fail(call, TTRPC_UNIMPLEMENTED, "method %s", name);
}

/* The task service under both names containerd 1.6 to 2.x may call. */
int shim_register_task_services(struct ttrpc_server *s)
{
	static ttrpc_handler_fn handlers[64];
	static ProtobufCServiceDescriptor v3;
	if (containerd__task__v2__task__descriptor.n_methods > 64)
		return -E2BIG;
	for (unsigned i = 0; i < containerd__task__v2__task__descriptor.n_methods; i++)
		handlers[i] = shim_task_handlers[i] ? noted : NULL;
	v3 = task_v3_descriptor;
	v3.n_methods = containerd__task__v2__task__descriptor.n_methods;
	v3.methods = containerd__task__v2__task__descriptor.methods;
	v3.method_indices_by_name = containerd__task__v2__task__descriptor.method_indices_by_name;
	int rc = ttrpc_server_register(s, &containerd__task__v2__task__descriptor, handlers, NULL);
	if (rc == 0)
		rc = ttrpc_server_register(s, &v3, handlers, NULL);
	return rc;
}

static char socket_path[128];
static struct stat socket_st; /* the socket file as we found it at start */

/* Removes our socket file, under the directory lock and while still
 * listening: a `start` for our group that comes now either shares us (and
 * finds us gone at its first call, as with Go's shim) or binds anew after the
 * unlink — never has its fresh socket removed by us. A path that is no longer
 * the file we served on is left alone. */
static void remove_socket(void)
{
	if (!socket_path[0])
		return;
	int lock = shim_socket_lock(socket_path);
	if (lock < 0)
		log_warn("lock %s's directory: %s", socket_path, strerror(-lock));
	struct stat st;
	if (stat(socket_path, &st) == 0 && st.st_dev == socket_st.st_dev &&
	    st.st_ino == socket_st.st_ino)
		unlink(socket_path);
	if (lock >= 0)
		close(lock);
}

static void on_server(struct loop_source *s, int fd, uint32_t events, void *ud)
{
	ttrpc_server_dispatch(shim.server);
}

static struct loop_timer *exit_timer;

static void maybe_exit(void *ud);

static void poll_exit(void *ud)
{
	exit_timer = NULL;
	maybe_exit(ud);
}

/* After Shutdown (or SIGTERM): wait for queued events and for loggers told
 * to stop, bounded, then quit. */
static void maybe_exit(void *ud)
{
	static int64_t deadline;
	if (!deadline)
		deadline = loop_now_ns() + (int64_t)SHUTDOWN_EVENTS_WAIT_MS * 1000000;
	bool waiting = !events_idle() || pio_loggers_ending();
	if (!waiting || loop_now_ns() >= deadline) {
		pio_kill_loggers();
		loop_quit(shim.loop, 0);
		return;
	}
	if (!exit_timer)
		exit_timer = loop_add_timer_ms(shim.loop, 20, poll_exit, NULL);
}

static void on_signal(struct loop_source *s, int fd, uint32_t events, void *ud)
{
	struct signalfd_siginfo si;
	while (read(fd, &si, sizeof(si)) == sizeof(si)) {
		switch (si.ssi_signo) {
		case SIGTERM:
		case SIGINT:
			log_info("signal %u: shutting down", si.ssi_signo);
			shim.shutdown_requested = true;
			break;
		case SIGHUP:
			upgrade_on_sighup(); /* live upgrade to the binary at our path */
			break;
		default:
			break;
		}
	}
}

static void after_iteration(void *ud);
static void find_stack(void);

/* SHIM_SERVE_TUNABLE (cli.h) off our GLIBC_TUNABLES again, as `start` added
 * it: runc, loggers and everything else we start get containerd's. */
static void drop_serve_tunable(void)
{
	const char *v = getenv("GLIBC_TUNABLES");
	size_t n = v ? strlen(v) : 0, k = strlen(SHIM_SERVE_TUNABLE);
	if (n < k || strcmp(v + n - k, SHIM_SERVE_TUNABLE) != 0)
		return;
	if (n == k) {
		unsetenv("GLIBC_TUNABLES");
	} else if (v[n - k - 1] == ':') {
		char *rest = strndup(v, n - k - 1);
		if (rest)
			setenv("GLIBC_TUNABLES", rest, 1);
		free(rest);
	}
}

int shim_serve(const struct shim_flags *f)
{
	drop_serve_tunable();
	/* Only 0-2 and the listener (3) are ours; anything else came from
	 * whoever started containerd and must not leak into containers. A live
	 * upgrade's new process keeps what its state names (upgrade.h). */
	if (f->resume_fd < 0)
		close_range(4, ~0U, 0);
	shim.ns = f->ns;
	shim.id = f->id;
	shim.address = f->address;
	shim.debug = f->debug;
	shim.ttrpc_address = getenv("TTRPC_ADDRESS");
	/* containerd reads this FIFO: our log goes there, never blocking */
	int logfd = open(BUNDLE_LOG_FILE, O_WRONLY | O_NONBLOCK | O_CLOEXEC);
	if (logfd >= 0) {
		dup2(logfd, STDERR_FILENO);
		close(logfd);
	}
	const struct log_field fields[] = {{"namespace", f->ns}, {"id", f->id}};
	if (log_init(f->debug ? LOG_LEVEL_DEBUG : LOG_LEVEL_INFO, fields, 2) < 0)
		log_warn("log fields too long: lines go without them");
	shim_crash_init();
	/* exec'd as /proc/self/exe, the kernel names us "exe": name us as
	 * top and ps -o comm show containerd's own shims */
	prctl(PR_SET_NAME, "containerd-shim");
	prctl(PR_SET_CHILD_SUBREAPER, 1);
	/* SIGCHLD is blocked with the rest, but read by the reaper's own signalfd */
	sigset_t mask;
	sigemptyset(&mask);
	sigaddset(&mask, SIGCHLD);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGPIPE);
	sigaddset(&mask, SIGHUP);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	sigdelset(&mask, SIGCHLD);
	int sfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
	shim.loop = loop_new();
	shim.server = ttrpc_server_new();
	if (sfd < 0 || !shim.loop || !shim.server) {
		log_error("init: %s", strerror(errno));
		return 1;
	}
	/* Go's UnixSocketRequireSameUser: the peer's uid and gid are ours */
	ttrpc_server_set_peer_check(shim.server, TTRPC_PEER_SAME_UID_GID);
	int rc = shim_register_task_services(shim.server);
	if (rc == 0)
		rc = upgrade_register(shim.server);
	if (rc < 0) {
		log_error("register task services: %s", strerror(-rc));
		return 1;
	}
	if (f->socket && f->socket[0]) {
		mode_t old_umask = umask(077); /* no window before its chmod 0600 */
		rc = ttrpc_server_listen(shim.server, f->socket);
		umask(old_umask);
		snprintf(socket_path, sizeof(socket_path), "%s",
			 strncmp(f->socket, "unix://", 7) == 0 ? f->socket + 7 : f->socket);
	} else {
		int lfd = f->resume_fd >= 0 ? upgrade_resume_begin(f->resume_fd, shim.server,
								      f->upgrade_fallback)
					 : 3;
		struct sockaddr_un sa;
		socklen_t sl = sizeof(sa);
		if (lfd >= 0 && getsockname(lfd, (struct sockaddr *)&sa, &sl) == 0 && sa.sun_path[0])
			snprintf(socket_path, sizeof(socket_path), "%s", sa.sun_path);
		rc = lfd < 0 ? lfd : ttrpc_server_add_listener(shim.server, lfd);
	}
	if (rc < 0) {
		log_error("serve: %s", strerror(-rc));
		return 1;
	}
	if (socket_path[0] && stat(socket_path, &socket_st) < 0)
		socket_path[0] = '\0'; /* not a file we could remove safely */
	events_init(shim.loop, shim.ttrpc_address, f->ns);
	find_stack();
	struct loop_source *sig_src = loop_add_io(shim.loop, sfd, EPOLLIN, on_signal, NULL);
	struct loop_source *srv_src =
		loop_add_io(shim.loop, ttrpc_server_fd(shim.server), EPOLLIN, on_server, NULL);
	/* its signalfd on the loop, and anything that exited before it existed reaped */
	shim.reaper = reaper_new(shim.loop);
	if (!shim.reaper) {
		log_error("init: reaper: %s", strerror(errno));
		return 1;
	}
	if (f->resume_fd >= 0)
		upgrade_resume_finish();
	/* taskless until a Create: gone if none comes (orphan.h) */
	shim_orphan_init(shim.loop, shim.server);
	shim_orphan_check(); /* arms its timer before the loop first waits */
	while (!loop_quitting(shim.loop)) {
		if (loop_iterate(shim.loop, -1) < 0 && errno != EINTR)
			break;
		after_iteration(NULL);
	}
	loop_io_remove(srv_src);
	loop_io_remove(sig_src);
	remove_socket();
	ttrpc_server_free(shim.server);
	shim_task_shutdown();
	shim_orphan_free();
	events_shutdown();
	reaper_free(shim.reaper);
	loop_free(shim.loop);
	close(sfd);
	return 0;
}

/* An idle shim gives the heap pages it no longer uses back to the kernel:
 * most of a shim's life is waiting, and its footprint is what users count. */
#define IDLE_TRIM_MS 1000
static struct loop_timer *trim_timer;
static bool just_trimmed;

static int64_t last_activity;

/* The stack as well. A Create or an Exec runs 20 KiB deep and more (a rootfs
 * mount, runc's argv, paths in buffers on the stack); those pages stay
 * resident, dirty, for the rest of the shim's life, though the loop at rest
 * needs a few hundred bytes below it. Below the trimming frame's page, less
 * a page of margin (madvise's own frame), nothing is live (one thread, no signal handlers: signals come
 * through the signalfd): those pages are dropped, and the next deep call gets
 * zero pages again. Only within the [stack] mapping as read at start, so
 * nothing else can ever be touched. */
static uintptr_t stack_low;

static void find_stack(void)
{
	FILE *f = fopen("/proc/self/maps", "re");
	if (!f)
		return;
	char line[256];
	bool at_start = true; /* a long line comes in pieces: parse only a line's first */
	while (fgets(line, sizeof(line), f)) {
		unsigned long lo, hi;
		size_t n = strlen(line);
		if (at_start && n > 0 && line[n - 1] == '\n' && strstr(line, " [stack]\n") &&
		    sscanf(line, "%lx-%lx", &lo, &hi) == 2) {
			stack_low = lo;
			break;
		}
		at_start = n > 0 && line[n - 1] == '\n';
	}
	fclose(f);
}

static __attribute__((noinline)) void trim_stack(void)
{
	volatile char here;
	uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
	uintptr_t top = (((uintptr_t)&here) & ~(page - 1)) - page;
	if (stack_low && top > stack_low)
		madvise((void *)stack_low, top - stack_low, MADV_DONTNEED);
}

static void trim_heap(void *ud)
{
	trim_timer = NULL;
	just_trimmed = true; /* this wake-up is not activity either way */
	int64_t idle_until = last_activity + (int64_t)IDLE_TRIM_MS * 1000000;
	if (loop_now_ns() < idle_until) { /* busy since: look again later */
		trim_timer = loop_add_timer(shim.loop, idle_until, trim_heap, NULL);
		return;
	}
	malloc_trim(0);
	trim_stack();
}

static void after_iteration(void *ud)
{
	if (!shim.shutdown_requested && shim_orphan_check())
		shim.shutdown_requested = true; /* as a Shutdown would */
	if (shim.shutdown_requested)
		maybe_exit(NULL);
	if (just_trimmed) { /* the trim's own wake-up is not activity */
		just_trimmed = false;
		return;
	}
	last_activity = loop_now_ns();
	if (!trim_timer)
		trim_timer = loop_add_timer_ms(shim.loop, IDLE_TRIM_MS, trim_heap, NULL);
}
