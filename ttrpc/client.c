/* ttrpc client: odd stream ids from 1, a pending table matched by stream id
 * (replies may come in any order), per-call timeouts on the poller's timer,
 * and every pending call failed with "ttrpc: closed" when the connection goes. */
#include "conn.h"
#include "envelope.h"
#include "poller.h"
#include "ttrpc.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define PENDING_BUCKETS 64 /* power of two */

struct ttrpc_stream {
	struct ttrpc_client *client;
	struct ttrpc_stream *hnext; /* bucket chain */
	struct ttrpc_stream *dnext; /* done list (callbacks to run) */
	uint32_t id;
	const ProtobufCMessageDescriptor *reply_desc;
	ttrpc_reply_fn on_done;
	ttrpc_stream_msg_fn on_msg;
	void *userdata;
	int64_t deadline;
	bool send_open; /* client may still send Data */
	/* result, set when finished */
	struct ttrpc_status st;
	ProtobufCMessage *reply;
};

struct ttrpc_client {
	struct ttrpc_poller poller;
	struct ttrpc_conn conn;
	uint32_t next_id;
	struct ttrpc_stream *pending[PENDING_BUCKETS];
	unsigned n_pending;
	struct ttrpc_stream *done_head, *done_tail;
	bool closed;
	bool in_dispatch;
	int64_t sweep_at; /* when to look for idle buffers, 0 = none held */
	struct ttrpc_status close_status;
};

static int on_frame(struct ttrpc_conn *c, struct ttrpc_frame *f);
static const struct ttrpc_conn_ops cconn_ops = {.on_frame = on_frame};

struct ttrpc_client *ttrpc_client_new(int fd)
{
	struct ttrpc_client *c = calloc(1, sizeof(*c));
	if (!c) {
		close(fd);
		return NULL;
	}
	int fl = fcntl(fd, F_GETFL);
	if (fl >= 0)
		fcntl(fd, F_SETFL, fl | O_NONBLOCK);
	fcntl(fd, F_SETFD, FD_CLOEXEC);
	if (ttrpc_poller_init(&c->poller) < 0) {
		close(fd);
		free(c);
		return NULL;
	}
	if (ttrpc_conn_init(&c->conn, TTRPC_SRC_CONN, fd, c->poller.epfd, &cconn_ops, c) < 0) {
		close(fd);
		ttrpc_poller_release(&c->poller);
		free(c);
		return NULL;
	}
	c->next_id = 1;
	return c;
}

int ttrpc_client_connect(const char *address, struct ttrpc_client **out)
{
	struct sockaddr_un sa;
	int len = ttrpc_sockaddr(address, &sa);
	if (len < 0)
		return len;
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	while (connect(fd, (struct sockaddr *)&sa, (socklen_t)len) < 0) {
		if (errno == EINTR)
			continue;
		int err = -errno;
		close(fd);
		return err;
	}
	*out = ttrpc_client_new(fd);
	return *out ? 0 : -ENOMEM;
}

int ttrpc_client_fd(const struct ttrpc_client *c)
{
	return c->poller.epfd;
}

bool ttrpc_client_closed(const struct ttrpc_client *c)
{
	return c->closed;
}

unsigned ttrpc_client_pending(const struct ttrpc_client *c)
{
	return c->n_pending;
}

static struct ttrpc_stream **bucket(struct ttrpc_client *c, uint32_t id)
{
	return &c->pending[(id >> 1) & (PENDING_BUCKETS - 1)];
}

static struct ttrpc_stream *lookup(struct ttrpc_client *c, uint32_t id)
{
	for (struct ttrpc_stream *s = *bucket(c, id); s; s = s->hnext)
		if (s->id == id)
			return s;
	return NULL;
}

/* Moves a pending stream to the done list; its callback runs from
 * run_done(), never from inside the call that started it. */
static void finish(struct ttrpc_client *c, struct ttrpc_stream *s)
{
	struct ttrpc_stream **pp = bucket(c, s->id);
	while (*pp && *pp != s)
		pp = &(*pp)->hnext;
	if (*pp)
		*pp = s->hnext;
	c->n_pending--;
	s->dnext = NULL;
	if (c->done_tail)
		c->done_tail->dnext = s;
	else
		c->done_head = s;
	c->done_tail = s;
	/* Outside dispatch nothing else may wake the caller: fire the timer now. */
	if (!c->in_dispatch)
		ttrpc_poller_arm(&c->poller, 1);
}

static void run_done(struct ttrpc_client *c)
{
	while (c->done_head) {
		struct ttrpc_stream *s = c->done_head;
		c->done_head = s->dnext;
		if (!c->done_head)
			c->done_tail = NULL;
		s->on_done(&s->st, s->reply, s->userdata);
		free(s);
	}
}

static void fail_all(struct ttrpc_client *c, int code, const char *msg)
{
	for (int i = 0; i < PENDING_BUCKETS; i++) {
		while (c->pending[i]) {
			struct ttrpc_stream *s = c->pending[i];
			ttrpc_status_set(&s->st, code, "%s", msg);
			s->reply = NULL;
			finish(c, s);
		}
	}
}

static void mark_closed(struct ttrpc_client *c)
{
	if (c->closed)
		return;
	c->closed = true;
	ttrpc_conn_release(&c->conn);
	fail_all(c, TTRPC_UNAVAILABLE, "ttrpc: closed");
}

void ttrpc_client_free(struct ttrpc_client *c)
{
	if (!c)
		return;
	if (!c->closed) {
		c->closed = true;
		ttrpc_conn_release(&c->conn);
	}
	fail_all(c, TTRPC_CANCELLED, "ttrpc: client closed");
	run_done(c);
	ttrpc_poller_release(&c->poller);
	free(c);
}

static int start(struct ttrpc_client *c, const char *service, const char *method,
		 const ProtobufCMessage *req, const ProtobufCMessageDescriptor *reply_desc,
		 uint8_t flags, const struct ttrpc_call_opts *opts, ttrpc_stream_msg_fn on_msg,
		 ttrpc_reply_fn cb, void *userdata, struct ttrpc_stream **out)
{
	if (c->closed)
		return -EPIPE;
	if (c->next_id > UINT32_MAX - 2)
		return -EOVERFLOW; /* ids are never reused on a connection */
	struct ttrpc_stream *s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	int64_t timeout = opts ? opts->timeout_ns : 0;
	uint32_t id = c->next_id;
	struct ttrpc_obuf *b = ttrpc_env_request(&c->conn, id, flags, service, method, req, timeout,
						 opts ? opts->metadata : NULL,
						 opts ? opts->n_metadata : 0);
	if (!b) {
		int err = -errno;
		free(s);
		return err;
	}
	c->next_id += 2;
	s->client = c;
	s->id = id;
	s->reply_desc = reply_desc;
	s->on_done = cb;
	s->on_msg = on_msg;
	s->userdata = userdata;
	s->send_open = flags & TTRPC_FLAG_REMOTE_OPEN;
	struct ttrpc_stream **bk = bucket(c, id);
	s->hnext = *bk;
	*bk = s;
	c->n_pending++;
	if (timeout > 0) {
		s->deadline = ttrpc_now_ns() + timeout;
		ttrpc_poller_arm(&c->poller, s->deadline);
	}
	if (ttrpc_conn_queue(&c->conn, b) < 0)
		mark_closed(c); /* fails this call too, via the done list */
	if (out)
		*out = s;
	return 0;
}

int64_t ttrpc_client_call_async(struct ttrpc_client *c, const char *service, const char *method,
				const ProtobufCMessage *req,
				const ProtobufCMessageDescriptor *reply_desc,
				const struct ttrpc_call_opts *opts, ttrpc_reply_fn cb, void *userdata)
{
	struct ttrpc_stream *s = NULL;
	uint32_t id = c->next_id;
	int rc = start(c, service, method, req, reply_desc, 0, opts, NULL, cb, userdata, &s);
	return rc < 0 ? rc : (int64_t)id;
}

int ttrpc_client_stream(struct ttrpc_client *c, const char *service, const char *method,
			const ProtobufCMessage *req, const ProtobufCMessageDescriptor *reply_desc,
			int flags, const struct ttrpc_call_opts *opts, ttrpc_stream_msg_fn on_msg,
			ttrpc_reply_fn on_done, void *userdata, struct ttrpc_stream **out)
{
	uint8_t f = (flags & TTRPC_STREAM_SEND) ? TTRPC_FLAG_REMOTE_OPEN : TTRPC_FLAG_REMOTE_CLOSED;
	return start(c, service, method, req, reply_desc, f, opts, on_msg, on_done, userdata, out);
}

int ttrpc_stream_send(struct ttrpc_stream *s, const ProtobufCMessage *msg, bool close)
{
	struct ttrpc_client *c = s->client;
	if (!s->send_open || c->closed)
		return -EPIPE;
	uint8_t flags = close ? TTRPC_FLAG_REMOTE_CLOSED : 0;
	if (!msg)
		flags |= TTRPC_FLAG_NO_DATA;
	struct ttrpc_obuf *b = ttrpc_env_data(&c->conn, s->id, flags, msg);
	if (!b)
		return -errno;
	if (close)
		s->send_open = false;
	if (ttrpc_conn_queue(&c->conn, b) < 0) {
		mark_closed(c);
		return -EPIPE;
	}
	return 0;
}

static void complete(struct ttrpc_client *c, struct ttrpc_stream *s, const uint8_t *data,
		     size_t len)
{
	const uint8_t *payload;
	size_t plen;
	if (ttrpc_env_parse_response(data, len, &payload, &plen, &s->st) < 0) {
		ttrpc_status_set(&s->st, TTRPC_INTERNAL, "ttrpc: malformed response");
	} else if (s->st.code == TTRPC_OK && s->reply_desc) {
		s->reply = protobuf_c_message_unpack(s->reply_desc, NULL, plen, payload);
		if (!s->reply)
			ttrpc_status_set(&s->st, TTRPC_INTERNAL,
					 "ttrpc: error unmarshalling response: proto: malformed %s",
					 s->reply_desc->name);
	}
	finish(c, s);
}

static int on_frame(struct ttrpc_conn *conn, struct ttrpc_frame *f)
{
	struct ttrpc_client *c = conn->owner;
	struct ttrpc_stream *s = lookup(c, f->hdr.stream_id);
	if (!s) {
		/* late reply of a timed-out call, or garbage: ignored */
		return 0;
	}
	if (f->oversized) {
		ttrpc_status_set(&s->st, TTRPC_RESOURCE_EXHAUSTED,
				 "message length %u exceed maximum message size of %u",
				 f->hdr.length, TTRPC_MAX_DATA);
		finish(c, s);
	} else if (f->hdr.type == TTRPC_TYPE_RESPONSE) {
		complete(c, s, f->data, f->hdr.length);
	} else if (f->hdr.type == TTRPC_TYPE_DATA && s->on_msg) {
		if (!(f->hdr.flags & TTRPC_FLAG_NO_DATA)) {
			ProtobufCMessage *m =
				protobuf_c_message_unpack(s->reply_desc, NULL, f->hdr.length, f->data);
			if (m)
				s->on_msg(m, s->userdata);
		}
		if (f->hdr.flags & TTRPC_FLAG_REMOTE_CLOSED) {
			/* stream ended by data: no Response follows */
			ttrpc_status_ok(&s->st);
			finish(c, s);
		}
	} else {
		ttrpc_status_set(&s->st, TTRPC_INTERNAL, "ttrpc: unknown message type %u received",
				 f->hdr.type);
		finish(c, s);
	}
	return 0;
}

static void expire(struct ttrpc_client *c)
{
	int64_t now = ttrpc_now_ns(), next = 0;
	for (int i = 0; i < PENDING_BUCKETS; i++) {
		struct ttrpc_stream *s = c->pending[i];
		while (s) {
			struct ttrpc_stream *n = s->hnext;
			if (s->deadline && s->deadline <= now) {
				ttrpc_status_set(&s->st, TTRPC_DEADLINE_EXCEEDED,
						 "context deadline exceeded");
				finish(c, s);
			} else if (s->deadline && (!next || s->deadline < next)) {
				next = s->deadline;
			}
			s = n;
		}
	}
	if (c->sweep_at && c->sweep_at <= now)
		c->sweep_at = ttrpc_conn_sweep(&c->conn) ? now + TTRPC_CONN_SWEEP_NS : 0;
	if (c->sweep_at && (!next || c->sweep_at < next))
		next = c->sweep_at;
	ttrpc_poller_set(&c->poller, next);
}

int ttrpc_client_dispatch(struct ttrpc_client *c)
{
	struct epoll_event ev[4];
	int n = epoll_wait(c->poller.epfd, ev, 4, 0);
	if (n < 0)
		return errno == EINTR ? 0 : -errno;
	c->in_dispatch = true;
	for (int i = 0; i < n; i++) {
		int kind = *(int *)ev[i].data.ptr;
		if (kind == TTRPC_SRC_TIMER) {
			ttrpc_poller_ack(&c->poller);
			expire(c);
		} else if (!c->closed) {
			int rc = ttrpc_conn_handle(&c->conn, ev[i].events);
			if (rc < 0 || c->conn.eof)
				mark_closed(c);
			else if (!c->sweep_at && ttrpc_conn_cached(&c->conn)) {
				c->sweep_at = ttrpc_now_ns() + TTRPC_CONN_SWEEP_NS;
				ttrpc_poller_arm(&c->poller, c->sweep_at);
			}
		}
	}
	c->in_dispatch = false;
	/* calls the callbacks issue go out together */
	ttrpc_conn_cork(&c->conn);
	run_done(c);
	if (!c->closed && ttrpc_conn_uncork(&c->conn) < 0) {
		mark_closed(c);
		run_done(c);
	}
	return n;
}

struct sync_result {
	bool done;
	struct ttrpc_status *st;
	ProtobufCMessage **reply;
};

static void sync_cb(const struct ttrpc_status *st, ProtobufCMessage *reply, void *ud)
{
	struct sync_result *r = ud;
	*r->st = *st;
	*r->reply = reply;
	r->done = true;
}

int ttrpc_client_call(struct ttrpc_client *c, const char *service, const char *method,
		      const ProtobufCMessage *req, const ProtobufCMessageDescriptor *reply_desc,
		      const struct ttrpc_call_opts *opts, ProtobufCMessage **reply,
		      struct ttrpc_status *st)
{
	struct sync_result r = {.done = false, .st = st, .reply = reply};
	*reply = NULL;
	int64_t rc = ttrpc_client_call_async(c, service, method, req, reply_desc, opts, sync_cb, &r);
	if (rc < 0) {
		ttrpc_status_set(st, ttrpc_code_from_errno((int)rc), "ttrpc: %s", strerror((int)-rc));
		return (int)rc;
	}
	/* called from a callback while corked: this request must go now */
	if (c->conn.corked && ttrpc_conn_uncork(&c->conn) < 0)
		mark_closed(c);
	while (!r.done) {
		run_done(c); /* a call that failed at once completes here */
		if (r.done)
			break;
		struct pollfd p = {.fd = c->poller.epfd, .events = POLLIN};
		if (poll(&p, 1, -1) < 0 && errno != EINTR)
			return -errno;
		ttrpc_client_dispatch(c);
	}
	return st->code == TTRPC_OK ? 0 : -EIO;
}
