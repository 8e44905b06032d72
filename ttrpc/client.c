/* ttrpc client: odd stream ids from 1, a pending table matched by stream id
 * (replies may come in any order), per-call timeouts on the poller's timer,
 * and every pending call failed with "ttrpc: closed" when the connection goes.
 * A client may start unconnected (ttrpc_client_connect_nb): frames wait in a
 * held queue and connect() is retried on the same timer until it succeeds.
 * A client has its own poller, or shares its group's (many clients, one epoll
 * set and one timer: the group's dispatch hands each its events, and on the
 * timer lets every one of them look at its deadlines). */
#include "conn.h"
#include "envelope.h"
#include "poller.h"
#include "ttrpc.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define PENDING_BUCKETS 64 /* power of two */
/* connect() retry while the listener's backlog is full (EAGAIN): no
 * connection is in progress then, so only trying again can tell. */
#define CONNECT_RETRY_FIRST_NS (1 * 1000000LL)
#define CONNECT_RETRY_MAX_NS (50 * 1000000LL)

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

struct ttrpc_client_group {
	struct ttrpc_poller poller;
	struct ttrpc_client *head; /* members, freed ones included until reaped */
	unsigned dispatching;	   /* nested group dispatches running */
	bool reap_due;		   /* a member was freed during one */
};

struct ttrpc_client {
	struct ttrpc_poller own;     /* a client alone; unused in a group */
	struct ttrpc_poller *poller; /* &own, or the group's */
	struct ttrpc_client_group *group;
	struct ttrpc_client *gprev, *gnext;
	bool destroyed; /* in a group: freed, its memory kept until the group reaps it */
	bool expiring;	/* in a group timer's pass */
	struct ttrpc_conn conn;
	uint32_t next_id;
	struct ttrpc_stream *pending[PENDING_BUCKETS];
	unsigned n_pending;
	struct ttrpc_stream *done_head, *done_tail;
	bool closed;
	bool in_dispatch;
	int64_t sweep_at; /* when to look for idle buffers, 0 = none held */
	struct ttrpc_status close_status;
	/* Re-entrancy: dispatch and the sync call count themselves here, and a
	 * ttrpc_client_free() from a callback inside them is finished by the
	 * outermost one on its way out. */
	unsigned busy;
	bool freeing;
	/* on_close: close_due is set when the connection is lost (or the connect
	 * failed); the callback runs from the outermost dispatch, after the
	 * failed calls' callbacks. */
	ttrpc_close_fn on_close;
	void *on_close_ud;
	bool close_due;
	int close_err;
	/* Not yet connected: sock is the socket being connected (not in the
	 * epoll set: an unconnected stream socket polls as HUP), held the frames
	 * to send once it is, in order. */
	bool connecting;
	int sock;
	struct sockaddr_un sa;
	socklen_t salen;
	int64_t retry_at, retry_ns, connect_deadline;
	struct ttrpc_obuf *held_head, *held_tail;
};

static int on_frame(struct ttrpc_conn *c, struct ttrpc_frame *f);
static const struct ttrpc_conn_ops cconn_ops = {.on_frame = on_frame};

/* A client with its poller (or in group g) and no connection yet. */
static struct ttrpc_client *client_alloc(struct ttrpc_client_group *g)
{
	struct ttrpc_client *c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	if (g) {
		c->poller = &g->poller;
		c->group = g;
		c->gnext = g->head;
		if (g->head)
			g->head->gprev = c;
		g->head = c;
	} else if (ttrpc_poller_init(&c->own) < 0) {
		free(c);
		return NULL;
	} else {
		c->poller = &c->own;
	}
	c->conn.fd = -1;
	c->sock = -1;
	c->next_id = 1;
	return c;
}

/* Unlinks c from its group (or releases its own poller) and frees it; its
 * connection is already gone. */
static void client_unalloc(struct ttrpc_client *c)
{
	struct ttrpc_client_group *g = c->group;
	if (g) {
		if (c->gprev)
			c->gprev->gnext = c->gnext;
		else
			g->head = c->gnext;
		if (c->gnext)
			c->gnext->gprev = c->gprev;
	} else {
		ttrpc_poller_release(&c->own);
	}
	free(c);
}

/* Puts a connected fd (owned from here) under c. */
static int attach(struct ttrpc_client *c, int fd, bool ours)
{
	if (!ours) { /* ours were made SOCK_NONBLOCK | SOCK_CLOEXEC */
		int fl = fcntl(fd, F_GETFL);
		if (fl >= 0)
			fcntl(fd, F_SETFL, fl | O_NONBLOCK);
		fcntl(fd, F_SETFD, FD_CLOEXEC);
	}
	int rc = ttrpc_conn_init(&c->conn, TTRPC_SRC_CONN, fd, c->poller->epfd, &cconn_ops, c);
	if (rc < 0) {
		close(fd);
		c->conn.fd = -1;
	}
	return rc;
}

struct ttrpc_client *ttrpc_client_new(int fd)
{
	struct ttrpc_client *c = client_alloc(NULL);
	if (!c) {
		close(fd);
		return NULL;
	}
	if (attach(c, fd, false) < 0) {
		client_unalloc(c);
		return NULL;
	}
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

/* connect() has not finished, but may later: the backlog is full (EAGAIN,
 * what AF_UNIX says), or a connection is under way (other families). */
static bool connect_later(int err)
{
	return err == EAGAIN || err == EINPROGRESS || err == EALREADY || err == EINTR;
}

static int connect_nb(struct ttrpc_client_group *g, const char *address, int64_t timeout_ns,
		      struct ttrpc_client **out)
{
	struct sockaddr_un sa;
	int len = ttrpc_sockaddr(address, &sa);
	if (len < 0)
		return len;
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	int err = 0;
	if (connect(fd, (struct sockaddr *)&sa, (socklen_t)len) < 0) {
		err = errno;
		if (!connect_later(err)) {
			close(fd);
			return -err;
		}
	}
	struct ttrpc_client *c = client_alloc(g);
	if (!c) {
		close(fd);
		return -ENOMEM;
	}
	if (!err) {
		int rc = attach(c, fd, true);
		if (rc < 0) {
			client_unalloc(c);
			return rc;
		}
		*out = c;
		return 0;
	}
	c->connecting = true;
	c->sock = fd;
	c->sa = sa;
	c->salen = (socklen_t)len;
	int64_t now = ttrpc_now_ns();
	c->retry_ns = CONNECT_RETRY_FIRST_NS;
	c->retry_at = now + c->retry_ns;
	c->connect_deadline = timeout_ns > 0 ? now + timeout_ns : 0;
	int rc = ttrpc_poller_arm(c->poller, c->retry_at);
	if (rc < 0) {
		close(fd);
		client_unalloc(c);
		return rc;
	}
	*out = c;
	return 0;
}

int ttrpc_client_connect_nb(const char *address, int64_t timeout_ns, struct ttrpc_client **out)
{
	return connect_nb(NULL, address, timeout_ns, out);
}

int ttrpc_client_group_connect_nb(struct ttrpc_client_group *g, const char *address,
				  int64_t timeout_ns, struct ttrpc_client **out)
{
	return connect_nb(g, address, timeout_ns, out);
}

int ttrpc_client_fd(const struct ttrpc_client *c)
{
	return c->poller->epfd;
}

bool ttrpc_client_closed(const struct ttrpc_client *c)
{
	return c->closed;
}

bool ttrpc_client_connecting(const struct ttrpc_client *c)
{
	return c->connecting;
}

void ttrpc_client_on_close(struct ttrpc_client *c, ttrpc_close_fn fn, void *userdata)
{
	c->on_close = fn;
	c->on_close_ud = userdata;
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

static int64_t earliest(int64_t a, int64_t b)
{
	return !a ? b : !b ? a : a < b ? a : b;
}

static uint32_t obuf_stream(const struct ttrpc_obuf *b)
{
	struct ttrpc_frame_hdr h;
	ttrpc_frame_hdr_decode(b->data, &h);
	return h.stream_id;
}

/* Drops the held frames of stream id, or all of them for 0: a call that ends
 * before the connection is made sends nothing. */
static void drop_held(struct ttrpc_client *c, uint32_t id)
{
	struct ttrpc_obuf **pp = &c->held_head;
	c->held_tail = NULL;
	while (*pp) {
		struct ttrpc_obuf *b = *pp;
		if (!id || obuf_stream(b) == id) {
			*pp = b->next;
			free(b);
		} else {
			c->held_tail = b;
			pp = &b->next;
		}
	}
}

/* Queues a frame (taking it) on the connection, or holds it until there is
 * one. <0: the connection is broken. */
static int send_frame(struct ttrpc_client *c, struct ttrpc_obuf *b)
{
	if (!c->connecting)
		return ttrpc_conn_queue(&c->conn, b);
	b->next = NULL;
	if (c->held_tail)
		c->held_tail->next = b;
	else
		c->held_head = b;
	c->held_tail = b;
	return 0;
}

/* Moves a pending stream to the done list; its callback runs from
 * run_done(), never from inside the call that started it. */
static void finish(struct ttrpc_client *c, struct ttrpc_stream *s)
{
	if (c->held_head)
		drop_held(c, s->id);
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
		ttrpc_poller_arm(c->poller, 1);
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

/* Closes the socket (connected or not) and drops what waited to be sent. */
static void drop_conn(struct ttrpc_client *c)
{
	c->closed = true;
	c->connecting = false;
	if (c->sock >= 0) {
		close(c->sock);
		c->sock = -1;
	}
	drop_held(c, 0);
	ttrpc_conn_release(&c->conn);
	c->sweep_at = 0;
}

/* The connection is lost, or was never made: pending calls fail with
 * Unavailable msg, and on_close is due with err (0: EOF). */
static void close_conn(struct ttrpc_client *c, int err, const char *msg)
{
	if (c->closed)
		return;
	drop_conn(c);
	fail_all(c, TTRPC_UNAVAILABLE, msg);
	c->close_err = err;
	c->close_due = true;
	if (!c->in_dispatch)
		ttrpc_poller_arm(c->poller, 1); /* the owner's next dispatch tells */
}

static void mark_closed(struct ttrpc_client *c, int err)
{
	close_conn(c, err, "ttrpc: closed");
}

static void connect_failed(struct ttrpc_client *c, int err)
{
	char msg[128];
	if (err == ETIMEDOUT)
		snprintf(msg, sizeof(msg), "ttrpc: connect: timed out");
	else
		snprintf(msg, sizeof(msg), "ttrpc: connect: %s", strerror(err));
	close_conn(c, err, msg);
}

/* A held request whose call has a deadline: timeout_nano was the whole
 * timeout when it was made; the server gets what is left of it now. */
static struct ttrpc_obuf *retime(struct ttrpc_client *c, struct ttrpc_obuf *b, int64_t now)
{
	struct ttrpc_frame_hdr h;
	ttrpc_frame_hdr_decode(b->data, &h);
	struct ttrpc_stream *s = lookup(c, h.stream_id);
	if (h.type != TTRPC_TYPE_REQUEST || !s || !s->deadline)
		return b;
	int64_t left = s->deadline - now;
	struct ttrpc_obuf *nb = ttrpc_env_request_retime(b, left > 0 ? left : 1);
	if (!nb)
		return b; /* the whole timeout, then: the call's own deadline still holds */
	free(b);
	return nb;
}

/* The socket is connected: it becomes the connection and the held frames go
 * out, in the order they were made, as one burst. */
static void connected(struct ttrpc_client *c)
{
	int fd = c->sock;
	c->sock = -1;
	int rc = attach(c, fd, true);
	if (rc < 0) {
		connect_failed(c, -rc);
		return;
	}
	c->connecting = false;
	ttrpc_conn_cork(&c->conn);
	int64_t now = ttrpc_now_ns();
	while (c->held_head && rc >= 0) {
		struct ttrpc_obuf *b = c->held_head;
		c->held_head = b->next;
		b->next = NULL;
		rc = ttrpc_conn_queue(&c->conn, retime(c, b, now));
	}
	if (!c->held_head)
		c->held_tail = NULL;
	if (rc >= 0)
		rc = ttrpc_conn_uncork(&c->conn);
	if (rc < 0)
		mark_closed(c, -rc);
}

static void try_connect(struct ttrpc_client *c, int64_t now)
{
	if (connect(c->sock, (struct sockaddr *)&c->sa, c->salen) == 0 || errno == EISCONN) {
		connected(c);
		return;
	}
	int err = errno;
	if (!connect_later(err)) {
		connect_failed(c, err);
		return;
	}
	c->retry_at = now + c->retry_ns;
	c->retry_ns *= 2;
	if (c->retry_ns > CONNECT_RETRY_MAX_NS)
		c->retry_ns = CONNECT_RETRY_MAX_NS;
}

/* In a group its memory stays, marked, until the outermost group dispatch is
 * over: an event that dispatch already holds may still point at it. */
static void destroy(struct ttrpc_client *c)
{
	c->busy++; /* a callback below cannot start a second destroy */
	run_done(c);
	struct ttrpc_client_group *g = c->group;
	if (g && g->dispatching) {
		c->destroyed = true;
		g->reap_due = true;
		return;
	}
	client_unalloc(c);
}

/* Leaves a dispatch or sync call; true when c was freed on the way out. */
static bool leave(struct ttrpc_client *c)
{
	if (--c->busy == 0 && c->freeing) {
		destroy(c);
		return true;
	}
	return false;
}

/* on_close, once the failed calls' callbacks have run, and only from the
 * outermost dispatch: a nested one (a sync call made from a callback) leaves
 * it to the owner's next dispatch, woken by the timer. */
static void notify_close(struct ttrpc_client *c)
{
	if (!c->close_due || c->freeing)
		return;
	if (c->busy > 1) {
		ttrpc_poller_arm(c->poller, 1);
		return;
	}
	c->close_due = false;
	ttrpc_close_fn fn = c->on_close;
	c->on_close = NULL;
	if (fn)
		fn(c, c->close_err, c->on_close_ud);
}

void ttrpc_client_free(struct ttrpc_client *c)
{
	if (!c || c->freeing)
		return;
	c->freeing = true;
	c->on_close = NULL;
	c->close_due = false;
	if (!c->closed)
		drop_conn(c);
	fail_all(c, TTRPC_CANCELLED, "ttrpc: client closed");
	if (!c->busy)
		destroy(c);
	/* else: called from a callback; the outermost dispatch or sync call
	 * runs the Cancelled callbacks and frees c on its way out */
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
		ttrpc_poller_arm(c->poller, s->deadline);
	}
	int rc = send_frame(c, b);
	if (rc < 0)
		mark_closed(c, -rc); /* fails this call too, via the done list */
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
	int rc = send_frame(c, b);
	if (rc < 0) {
		mark_closed(c, -rc);
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
			if (c->closed)
				return 0; /* the callback freed the client: s is finished */
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

/* Deadlines, connect retries and the buffer sweep that are due; returns when
 * the client's timer must fire next (0: no need). */
static int64_t expire(struct ttrpc_client *c)
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
			}
			s = n;
		}
	}
	if (c->connecting) {
		if (c->connect_deadline && c->connect_deadline <= now)
			connect_failed(c, ETIMEDOUT);
		else if (c->retry_at <= now)
			try_connect(c, now);
	}
	if (c->sweep_at && c->sweep_at <= now)
		c->sweep_at = ttrpc_conn_sweep(&c->conn) ? now + TTRPC_CONN_SWEEP_NS : 0;
	for (int i = 0; i < PENDING_BUCKETS; i++)
		for (struct ttrpc_stream *s = c->pending[i]; s; s = s->hnext)
			next = earliest(next, s->deadline);
	if (c->connecting)
		next = earliest(earliest(next, c->retry_at), c->connect_deadline);
	return earliest(next, c->sweep_at);
}

/* The connection's events, inside a dispatch. */
static void conn_events(struct ttrpc_client *c, uint32_t events)
{
	if (c->closed || c->conn.fd < 0)
		return;
	int rc = ttrpc_conn_handle(&c->conn, events);
	/* EOF at a frame boundary is a close, whatever the HUP that came with
	 * it made of it */
	if (c->conn.eof)
		mark_closed(c, 0);
	else if (rc < 0)
		mark_closed(c, -rc);
	else if (!c->sweep_at && ttrpc_conn_cached(&c->conn)) {
		/* a timer already armed (a call's deadline) does for the sweep, a
		 * little late: one timerfd_settime less per reply, which a manager
		 * of many shims feels */
		c->sweep_at = ttrpc_now_ns() + TTRPC_CONN_SWEEP_NS;
		if (!c->poller->armed_ns)
			ttrpc_poller_arm(c->poller, c->sweep_at);
	}
}

/* Enters a dispatch of c (its events are handled, callbacks wait). */
static void enter(struct ttrpc_client *c)
{
	c->busy++;
	c->in_dispatch = true;
}

/* Ends it: the callbacks run, the calls they issue go out together, then
 * on_close if due. */
static void finish_dispatch(struct ttrpc_client *c)
{
	c->in_dispatch = false;
	ttrpc_conn_cork(&c->conn);
	run_done(c);
	int rc;
	if (!c->closed && (rc = ttrpc_conn_uncork(&c->conn)) < 0) {
		mark_closed(c, -rc);
		run_done(c);
	}
	notify_close(c);
	leave(c);
}

int ttrpc_client_dispatch(struct ttrpc_client *c)
{
	if (c->group)
		return ttrpc_client_group_dispatch(c->group);
	struct epoll_event ev[4];
	int n = epoll_wait(c->poller->epfd, ev, 4, 0);
	if (n < 0)
		return errno == EINTR ? 0 : -errno;
	enter(c);
	for (int i = 0; i < n; i++) {
		int kind = *(int *)ev[i].data.ptr;
		if (kind == TTRPC_SRC_TIMER) {
			ttrpc_poller_ack(c->poller);
			ttrpc_poller_set(c->poller, expire(c));
		} else {
			conn_events(c, ev[i].events);
		}
	}
	finish_dispatch(c);
	return n;
}

/* ---- groups ------------------------------------------------------------ */

int ttrpc_client_group_new(struct ttrpc_client_group **out)
{
	struct ttrpc_client_group *g = calloc(1, sizeof(*g));
	if (!g)
		return -ENOMEM;
	int rc = ttrpc_poller_init(&g->poller);
	if (rc < 0) {
		free(g);
		return rc;
	}
	*out = g;
	return 0;
}

static void reap(struct ttrpc_client_group *g)
{
	g->reap_due = false;
	struct ttrpc_client *c = g->head;
	while (c) {
		struct ttrpc_client *n = c->gnext;
		if (c->destroyed)
			client_unalloc(c);
		c = n;
	}
}

void ttrpc_client_group_free(struct ttrpc_client_group *g)
{
	if (!g)
		return;
	while (g->head) {
		struct ttrpc_client *c = g->head;
		if (!c->destroyed)
			ttrpc_client_free(c);
		if (g->head == c) /* freed while busy: it is ours to end now */
			client_unalloc(c);
	}
	ttrpc_poller_release(&g->poller);
	free(g);
}

int ttrpc_client_group_fd(const struct ttrpc_client_group *g)
{
	return g->poller.epfd;
}

unsigned ttrpc_client_group_size(const struct ttrpc_client_group *g)
{
	unsigned n = 0;
	for (const struct ttrpc_client *c = g->head; c; c = c->gnext)
		n += !c->destroyed;
	return n;
}

/* The timer: every member looks at its deadlines first and the timer is set
 * for the earliest, then their callbacks run (a call they make may only
 * bring it nearer). */
static void group_expire(struct ttrpc_client_group *g)
{
	ttrpc_poller_ack(&g->poller);
	int64_t next = 0;
	for (struct ttrpc_client *c = g->head; c; c = c->gnext) {
		if (c->destroyed || c->freeing)
			continue;
		enter(c);
		c->expiring = true;
		next = earliest(next, expire(c));
	}
	ttrpc_poller_set(&g->poller, next);
	/* members a callback adds join at the head, not entered: passed over */
	for (struct ttrpc_client *c = g->head; c; c = c->gnext) {
		if (!c->expiring)
			continue;
		c->expiring = false;
		finish_dispatch(c);
	}
}

int ttrpc_client_group_dispatch(struct ttrpc_client_group *g)
{
	struct epoll_event ev[64];
	int n = epoll_wait(g->poller.epfd, ev, 64, 0);
	if (n < 0)
		return errno == EINTR ? 0 : -errno;
	g->dispatching++;
	bool timer = false;
	for (int i = 0; i < n; i++) {
		if (ev[i].data.ptr == &g->poller.tfd_kind) {
			timer = true;
			continue;
		}
		struct ttrpc_client *c = ((struct ttrpc_conn *)ev[i].data.ptr)->owner;
		if (c->destroyed || c->freeing)
			continue;
		enter(c);
		conn_events(c, ev[i].events);
		finish_dispatch(c);
	}
	if (timer)
		group_expire(g);
	if (--g->dispatching == 0 && g->reap_due)
		reap(g);
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
	c->busy++; /* a callback that frees c: c stays until this call ends */
	/* called from a callback while corked: this request must go now */
	if (c->conn.corked && (rc = ttrpc_conn_uncork(&c->conn)) < 0)
		mark_closed(c, (int)-rc);
	int err = 0;
	while (!r.done) {
		run_done(c); /* a call that failed at once completes here */
		if (r.done)
			break;
		struct pollfd p = {.fd = c->poller->epfd, .events = POLLIN};
		if (poll(&p, 1, -1) < 0 && errno != EINTR) {
			err = -errno;
			break;
		}
		ttrpc_client_dispatch(c);
	}
	leave(c);
	if (err)
		return err;
	return st->code == TTRPC_OK ? 0 : -EIO;
}
