/* nanoshim.v1.Manager: each handler checks its request, finds the container
 * and turns the call into Task calls on that container's shim, answering when
 * the shim has; no handler blocks the loop. */
#include "nanoshimd.h"
#include "atomic.h"
#include "caps.h"
#include "log.h"
#include "netns.h"
#include "procspec.h"
#include "specgen.h"
#include "state.h"

#include "containerd/task/v2/shim.pb-c.h"
#include "containerd/runc/v1/oci.pb-c.h"
#include "google/protobuf/empty.pb-c.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysinfo.h>
#include <unistd.h>

#define RUNC_OPTIONS_URL "containerd.runc.v1.Options"
#define PROCESS_SPEC_URL "types.containerd.io/opencontainers/runtime-spec/1/Process"
#define RESOURCES_URL "types.containerd.io/opencontainers/runtime-spec/1/LinuxResources"

/* ---- lookups ------------------------------------------------------------- */

static bool valid_ref(struct ttrpc_call *call, const char *verb, const char *ns, const char *id,
		      const char *exec_id)
{
	struct ttrpc_status st;
	if (bundle_validate_id("namespace", ns, &st) < 0 || bundle_validate_id("container id", id, &st) < 0 ||
	    (exec_id && exec_id[0] && bundle_validate_id("exec id", exec_id, &st) < 0)) {
		ttrpc_call_fail(call, st.code, "%s: %s", verb, st.message);
		return false;
	}
	return true;
}

static struct ctr *find(struct daemon *d, struct ttrpc_call *call, const char *verb,
			const char *ns_in, const char *id)
{
	const char *ns = ns_or_default(ns_in);
	if (!valid_ref(call, verb, ns, id, NULL))
		return NULL;
	struct ctr *c = ctr_find(d, ns, id);
	if (!c)
		ttrpc_call_fail(call, TTRPC_NOT_FOUND, "%s %s: container \"%s\" not found in namespace \"%s\"",
				verb, id, id, ns);
	return c;
}

static struct proc *find_proc(struct ctr *c, struct ttrpc_call *call, const char *verb,
			      const char *exec_id)
{
	struct proc *p = ctr_proc(c, exec_id);
	if (!p)
		ttrpc_call_fail(call, TTRPC_NOT_FOUND, "%s %s: exec \"%s\" not found", verb, c->id,
				exec_id);
	return p;
}

/* The shim must answer: false (and the call failed) when it cannot. */
static bool shim_ready(struct ctr *c, struct ttrpc_call *call, const char *verb)
{
	switch (c->shim_state) {
	case SHIM_CONNECTED:
		if (c->client)
			return true;
		break;
	case SHIM_STARTING:
		ttrpc_call_fail(call, TTRPC_FAILED_PRECONDITION, "%s %s: its shim is still starting",
				verb, c->id);
		return false;
	case SHIM_UNREACHABLE:
		ttrpc_call_fail(call, TTRPC_UNAVAILABLE, "%s %s: its shim does not answer (retrying)",
				verb, c->id);
		return false;
	case SHIM_GONE:
		break;
	}
	ttrpc_call_fail(call, TTRPC_FAILED_PRECONDITION,
			"%s %s: its shim is gone (the container has exited; delete it)", verb, c->id);
	return false;
}

/* ---- forwarding a call to the shim ---------------------------------------- */

typedef void (*fwd_ok_fn)(struct ctr *c, struct ttrpc_call *call, ProtobufCMessage *reply,
			  void *arg);

struct start_arg {
	char exec_id[BUNDLE_ID_MAX + 1];
};

/* Runs instead of ok when the call fails, however early: frees what arg
 * owns and takes back what the handler had already done. */
typedef void (*fwd_undo_fn)(struct ctr *c, void *arg);

struct fwd {
	struct ttrpc_call *call;
	char verb[32];
	fwd_ok_fn ok;
	void *arg;
	fwd_undo_fn undo;
};

static void free_arg(struct ctr *c, void *arg)
{
	free(arg);
}

static void reply_empty(struct ttrpc_call *call)
{
	Google__Protobuf__Empty e = GOOGLE__PROTOBUF__EMPTY__INIT;
	ttrpc_call_reply(call, &e.base);
}

static void on_fwd(struct ctr *c, const struct ttrpc_status *st, ProtobufCMessage *reply, void *ud)
{
	struct fwd *f = ud;
	if (st->code != TTRPC_OK) {
		ttrpc_call_fail(f->call, st->code, "%s %s: %s", f->verb, c->id, st->message);
		if (f->undo)
			f->undo(c, f->arg);
	} else if (f->ok)
		f->ok(c, f->call, reply, f->arg);
	else
		reply_empty(f->call);
	free(f);
}

/* Sends method to c's shim; ok gets the reply (arg with it), or undo runs
 * (may be NULL) when the call fails before ok can. */
static void forward_arg(struct ctr *c, struct ttrpc_call *call, const char *verb,
			const char *method, const ProtobufCMessage *req,
			const ProtobufCMessageDescriptor *reply_desc, fwd_ok_fn ok, void *arg,
			fwd_undo_fn undo)
{
	if (!shim_ready(c, call, verb)) {
		if (undo)
			undo(c, arg);
		return;
	}
	struct fwd *f = calloc(1, sizeof(*f));
	if (!f) {
		ttrpc_call_fail(call, TTRPC_RESOURCE_EXHAUSTED, "%s %s: out of memory", verb, c->id);
		if (undo)
			undo(c, arg);
		return;
	}
	f->call = call;
	snprintf(f->verb, sizeof(f->verb), "%s", verb);
	f->ok = ok;
	f->arg = arg;
	f->undo = undo;
	int rc = shim_call(c, method, req, reply_desc, NANOSHIMD_CALL_TIMEOUT_NS, on_fwd, f);
	if (rc < 0) {
		ttrpc_call_fail(call, TTRPC_UNAVAILABLE, "%s %s: shim call: %s", verb, c->id,
				strerror(-rc));
		free(f);
		if (undo)
			undo(c, arg);
	}
}

static void forward(struct ctr *c, struct ttrpc_call *call, const char *verb, const char *method,
		    const ProtobufCMessage *req, const ProtobufCMessageDescriptor *reply_desc,
		    fwd_ok_fn ok, void *arg)
{
	forward_arg(c, call, verb, method, req, reply_desc, ok, arg, NULL);
}

/* ---- Container messages ----------------------------------------------------- */

/* A process as a message: its paths are made to measure (a List of a thousand
 * containers would otherwise build megabytes of fixed path buffers, and fault
 * them in, for a reply of a few hundred KiB). */
struct proc_msg {
	Nanoshim__V1__Process m;
	Google__Protobuf__Timestamp ts;
	char *in, *out;
};

static char *proc_path_dup(const struct proc *p, const char *what)
{
	char path[4200];
	proc_path(p, what, path, sizeof(path));
	return strdup(path);
}

static int fill_proc(const struct proc *p, struct proc_msg *pm)
{
	nanoshim__v1__process__init(&pm->m);
	pm->m.exec_id = (char *)p->exec_id;
	pm->m.pid = p->pid;
	pm->m.status = p->status;
	pm->m.terminal = p->terminal;
	if (p->exited) {
		pm->m.exit_status = p->exit_status;
		google__protobuf__timestamp__init(&pm->ts);
		timespec_to_pb(&p->exited_at, &pm->ts);
		pm->m.exited_at = &pm->ts;
	}
	/* one log for both streams, as a shim writes a file:// stdout URI */
	pm->out = proc_path_dup(p, "log");
	pm->in = p->stdin ? proc_path_dup(p, "stdin") : NULL;
	if (!pm->out || (p->stdin && !pm->in))
		return -ENOMEM;
	pm->m.stdout_path = pm->out;
	pm->m.stderr_path = "";
	pm->m.stdin_path = pm->in ? pm->in : "";
	return 0;
}

struct ctr_msg {
	Nanoshim__V1__Container m;
	struct proc_msg init;
	struct proc_msg *execs;
	size_t n_execs; /* filled (or begun) so far: what free_ctr_msg frees */
	Nanoshim__V1__Process **exec_ptrs;
};

static int fill_ctr(const struct ctr *c, struct ctr_msg *cm)
{
	nanoshim__v1__container__init(&cm->m);
	cm->m.namespace_ = (char *)c->ns;
	cm->m.id = (char *)c->id;
	cm->m.bundle = (char *)c->bundle;
	int rc = fill_proc(&c->init, &cm->init);
	cm->m.init = &cm->init.m;
	cm->m.shim_address = (char *)c->shim_address;
	cm->m.shim_pid = (uint32_t)c->shim_pid;
	if (c->record) {
		cm->m.created_at = c->record->created_at;
		cm->m.shim_binary = c->record->shim_binary;
		cm->m.runtime = c->record->runtime;
	}
	if (rc < 0)
		return rc;
	size_t n = 0;
	for (struct proc *p = c->execs; p; p = p->next)
		n++;
	cm->execs = calloc(n ? n : 1, sizeof(*cm->execs));
	cm->exec_ptrs = calloc(n ? n : 1, sizeof(*cm->exec_ptrs));
	if (!cm->execs || !cm->exec_ptrs)
		return -ENOMEM;
	for (struct proc *p = c->execs; p; p = p->next) {
		struct proc_msg *pm = &cm->execs[cm->n_execs];
		cm->exec_ptrs[cm->n_execs++] = &pm->m;
		if ((rc = fill_proc(p, pm)) < 0)
			return rc;
	}
	cm->m.n_execs = cm->n_execs;
	cm->m.execs = cm->exec_ptrs;
	return 0;
}

static void free_proc_msg(struct proc_msg *pm)
{
	free(pm->in);
	free(pm->out);
}

static void free_ctr_msg(struct ctr_msg *cm)
{
	free_proc_msg(&cm->init);
	for (size_t i = 0; cm->execs && i < cm->n_execs; i++)
		free_proc_msg(&cm->execs[i]);
	free(cm->execs);
	free(cm->exec_ptrs);
}

static void reply_ctr(struct ttrpc_call *call, const struct ctr *c)
{
	struct ctr_msg *cm = calloc(1, sizeof(*cm));
	if (!cm || fill_ctr(c, cm) < 0) {
		ttrpc_call_fail(call, TTRPC_RESOURCE_EXHAUSTED, "out of memory");
	} else {
		ttrpc_call_reply(call, &cm->m.base);
	}
	if (cm)
		free_ctr_msg(cm);
	free(cm);
}

/* ---- Create ----------------------------------------------------------------- */

static int fail_create(struct ttrpc_call *call, int code, const char *id, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static int fail_create(struct ttrpc_call *call, int code, const char *id, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	ttrpc_call_fail(call, code, "create %s: %s", id, msg);
	return -1;
}

/* The binary as posix_spawnp would find it: absolute paths checked as they are. */
static bool runnable(const char *bin, char *path, size_t len)
{
	if (strchr(bin, '/')) {
		snprintf(path, len, "%s", bin);
		return access(bin, X_OK) == 0;
	}
	const char *env = getenv("PATH");
	char buf[4096];
	snprintf(buf, sizeof(buf), "%s", env ? env : "/usr/local/bin:/usr/bin:/bin");
	for (char *save, *dir = strtok_r(buf, ":", &save); dir; dir = strtok_r(NULL, ":", &save)) {
		snprintf(path, len, "%s/%s", dir, bin);
		if (access(path, X_OK) == 0)
			return true;
	}
	return false;
}

static int copy_bundle_config(const char *from, const char *to, char *err, size_t errlen)
{
	char src[4200];
	snprintf(src, sizeof(src), "%s/config.json", from);
	char *buf;
	size_t len;
	int rc = bundle_read_file(AT_FDCWD, src, &buf, &len, 4u << 20);
	if (rc < 0) {
		snprintf(err, errlen, "bundle %s: config.json: %s", from, strerror(-rc));
		return rc;
	}
	char *out = NULL;
	size_t outlen = 0;
	rc = procspec_absolute_root(buf, len, from, &out, &outlen, err, errlen);
	free(buf);
	if (rc < 0)
		return rc;
	int dfd = open(to, O_PATH | O_DIRECTORY | O_CLOEXEC);
	rc = dfd < 0 ? -errno : bundle_write_file_atomic(dfd, "config.json", out, outlen, 0644);
	if (dfd >= 0)
		close(dfd);
	free(out);
	if (rc < 0)
		snprintf(err, errlen, "write config.json: %s", strerror(-rc));
	return rc;
}

static void create_task(struct ctr *c, struct ttrpc_call *call);

static void ignore_reply(struct ctr *c, const struct ttrpc_status *st, ProtobufCMessage *reply,
			 void *ud)
{
}

static void destroy_after_cleanup(struct ctr *c, void *ud)
{
	ctr_destroy(c);
}

static void undo_create(struct ctr *c)
{
	if (c->client && ttrpc_client_closed(c->client)) {
		/* the shim died during the create: its delete action removes what
		 * the runtime made (a created container waits in runc init) */
		log_warn("%s/%s: its shim died during create; cleaning up with its delete action",
			 c->ns, c->id);
		c->shutting_down = true;
		shim_cleanup_dead(c, destroy_after_cleanup, NULL);
		return;
	}
	c->shutting_down = true;
	if (c->client) {
		Containerd__Task__V2__ShutdownRequest sr = CONTAINERD__TASK__V2__SHUTDOWN_REQUEST__INIT;
		sr.id = c->id;
		sr.now = true;
		/* the shim exits and closes; the bundle goes now */
		shim_call(c, "Shutdown", &sr.base, &google__protobuf__empty__descriptor,
			  NANOSHIMD_CALL_TIMEOUT_NS, ignore_reply, NULL);
	}
	ctr_destroy(c);
}

static void on_shim_started(struct ctr *c, int err, const char *msg, void *ud)
{
	struct ttrpc_call *call = ud;
	if (err < 0) {
		ttrpc_call_fail(call, TTRPC_UNAVAILABLE, "create %s: %s", c->id, msg);
		if (!c->removed)
			undo_create(c);
		return;
	}
	create_task(c, call);
}

static void on_task_created(struct ctr *c, const struct ttrpc_status *st, ProtobufCMessage *reply,
			    void *ud)
{
	struct ttrpc_call *call = ud;
	if (st->code == TTRPC_DEADLINE_EXCEEDED && c->client && !ttrpc_client_closed(c->client)) {
		/* --start-timeout: the shim (or the runtime under it) hangs in the
		 * create; it goes, and its delete action removes what it made */
		char msg[200];
		snprintf(msg, sizeof(msg),
			 "not created within the start timeout (%lld ms): its shim is killed and cleaned up",
			 (long long)(c->d->cfg.start_timeout_ns / 1000000));
		ttrpc_call_fail(call, TTRPC_DEADLINE_EXCEEDED, "create %s: %s", c->id, msg);
		log_warn("%s/%s: %s", c->ns, c->id, msg);
		events_publish(c->d, c->ns, "/nanoshim/start-timeout", NULL, c->id, NULL, 0, 0, msg);
		c->shutting_down = true;
		shim_kill_and_cleanup(c, destroy_after_cleanup, NULL);
		return;
	}
	if (st->code != TTRPC_OK) {
		ttrpc_call_fail(call, st->code, "create %s: %s", c->id, st->message);
		undo_create(c);
		return;
	}
	Containerd__Task__V2__CreateTaskResponse *r = (void *)reply;
	c->init.pid = r->pid;
	c->init.status = NANOSHIM__V1__STATUS__STATUS_CREATED;
	crash_point(c->d, "create-task-created");
	shim_wait(&c->init);
	events_publish(c->d, c->ns, "/nanoshim/create", NULL, c->id, NULL, r->pid, 0, "created");
	reply_ctr(call, c);
}

static void create_task(struct ctr *c, struct ttrpc_call *call)
{
	const Nanoshim__V1__CreateRequest *q = c->record->request;
	char out[4200], in[4200];
	proc_path(&c->init, "log", out, sizeof(out));
	proc_path(&c->init, "stdin", in, sizeof(in));
	/* a file:// stdout takes stderr too (the Go shim ignores the stderr URI
	 * then); a relayed terminal goes to its FIFO */
	char out_uri[4300];
	if (c->init.tty_relay)
		proc_path(&c->init, "tty", out_uri, sizeof(out_uri));
	else
		snprintf(out_uri, sizeof(out_uri), "file://%s", out);
	Containerd__Runc__V1__Options o = CONTAINERD__RUNC__V1__OPTIONS__INIT;
	o.binary_name = c->record->runtime;
	uint8_t obuf[8192];
	size_t olen = containerd__runc__v1__options__get_packed_size(&o);
	if (olen > sizeof(obuf)) {
		ttrpc_call_fail(call, TTRPC_INVALID_ARGUMENT, "create %s: runtime path too long", c->id);
		undo_create(c);
		return;
	}
	containerd__runc__v1__options__pack(&o, obuf);
	Google__Protobuf__Any any = GOOGLE__PROTOBUF__ANY__INIT;
	any.type_url = RUNC_OPTIONS_URL;
	any.value.data = obuf;
	any.value.len = olen;
	Containerd__Task__V2__CreateTaskRequest r = CONTAINERD__TASK__V2__CREATE_TASK_REQUEST__INIT;
	r.id = c->id;
	r.bundle = c->bundle;
	r.terminal = q->terminal;
	r.stdin = q->stdin ? in : "";
	r.stdout = out_uri;
	r.stderr = q->terminal ? "" : out_uri;
	r.options = &any;
	int64_t deadline = c->d->cfg.start_timeout_ns > 0 ? c->d->cfg.start_timeout_ns
							    : NANOSHIMD_CALL_TIMEOUT_NS;
	int rc = shim_call(c, "Create", &r.base, &containerd__task__v2__create_task_response__descriptor,
			   deadline, on_task_created, call);
	if (rc < 0) {
		ttrpc_call_fail(call, TTRPC_UNAVAILABLE, "create %s: shim call: %s", c->id, strerror(-rc));
		undo_create(c);
	}
}

/* protobuf-c's repeated strings as the NULL-terminated arrays specgen and caps
 * take (the strings are not copied). */
static char **nullterm(char **v, size_t n)
{
	char **out = calloc(n + 1, sizeof(char *));
	if (out && n)
		memcpy(out, v, n * sizeof(char *));
	return out;
}

static int make_dir(const char *path, mode_t mode)
{
	if (mkdir(path, mode) < 0 && errno != EEXIST)
		return -errno;
	return 0;
}

static void h_create(struct ttrpc_call *call, const ProtobufCMessage *m, void *ud)
{
	struct daemon *d = ud;
	const Nanoshim__V1__CreateRequest *q = (const void *)m;
	const char *ns = ns_or_default(q->namespace_);
	if (!valid_ref(call, "create", ns, q->id, NULL))
		return;
	if (ctr_find(d, ns, q->id)) {
		fail_create(call, TTRPC_ALREADY_EXISTS, q->id, "container \"%s\" already exists in namespace \"%s\"",
			    q->id, ns);
		return;
	}
	bool has_bundle = q->bundle && q->bundle[0], has_rootfs = q->rootfs && q->rootfs[0];
	if (has_bundle == has_rootfs) {
		fail_create(call, TTRPC_INVALID_ARGUMENT, q->id, "give either a rootfs or a bundle");
		return;
	}
	const char *src = has_bundle ? q->bundle : q->rootfs;
	const char *what = has_bundle ? "bundle" : "rootfs";
	struct stat sb;
	if (src[0] != '/') {
		fail_create(call, TTRPC_INVALID_ARGUMENT, q->id, "%s %s: not an absolute path", what, src);
		return;
	}
	if (stat(src, &sb) < 0) {
		fail_create(call, TTRPC_INVALID_ARGUMENT, q->id, "%s %s: %s", what, src, strerror(errno));
		return;
	}
	if (!S_ISDIR(sb.st_mode)) {
		fail_create(call, TTRPC_INVALID_ARGUMENT, q->id, "%s %s: not a directory", what, src);
		return;
	}
	if (has_rootfs && q->n_args == 0) {
		fail_create(call, TTRPC_INVALID_ARGUMENT, q->id, "no command to run");
		return;
	}
	if (has_bundle && (q->n_args || q->n_env || (q->cwd && q->cwd[0]) || (q->user && q->user[0]) ||
			   q->n_cap_add || q->n_cap_drop || q->memory || q->cpus > 0)) {
		fail_create(call, TTRPC_INVALID_ARGUMENT, q->id,
			    "bundle %s: its config.json says what to run; a command, --env, --cwd, --user, "
			    "capabilities and limits go with --rootfs only", q->bundle);
		return;
	}
	const char *runtime = q->runtime_binary && q->runtime_binary[0] ? q->runtime_binary : d->cfg.runtime;
	char rpath[4200];
	if (!runnable(runtime, rpath, sizeof(rpath))) {
		fail_create(call, TTRPC_INVALID_ARGUMENT, q->id, "runtime %s: not found or not executable",
			    runtime);
		return;
	}
	char errbuf[512] = "";
	/* capabilities first: nothing is made for a request that names a bad one */
	char **add = nullterm(q->cap_add, q->n_cap_add), **drop = nullterm(q->cap_drop, q->n_cap_drop);
	char **caps = add && drop ? caps_effective((const char *const *)add, (const char *const *)drop,
						   errbuf, sizeof(errbuf))
				  : NULL;
	free(add);
	free(drop);
	if (!caps) {
		fail_create(call, errbuf[0] ? TTRPC_INVALID_ARGUMENT : TTRPC_RESOURCE_EXHAUSTED, q->id, "%s",
			    errbuf[0] ? errbuf : "out of memory");
		return;
	}
	caps_free(caps);
	char nsdir[4200], bundle[4200], netns[4200] = "";
	snprintf(nsdir, sizeof(nsdir), "%s/%s", d->cfg.state, ns);
	snprintf(bundle, sizeof(bundle), "%s/%s", nsdir, q->id);
	int rc = make_dir(nsdir, 0711);
	if (rc == 0 && mkdir(bundle, 0711) < 0)
		rc = -errno;
	if (rc < 0) {
		fail_create(call, rc == -EEXIST ? TTRPC_ALREADY_EXISTS : TTRPC_INTERNAL, q->id, "bundle %s: %s",
			    bundle, strerror(-rc));
		return;
	}
	struct ctr *c = ctr_new(d, ns, q->id);
	if (!c) {
		bundle_state_remove(d->cfg.state, ns, q->id);
		fail_create(call, TTRPC_RESOURCE_EXHAUSTED, q->id, "out of memory");
		return;
	}
	Nanoshim__V1__Record *r = calloc(1, sizeof(*r));
	Google__Protobuf__Timestamp *ts = calloc(1, sizeof(*ts));
	if (!r || !ts) {
		free(r);
		free(ts);
		ctr_destroy(c);
		fail_create(call, TTRPC_RESOURCE_EXHAUSTED, q->id, "out of memory");
		return;
	}
	/* the record owns a copy of the request: pack and unpack it */
	nanoshim__v1__record__init(r);
	google__protobuf__timestamp__init(ts);
	struct timespec now;
	clock_gettime(CLOCK_REALTIME, &now);
	timespec_to_pb(&now, ts);
	r->created_at = ts;
	size_t qlen = nanoshim__v1__create_request__get_packed_size(q);
	uint8_t *qbuf = malloc(qlen ? qlen : 1);
	if (qbuf) {
		nanoshim__v1__create_request__pack(q, qbuf);
		r->request = nanoshim__v1__create_request__unpack(NULL, qlen, qbuf);
		free(qbuf);
	}
	r->shim_binary = strdup(d->cfg.shim_binary);
	r->runtime = strdup(rpath);
	r->netns = strdup("");
	c->record = r;
	if (!r->request || !r->shim_binary || !r->runtime || !r->netns) {
		ctr_destroy(c);
		fail_create(call, TTRPC_RESOURCE_EXHAUSTED, q->id, "out of memory");
		return;
	}
	c->init.terminal = q->terminal;
	c->init.stdin = q->stdin;
	if (has_rootfs && q->net == NANOSHIM__V1__NET_MODE__NET_NONE) {
		snprintf(netns, sizeof(netns), "%s/netns/%s-%s", d->cfg.root, ns, q->id);
		free(r->netns);
		r->netns = strdup(netns);
		/* recorded before it exists: a crash in between leaves nothing unknown */
		if (!r->netns || (rc = ctr_record_write(c)) < 0 ||
		    (rc = netns_create(netns, errbuf, sizeof(errbuf))) < 0) {
			if (rc >= 0)
				snprintf(errbuf, sizeof(errbuf), "out of memory");
			else if (rc != -ENOMEM && !errbuf[0])
				snprintf(errbuf, sizeof(errbuf), "%s", strerror(-rc));
			ctr_destroy(c);
			fail_create(call, TTRPC_INTERNAL, q->id, "network namespace: %s", errbuf);
			return;
		}
	}
	if (has_bundle) {
		rc = copy_bundle_config(q->bundle, bundle, errbuf, sizeof(errbuf));
	} else {
		struct specgen sg = {
			.rootfs = q->rootfs,
			.cwd = q->cwd && q->cwd[0] ? q->cwd : NULL,
			.user = q->user && q->user[0] ? q->user : NULL,
			.terminal = q->terminal,
			.hostname = q->hostname && q->hostname[0] ? q->hostname : q->id,
			.net = q->net == NANOSHIM__V1__NET_MODE__NET_HOST ? SPECGEN_NET_HOST : SPECGEN_NET_NONE,
			.netns_path = netns[0] ? netns : NULL,
			.memory_limit = q->memory,
			.cpus = q->cpus,
			.readonly_rootfs = q->readonly_rootfs,
		};
		char cfg[4200], cg[300];
		snprintf(cfg, sizeof(cfg), "%s/config.json", bundle);
		snprintf(cg, sizeof(cg), "/%s/%s", ns, q->id); /* as ctr does */
		sg.cgroups_path = cg;
		char **args = nullterm(q->args, q->n_args), **env = nullterm(q->env, q->n_env);
		add = nullterm(q->cap_add, q->n_cap_add);
		drop = nullterm(q->cap_drop, q->n_cap_drop);
		if (!args || !env || !add || !drop) {
			rc = -ENOMEM;
			snprintf(errbuf, sizeof(errbuf), "out of memory");
		} else {
			sg.args = (const char *const *)args;
			sg.env = (const char *const *)env;
			sg.cap_add = (const char *const *)add;
			sg.cap_drop = (const char *const *)drop;
			rc = specgen_write(&sg, cfg, errbuf, sizeof(errbuf));
		}
		free(args);
		free(env);
		free(add);
		free(drop);
	}
	if (rc < 0) {
		ctr_destroy(c);
		fail_create(call, rc == -ENOMEM ? TTRPC_RESOURCE_EXHAUSTED : TTRPC_INVALID_ARGUMENT, q->id, "%s",
			    errbuf);
		return;
	}
	if (q->stdin) {
		char in[4200];
		proc_path(&c->init, "stdin", in, sizeof(in));
		if (mkfifo(in, 0600) < 0) {
			rc = -errno;
			ctr_destroy(c);
			fail_create(call, TTRPC_INTERNAL, q->id, "stdin FIFO %s: %s", in, strerror(-rc));
			return;
		}
	}
	if (q->terminal && relay_needed(d)) {
		c->init.tty_relay = true;
		r->tty_relay = true;
		if ((rc = relay_open(&c->init)) < 0) {
			ctr_destroy(c);
			fail_create(call, TTRPC_INTERNAL, q->id, "terminal relay FIFO: %s", strerror(-rc));
			return;
		}
	}
	/* the shim's own log: a regular file (a FIFO nobody reads while we are
	 * down would block the Go shim) */
	char logpath[4200];
	snprintf(logpath, sizeof(logpath), "%s/log", bundle);
	int lfd = open(logpath, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (lfd >= 0)
		close(lfd);
	if ((rc = ctr_record_write(c)) < 0) {
		ctr_destroy(c);
		fail_create(call, TTRPC_INTERNAL, q->id, "record: %s", strerror(-rc));
		return;
	}
	crash_point(d, "create-record-written");
	if ((rc = shim_start(c, on_shim_started, call)) < 0) {
		ctr_destroy(c);
		fail_create(call, TTRPC_INTERNAL, q->id, "start shim %s: %s", d->cfg.shim_binary,
			    strerror(-rc));
	}
}

/* ---- Start, Exec ------------------------------------------------------------ */


static void on_started(struct ctr *c, struct ttrpc_call *call, ProtobufCMessage *reply, void *arg)
{
	struct start_arg *a = arg;
	struct proc *p = ctr_proc(c, a->exec_id);
	Containerd__Task__V2__StartResponse *r = (void *)reply;
	free(a);
	if (p) {
		p->pid = r->pid;
		if (!p->exited)
			p->status = NANOSHIM__V1__STATUS__STATUS_RUNNING;
		crash_point(c->d, "start-started");
		shim_wait(p);
	}
	Nanoshim__V1__StartResponse sr = NANOSHIM__V1__START_RESPONSE__INIT;
	sr.pid = r->pid;
	ttrpc_call_reply(call, &sr.base);
}

static void start_proc(struct ctr *c, struct ttrpc_call *call, struct proc *p, const char *verb)
{
	struct start_arg *a = calloc(1, sizeof(*a));
	if (!a) {
		ttrpc_call_fail(call, TTRPC_RESOURCE_EXHAUSTED, "out of memory");
		return;
	}
	snprintf(a->exec_id, sizeof(a->exec_id), "%s", p->exec_id);
	Containerd__Task__V2__StartRequest r = CONTAINERD__TASK__V2__START_REQUEST__INIT;
	r.id = c->id;
	r.exec_id = p->exec_id;
	crash_point(c->d, "start-before");
	forward_arg(c, call, verb, "Start", &r.base, &containerd__task__v2__start_response__descriptor,
		    on_started, a, free_arg);
}

static void h_start(struct ttrpc_call *call, const ProtobufCMessage *m, void *ud)
{
	const Nanoshim__V1__ProcessRef *q = (const void *)m;
	struct ctr *c = find(ud, call, "start", q->namespace_, q->id);
	struct proc *p = c ? find_proc(c, call, "start", q->exec_id) : NULL;
	if (p)
		start_proc(c, call, p, "start");
}

static void on_exec_added(struct ctr *c, struct ttrpc_call *call, ProtobufCMessage *reply, void *arg)
{
	struct start_arg *a = arg;
	struct proc *p = ctr_proc(c, a->exec_id);
	free(a);
	if (!p) {
		ttrpc_call_fail(call, TTRPC_NOT_FOUND, "exec %s: deleted while it was made", c->id);
		return;
	}
	start_proc(c, call, p, "exec");
}

/* The shim has no such exec (it refused, or was never asked): neither do we. */
static void exec_not_added(struct ctr *c, void *arg)
{
	struct start_arg *a = arg;
	struct proc *p = ctr_proc(c, a->exec_id);
	if (p && p != &c->init) {
		ctr_drop_exec(c, p);
		ctr_record_write(c);
	}
	free(a);
}

static void h_exec(struct ttrpc_call *call, const ProtobufCMessage *m, void *ud)
{
	const Nanoshim__V1__ExecRequest *q = (const void *)m;
	struct ctr *c = find(ud, call, "exec", q->namespace_, q->id);
	if (!c)
		return;
	if (!valid_ref(call, "exec", c->ns, c->id, q->exec_id))
		return;
	if (!q->exec_id || !q->exec_id[0] || strcmp(q->exec_id, "init") == 0) {
		ttrpc_call_fail(call, TTRPC_INVALID_ARGUMENT, "exec %s: exec id %s", c->id,
				q->exec_id && q->exec_id[0] ? "\"init\" is reserved" : "missing");
		return;
	}
	if (q->n_args == 0) {
		ttrpc_call_fail(call, TTRPC_INVALID_ARGUMENT, "exec %s: no command to run", c->id);
		return;
	}
	if (ctr_proc(c, q->exec_id)) {
		ttrpc_call_fail(call, TTRPC_ALREADY_EXISTS, "exec %s: exec \"%s\" already exists", c->id,
				q->exec_id);
		return;
	}
	if (c->init.exited || c->init.status != NANOSHIM__V1__STATUS__STATUS_RUNNING) {
		ttrpc_call_fail(call, TTRPC_FAILED_PRECONDITION, "exec %s: the container is not running",
				c->id);
		return;
	}
	if (!shim_ready(c, call, "exec"))
		return;
	char cfg[4200], errbuf[512];
	snprintf(cfg, sizeof(cfg), "%s/config.json", c->bundle);
	char *spec = NULL;
	size_t speclen = 0;
	struct procspec_override ov = {
		.args = (const char *const *)q->args,
		.n_args = q->n_args,
		.env = (const char *const *)q->env,
		.n_env = q->n_env,
		.cwd = q->cwd && q->cwd[0] ? q->cwd : NULL,
		.terminal = q->terminal,
		.console_width = q->console_width,
		.console_height = q->console_height,
	};
	int rc = procspec_from_config(cfg, &ov, &spec, &speclen, errbuf, sizeof(errbuf));
	if (rc < 0) {
		ttrpc_call_fail(call, TTRPC_INVALID_ARGUMENT, "exec %s: %s", c->id, errbuf);
		return;
	}
	struct proc *p = ctr_add_exec(c, q->exec_id, q->terminal, q->stdin);
	struct start_arg *a = calloc(1, sizeof(*a));
	if (!p || !a) {
		free(spec);
		free(a);
		if (p)
			ctr_drop_exec(c, p);
		ttrpc_call_fail(call, TTRPC_RESOURCE_EXHAUSTED, "exec %s: too many execs or out of memory",
				c->id);
		return;
	}
	char in[4200], out[4200], out_uri[4300];
	proc_path(p, "stdin", in, sizeof(in));
	proc_path(p, "log", out, sizeof(out));
	snprintf(out_uri, sizeof(out_uri), "file://%s", out);
	p->tty_relay = q->terminal && relay_needed(c->d);
	if (p->tty_relay)
		proc_path(p, "tty", out_uri, sizeof(out_uri));
	if ((q->stdin && mkfifo(in, 0600) < 0 && errno != EEXIST) ||
	    (p->tty_relay && (rc = relay_open(p)) < 0 && (errno = -rc)) ||
	    (rc = ctr_record_write(c)) < 0) {
		free(spec);
		free(a);
		ctr_drop_exec(c, p);
		ttrpc_call_fail(call, TTRPC_INTERNAL, "exec %s: %s", c->id, strerror(errno));
		return;
	}
	snprintf(a->exec_id, sizeof(a->exec_id), "%s", q->exec_id);
	Google__Protobuf__Any any = GOOGLE__PROTOBUF__ANY__INIT;
	any.type_url = PROCESS_SPEC_URL;
	any.value.data = (uint8_t *)spec;
	any.value.len = speclen;
	Containerd__Task__V2__ExecProcessRequest r = CONTAINERD__TASK__V2__EXEC_PROCESS_REQUEST__INIT;
	r.id = c->id;
	r.exec_id = p->exec_id;
	r.terminal = q->terminal;
	r.stdin = q->stdin ? in : "";
	r.stdout = out_uri;
	r.stderr = q->terminal ? "" : out_uri;
	r.spec = &any;
	forward_arg(c, call, "exec", "Exec", &r.base, &google__protobuf__empty__descriptor, on_exec_added,
		    a, exec_not_added);
	free(spec);
}

/* ---- Kill, Pause, Resume, Update, Pids, Stats, ResizePty, CloseIO ------------ */

static void h_kill(struct ttrpc_call *call, const ProtobufCMessage *m, void *ud)
{
	const Nanoshim__V1__KillRequest *q = (const void *)m;
	struct ctr *c = find(ud, call, "kill", q->namespace_, q->id);
	if (!c || !find_proc(c, call, "kill", q->exec_id))
		return;
	if (q->signal >= 65) {
		ttrpc_call_fail(call, TTRPC_INVALID_ARGUMENT, "kill %s: signal %u out of range", c->id,
				q->signal);
		return;
	}
	Containerd__Task__V2__KillRequest r = CONTAINERD__TASK__V2__KILL_REQUEST__INIT;
	r.id = c->id;
	r.exec_id = q->exec_id;
	r.signal = q->signal ? q->signal : SIGTERM;
	r.all = q->all;
	forward(c, call, "kill", "Kill", &r.base, &google__protobuf__empty__descriptor, NULL, NULL);
}

static void on_paused(struct ctr *c, struct ttrpc_call *call, ProtobufCMessage *reply, void *arg)
{
	if (!c->init.exited)
		c->init.status = arg ? NANOSHIM__V1__STATUS__STATUS_PAUSED : NANOSHIM__V1__STATUS__STATUS_RUNNING;
	reply_empty(call);
}

static void h_pause(struct ttrpc_call *call, const ProtobufCMessage *m, void *ud)
{
	const Nanoshim__V1__ContainerRef *q = (const void *)m;
	struct ctr *c = find(ud, call, "pause", q->namespace_, q->id);
	if (!c)
		return;
	Containerd__Task__V2__PauseRequest r = CONTAINERD__TASK__V2__PAUSE_REQUEST__INIT;
	r.id = c->id;
	forward(c, call, "pause", "Pause", &r.base, &google__protobuf__empty__descriptor, on_paused, c);
}

static void h_resume(struct ttrpc_call *call, const ProtobufCMessage *m, void *ud)
{
	const Nanoshim__V1__ContainerRef *q = (const void *)m;
	struct ctr *c = find(ud, call, "resume", q->namespace_, q->id);
	if (!c)
		return;
	Containerd__Task__V2__ResumeRequest r = CONTAINERD__TASK__V2__RESUME_REQUEST__INIT;
	r.id = c->id;
	forward(c, call, "resume", "Resume", &r.base, &google__protobuf__empty__descriptor, on_paused,
		NULL);
}

static void h_update(struct ttrpc_call *call, const ProtobufCMessage *m, void *ud)
{
	const Nanoshim__V1__UpdateRequest *q = (const void *)m;
	struct ctr *c = find(ud, call, "update", q->namespace_, q->id);
	if (!c)
		return;
	if (q->memory < 0 || q->cpus < 0 || (q->memory == 0 && q->cpus == 0)) {
		ttrpc_call_fail(call, TTRPC_INVALID_ARGUMENT, "update %s: give a memory limit or cpus (> 0)",
				c->id);
		return;
	}
	char *json = NULL;
	size_t len = 0;
	if (procspec_resources(q->memory, q->cpus, &json, &len) < 0) {
		ttrpc_call_fail(call, TTRPC_RESOURCE_EXHAUSTED, "update %s: out of memory", c->id);
		return;
	}
	Google__Protobuf__Any any = GOOGLE__PROTOBUF__ANY__INIT;
	any.type_url = RESOURCES_URL;
	any.value.data = (uint8_t *)json;
	any.value.len = len;
	Containerd__Task__V2__UpdateTaskRequest r = CONTAINERD__TASK__V2__UPDATE_TASK_REQUEST__INIT;
	r.id = c->id;
	r.resources = &any;
	forward(c, call, "update", "Update", &r.base, &google__protobuf__empty__descriptor, NULL, NULL);
	free(json);
}

static void on_pids(struct ctr *c, struct ttrpc_call *call, ProtobufCMessage *reply, void *arg)
{
	Containerd__Task__V2__PidsResponse *r = (void *)reply;
	Nanoshim__V1__ProcessInfo *infos = calloc(r->n_processes ? r->n_processes : 1, sizeof(*infos));
	Nanoshim__V1__ProcessInfo **ptrs = calloc(r->n_processes ? r->n_processes : 1, sizeof(*ptrs));
	if (!infos || !ptrs) {
		free(infos);
		free(ptrs);
		ttrpc_call_fail(call, TTRPC_RESOURCE_EXHAUSTED, "pids %s: out of memory", c->id);
		return;
	}
	for (size_t i = 0; i < r->n_processes; i++) {
		nanoshim__v1__process_info__init(&infos[i]);
		infos[i].pid = r->processes[i]->pid;
		infos[i].exec_id = "";
		for (struct proc *p = c->execs; p; p = p->next)
			if (p->pid == infos[i].pid && !p->exited)
				infos[i].exec_id = p->exec_id;
		ptrs[i] = &infos[i];
	}
	Nanoshim__V1__PidsResponse out = NANOSHIM__V1__PIDS_RESPONSE__INIT;
	out.n_processes = r->n_processes;
	out.processes = ptrs;
	ttrpc_call_reply(call, &out.base);
	free(infos);
	free(ptrs);
}

static void h_pids(struct ttrpc_call *call, const ProtobufCMessage *m, void *ud)
{
	const Nanoshim__V1__ContainerRef *q = (const void *)m;
	struct ctr *c = find(ud, call, "pids", q->namespace_, q->id);
	if (!c)
		return;
	Containerd__Task__V2__PidsRequest r = CONTAINERD__TASK__V2__PIDS_REQUEST__INIT;
	r.id = c->id;
	forward(c, call, "pids", "Pids", &r.base, &containerd__task__v2__pids_response__descriptor,
		on_pids, NULL);
}

#define MAX_IFACES 64

static void on_stats(struct ctr *c, struct ttrpc_call *call, ProtobufCMessage *reply, void *arg)
{
	Containerd__Task__V2__StatsResponse *r = (void *)reply;
	Nanoshim__V1__StatsResponse out = NANOSHIM__V1__STATS_RESPONSE__INIT;
	out.metrics = r->stats;
	struct netns_if_stats ifs[MAX_IFACES];
	Nanoshim__V1__InterfaceStats is[MAX_IFACES], *isp[MAX_IFACES];
	int n = 0;
	if (c->record && c->record->netns && c->record->netns[0]) {
		n = netns_stats(c->record->netns, ifs, MAX_IFACES);
		if (n < 0) {
			log_warn("stats %s/%s: interface counters: %s", c->ns, c->id, strerror(-n));
			n = 0;
		}
	}
	for (int i = 0; i < n; i++) {
		nanoshim__v1__interface_stats__init(&is[i]);
		is[i].name = ifs[i].name;
		is[i].rx_bytes = ifs[i].rx_bytes;
		is[i].rx_packets = ifs[i].rx_packets;
		is[i].rx_errors = ifs[i].rx_errors;
		is[i].rx_dropped = ifs[i].rx_dropped;
		is[i].tx_bytes = ifs[i].tx_bytes;
		is[i].tx_packets = ifs[i].tx_packets;
		is[i].tx_errors = ifs[i].tx_errors;
		is[i].tx_dropped = ifs[i].tx_dropped;
		isp[i] = &is[i];
	}
	out.n_interfaces = (size_t)n;
	out.interfaces = isp;
	ttrpc_call_reply(call, &out.base);
}

static void h_stats(struct ttrpc_call *call, const ProtobufCMessage *m, void *ud)
{
	const Nanoshim__V1__ContainerRef *q = (const void *)m;
	struct ctr *c = find(ud, call, "stats", q->namespace_, q->id);
	if (!c)
		return;
	Containerd__Task__V2__StatsRequest r = CONTAINERD__TASK__V2__STATS_REQUEST__INIT;
	r.id = c->id;
	forward(c, call, "stats", "Stats", &r.base, &containerd__task__v2__stats_response__descriptor,
		on_stats, NULL);
}

static void h_resize(struct ttrpc_call *call, const ProtobufCMessage *m, void *ud)
{
	const Nanoshim__V1__ResizePtyRequest *q = (const void *)m;
	struct ctr *c = find(ud, call, "resize", q->namespace_, q->id);
	if (!c || !find_proc(c, call, "resize", q->exec_id))
		return;
	Containerd__Task__V2__ResizePtyRequest r = CONTAINERD__TASK__V2__RESIZE_PTY_REQUEST__INIT;
	r.id = c->id;
	r.exec_id = q->exec_id;
	r.width = q->width;
	r.height = q->height;
	forward(c, call, "resize", "ResizePty", &r.base, &google__protobuf__empty__descriptor, NULL, NULL);
}

static void h_closeio(struct ttrpc_call *call, const ProtobufCMessage *m, void *ud)
{
	const Nanoshim__V1__ProcessRef *q = (const void *)m;
	struct ctr *c = find(ud, call, "close-io", q->namespace_, q->id);
	if (!c || !find_proc(c, call, "close-io", q->exec_id))
		return;
	Containerd__Task__V2__CloseIORequest r = CONTAINERD__TASK__V2__CLOSE_IOREQUEST__INIT;
	r.id = c->id;
	r.exec_id = q->exec_id;
	r.stdin = true;
	forward(c, call, "close-io", "CloseIO", &r.base, &google__protobuf__empty__descriptor, NULL, NULL);
}

/* ---- Wait, Delete --------------------------------------------------------------- */

static void reply_exit(struct ttrpc_call *call, const struct proc *p)
{
	Google__Protobuf__Timestamp ts = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
	timespec_to_pb(&p->exited_at, &ts);
	Nanoshim__V1__ExitStatus es = NANOSHIM__V1__EXIT_STATUS__INIT;
	es.exit_status = p->exit_status;
	es.exited_at = &ts;
	es.pid = p->pid;
	ttrpc_call_reply(call, &es.base);
}

static void h_wait(struct ttrpc_call *call, const ProtobufCMessage *m, void *ud)
{
	const Nanoshim__V1__ProcessRef *q = (const void *)m;
	struct ctr *c = find(ud, call, "wait", q->namespace_, q->id);
	struct proc *p = c ? find_proc(c, call, "wait", q->exec_id) : NULL;
	if (!p)
		return;
	if (p->exited) {
		reply_exit(call, p);
		return;
	}
	struct waiter *w = calloc(1, sizeof(*w));
	if (!w) {
		ttrpc_call_fail(call, TTRPC_RESOURCE_EXHAUSTED, "wait %s: out of memory", c->id);
		return;
	}
	if (ttrpc_call_park(call) < 0) {
		free(w);
		ttrpc_call_fail(call, TTRPC_RESOURCE_EXHAUSTED, "wait %s: too many waits", c->id);
		return;
	}
	w->call = call;
	w->next = p->waiters;
	p->waiters = w;
	shim_wait(p);
}

static void on_exec_deleted(struct ctr *c, struct ttrpc_call *call, ProtobufCMessage *reply, void *arg)
{
	struct start_arg *a = arg;
	struct proc *p = ctr_proc(c, a->exec_id);
	free(a);
	if (!p) {
		ttrpc_call_fail(call, TTRPC_NOT_FOUND, "delete %s: exec deleted meanwhile", c->id);
		return;
	}
	relay_close(p); /* the shim's console copy has ended: the rest */
	reply_exit(call, p);
	char path[4200];
	proc_path(p, "log", path, sizeof(path));
	unlink(path);
	proc_path(p, "stdin", path, sizeof(path));
	unlink(path);
	proc_path(p, "tty", path, sizeof(path));
	unlink(path);
	ctr_drop_exec(c, p);
	ctr_record_write(c);
}

static void finish_delete(struct ctr *c, struct ttrpc_call *call)
{
	relay_drain(&c->init); /* what the shim's console copy wrote last */
	reply_exit(call, &c->init);
	events_publish(c->d, c->ns, "/nanoshim/delete", NULL, c->id, NULL, c->init.pid,
		       c->init.exit_status, "deleted");
	ctr_destroy(c);
}

static void on_shim_shutdown(struct ctr *c, const struct ttrpc_status *st, ProtobufCMessage *reply,
			     void *ud)
{
	/* the shim exits after answering, or the connection drops first: either is done */
	crash_point(c->d, "delete-shim-shutdown");
	finish_delete(c, ud);
}

static void on_task_deleted(struct ctr *c, const struct ttrpc_status *st, ProtobufCMessage *reply,
			    void *ud)
{
	struct ttrpc_call *call = ud;
	if (st->code != TTRPC_OK && st->code != TTRPC_NOT_FOUND) {
		c->delete_call = NULL;
		c->delete_sent = false;
		ttrpc_call_fail(call, st->code, "delete %s: %s", c->id, st->message);
		return;
	}
	crash_point(c->d, "delete-task-deleted");
	c->shutting_down = true;
	Containerd__Task__V2__ShutdownRequest sr = CONTAINERD__TASK__V2__SHUTDOWN_REQUEST__INIT;
	sr.id = c->id;
	if (shim_call(c, "Shutdown", &sr.base, &google__protobuf__empty__descriptor,
		      NANOSHIMD_CALL_TIMEOUT_NS, on_shim_shutdown, call) < 0)
		finish_delete(c, call);
}

static void delete_init(struct ctr *c, struct ttrpc_call *call)
{
	/* a forced delete gets here from the kill's reply and from the exit,
	 * whichever comes last; only the first goes on */
	if (c->delete_sent)
		return;
	c->delete_sent = true;
	c->delete_call = NULL;
	if (c->shim_state != SHIM_CONNECTED || !c->client) {
		finish_delete(c, call);
		return;
	}
	crash_point(c->d, "delete-before");
	/* from here a restarted daemon finishes the delete instead of keeping the container */
	int dfd = open(c->bundle, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (dfd >= 0) {
		bundle_write_file_atomic(dfd, NANOSHIMD_DELETING_FILE, "", 0, 0600);
		close(dfd);
	}
	Containerd__Task__V2__DeleteRequest r = CONTAINERD__TASK__V2__DELETE_REQUEST__INIT;
	r.id = c->id;
	c->delete_call = call;
	if (shim_call(c, "Delete", &r.base, &containerd__task__v2__delete_response__descriptor,
		      NANOSHIMD_CALL_TIMEOUT_NS, on_task_deleted, call) < 0) {
		c->delete_call = NULL;
		finish_delete(c, call);
	}
}

static void on_forced_exit(struct proc *p)
{
	struct ctr *c = p->ctr;
	struct ttrpc_call *call = c->delete_call;
	if (call)
		delete_init(c, call);
}

static void on_force_kill(struct ctr *c, const struct ttrpc_status *st, ProtobufCMessage *reply,
			  void *ud)
{
	struct ttrpc_call *call = ud;
	if (c->init.exited) {
		if (c->delete_call == call)
			delete_init(c, call);
		return;
	}
	if (st->code != TTRPC_OK && st->code != TTRPC_NOT_FOUND) {
		c->delete_call = NULL;
		c->init.on_exit = NULL;
		ttrpc_call_fail(call, st->code, "delete %s: kill: %s", c->id, st->message);
	}
	/* else the exit arrives through the Wait and on_forced_exit goes on */
}

static void h_delete(struct ttrpc_call *call, const ProtobufCMessage *m, void *ud)
{
	const Nanoshim__V1__DeleteRequest *q = (const void *)m;
	struct ctr *c = find(ud, call, "delete", q->namespace_, q->id);
	if (!c)
		return;
	if (c->delete_call || c->delete_sent || c->cleaning || c->shim_state == SHIM_STARTING) {
		ttrpc_call_fail(call, TTRPC_FAILED_PRECONDITION, "delete %s: %s", c->id,
				c->delete_call || c->delete_sent ? "a delete is already in progress"
								  : "busy; try again");
		return;
	}
	if (q->exec_id && q->exec_id[0]) {
		struct proc *p = find_proc(c, call, "delete", q->exec_id);
		if (!p)
			return;
		if (!p->exited) {
			ttrpc_call_fail(call, TTRPC_FAILED_PRECONDITION, "delete %s: exec \"%s\" is running",
					c->id, p->exec_id);
			return;
		}
		struct start_arg *a = calloc(1, sizeof(*a));
		if (!a) {
			ttrpc_call_fail(call, TTRPC_RESOURCE_EXHAUSTED, "out of memory");
			return;
		}
		snprintf(a->exec_id, sizeof(a->exec_id), "%s", p->exec_id);
		if (c->shim_state != SHIM_CONNECTED) {
			on_exec_deleted(c, call, NULL, a);
			return;
		}
		Containerd__Task__V2__DeleteRequest r = CONTAINERD__TASK__V2__DELETE_REQUEST__INIT;
		r.id = c->id;
		r.exec_id = p->exec_id;
		forward_arg(c, call, "delete", "Delete", &r.base,
			    &containerd__task__v2__delete_response__descriptor, on_exec_deleted, a,
			    free_arg);
		return;
	}
	bool live = !c->init.exited && c->init.status != NANOSHIM__V1__STATUS__STATUS_CREATED;
	if (c->shim_state == SHIM_UNREACHABLE) {
		ttrpc_call_fail(call, TTRPC_UNAVAILABLE, "delete %s: its shim does not answer", c->id);
		return;
	}
	if (live && !q->force) {
		ttrpc_call_fail(call, TTRPC_FAILED_PRECONDITION,
				"delete %s: the container is running (stop it first, or force)", c->id);
		return;
	}
	if (!c->init.exited && c->shim_state == SHIM_CONNECTED) {
		/* force, or a created task: kill everything, delete once init's exit is in */
		c->delete_call = call;
		ttrpc_call_park(call);
		c->init.on_exit = on_forced_exit;
		Containerd__Task__V2__KillRequest k = CONTAINERD__TASK__V2__KILL_REQUEST__INIT;
		k.id = c->id;
		k.signal = SIGKILL;
		k.all = true;
		shim_wait(&c->init);
		if (shim_call(c, "Kill", &k.base, &google__protobuf__empty__descriptor,
			      NANOSHIMD_CALL_TIMEOUT_NS, on_force_kill, call) < 0) {
			c->delete_call = NULL;
			c->init.on_exit = NULL;
			ttrpc_call_fail(call, TTRPC_UNAVAILABLE, "delete %s: kill: shim unreachable", c->id);
		}
		return;
	}
	delete_init(c, call);
}

/* ---- Get, List, Events, Info ------------------------------------------------------ */

static void h_get(struct ttrpc_call *call, const ProtobufCMessage *m, void *ud)
{
	const Nanoshim__V1__ContainerRef *q = (const void *)m;
	struct ctr *c = find(ud, call, "get", q->namespace_, q->id);
	if (c)
		reply_ctr(call, c);
}

static void h_list(struct ttrpc_call *call, const ProtobufCMessage *m, void *ud)
{
	struct daemon *d = ud;
	const Nanoshim__V1__ListRequest *q = (const void *)m;
	size_t n = 0;
	for (struct ctr *c = d->ctrs; c; c = c->next)
		n++;
	struct ctr_msg *cms = calloc(n ? n : 1, sizeof(*cms));
	Nanoshim__V1__Container **ptrs = calloc(n ? n : 1, sizeof(*ptrs));
	size_t k = 0;
	bool oom = !cms || !ptrs;
	for (struct ctr *c = d->ctrs; c && !oom; c = c->next) {
		if (q->namespace_ && q->namespace_[0] && strcmp(q->namespace_, c->ns) != 0)
			continue;
		if (fill_ctr(c, &cms[k]) < 0)
			oom = true;
		ptrs[k] = &cms[k].m;
		k++;
	}
	if (oom) {
		ttrpc_call_fail(call, TTRPC_RESOURCE_EXHAUSTED, "list: out of memory");
	} else {
		Nanoshim__V1__ListResponse r = NANOSHIM__V1__LIST_RESPONSE__INIT;
		r.n_containers = k;
		r.containers = ptrs;
		ttrpc_call_reply(call, &r.base);
	}
	for (size_t i = 0; cms && i < k; i++)
		free_ctr_msg(&cms[i]);
	free(cms);
	free(ptrs);
}

static void h_events(struct ttrpc_call *call, const ProtobufCMessage *m, void *ud)
{
	events_subscribe(ud, call, (const void *)m);
}

static void h_info(struct ttrpc_call *call, const ProtobufCMessage *m, void *ud)
{
	struct daemon *d = ud;
	Nanoshim__V1__InfoResponse r = NANOSHIM__V1__INFO_RESPONSE__INIT;
	Google__Protobuf__Timestamp ts = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
	timespec_to_pb(&d->started_at, &ts);
	r.version = NANOSHIMD_VERSION;
	r.started_at = &ts;
	r.cpus = (uint32_t)sysconf(_SC_NPROCESSORS_ONLN);
	struct sysinfo si;
	if (sysinfo(&si) == 0)
		r.memory_bytes = (uint64_t)si.totalram * si.mem_unit;
	r.shim_binary = (char *)d->cfg.shim_binary;
	r.runtime = (char *)d->cfg.runtime;
	r.state_dir = (char *)d->cfg.state;
	r.pid = (uint32_t)getpid();
	uint32_t counts[6] = {0};
	for (struct ctr *c = d->ctrs; c; c = c->next)
		if ((unsigned)c->init.status < 6)
			counts[c->init.status]++;
	Nanoshim__V1__StatusCount sc[6], *scp[6];
	size_t n = 0;
	for (int s = 0; s < 6; s++) {
		if (!counts[s])
			continue;
		nanoshim__v1__status_count__init(&sc[n]);
		sc[n].status = s;
		sc[n].count = counts[s];
		scp[n] = &sc[n];
		n++;
	}
	r.n_containers = n;
	r.containers = scp;
	ttrpc_call_reply(call, &r.base);
}

/* In the order of the service's methods (manager.proto). */
static const ttrpc_handler_fn handlers[] = {
	h_create, h_start, h_exec,   h_kill,   h_pause,  h_resume, h_update, h_pids, h_stats,
	h_wait,	  h_delete, h_get,   h_list,   h_resize, h_closeio, h_events, h_info,
};

int api_register(struct daemon *d)
{
	_Static_assert(sizeof(handlers) / sizeof(handlers[0]) == 17, "one handler per method");
	if (nanoshim__v1__manager__descriptor.n_methods != sizeof(handlers) / sizeof(handlers[0]))
		return -EINVAL;
	return ttrpc_server_register(d->server, &nanoshim__v1__manager__descriptor, handlers, d);
}
