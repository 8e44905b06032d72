/* Events: the Forward endpoint the shims publish to (we are their
 * TTRPC_ADDRESS), nanoshimd's own events, a retained log of the last N in
 * <state>/events.log that survives restarts, and the streams of subscribers.
 *
 * The log is a sequence of records, each a little-endian u32 length and a
 * packed nanoshim.v1.Event. Appends are one write() each; when the file holds
 * twice the retained count it is rewritten (atomically) with the last N. A torn
 * record at the end (a crash mid-write) ends the replay there. */
#include "nanoshimd.h"
#include "task_events.h"
#include "atomic.h"
#include "log.h"

#include "containerd/events/task.pb-c.h"
#include "containerd/services/events/ttrpc/v1/events.pb-c.h"
#include "google/protobuf/empty.pb-c.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define EVLOG_FILE "events.log"
#define EVENT_MAX_BYTES (64u << 10)
#define MAX_SUBSCRIBERS 256

struct packed {
	uint8_t *data;
	size_t len;
	int64_t ts_ns; /* the event's timestamp, for --since */
};

struct sub {
	struct sub *next;
	struct ttrpc_call *call;
	struct daemon *d;
};

struct evlog {
	int fd;
	int dirfd;
	struct packed *ring; /* the last `retain` events, oldest at head */
	unsigned retain, head, count;
	unsigned in_file;
	uint64_t seq;
	struct sub *subs;
	unsigned n_subs;
};

/* ---- reading the log back: only seq and the timestamp of each record ------ */

static bool varint(const uint8_t **p, const uint8_t *end, uint64_t *v)
{
	*v = 0;
	for (int shift = 0; shift < 64 && *p < end; shift += 7) {
		uint8_t b = *(*p)++;
		*v |= (uint64_t)(b & 0x7f) << shift;
		if (!(b & 0x80))
			return true;
	}
	return false;
}

/* Walks one message's fields (every one must be well formed); on the way the
 * varint fields 1 and 2 go to f1 and f2, and the bytes of field 2 to sub. */
static bool walk(const uint8_t *p, const uint8_t *end, uint64_t *f1, uint64_t *f2,
		 const uint8_t **sub, size_t *sublen)
{
	while (p < end) {
		uint64_t key, v;
		if (!varint(&p, end, &key))
			return false;
		switch (key & 7) {
		case 0:
			if (!varint(&p, end, &v))
				return false;
			if (key >> 3 == 1 && f1)
				*f1 = v;
			else if (key >> 3 == 2 && f2)
				*f2 = v;
			break;
		case 1:
			if (end - p < 8)
				return false;
			p += 8;
			break;
		case 2:
			if (!varint(&p, end, &v) || v > (uint64_t)(end - p))
				return false;
			if (key >> 3 == 2 && sub) {
				*sub = p;
				*sublen = (size_t)v;
			}
			p += v;
			break;
		case 5:
			if (end - p < 4)
				return false;
			p += 4;
			break;
		default:
			return false;
		}
	}
	return true;
}

/* A record's Event.seq (1) and Event.timestamp (2: seconds 1, nanos 2) without
 * unpacking it (allocations for every string: a restart reads a thousand). */
static bool event_meta(const uint8_t *b, size_t n, uint64_t *seq, int64_t *ts_ns)
{
	const uint8_t *ts = NULL;
	size_t tslen = 0;
	uint64_t sec = 0, nsec = 0;
	*seq = 0;
	if (!walk(b, b + n, seq, NULL, &ts, &tslen))
		return false;
	if (ts && !walk(ts, ts + tslen, &sec, &nsec, NULL, NULL))
		return false;
	*ts_ns = (int64_t)sec * 1000000000LL + (int64_t)(int32_t)nsec;
	return true;
}

static void ring_push(struct evlog *l, uint8_t *data, size_t len, int64_t ts_ns)
{
	unsigned idx = (l->head + l->count) % l->retain;
	if (l->count == l->retain) {
		free(l->ring[l->head].data);
		idx = l->head;
		l->head = (l->head + 1) % l->retain;
	} else {
		l->count++;
	}
	l->ring[idx] = (struct packed){data, len, ts_ns};
}

static int evlog_rewrite(struct evlog *l)
{
	size_t total = 0;
	for (unsigned i = 0; i < l->count; i++)
		total += 4 + l->ring[(l->head + i) % l->retain].len;
	uint8_t *buf = malloc(total ? total : 1), *w = buf;
	if (!buf)
		return -ENOMEM;
	for (unsigned i = 0; i < l->count; i++) {
		struct packed *p = &l->ring[(l->head + i) % l->retain];
		uint32_t n = (uint32_t)p->len;
		memcpy(w, &n, 4);
		memcpy(w + 4, p->data, p->len);
		w += 4 + p->len;
	}
	int rc = bundle_write_file_atomic(l->dirfd, EVLOG_FILE, buf, total, 0600);
	free(buf);
	if (rc < 0)
		return rc;
	if (l->fd >= 0)
		close(l->fd);
	l->fd = openat(l->dirfd, EVLOG_FILE, O_WRONLY | O_APPEND | O_CLOEXEC | O_NOFOLLOW);
	l->in_file = l->count;
	return l->fd < 0 ? -errno : 0;
}

int events_init(struct daemon *d)
{
	struct evlog *l = calloc(1, sizeof(*l));
	if (!l)
		return -ENOMEM;
	l->fd = -1;
	l->retain = d->cfg.event_retain ? d->cfg.event_retain : 1;
	l->ring = calloc(l->retain, sizeof(*l->ring));
	l->dirfd = open(d->cfg.state, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (!l->ring || l->dirfd < 0) {
		int rc = l->dirfd < 0 ? -errno : -ENOMEM;
		if (l->dirfd >= 0)
			close(l->dirfd);
		free(l->ring);
		free(l);
		return rc;
	}
	d->evlog = l;
	char *buf = NULL;
	size_t len = 0;
	int rc = bundle_read_file(l->dirfd, EVLOG_FILE, &buf, &len,
				  (size_t)(2 * l->retain + 16) * (EVENT_MAX_BYTES + 4));
	if (rc < 0 && rc != -ENOENT)
		log_warn("event log %s/%s unreadable (%s): starting a new one", d->cfg.state,
			 EVLOG_FILE, strerror(-rc));
	size_t off = 0;
	unsigned kept = 0, bad = 0, records = 0;
	while (rc == 0 && off + 4 <= len) {
		uint32_t n;
		memcpy(&n, buf + off, 4);
		if (n > EVENT_MAX_BYTES || off + 4 + n > len) {
			bad++;
			break;
		}
		uint64_t seq;
		int64_t ts;
		if (!event_meta((const uint8_t *)buf + off + 4, n, &seq, &ts)) {
			bad++;
			break;
		}
		if (seq > l->seq)
			l->seq = seq;
		uint8_t *copy = malloc(n ? n : 1);
		if (copy) {
			memcpy(copy, buf + off + 4, n);
			ring_push(l, copy, n, ts);
			kept++;
		}
		records++;
		off += 4 + n;
	}
	free(buf);
	if (bad || off < len)
		log_warn("event log: a torn or corrupt record after %u events; the rest is dropped",
			 kept);
	/* A whole log is appended to as it is, and rewritten with the last N
	 * once it holds twice that, as while serving: a rewrite (two fsyncs) at
	 * start would sit on the restart's critical path, and once more than N
	 * events have ever happened, that would be every start. A torn or corrupt
	 * tail, or a log left from a larger --event-retain, is rewritten now. */
	if (rc == 0 && !bad && off == len && records < 2 * l->retain) {
		l->fd = openat(l->dirfd, EVLOG_FILE, O_WRONLY | O_APPEND | O_CLOEXEC | O_NOFOLLOW);
		if (l->fd >= 0) {
			l->in_file = records;
			return 0;
		}
	}
	return evlog_rewrite(l);
}

void events_free(struct daemon *d)
{
	struct evlog *l = d->evlog;
	if (!l)
		return;
	while (l->subs) {
		struct sub *s = l->subs;
		l->subs = s->next;
		ttrpc_call_reply(s->call, NULL);
		free(s);
	}
	for (unsigned i = 0; i < l->count; i++)
		free(l->ring[(l->head + i) % l->retain].data);
	free(l->ring);
	if (l->fd >= 0)
		close(l->fd);
	close(l->dirfd);
	free(l);
	d->evlog = NULL;
}

static void send_to_subs(struct evlog *l, const Nanoshim__V1__Event *e)
{
	for (struct sub **pp = &l->subs; *pp;) {
		struct sub *s = *pp;
		if (ttrpc_call_send(s->call, &e->base) < 0) {
			*pp = s->next;
			l->n_subs--;
			ttrpc_call_reply(s->call, NULL);
			free(s);
			continue;
		}
		pp = &s->next;
	}
}

void events_publish(struct daemon *d, const char *ns, const char *topic,
		    const Google__Protobuf__Any *event, const char *id, const char *exec_id,
		    uint32_t pid, uint32_t exit_status, const char *message)
{
	struct evlog *l = d->evlog;
	if (!l)
		return;
	struct timespec now;
	clock_gettime(CLOCK_REALTIME, &now);
	Google__Protobuf__Timestamp ts = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
	timespec_to_pb(&now, &ts);
	Nanoshim__V1__Event e = NANOSHIM__V1__EVENT__INIT;
	e.seq = ++l->seq;
	e.timestamp = &ts;
	e.namespace_ = (char *)(ns ? ns : "");
	e.topic = (char *)(topic ? topic : "");
	e.event = (Google__Protobuf__Any *)event;
	e.id = (char *)(id ? id : "");
	e.exec_id = (char *)(exec_id ? exec_id : "");
	e.pid = pid;
	e.exit_status = exit_status;
	e.message = (char *)(message ? message : "");
	size_t n = nanoshim__v1__event__get_packed_size(&e);
	uint8_t *buf = n <= EVENT_MAX_BYTES ? malloc(4 + n) : NULL;
	if (!buf) {
		log_warn("event %s for %s/%s dropped: %s", e.topic, e.namespace_, e.id,
			 n > EVENT_MAX_BYTES ? "too large" : "out of memory");
		return;
	}
	uint32_t n32 = (uint32_t)n;
	memcpy(buf, &n32, 4);
	nanoshim__v1__event__pack(&e, buf + 4);
	if (l->fd >= 0) {
		ssize_t w = write(l->fd, buf, 4 + n);
		if (w != (ssize_t)(4 + n))
			log_warn("event log append: %s", w < 0 ? strerror(errno) : "short write");
		else
			l->in_file++;
	}
	uint8_t *copy = malloc(n ? n : 1);
	if (copy) {
		memcpy(copy, buf + 4, n);
		ring_push(l, copy, n, now.tv_sec * 1000000000LL + now.tv_nsec);
	}
	free(buf);
	if (l->in_file >= 2 * l->retain)
		evlog_rewrite(l);
	send_to_subs(l, &e);
}

/* ---- subscribers --------------------------------------------------------- */

static void on_sub_cancel(struct ttrpc_call *call, void *ud)
{
	struct sub *s = ud;
	struct evlog *l = s->d->evlog;
	for (struct sub **pp = &l->subs; *pp; pp = &(*pp)->next)
		if (*pp == s) {
			*pp = s->next;
			l->n_subs--;
			break;
		}
	ttrpc_call_reply(call, NULL);
	free(s);
}

void events_subscribe(struct daemon *d, struct ttrpc_call *call,
		      const Nanoshim__V1__EventsRequest *req)
{
	struct evlog *l = d->evlog;
	if (!ttrpc_call_is_stream(call)) {
		ttrpc_call_fail(call, TTRPC_INVALID_ARGUMENT, "Events is a server stream");
		return;
	}
	if (req->since) {
		int64_t since = req->since->seconds * 1000000000LL + req->since->nanos;
		for (unsigned i = 0; i < l->count; i++) {
			struct packed *p = &l->ring[(l->head + i) % l->retain];
			if (p->ts_ns < since)
				continue;
			Nanoshim__V1__Event *e = nanoshim__v1__event__unpack(NULL, p->len, p->data);
			if (!e)
				continue;
			int rc = ttrpc_call_send(call, &e->base);
			nanoshim__v1__event__free_unpacked(e, NULL);
			if (rc < 0) {
				ttrpc_call_reply(call, NULL);
				return;
			}
		}
	}
	if (req->no_follow) {
		ttrpc_call_reply(call, NULL);
		return;
	}
	if (l->n_subs >= MAX_SUBSCRIBERS) {
		ttrpc_call_fail(call, TTRPC_RESOURCE_EXHAUSTED, "too many event subscribers (%d)",
				MAX_SUBSCRIBERS);
		return;
	}
	struct sub *s = calloc(1, sizeof(*s));
	if (!s) {
		ttrpc_call_fail(call, TTRPC_RESOURCE_EXHAUSTED, "out of memory");
		return;
	}
	s->call = call;
	s->d = d;
	ttrpc_call_park(call);
	ttrpc_call_on_cancel(call, on_sub_cancel, s);
	s->next = l->subs;
	l->subs = s;
	l->n_subs++;
}

/* ---- Forward: what the shims publish ------------------------------------ */


static const char *field_str(const ProtobufCMessage *m, const char *name)
{
	const ProtobufCFieldDescriptor *f =
		protobuf_c_message_descriptor_get_field_by_name(m->descriptor, name);
	if (!f || f->type != PROTOBUF_C_TYPE_STRING || f->label == PROTOBUF_C_LABEL_REPEATED)
		return NULL;
	return *(char *const *)((const char *)m + f->offset);
}

static uint32_t field_u32(const ProtobufCMessage *m, const char *name)
{
	const ProtobufCFieldDescriptor *f =
		protobuf_c_message_descriptor_get_field_by_name(m->descriptor, name);
	if (!f || f->type != PROTOBUF_C_TYPE_UINT32 || f->label == PROTOBUF_C_LABEL_REPEATED)
		return 0;
	return *(const uint32_t *)((const char *)m + f->offset);
}

static void on_forward(struct ttrpc_call *call, const ProtobufCMessage *msg, void *ud)
{
	struct daemon *d = ud;
	const Containerd__Services__Events__Ttrpc__V1__ForwardRequest *req = (const void *)msg;
	const Containerd__Services__Events__Ttrpc__V1__Envelope *env = req->envelope;
	Google__Protobuf__Empty empty = GOOGLE__PROTOBUF__EMPTY__INIT;
	if (!env || !env->event || !env->event->type_url) {
		ttrpc_call_fail(call, TTRPC_INVALID_ARGUMENT, "forward: no event in the envelope");
		return;
	}
	const ProtobufCMessageDescriptor *desc = containerd_task_event(env->event->type_url);
	ProtobufCMessage *ev = desc ? protobuf_c_message_unpack(desc, NULL, env->event->value.len,
								 env->event->value.data)
				    : NULL;
	const char *cid = ev ? field_str(ev, "container_id") : NULL;
	const char *exec_id = ev ? field_str(ev, "exec_id") : NULL;
	uint32_t pid = ev ? field_u32(ev, "pid") : 0;
	uint32_t status = ev ? field_u32(ev, "exit_status") : 0;
	const char *ns = env->namespace_ ? env->namespace_ : "";
	bool record = true;
	if (ev && ev->descriptor == &containerd__events__task_exit__descriptor) {
		const Containerd__Events__TaskExit *te = (const void *)ev;
		exec_id = te->id;
		struct ctr *c = cid ? ctr_find(d, ns, cid) : NULL;
		struct proc *p = c ? ctr_proc(c, te->id && strcmp(te->id, cid) != 0 ? te->id : "")
				   : NULL;
		if (p) {
			record = !p->exit_published; /* recovery may have reported it already */
			p->exit_published = true;
			struct timespec at = {0};
			if (te->exited_at) {
				at.tv_sec = te->exited_at->seconds;
				at.tv_nsec = te->exited_at->nanos;
			}
			proc_exited(p, te->exit_status, &at, false);
		}
	}
	if (record)
		events_publish(d, ns, env->topic, env->event, cid, exec_id, pid, status, NULL);
	if (ev)
		protobuf_c_message_free_unpacked(ev, NULL);
	ttrpc_call_reply(call, &empty.base);
}

static const ttrpc_handler_fn forward_handlers[] = {on_forward};

int events_register(struct daemon *d)
{
	return ttrpc_server_register(d->server,
				     &containerd__services__events__ttrpc__v1__events__descriptor,
				     forward_handlers, d);
}
