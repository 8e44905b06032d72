/* Live upgrade (see upgrade.h): the Upgrade call, the version check, the
 * state written across execve(2) and the new process's resume from it. */
#include "upgrade.h"
#include "cli.h"
#include "container.h"
#include "events.h"
#include "log.h"
#include "oom.h"
#include "pio.h"
#include "process.h"
#include "shim.h"
#include "spawn.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

#define UPGRADE_CHECK_TIMEOUT_MS 5000 /* for `BINARY -upgrade-version` */
/* How long requests are held back for what is in flight to end, looked at
 * every UPGRADE_QUIESCE_POLL_MS, before the upgrade gives up. */
#define UPGRADE_QUIESCE_MS 10000 /* a Forward's own timeout is 5 s */
#define UPGRADE_QUIESCE_POLL_MS 2
#define UPGRADE_STATE_MAX (64u << 20) /* bytes of state read back */
#define UPGRADE_FDS_MAX 65536         /* fds handed over at most */

typedef Nanoshim__Shim__V1__UpgradeState UpgradeState;
typedef Nanoshim__Shim__V1__UpgradeConn UpgradeConn;
typedef Nanoshim__Shim__V1__UpgradeContainer UpgradeContainer;
typedef Nanoshim__Shim__V1__UpgradeProcess UpgradeProcess;
typedef Nanoshim__Shim__V1__UpgradeStdio UpgradeStdio;

int upgrade_print_version(void)
{
	printf("%u\n", UPGRADE_STATE_VERSION);
	return 0;
}

static int64_t mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* ---- the state: collect, encode, decode ---- */

static void release_process(UpgradeProcess *p)
{
	if (!p)
		return;
	free(p->io);
	free(p);
}

void upgrade_state_release(UpgradeState *s)
{
	for (size_t i = 0; i < s->n_conns; i++) {
		if (s->conns[i]) {
			free(s->conns[i]->partial.data);
			for (size_t j = 0; j < s->conns[i]->n_calls; j++)
				free(s->conns[i]->calls[j].data);
			free(s->conns[i]->calls);
			free(s->conns[i]);
		}
	}
	free(s->conns);
	free(s->listeners);
	for (size_t i = 0; i < s->n_containers; i++) {
		UpgradeContainer *c = s->containers[i];
		if (!c)
			continue;
		release_process(c->init);
		for (size_t j = 0; j < c->n_execs; j++)
			release_process(c->execs[j]);
		free(c->execs);
		free(c);
	}
	free(s->containers);
	for (size_t i = 0; i < s->n_events; i++)
		free(s->events[i]);
	free(s->events);
	nanoshim__shim__v1__upgrade_state__init(s);
}

static char *str(const char *s)
{
	return (char *)(s ? s : "");
}

/* A refusal: what is in motion now; the caller may retry later. */
#define busy(st, ...) (ttrpc_status_set((st), TTRPC_FAILED_PRECONDITION, __VA_ARGS__), -EBUSY)

static int collect_process(const struct process *p, UpgradeProcess **out, struct ttrpc_status *st)
{
	const char *name = process_name(p);
	if (p->busy || p->ops)
		return busy(st, "%s: a runtime call is in flight", name);
	if (p->announcing)
		return busy(st, "%s: being created or started", name);
	if (p->finalizing || (p->reaped && p->state != PROC_STOPPED))
		return busy(st, "%s: its exit is being announced", name);
	/* an exec created and not started has no stdio yet (Start makes it):
	 * its definition is all there is, and the new process starts it */
	if (p->state != PROC_STOPPED && p->pid <= 0 && (p->io || !p->exec_id))
		return busy(st, "%s: created but not started", name);
	UpgradeProcess *m = calloc(1, sizeof(*m));
	if (!m)
		goto nomem;
	*out = m;
	nanoshim__shim__v1__upgrade_process__init(m);
	m->exec_id = str(p->exec_id);
	m->state = p->state;
	m->pid = p->pid;
	m->exit_status = p->exit_status;
	m->exited_sec = p->exited_at.tv_sec;
	m->exited_nsec = (int32_t)p->exited_at.tv_nsec;
	m->stdin = str(p->stdin_path);
	m->stdout = str(p->stdout_path);
	m->stderr = str(p->stderr_path);
	m->terminal = p->terminal;
	m->spec.data = (uint8_t *)p->spec;
	m->spec.len = p->spec ? p->spec_len : 0;
	m->start_announced = p->start_announced;
	m->reaped = p->reaped;
	if (!p->io)
		return 0;
	struct pio_export e;
	const char *why = "";
	int rc = pio_export(p->io, &e, &why);
	if (rc < 0) {
		ttrpc_status_set(st, TTRPC_FAILED_PRECONDITION, "%s: %s", name, why);
		return rc;
	}
	m->io = calloc(1, sizeof(*m->io));
	if (!m->io)
		goto nomem;
	nanoshim__shim__v1__upgrade_stdio__init(m->io);
	m->io->in_src = e.in_src;
	m->io->in_dst = e.in_dst;
	m->io->out_src = e.out_src;
	m->io->out_dst = e.out_dst;
	m->io->err_src = e.err_src;
	m->io->err_dst = e.err_dst;
	m->io->console = e.console;
	m->io->in_finishing = e.in_finishing;
	m->io->terminal = e.terminal;
	m->io->logger = e.logger;
	m->io->out_spool = m->io->err_spool = -1; /* upgrade_exec takes the spools */
	return 0;
nomem:
	ttrpc_status_set(st, TTRPC_RESOURCE_EXHAUSTED, "out of memory");
	return -ENOMEM;
}

static int collect_container(const struct container *c, UpgradeContainer **out,
                             struct ttrpc_status *st)
{
	if (c->deleted || c->refs || c->delete_call)
		return busy(st, "container %s: a runtime call is in flight", c->id);
	size_t n = 0;
	for (const struct process *p = c->execs; p; p = p->next)
		n++;
	UpgradeContainer *m = calloc(1, sizeof(*m));
	if (!m)
		goto nomem;
	*out = m;
	nanoshim__shim__v1__upgrade_container__init(m);
	m->execs = calloc(n ? n : 1, sizeof(*m->execs));
	if (!m->execs)
		goto nomem;
	m->id = c->id;
	m->bundle = c->bundle;
	m->bundle_fd = c->bundle_fd;
	m->runc_root = (char *)c->runc_root;
	m->runc_binary = (char *)c->runc_binary;
	m->criu_path = (char *)c->criu_path;
	m->systemd_cgroup = c->runc.systemd_cgroup;
	m->no_pivot_root = c->no_pivot_root;
	m->no_new_keyring = c->no_new_keyring;
	m->io_uid = c->io_uid;
	m->io_gid = c->io_gid;
	m->criu_image_path = str(c->criu_image_path);
	m->criu_work_path = str(c->criu_work_path);
	m->rootfs_mounted = c->rootfs_mounted;
	m->private_pidns = c->private_pidns;
	m->oom_watched = c->oom != NULL;
	m->spool_max = c->spool_max;
	int rc = collect_process(&c->init, &m->init, st);
	for (const struct process *p = c->execs; p && rc == 0; p = p->next)
		rc = collect_process(p, &m->execs[m->n_execs++], st);
	return rc;
nomem:
	ttrpc_status_set(st, TTRPC_RESOURCE_EXHAUSTED, "out of memory");
	return -ENOMEM;
}

static int collect_event(const struct events_item *it, void *ud)
{
	UpgradeState *s = ud;
	Nanoshim__Shim__V1__UpgradeEvent *m = calloc(1, sizeof(*m));
	if (!m)
		return -ENOMEM;
	nanoshim__shim__v1__upgrade_event__init(m);
	m->topic = (char *)it->topic;
	m->type_url = (char *)it->type_url;
	m->value.data = (uint8_t *)it->value;
	m->value.len = it->len;
	m->oom_id = str(it->oom_id);
	m->ts_sec = it->ts.tv_sec;
	m->ts_nsec = (int32_t)it->ts.tv_nsec;
	s->events[s->n_events++] = m;
	return 0;
}

int upgrade_state_collect(const struct ttrpc_call *except, UpgradeState *s, struct ttrpc_status *st)
{
	nanoshim__shim__v1__upgrade_state__init(s);
	s->version = UPGRADE_STATE_VERSION;
	s->reply_fd = -1;
	if (shim.shutdown_requested) {
		ttrpc_status_set(st, TTRPC_FAILED_PRECONDITION, "the shim is shutting down");
		return -EOPNOTSUPP;
	}
	if (events_in_flight())
		return busy(st, "an event is being delivered to containerd");
	if (pio_loggers_ending())
		return busy(st, "a binary:// logger is still exiting");
	size_t n = 0;
	for (const struct container *c = shim.containers; c; c = c->next)
		n++;
	s->containers = calloc(n ? n : 1, sizeof(*s->containers));
	if (!s->containers)
		goto nomem;
	int rc = 0;
	for (const struct container *c = shim.containers; c && rc == 0; c = c->next)
		rc = collect_container(c, &s->containers[s->n_containers++], st);
	if (rc < 0)
		goto fail;
	s->events = calloc(events_queued() + 1, sizeof(*s->events));
	if (!s->events)
		goto nomem;
	if (events_each(collect_event, s) < 0)
		goto nomem;
	struct ttrpc_export ex;
	rc = ttrpc_server_export(shim.server, except, &ex, st);
	if (rc < 0)
		goto fail;
	s->listeners = ex.listeners;
	s->n_listeners = ex.n_listeners;
	ex.listeners = NULL;
	s->conns = calloc(ex.n_conns ? ex.n_conns : 1, sizeof(*s->conns));
	for (size_t i = 0; s->conns && i < ex.n_conns; i++) {
		UpgradeConn *m = calloc(1, sizeof(*m));
		if (!m)
			break;
		nanoshim__shim__v1__upgrade_conn__init(m);
		m->fd = ex.conns[i].fd;
		m->partial.data = ex.conns[i].partial;
		m->partial.len = ex.conns[i].n_partial;
		ex.conns[i].partial = NULL;
		s->conns[s->n_conns++] = m;
		size_t k = 0;
		for (size_t j = 0; j < ex.n_calls; j++)
			k += ex.calls[j].conn_fd == m->fd;
		m->calls = calloc(k ? k : 1, sizeof(*m->calls));
		if (!m->calls)
			break;
		for (size_t j = 0; j < ex.n_calls; j++) {
			if (ex.calls[j].conn_fd != m->fd)
				continue;
			m->calls[m->n_calls].data = ex.calls[j].frame;
			m->calls[m->n_calls++].len = ex.calls[j].len;
			ex.calls[j].frame = NULL;
		}
	}
	bool short_of_memory = !s->conns || s->n_conns < ex.n_conns ||
	                       (s->n_conns && !s->conns[s->n_conns - 1]->calls);
	ttrpc_export_free(&ex);
	if (short_of_memory)
		goto nomem;
	if (s->n_listeners != 1) {
		ttrpc_status_set(st, TTRPC_FAILED_PRECONDITION,
		                 "the shim serves no single listening socket");
		rc = -EOPNOTSUPP;
		goto fail;
	}
	return 0;
nomem:
	ttrpc_status_set(st, TTRPC_RESOURCE_EXHAUSTED, "out of memory");
	rc = -ENOMEM;
fail:
	upgrade_state_release(s);
	return rc;
}

int upgrade_state_write(int fd, const UpgradeState *s)
{
	size_t n = protobuf_c_message_get_packed_size(&s->base);
	uint8_t *buf = malloc(n ? n : 1);
	if (!buf)
		return -ENOMEM;
	protobuf_c_message_pack(&s->base, buf);
	size_t off = 0;
	while (off < n) {
		ssize_t w = write(fd, buf + off, n - off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			int err = w < 0 ? errno : EIO;
			free(buf);
			return -err;
		}
		off += (size_t)w;
	}
	free(buf);
	return lseek(fd, 0, SEEK_SET) < 0 ? -errno : 0;
}

/* The state in fd, whatever its version. */
static int read_state(int fd, UpgradeState **out)
{
	*out = NULL;
	struct stat sb;
	if (fstat(fd, &sb) < 0)
		return -errno;
	if (sb.st_size <= 0 || sb.st_size > UPGRADE_STATE_MAX)
		return -EBADMSG;
	size_t n = (size_t)sb.st_size, off = 0;
	uint8_t *buf = malloc(n);
	if (!buf)
		return -ENOMEM;
	while (off < n) {
		ssize_t r = pread(fd, buf + off, n - off, (off_t)off);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			int err = r < 0 ? errno : EBADMSG;
			free(buf);
			return -err;
		}
		off += (size_t)r;
	}
	*out = nanoshim__shim__v1__upgrade_state__unpack(NULL, n, buf);
	free(buf);
	return *out ? 0 : -EBADMSG;
}

int upgrade_state_read(int fd, UpgradeState **out, uint32_t *version)
{
	*version = 0;
	int rc = read_state(fd, out);
	if (rc < 0)
		return rc;
	*version = (*out)->version;
	if ((*out)->version != UPGRADE_STATE_VERSION) {
		nanoshim__shim__v1__upgrade_state__free_unpacked(*out, NULL);
		*out = NULL;
		return -EPROTO;
	}
	return 0;
}

/* ---- handing over: the fds kept across exec ---- */

struct fdset {
	int *fds;
	size_t n, cap;
};

static int fdset_add(struct fdset *f, int fd)
{
	if (fd < 0)
		return 0;
	if (f->n == f->cap) {
		size_t cap = f->cap ? f->cap * 2 : 64;
		if (cap > UPGRADE_FDS_MAX)
			return -EMFILE;
		int *p = realloc(f->fds, cap * sizeof(int));
		if (!p)
			return -ENOMEM;
		f->fds = p;
		f->cap = cap;
	}
	f->fds[f->n++] = fd;
	return 0;
}

static int fdset_add_stdio(struct fdset *f, const UpgradeStdio *io)
{
	if (!io)
		return 0;
	const int fds[] = {io->in_src,  io->in_dst,  io->out_src,   io->out_dst,  io->err_src,
	                   io->err_dst, io->console, io->out_spool, io->err_spool};
	int rc = 0;
	for (size_t i = 0; i < sizeof(fds) / sizeof(fds[0]) && rc == 0; i++)
		rc = fdset_add(f, fds[i]);
	return rc;
}

/* Every fd the state names. */
static int state_fds(const UpgradeState *s, struct fdset *f)
{
	int rc = 0;
	for (size_t i = 0; i < s->n_listeners && rc == 0; i++)
		rc = fdset_add(f, s->listeners[i]);
	for (size_t i = 0; i < s->n_conns && rc == 0; i++)
		rc = fdset_add(f, s->conns[i]->fd);
	for (size_t i = 0; i < s->n_containers && rc == 0; i++) {
		const UpgradeContainer *c = s->containers[i];
		rc = fdset_add(f, c->bundle_fd);
		if (rc == 0 && c->init)
			rc = fdset_add_stdio(f, c->init->io);
		for (size_t j = 0; j < c->n_execs && rc == 0; j++)
			rc = fdset_add_stdio(f, c->execs[j]->io);
	}
	return rc;
}

static void set_cloexec(const struct fdset *f, bool on)
{
	for (size_t i = 0; i < f->n; i++)
		(void)fcntl(f->fds[i], F_SETFD, on ? FD_CLOEXEC : 0);
}

/* Calls fn on each process of the shim with its message in s (collected
 * from them, in the same order). */
static void each_process(UpgradeState *s, void (*fn)(struct process *, UpgradeProcess *, void *),
                         void *ud)
{
	size_t i = 0;
	for (struct container *c = shim.containers; c && i < s->n_containers; c = c->next, i++) {
		UpgradeContainer *mc = s->containers[i];
		if (mc->init)
			fn(&c->init, mc->init, ud);
		size_t j = 0;
		for (struct process *p = c->execs; p && j < mc->n_execs; p = p->next, j++)
			fn(p, mc->execs[j], ud);
	}
}

struct spools {
	int rc; /* the first failure */
};

static void take_spools(struct process *p, UpgradeProcess *m, void *ud)
{
	struct spools *sp = ud;
	if (!p->io || !m->io || sp->rc < 0)
		return;
	int rc = pio_spools_take(p->io, &m->io->out_spool, &m->io->err_spool);
	if (rc < 0)
		sp->rc = rc;
}

/* The spools back where they came from (the exec did not happen). */
static void give_spools(struct process *p, UpgradeProcess *m, void *ud)
{
	if (!p->io || !m->io)
		return;
	pio_spools_give(p->io, m->io->out_spool, m->io->err_spool);
	m->io->out_spool = m->io->err_spool = -1;
}

#define UPGRADE_ARGV_MAX 16

/* binary's command line to resume from the state in fd (fdarg: room for
 * the number): the serving shim's own flags, and -upgrade-fallback when the
 * state goes back to the binary that wrote it. */
static void resume_argv(const char *binary, int fd, bool fallback, char fdarg[16],
                        const char *argv[UPGRADE_ARGV_MAX])
{
	snprintf(fdarg, 16, "%d", fd);
	size_t n = 0;
	argv[n++] = binary;
	argv[n++] = "-namespace";
	argv[n++] = shim.ns;
	argv[n++] = "-id";
	argv[n++] = shim.id;
	argv[n++] = "-address";
	argv[n++] = shim.address;
	if (shim.debug)
		argv[n++] = "-debug";
	argv[n++] = "-upgrade-resume";
	argv[n++] = fdarg;
	if (fallback)
		argv[n++] = "-upgrade-fallback";
	argv[n] = NULL;
}

/* Collects the state, writes it and execs binary. Returns only on failure,
 * with st set and everything as it was: -EBUSY while something is in
 * motion, another -errno otherwise. */
static int upgrade_exec(const char *binary, struct ttrpc_call *call, int64_t held_ns,
                        struct ttrpc_status *st)
{
	UpgradeState s;
	int rc = upgrade_state_collect(call, &s, st);
	if (rc < 0)
		return rc;
	/* output spooled for readers that are away goes along, in memfds */
	struct spools sp = {0};
	each_process(&s, take_spools, &sp);
	if (sp.rc < 0) {
		each_process(&s, give_spools, NULL);
		ttrpc_status_set(st, ttrpc_code_from_errno(-sp.rc), "hand over spooled output: %s",
		                 strerror(-sp.rc));
		upgrade_state_release(&s);
		return sp.rc;
	}
	struct fdset fds = {0};
	int memfd = -1;
	s.reply_fd = call ? ttrpc_call_conn_fd(call) : -1;
	s.reply_stream_id = call ? ttrpc_call_stream_id(call) : 0;
	s.started_ns = mono_ns();
	s.held_ns = held_ns;
	s.new_binary = (char *)binary;
	char self[PATH_MAX];
	ssize_t sl = readlink("/proc/self/exe", self, sizeof(self) - 1);
	self[sl > 0 ? sl : 0] = '\0';
	s.old_binary = self;
	rc = state_fds(&s, &fds);
	if (rc == 0) {
		memfd =
		    memfd_create("nanoshim-upgrade", 0); /* no CLOEXEC: the new process reads it */
		rc = memfd < 0 ? -errno : upgrade_state_write(memfd, &s);
	}
	if (rc < 0) {
		ttrpc_status_set(st, ttrpc_code_from_errno(-rc), "write the state: %s",
		                 strerror(-rc));
		goto out;
	}
	char fdarg[16];
	const char *argv[UPGRADE_ARGV_MAX];
	resume_argv(binary, memfd, false, fdarg, argv);
	log_info("upgrade: %zu containers, %zu connections, %zu fds: exec %s", s.n_containers,
	         s.n_conns, fds.n, binary);
	/* the environment `start` gave us: the tunable we dropped for children back */
	char **env = shim_serve_env();
	set_cloexec(&fds, false);
	execve(binary, (char *const *)argv, env ? env : environ);
	rc = -errno;
	set_cloexec(&fds, true);
	shim_serve_env_free(env);
	ttrpc_status_set(st, ttrpc_code_from_errno(-rc), "exec %s: %s", binary, strerror(-rc));
out:
	if (memfd >= 0)
		close(memfd);
	free(fds.fds);
	each_process(&s, give_spools, NULL);
	upgrade_state_release(&s);
	return rc;
}

/* ---- the Upgrade call ---- */

struct upgrade_op {
	struct ttrpc_call *call; /* NULL for SIGHUP */
	char binary[PATH_MAX];
	pid_t pid;
	struct loop_timer *timer;
	int64_t held_ns; /* when requests were held back, 0 before */
};

static struct upgrade_op *current; /* one upgrade at a time */

static void op_end(struct upgrade_op *op, const struct ttrpc_status *st)
{
	loop_timer_cancel(op->timer);
	if (op->held_ns)
		ttrpc_server_hold(shim.server, false);
	if (op->call)
		ttrpc_call_fail_status(op->call, st);
	log_warn("upgrade to %s refused: %s", op->binary, st->message);
	current = NULL;
	free(op);
}

static void check_timeout(void *ud)
{
	struct upgrade_op *op = ud;
	op->timer = NULL;
	kill(op->pid, SIGKILL); /* not reaped yet: still the check's pid */
}

/* Requests held back: exec as soon as nothing is in motion. */
static void try_exec(void *ud)
{
	struct upgrade_op *op = ud;
	struct ttrpc_status st;
	op->timer = NULL;
	if (op->call && ttrpc_call_cancelled(op->call)) {
		ttrpc_status_set(&st, TTRPC_DEADLINE_EXCEEDED, "upgrade to %s: cancelled",
		                 op->binary);
		op_end(op, &st);
		return;
	}
	int rc = upgrade_exec(op->binary, op->call, op->held_ns, &st); /* only on failure */
	int64_t waited_ms = (mono_ns() - op->held_ns) / 1000000;
	if (rc == -EBUSY && waited_ms < UPGRADE_QUIESCE_MS) {
		op->timer = loop_add_timer_ms(shim.loop, UPGRADE_QUIESCE_POLL_MS, try_exec, op);
		if (op->timer)
			return;
	}
	char msg[sizeof(st.message)];
	snprintf(msg, sizeof(msg), "%s", st.message);
	if (rc == -EBUSY)
		ttrpc_status_set(&st, TTRPC_FAILED_PRECONDITION,
		                 "upgrade to %s: still busy after %lld ms: %s (retry)", op->binary,
		                 (long long)waited_ms, msg);
	else
		ttrpc_status_set(&st, st.code, "upgrade to %s: %s", op->binary, msg);
	op_end(op, &st);
}

/* The new binary said which state version it takes. */
static void check_done(pid_t pid, int status, const char *out, size_t outlen, const char *err,
                       size_t errlen, void *ud)
{
	struct upgrade_op *op = ud;
	struct ttrpc_status st;
	loop_timer_cancel(op->timer);
	op->timer = NULL;
	char *end = NULL;
	unsigned long v = status == 0 ? strtoul(out, &end, 10) : 0;
	if (status != 0 || !end || end == out || (*end && *end != '\n')) {
		ttrpc_status_set(&st, TTRPC_FAILED_PRECONDITION,
		                 "upgrade to %s: `%s -upgrade-version` %s%d: it cannot take a "
		                 "running shim's state",
		                 op->binary, op->binary,
		                 status ? "exited with status " : "printed no version, status ",
		                 status);
	} else if (v != UPGRADE_STATE_VERSION) {
		ttrpc_status_set(
		    &st, TTRPC_FAILED_PRECONDITION,
		    "upgrade to %s: it takes state version %lu, this shim hands over version %u",
		    op->binary, v, UPGRADE_STATE_VERSION);
	} else if (op->call && ttrpc_call_cancelled(op->call)) {
		ttrpc_status_set(&st, TTRPC_DEADLINE_EXCEEDED, "upgrade to %s: cancelled",
		                 op->binary);
	} else {
		/* no new request from here: what is in flight ends, then the exec */
		op->held_ns = mono_ns();
		ttrpc_server_hold(shim.server, true);
		try_exec(op);
		return;
	}
	op_end(op, &st);
}

static void upgrade_start(struct ttrpc_call *call, const char *binary)
{
	struct ttrpc_status st;
	struct stat sb;
	if (current) {
		ttrpc_status_set(&st, TTRPC_FAILED_PRECONDITION, "an upgrade is already under way");
		goto fail;
	}
	if (!binary || binary[0] != '/' || strlen(binary) >= PATH_MAX) {
		ttrpc_status_set(&st, TTRPC_INVALID_ARGUMENT,
		                 "upgrade: binary %s is not an absolute path",
		                 binary ? binary : "");
		goto fail;
	}
	int bad = stat(binary, &sb) < 0      ? errno
	          : !S_ISREG(sb.st_mode)     ? EACCES
	          : access(binary, X_OK) < 0 ? errno
	                                     : 0;
	if (bad) {
		ttrpc_status_set(&st, TTRPC_INVALID_ARGUMENT, "upgrade: %s: %s", binary,
		                 bad == EACCES ? "not an executable file" : strerror(bad));
		goto fail;
	}
	/* refuse at once what no waiting can change */
	Nanoshim__Shim__V1__UpgradeState s;
	int rc = upgrade_state_collect(call, &s, &st);
	if (rc < 0 && rc != -EBUSY) {
		char msg[sizeof(st.message)];
		snprintf(msg, sizeof(msg), "%s", st.message);
		ttrpc_status_set(&st, st.code, "upgrade to %s: %s", binary, msg);
		goto fail;
	}
	if (rc == 0)
		upgrade_state_release(&s);
	struct upgrade_op *op = calloc(1, sizeof(*op));
	if (!op) {
		ttrpc_status_set(&st, TTRPC_RESOURCE_EXHAUSTED, "out of memory");
		goto fail;
	}
	op->call = call;
	snprintf(op->binary, sizeof(op->binary), "%s", binary);
	const char *argv[] = {op->binary, "-upgrade-version", NULL};
	struct spawn_req req = {.argv = argv, .fds = {-1, -1, -1}, .flags = SPAWN_CAPTURE_STDOUT};
	op->pid = spawn_async(shim.loop, shim.reaper, &req, check_done, op);
	if (op->pid < 0) {
		ttrpc_status_set(&st, TTRPC_FAILED_PRECONDITION, "upgrade: run %s: %s", binary,
		                 strerror((int)-op->pid));
		free(op);
		goto fail;
	}
	op->timer = loop_add_timer_ms(shim.loop, UPGRADE_CHECK_TIMEOUT_MS, check_timeout, op);
	current = op;
	return;
fail:
	if (call)
		ttrpc_call_fail_status(call, &st);
	log_warn("%s", st.message);
}

static void upgrade_call(struct ttrpc_call *call, const ProtobufCMessage *m, void *ud)
{
	const Nanoshim__Shim__V1__UpgradeRequest *req = (const void *)m;
	upgrade_start(call, req->binary);
}

void upgrade_on_sighup(void)
{
	char self[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n <= 0) {
		log_warn("upgrade on SIGHUP: /proc/self/exe: %s", strerror(errno));
		return;
	}
	self[n] = '\0';
	/* replaced on disk: the kernel names the old inode "PATH (deleted)" */
	static const char deleted[] = " (deleted)";
	size_t dl = sizeof(deleted) - 1;
	if ((size_t)n > dl && strcmp(self + n - dl, deleted) == 0)
		self[n - dl] = '\0';
	log_info("SIGHUP: upgrading to %s", self);
	upgrade_start(NULL, self);
}

static const ttrpc_handler_fn upgrade_handlers[] = {upgrade_call};

int upgrade_register(struct ttrpc_server *s)
{
	return ttrpc_server_register(s, &nanoshim__shim__v1__upgrade__descriptor, upgrade_handlers,
	                             NULL);
}

/* ---- the new process ---- */

static UpgradeState *resumed; /* from upgrade_resume_begin to _finish */

static bool fallen_back; /* -upgrade-fallback: the Upgrade call is answered with a refusal */

/* The new binary cannot read the state (it said it could): hand it back to
 * the binary that wrote it, which serves on and answers the Upgrade call
 * with the refusal. Returns only when that cannot be done. */
static void fall_back(int fd, const UpgradeState *st)
{
	char self[PATH_MAX];
	ssize_t sl = readlink("/proc/self/exe", self, sizeof(self) - 1);
	self[sl > 0 ? sl : 0] = '\0';
	const char *old = st->old_binary;
	static const char deleted[] = " (deleted)";
	size_t n = old ? strlen(old) : 0, dl = sizeof(deleted) - 1;
	if (!n || old[0] != '/' || (n > dl && strcmp(old + n - dl, deleted) == 0) ||
	    strcmp(old, self) == 0) {
		log_error("upgrade: cannot hand the state back to %s", n ? old : "(unknown)");
		return;
	}
	char fdarg[16];
	const char *argv[UPGRADE_ARGV_MAX];
	resume_argv(old, fd, true, fdarg, argv);
	log_error("upgrade: state version %u, this binary takes %u: handing it back to %s",
	          st->version, UPGRADE_STATE_VERSION, old);
	char **env = shim_serve_env();
	execve(old, (char *const *)argv, env ? env : environ);
	shim_serve_env_free(env);
	log_error("upgrade: exec %s: %s", old, strerror(errno));
}

int upgrade_resume_begin(int fd, struct ttrpc_server *s, bool fallback)
{
	fallen_back = fallback;
	int rc = read_state(fd, &resumed);
	if (rc == 0 && resumed->version != UPGRADE_STATE_VERSION) {
		if (!fallback)
			fall_back(fd, resumed); /* returns only when it cannot */
		else
			log_error("upgrade: state version %u handed back, this binary takes %u",
			          resumed->version, UPGRADE_STATE_VERSION);
		nanoshim__shim__v1__upgrade_state__free_unpacked(resumed, NULL);
		resumed = NULL;
		rc = -EPROTO;
	}
	close(fd);
	if (rc < 0)
		return rc;
	if (resumed->n_listeners != 1)
		return -EBADMSG;
	for (size_t i = 0; i < resumed->n_conns; i++) {
		const UpgradeConn *c = resumed->conns[i];
		rc = ttrpc_server_adopt_conn(s, c->fd, c->partial.data, c->partial.len);
		if (rc < 0)
			log_error("upgrade: connection on fd %d: %s", c->fd, strerror(-rc));
	}
	return resumed->listeners[0];
}

static char *dup_or_null(const char *s)
{
	return s && s[0] ? strdup(s) : NULL;
}

static uint64_t resumed_spooled; /* bytes of spooled output handed over */

static void count_spool(int fd)
{
	struct stat sb;
	if (fd >= 0 && fstat(fd, &sb) == 0)
		resumed_spooled += (uint64_t)sb.st_size;
}

static void resume_process(struct process *p, struct container *c, const UpgradeProcess *m)
{
	p->c = c;
	p->pidfd = -1;
	p->exec_id = dup_or_null(m->exec_id);
	p->state = (enum proc_state)m->state;
	p->pid = m->pid;
	p->exit_status = m->exit_status;
	p->exited_at.tv_sec = m->exited_sec;
	p->exited_at.tv_nsec = m->exited_nsec;
	p->stdin_path = strdup(m->stdin);
	p->stdout_path = strdup(m->stdout);
	p->stderr_path = strdup(m->stderr);
	p->terminal = m->terminal;
	if (m->spec.len) {
		p->spec = malloc(m->spec.len);
		if (p->spec) {
			memcpy(p->spec, m->spec.data, m->spec.len);
			p->spec_len = m->spec.len;
		}
	}
	p->start_announced = m->start_announced;
	p->reaped = m->reaped;
	if (m->io) {
		const UpgradeStdio *io = m->io;
		struct pio_export e = {.in_src = io->in_src,
		                       .in_dst = io->in_dst,
		                       .out_src = io->out_src,
		                       .out_dst = io->out_dst,
		                       .err_src = io->err_src,
		                       .err_dst = io->err_dst,
		                       .console = io->console,
		                       .in_finishing = io->in_finishing,
		                       .terminal = io->terminal,
		                       .logger = io->logger,
		                       .out_spool = io->out_spool,
		                       .err_spool = io->err_spool};
		count_spool(io->out_spool);
		count_spool(io->err_spool);
		struct pio_config pc = {.reaper = shim.reaper,
		                        .spool_max = c->spool_max,
		                        .spool_dir = c->bundle,
		                        .ns = shim.ns,
		                        .id = c->id,
		                        .exec_id = p->exec_id};
		p->io = pio_import(shim.loop, &pc, &e);
	}
}

static struct container *resume_container(const UpgradeContainer *m)
{
	struct container *c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	c->id = strdup(m->id);
	c->bundle = strdup(m->bundle);
	c->bundle_fd = m->bundle_fd;
	if (c->bundle_fd >= 0)
		(void)fcntl(c->bundle_fd, F_SETFD, FD_CLOEXEC);
	snprintf(c->runc_root, sizeof(c->runc_root), "%s", m->runc_root);
	snprintf(c->runc_binary, sizeof(c->runc_binary), "%s", m->runc_binary);
	snprintf(c->criu_path, sizeof(c->criu_path), "%s", m->criu_path);
	c->runc.binary = c->runc_binary;
	c->runc.root = c->runc_root;
	c->runc.criu = c->criu_path[0] ? c->criu_path : NULL;
	c->runc.systemd_cgroup = m->systemd_cgroup;
	c->runc.log_dir = c->bundle;
	c->no_pivot_root = m->no_pivot_root;
	c->no_new_keyring = m->no_new_keyring;
	c->io_uid = m->io_uid;
	c->io_gid = m->io_gid;
	c->criu_image_path = dup_or_null(m->criu_image_path);
	c->criu_work_path = dup_or_null(m->criu_work_path);
	c->rootfs_mounted = m->rootfs_mounted;
	c->private_pidns = m->private_pidns;
	c->spool_max = m->spool_max;
	if (m->init)
		resume_process(&c->init, c, m->init);
	struct process **tail = &c->execs;
	for (size_t i = 0; i < m->n_execs; i++) {
		struct process *p = calloc(1, sizeof(*p));
		if (!p)
			break;
		resume_process(p, c, m->execs[i]);
		*tail = p;
		tail = &p->next;
	}
	return c;
}

/* A process still running at the exec: held again by a pidfd, or, if it
 * exited meanwhile (the new reaper has reaped it), its exit goes the usual
 * way: recorded, output drained, announced. */
static void resume_track(struct process *p)
{
	if (p->state == PROC_STOPPED || p->reaped || p->pid <= 0)
		return;
	process_track_pid(p, p->pid, 0);
}

int upgrade_event_requeue(const Nanoshim__Shim__V1__UpgradeEvent *m)
{
	struct events_item it = {.topic = m->topic,
	                         .type_url = m->type_url,
	                         .value = m->value.data,
	                         .len = m->value.len,
	                         .oom_id = m->oom_id,
	                         .ts = {.tv_sec = m->ts_sec, .tv_nsec = m->ts_nsec}};
	return events_requeue(&it);
}

int upgrade_resume_finish(void)
{
	if (!resumed)
		return -EINVAL;
	UpgradeState *s = resumed;
	/* the events the old process had not delivered go first, in order */
	for (size_t i = 0; i < s->n_events; i++)
		if (upgrade_event_requeue(s->events[i]) < 0)
			log_error("upgrade: event %s: out of memory: it is lost", s->events[i]->topic);
	/* in reverse: container_add prepends, the list keeps its order */
	for (size_t i = s->n_containers; i-- > 0;) {
		struct container *c = resume_container(s->containers[i]);
		if (!c) {
			log_error("upgrade: container %s: out of memory", s->containers[i]->id);
			continue;
		}
		container_add(c);
	}
	/* OOM watches first: an init found dead below has its OOM read before
	 * its exit is announced */
	for (size_t i = 0; i < s->n_containers; i++) {
		struct container *c = container_find(s->containers[i]->id);
		if (c && s->containers[i]->oom_watched && c->init.state != PROC_STOPPED)
			oom_watch_start(c);
	}
	for (struct container *c = shim.containers; c; c = c->next) {
		for (struct process *p = c->execs; p; p = p->next)
			resume_track(p);
		resume_track(&c->init);
	}
	char self[PATH_MAX];
	ssize_t sl = readlink("/proc/self/exe", self, sizeof(self) - 1);
	self[sl > 0 ? sl : 0] = '\0';
	/* the Waits the old process held, asked again now that the processes exist */
	size_t replayed = 0;
	for (size_t k = 0; k < s->n_conns; k++) {
		const UpgradeConn *cn = s->conns[k];
		for (size_t j = 0; j < cn->n_calls; j++) {
			int rc = ttrpc_server_replay(shim.server, cn->fd, cn->calls[j].data,
			                             cn->calls[j].len);
			if (rc < 0)
				log_warn("upgrade: a call on fd %d: %s", cn->fd, strerror(-rc));
			else
				replayed++;
		}
	}
	int64_t took = mono_ns() - s->started_ns;
	int64_t held = s->held_ns ? s->started_ns - s->held_ns : 0;
	if (!fallen_back)
		log_info("upgraded from %s in %.3f ms (after %.3f ms for calls in flight): %zu "
		         "containers, %zu connections, %zu waits, %zu events, %llu bytes of "
		         "spooled output",
		         s->old_binary, (double)took / 1e6, (double)held / 1e6, s->n_containers,
		         s->n_conns, replayed, s->n_events, (unsigned long long)resumed_spooled);
	if (fallen_back) {
		log_warn("upgrade to %s refused: it could not take the state; serving on as %s",
		         s->new_binary, self);
		if (s->reply_fd >= 0) {
			struct ttrpc_status st;
			ttrpc_status_set(
			    &st, TTRPC_FAILED_PRECONDITION,
			    "upgrade to %s: it could not take the state (version %u) and "
			    "handed it back: the shim serves on as %s",
			    s->new_binary, s->version, self);
			int rc = ttrpc_server_respond_status(shim.server, s->reply_fd,
			                                     s->reply_stream_id, &st);
			if (rc < 0)
				log_warn("upgrade: answer the Upgrade call: %s", strerror(-rc));
		}
	} else if (s->reply_fd >= 0) {
		Nanoshim__Shim__V1__UpgradeResponse r = NANOSHIM__SHIM__V1__UPGRADE_RESPONSE__INIT;
		r.pid = (uint32_t)getpid();
		r.binary = self;
		r.state_version = UPGRADE_STATE_VERSION;
		r.duration_ns = (uint64_t)took;
		r.quiesce_ns = (uint64_t)held;
		r.events = (uint32_t)s->n_events;
		r.spooled_bytes = resumed_spooled;
		r.containers = (uint32_t)s->n_containers;
		r.connections = (uint32_t)s->n_conns;
		int rc =
		    ttrpc_server_respond(shim.server, s->reply_fd, s->reply_stream_id, &r.base);
		if (rc < 0)
			log_warn("upgrade: answer the Upgrade call: %s", strerror(-rc));
	}
	nanoshim__shim__v1__upgrade_state__free_unpacked(s, NULL);
	resumed = NULL;
	return 0;
}
