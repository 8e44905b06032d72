/* The daemon's containers: the in-memory list, each container's record on
 * disk, and the exit bookkeeping shared by every path that learns an exit
 * (a Wait reply, a TaskExit event, recovery, a dead shim's delete action). */
#include "nanoshimd.h"
#include "atomic.h"
#include "log.h"
#include "netns.h"
#include "state.h"

#include "containerd/events/task.pb-c.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

const char *ns_or_default(const char *ns)
{
	return ns && ns[0] ? ns : "default";
}

void timespec_to_pb(const struct timespec *ts, Google__Protobuf__Timestamp *out)
{
	out->seconds = ts->tv_sec;
	out->nanos = (int32_t)ts->tv_nsec;
}

/* FNV-1a of namespace and id: a container's bucket in daemon.by_name. */
static unsigned name_bucket(const char *ns, const char *id)
{
	uint32_t h = 2166136261u;
	for (const char *p = ns; *p; p++)
		h = (h ^ (uint8_t)*p) * 16777619u;
	h = (h ^ '/') * 16777619u;
	for (const char *p = id; *p; p++)
		h = (h ^ (uint8_t)*p) * 16777619u;
	return h & (NANOSHIMD_NAME_BUCKETS - 1);
}

/* An index, not a walk of the list: with a thousand containers a walk touched
 * a thousand structures of several KiB for every API call and every event. */
struct ctr *ctr_find(struct daemon *d, const char *ns, const char *id)
{
	for (struct ctr *c = d->by_name[name_bucket(ns, id)]; c; c = c->hnext)
		if (strcmp(c->ns, ns) == 0 && strcmp(c->id, id) == 0)
			return c;
	return NULL;
}

static void proc_init(struct proc *p, struct ctr *c, const char *exec_id)
{
	p->ctr = c;
	snprintf(p->exec_id, sizeof(p->exec_id), "%s", exec_id ? exec_id : "");
	p->status = NANOSHIM__V1__STATUS__STATUS_UNKNOWN;
	p->relay_log = -1;
}

struct ctr *ctr_new(struct daemon *d, const char *ns, const char *id)
{
	struct ctr *c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	c->d = d;
	snprintf(c->ns, sizeof(c->ns), "%s", ns);
	snprintf(c->id, sizeof(c->id), "%s", id);
	snprintf(c->bundle, sizeof(c->bundle), "%s/%s/%s", d->cfg.state, ns, id);
	proc_init(&c->init, c, NULL);
	c->refs = 1; /* the list's */
	/* appended at its end without a walk (a recovery adds a thousand) */
	c->prev = d->ctrs_last;
	if (d->ctrs_last)
		d->ctrs_last->next = c;
	else
		d->ctrs = c;
	d->ctrs_last = c;
	unsigned b = name_bucket(c->ns, c->id);
	c->hnext = d->by_name[b];
	d->by_name[b] = c;
	return c;
}

void ctr_ref(struct ctr *c)
{
	c->refs++;
}

static void proc_free(struct proc *p)
{
	relay_close(p);
	proc_fail_waiters(p, TTRPC_NOT_FOUND, "container deleted");
}

void ctr_unref(struct ctr *c)
{
	if (--c->refs)
		return;
	shim_disconnect(c);
	proc_free(&c->init);
	while (c->execs) {
		struct proc *p = c->execs;
		c->execs = p->next;
		proc_free(p);
		free(p);
	}
	if (c->record)
		nanoshim__v1__record__free_unpacked(c->record, NULL);
	free(c);
}

void ctr_remove(struct ctr *c)
{
	if (c->removed)
		return;
	struct daemon *d = c->d;
	if (c->prev)
		c->prev->next = c->next;
	else
		d->ctrs = c->next;
	if (c->next)
		c->next->prev = c->prev;
	else
		d->ctrs_last = c->prev;
	for (struct ctr **pp = &d->by_name[name_bucket(c->ns, c->id)]; *pp; pp = &(*pp)->hnext)
		if (*pp == c) {
			*pp = c->hnext;
			break;
		}
	c->removed = true; /* its next stays: a walk that removed it goes on */
	ctr_unref(c);
}

struct proc *ctr_proc(struct ctr *c, const char *exec_id)
{
	if (!exec_id || !exec_id[0])
		return &c->init;
	for (struct proc *p = c->execs; p; p = p->next)
		if (strcmp(p->exec_id, exec_id) == 0)
			return p;
	return NULL;
}

struct proc *ctr_add_exec(struct ctr *c, const char *exec_id, bool terminal, bool stdin)
{
	unsigned n = 0;
	for (struct proc *p = c->execs; p; p = p->next)
		n++;
	if (n >= NANOSHIMD_MAX_EXECS)
		return NULL;
	struct proc *p = calloc(1, sizeof(*p));
	if (!p)
		return NULL;
	proc_init(p, c, exec_id);
	p->terminal = terminal;
	p->stdin = stdin;
	struct proc **tail = &c->execs;
	while (*tail)
		tail = &(*tail)->next;
	*tail = p;
	return p;
}

void ctr_drop_exec(struct ctr *c, struct proc *p)
{
	for (struct proc **pp = &c->execs; *pp; pp = &(*pp)->next)
		if (*pp == p) {
			*pp = p->next;
			break;
		}
	proc_free(p);
	free(p);
}

/* The record lists the container's execs as they are now. */
int ctr_record_write(struct ctr *c)
{
	Nanoshim__V1__Record *r = c->record;
	unsigned n = 0;
	for (struct proc *p = c->execs; p; p = p->next)
		n++;
	Nanoshim__V1__ExecRecord *recs = calloc(n ? n : 1, sizeof(*recs));
	Nanoshim__V1__ExecRecord **ptrs = calloc(n ? n : 1, sizeof(*ptrs));
	if (!recs || !ptrs) {
		free(recs);
		free(ptrs);
		return -ENOMEM;
	}
	n = 0;
	for (struct proc *p = c->execs; p; p = p->next, n++) {
		nanoshim__v1__exec_record__init(&recs[n]);
		recs[n].exec_id = p->exec_id;
		recs[n].terminal = p->terminal;
		recs[n].stdin = p->stdin;
		recs[n].tty_relay = p->tty_relay;
		ptrs[n] = &recs[n];
	}
	size_t old_n = r->n_execs;
	Nanoshim__V1__ExecRecord **old = r->execs;
	r->n_execs = n;
	r->execs = ptrs;
	size_t len = nanoshim__v1__record__get_packed_size(r);
	uint8_t *buf = malloc(len ? len : 1);
	int rc = -ENOMEM;
	if (buf) {
		nanoshim__v1__record__pack(r, buf);
		int dfd = open(c->bundle, O_PATH | O_DIRECTORY | O_CLOEXEC);
		rc = dfd < 0 ? -errno
			     : bundle_write_file_atomic(dfd, NANOSHIMD_RECORD_FILE, buf, len, 0600);
		if (dfd >= 0)
			close(dfd);
	}
	free(buf);
	r->n_execs = old_n;
	r->execs = old;
	free(recs);
	free(ptrs);
	return rc;
}

int ctr_record_read(int dirfd, Nanoshim__V1__Record **out)
{
	char *buf;
	size_t len;
	int rc = bundle_read_file(dirfd, NANOSHIMD_RECORD_FILE, &buf, &len, NANOSHIMD_RECORD_MAX);
	if (rc < 0)
		return rc;
	*out = nanoshim__v1__record__unpack(NULL, len, (uint8_t *)buf);
	free(buf);
	if (!*out || !(*out)->request)
		return -EBADMSG;
	return 0;
}

void proc_fail_waiters(struct proc *p, int code, const char *msg)
{
	while (p->waiters) {
		struct waiter *w = p->waiters;
		p->waiters = w->next;
		ttrpc_call_fail(w->call, code, "%s", msg);
		free(w);
	}
}

void proc_exited(struct proc *p, uint32_t status, const struct timespec *at, bool publish)
{
	if (p->exited)
		return;
	p->exited = true;
	p->exit_status = status;
	p->exited_at = *at;
	p->status = NANOSHIM__V1__STATUS__STATUS_STOPPED;
	relay_drain(p); /* a waiter reads the log next */
	Google__Protobuf__Timestamp ts = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
	timespec_to_pb(at, &ts);
	Nanoshim__V1__ExitStatus es = NANOSHIM__V1__EXIT_STATUS__INIT;
	es.exit_status = status;
	es.exited_at = &ts;
	es.pid = p->pid;
	while (p->waiters) {
		struct waiter *w = p->waiters;
		p->waiters = w->next;
		ttrpc_call_reply(w->call, &es.base);
		free(w);
	}
	if (p->on_exit) {
		void (*fn)(struct proc *) = p->on_exit;
		p->on_exit = NULL;
		fn(p);
	}
	if (publish && !p->exit_published) {
		p->exit_published = true;
		char msg[96];
		snprintf(msg, sizeof(msg), "exited with status %u", status);
		events_publish(p->ctr->d, p->ctr->ns, "/tasks/exit", NULL, p->ctr->id,
			       p->exec_id[0] ? p->exec_id : p->ctr->id, p->pid, status, msg);
	}
}

void proc_path(const struct proc *p, const char *what, char *out, size_t outlen)
{
	snprintf(out, outlen, "%s/io-%s.%s", p->ctr->bundle, p->exec_id[0] ? p->exec_id : "init",
		 what);
}

int ctr_destroy(struct ctr *c)
{
	struct daemon *d = c->d;
	int rc = 0;
	if (c->record && c->record->netns && c->record->netns[0]) {
		rc = netns_remove(c->record->netns);
		if (rc < 0)
			log_warn("%s/%s: remove network namespace %s: %s", c->ns, c->id,
				 c->record->netns, strerror(-rc));
	}
	int r2 = bundle_state_remove(d->cfg.state, c->ns, c->id);
	if (r2 < 0)
		log_warn("%s/%s: remove bundle: %s", c->ns, c->id, strerror(-r2));
	ctr_remove(c);
	return rc < 0 ? rc : r2;
}
