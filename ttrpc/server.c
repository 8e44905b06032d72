/* ttrpc server: accepts unix connections, decodes Request frames, dispatches
 * by "/service/method" through protoc-c service descriptors, and answers in
 * completion order. Handlers may answer later; deadlines (timeout_nano) are
 * enforced by a timer, and a dead connection cancels its calls. */
#include "conn.h"
#include "envelope.h"
#include "poller.h"
#include "ttrpc.h"

#include <errno.h>
#include <stdint.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <limits.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#define MAX_SERVICES 16
#define EVENTS_PER_DISPATCH 64
/* Out of fds on accept: the listener stays readable, so stop polling it for
 * this long instead of spinning (peers wait in the backlog meanwhile). */
#define ACCEPT_BACKOFF_NS (100 * 1000000LL)

struct service {
	const ProtobufCServiceDescriptor *desc;
	const ttrpc_handler_fn *handlers;
	void *userdata;
};

struct listener {
	int kind; /* TTRPC_SRC_LISTENER */
	int fd;
	int64_t paused_until; /* out of epoll until then (monotonic ns), 0 = polled */
	struct listener *next;
};

struct sconn {
	struct ttrpc_conn c; /* first: epoll data.ptr */
	struct ttrpc_server *srv;
	struct sconn *prev, *next;
	unsigned inflight; /* calls not yet freed, parked ones included */
	unsigned parked;
	size_t parked_bytes;
	bool dead;
};

struct ttrpc_call {
	struct ttrpc_server *srv;
	struct sconn *conn; /* NULL once the connection is gone */
	struct ttrpc_call *prev, *next;
	struct ttrpc_call *sprev, *snext; /* in srv->streams while the client may send */
	bool in_streams;
	const struct service *svc;
	const ProtobufCMethodDescriptor *method;
	const char *service, *method_name; /* in this allocation, after the struct */
	struct ttrpc_kv *md;		    /* likewise */
	size_t n_md;
	int64_t timeout_nano;
	ProtobufCMessage *req;
	uint32_t stream_id;
	uint8_t req_flags;
	size_t held; /* bytes of request this call keeps: its allocation, payload */
	bool parked;
	bool answered;	/* a final Response has been queued (or cannot be) */
	bool cancelled;
	bool cancel_pending;
	int64_t deadline; /* monotonic ns, 0 = none */
	ttrpc_call_cancel_fn on_cancel;
	void *cancel_ud;
	ttrpc_call_data_fn on_data;
	void *data_ud;
};

struct ttrpc_server {
	struct ttrpc_poller poller;
	struct service services[MAX_SERVICES];
	unsigned n_services;
	struct listener *listeners;
	struct sconn *conns;
	unsigned n_conns;
	struct ttrpc_call *calls;
	struct ttrpc_call *streams; /* calls open for client Data: what Data frames look up */
	enum ttrpc_peer_check peer_check;
	uid_t euid; /* ours when the server was made: what peers are checked against */
	gid_t egid;
	bool shutting_down;
	bool held; /* ttrpc_server_hold: listeners out of epoll, connections not read */
	bool in_dispatch;
	struct ttrpc_call *in_handler; /* the call whose handler runs now */
	bool in_handler_freed;
	int64_t sweep_at; /* when to free idle connections' buffers, 0 = none */
};

static void conn_close(struct sconn *sc);

struct ttrpc_server *ttrpc_server_new(void)
{
	struct ttrpc_server *s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	if (ttrpc_poller_init(&s->poller) < 0) {
		free(s);
		return NULL;
	}
	s->euid = geteuid();
	s->egid = getegid();
	return s;
}

static void close_listeners(struct ttrpc_server *s)
{
	while (s->listeners) {
		struct listener *l = s->listeners;
		s->listeners = l->next;
		if (!l->paused_until)
			epoll_ctl(s->poller.epfd, EPOLL_CTL_DEL, l->fd, NULL);
		close(l->fd);
		free(l);
	}
}

void ttrpc_server_free(struct ttrpc_server *s)
{
	if (!s)
		return;
	close_listeners(s);
	while (s->conns)
		conn_close(s->conns);
	/* Calls still held by handlers stay valid (orphaned) until finished;
	 * detach them from the server so finishing them is safe. */
	for (struct ttrpc_call *c = s->calls; c; c = c->next)
		c->srv = NULL;
	ttrpc_poller_release(&s->poller);
	free(s);
}

void ttrpc_server_set_peer_check(struct ttrpc_server *s, enum ttrpc_peer_check check)
{
	s->peer_check = check;
}

int ttrpc_server_register(struct ttrpc_server *s, const ProtobufCServiceDescriptor *desc,
			  const ttrpc_handler_fn *handlers, void *userdata)
{
	for (unsigned i = 0; i < s->n_services; i++)
		if (strcmp(s->services[i].desc->name, desc->name) == 0)
			return -EEXIST;
	if (s->n_services == MAX_SERVICES)
		return -ENOSPC;
	s->services[s->n_services++] = (struct service){desc, handlers, userdata};
	return 0;
}

int ttrpc_server_fd(const struct ttrpc_server *s)
{
	return s->poller.epfd;
}

unsigned ttrpc_server_conn_count(const struct ttrpc_server *s)
{
	return s->n_conns;
}

int ttrpc_raise_nofile_limit(void)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
		return -errno;
	if (rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
			return -errno;
	}
	return rl.rlim_cur > INT_MAX ? INT_MAX : (int)rl.rlim_cur;
}

int ttrpc_sockaddr(const char *address, struct sockaddr_un *sa)
{
	if (strncmp(address, "unix://", 7) == 0)
		address += 7;
	size_t n = strlen(address);
	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	if (n == 0 || n >= sizeof(sa->sun_path))
		return -ENAMETOOLONG;
	memcpy(sa->sun_path, address, n);
	if (address[0] == '@')
		sa->sun_path[0] = '\0'; /* abstract */
	return (int)(offsetof(struct sockaddr_un, sun_path) + n + (address[0] == '@' ? 0 : 1));
}

int ttrpc_server_add_listener(struct ttrpc_server *s, int fd)
{
	struct listener *l = calloc(1, sizeof(*l));
	if (!l) {
		close(fd);
		return -ENOMEM;
	}
	int fl = fcntl(fd, F_GETFL);
	if (fl >= 0)
		fcntl(fd, F_SETFL, fl | O_NONBLOCK);
	fcntl(fd, F_SETFD, FD_CLOEXEC);
	l->kind = TTRPC_SRC_LISTENER;
	l->fd = fd;
	struct epoll_event e = {.events = EPOLLIN, .data.ptr = l};
	if (epoll_ctl(s->poller.epfd, EPOLL_CTL_ADD, fd, &e) < 0) {
		int err = -errno;
		close(fd);
		free(l);
		return err;
	}
	l->next = s->listeners;
	s->listeners = l;
	return 0;
}

int ttrpc_server_listen(struct ttrpc_server *s, const char *path)
{
	struct sockaddr_un sa;
	int len = ttrpc_sockaddr(path, &sa);
	if (len < 0)
		return len;
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	if (sa.sun_path[0])
		unlink(sa.sun_path);
	if (bind(fd, (struct sockaddr *)&sa, (socklen_t)len) < 0 ||
	    (sa.sun_path[0] && chmod(sa.sun_path, 0600) < 0) || listen(fd, SOMAXCONN) < 0) {
		int err = -errno;
		close(fd);
		return err;
	}
	return ttrpc_server_add_listener(s, fd);
}

static int on_frame(struct ttrpc_conn *c, struct ttrpc_frame *f);
static const struct ttrpc_conn_ops sconn_ops = {.on_frame = on_frame};

/* ours: fd came from our accept4 (non-blocking and close-on-exec already). */
static int add_conn(struct ttrpc_server *s, int fd, bool ours, struct sconn **out)
{
	if (s->n_conns >= TTRPC_SERVER_MAX_CONNS) {
		close(fd);
		return -EMFILE;
	}
	if (!ours) {
		int fl = fcntl(fd, F_GETFL);
		if (fl >= 0)
			fcntl(fd, F_SETFL, fl | O_NONBLOCK);
		fcntl(fd, F_SETFD, FD_CLOEXEC);
	}
	struct sconn *sc = calloc(1, sizeof(*sc));
	if (!sc) {
		close(fd);
		return -ENOMEM;
	}
	int rc = ttrpc_conn_init(&sc->c, TTRPC_SRC_CONN, fd, s->poller.epfd, &sconn_ops, sc);
	if (rc < 0) {
		close(fd);
		free(sc);
		return rc;
	}
	sc->srv = s;
	if (s->held) {
		sc->c.held = true;
		ttrpc_conn_update(&sc->c);
	}
	sc->next = s->conns;
	if (s->conns)
		s->conns->prev = sc;
	s->conns = sc;
	s->n_conns++;
	if (out)
		*out = sc;
	return 0;
}

int ttrpc_server_add_conn(struct ttrpc_server *s, int fd)
{
	return add_conn(s, fd, false, NULL);
}

static bool peer_allowed(struct ttrpc_server *s, int fd)
{
	if (s->peer_check == TTRPC_PEER_ANY)
		return true;
	struct ucred cr;
	socklen_t len = sizeof(cr);
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &len) < 0)
		return false;
	if (cr.uid != s->euid)
		return false;
	if (s->peer_check == TTRPC_PEER_SAME_UID_GID && cr.gid != s->egid)
		return false;
	return true;
}

static int listener_poll(struct ttrpc_server *s, struct listener *l)
{
	struct epoll_event e = {.events = EPOLLIN, .data.ptr = l};
	return epoll_ctl(s->poller.epfd, EPOLL_CTL_ADD, l->fd, &e) < 0 ? -errno : 0;
}

/* Puts back listeners whose back-off is over; the earliest one still paused
 * lowers *next. */
static void resume_listeners(struct ttrpc_server *s, int64_t now, int64_t *next)
{
	if (s->held)
		return; /* their back-off ends with the hold */
	for (struct listener *l = s->listeners; l; l = l->next) {
		if (!l->paused_until)
			continue;
		if (l->paused_until <= now && listener_poll(s, l) == 0)
			l->paused_until = 0;
		else if (!*next || l->paused_until < *next)
			*next = l->paused_until;
	}
}

static void conn_io(struct ttrpc_server *s, struct sconn *sc, uint32_t events)
{
	if (ttrpc_conn_handle(&sc->c, events) < 0) {
		sc->dead = true;
	} else if (!s->sweep_at && ttrpc_conn_cached(&sc->c)) {
		/* a timer already armed (a parked call's deadline) does for the
		 * sweep, a little late: one timerfd_settime less per burst */
		s->sweep_at = ttrpc_now_ns() + TTRPC_CONN_SWEEP_NS;
		if (!s->poller.armed_ns)
			ttrpc_poller_arm(&s->poller, s->sweep_at);
	}
}

static void accept_all(struct ttrpc_server *s, struct listener *l)
{
	for (;;) {
		int fd = accept4(l->fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
		if (fd < 0 && (errno == EINTR || errno == ECONNABORTED))
			continue;
		if (fd < 0 && (errno == EMFILE || errno == ENFILE || errno == ENOBUFS ||
			       errno == ENOMEM)) {
			/* level-triggered and still readable: back off, don't spin */
			epoll_ctl(s->poller.epfd, EPOLL_CTL_DEL, l->fd, NULL);
			l->paused_until = ttrpc_now_ns() + ACCEPT_BACKOFF_NS;
			ttrpc_poller_arm(&s->poller, l->paused_until);
			return;
		}
		if (fd < 0)
			return; /* EAGAIN: all accepted */
		if (!peer_allowed(s, fd) || s->shutting_down) {
			close(fd); /* as Go's handshaker: refused peers get no bytes */
			continue;
		}
		struct sconn *sc;
		if (add_conn(s, fd, true, &sc) == 0 && !sc->c.held)
			/* a client that connects and calls at once (nanoshimd
			 * recovering, containerd) has its request here already:
			 * read it now, not after one more trip through epoll */
			conn_io(s, sc, EPOLLIN);
	}
}

/* ---- calls ---- */

static void stream_unlink(struct ttrpc_call *call)
{
	if (!call->in_streams)
		return;
	if (call->sprev)
		call->sprev->snext = call->snext;
	else if (call->srv && call->srv->streams == call)
		call->srv->streams = call->snext;
	if (call->snext)
		call->snext->sprev = call->sprev;
	call->sprev = call->snext = NULL;
	call->in_streams = false;
}

static void call_unlink(struct ttrpc_call *call)
{
	struct ttrpc_server *s = call->srv;
	stream_unlink(call);
	if (call->prev)
		call->prev->next = call->next;
	else if (s && s->calls == call)
		s->calls = call->next;
	if (call->next)
		call->next->prev = call->prev;
	call->prev = call->next = NULL;
}

static void call_free(struct ttrpc_call *call)
{
	if (call->srv && call->srv->in_handler == call)
		call->srv->in_handler_freed = true;
	call_unlink(call);
	if (call->conn) {
		call->conn->inflight--;
		if (call->parked) {
			call->conn->parked--;
			call->conn->parked_bytes -= call->held;
		}
		struct sconn *sc = call->conn;
		call->conn = NULL;
		struct ttrpc_server *s = sc->srv;
		/* A half-closed or draining connection goes once its last call is out. */
		if ((sc->c.eof || s->shutting_down) && sc->inflight == 0 &&
		    ttrpc_conn_flushed(&sc->c) && !s->in_dispatch)
			conn_close(sc);
	}
	if (call->req)
		protobuf_c_message_free_unpacked(call->req, NULL);
	free(call);
}

static int send_frame(struct sconn *sc, struct ttrpc_obuf *b)
{
	int rc = ttrpc_conn_queue(&sc->c, b);
	if (rc < 0)
		sc->dead = true;
	return rc;
}

static int send_error(struct sconn *sc, uint32_t id, int code, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static int send_error(struct sconn *sc, uint32_t id, int code, const char *fmt, ...)
{
	struct ttrpc_status st;
	va_list ap;
	va_start(ap, fmt);
	ttrpc_status_vset(&st, code, fmt, ap);
	va_end(ap);
	struct ttrpc_obuf *b = ttrpc_env_response_err(&sc->c, id, st.code, st.message);
	if (!b)
		return -ENOMEM;
	return send_frame(sc, b);
}

int ttrpc_call_fail_status(struct ttrpc_call *call, const struct ttrpc_status *st)
{
	int rc = 0;
	if (!call->answered && call->conn && !call->conn->dead) {
		int code = st->code == TTRPC_OK ? TTRPC_UNKNOWN : st->code;
		rc = send_error(call->conn, call->stream_id, code, "%s", st->message);
	}
	call->answered = true;
	call_free(call);
	return rc;
}

int ttrpc_call_fail(struct ttrpc_call *call, int code, const char *fmt, ...)
{
	struct ttrpc_status st;
	va_list ap;
	va_start(ap, fmt);
	ttrpc_status_vset(&st, code, fmt, ap);
	va_end(ap);
	return ttrpc_call_fail_status(call, &st);
}

int ttrpc_call_reply(struct ttrpc_call *call, const ProtobufCMessage *resp)
{
	int rc = 0;
	if (!call->answered && call->conn && !call->conn->dead) {
		if (resp && resp->descriptor != call->method->output) {
			rc = send_error(call->conn, call->stream_id, TTRPC_INTERNAL,
					"ttrpc: %s replied with %s, want %s", call->method->name,
					resp->descriptor->name, call->method->output->name);
		} else if (!resp && !(call->req_flags & (TTRPC_FLAG_REMOTE_CLOSED |
							  TTRPC_FLAG_REMOTE_OPEN))) {
			rc = send_error(call->conn, call->stream_id, TTRPC_UNKNOWN,
					"ttrpc: marshal called with nil");
		} else {
			struct ttrpc_obuf *b = ttrpc_env_response_ok(&call->conn->c, call->stream_id, resp);
			if (!b && errno == EMSGSIZE)
				rc = send_error(call->conn, call->stream_id, TTRPC_RESOURCE_EXHAUSTED,
						"message length %zu exceed maximum message size of %u",
						protobuf_c_message_get_packed_size(resp),
						TTRPC_MAX_DATA);
			else if (!b)
				rc = send_error(call->conn, call->stream_id, TTRPC_RESOURCE_EXHAUSTED,
						"ttrpc: out of memory");
			else
				rc = send_frame(call->conn, b);
		}
	}
	call->answered = true;
	call_free(call);
	return rc;
}

int ttrpc_call_send(struct ttrpc_call *call, const ProtobufCMessage *msg)
{
	if (!ttrpc_call_is_stream(call))
		return -EINVAL;
	if (call->answered || !call->conn || call->conn->dead)
		return -EPIPE;
	if (msg->descriptor != call->method->output)
		return -EINVAL;
	struct ttrpc_obuf *b = ttrpc_env_data(&call->conn->c, call->stream_id, 0, msg);
	if (!b)
		return -errno;
	return send_frame(call->conn, b);
}

bool ttrpc_call_is_stream(const struct ttrpc_call *call)
{
	return call->req_flags & (TTRPC_FLAG_REMOTE_CLOSED | TTRPC_FLAG_REMOTE_OPEN);
}

void ttrpc_call_on_data(struct ttrpc_call *call, ttrpc_call_data_fn fn, void *userdata)
{
	call->on_data = fn;
	call->data_ud = userdata;
}

void ttrpc_call_on_cancel(struct ttrpc_call *call, ttrpc_call_cancel_fn fn, void *userdata)
{
	call->on_cancel = fn;
	call->cancel_ud = userdata;
}

bool ttrpc_call_cancelled(const struct ttrpc_call *call)
{
	return call->cancelled;
}

int64_t ttrpc_call_timeout_nano(const struct ttrpc_call *call)
{
	return call->timeout_nano;
}

int ttrpc_call_park(struct ttrpc_call *call)
{
	if (call->parked || !call->conn)
		return 0;
	if (call->conn->parked >= TTRPC_CONN_MAX_PARKED ||
	    call->conn->parked_bytes + call->held > TTRPC_CONN_MAX_PARKED_BYTES)
		return -ENOSPC;
	call->parked = true;
	call->conn->parked++;
	call->conn->parked_bytes += call->held;
	return 0;
}

size_t ttrpc_call_metadata_count(const struct ttrpc_call *call)
{
	return call->n_md;
}

struct ttrpc_kv ttrpc_call_metadata_at(const struct ttrpc_call *call, size_t i)
{
	return call->md[i];
}

const char *ttrpc_call_metadata_get(const struct ttrpc_call *call, const char *key)
{
	for (size_t i = 0; i < call->n_md; i++)
		if (strcasecmp(call->md[i].key, key) == 0)
			return call->md[i].value;
	return NULL;
}

const char *ttrpc_call_method(const struct ttrpc_call *call)
{
	return call->method_name;
}

const char *ttrpc_call_service(const struct ttrpc_call *call)
{
	return call->service;
}

uint32_t ttrpc_call_stream_id(const struct ttrpc_call *call)
{
	return call->stream_id;
}

void *ttrpc_call_userdata(const struct ttrpc_call *call)
{
	return call->svc->userdata;
}

/* Runs pending cancel callbacks; a callback may finish its call (or others),
 * so rescan from the head after each one. */
static void run_cancels(struct ttrpc_server *s)
{
	for (;;) {
		struct ttrpc_call *c = s->calls;
		while (c && !c->cancel_pending)
			c = c->next;
		if (!c)
			return;
		c->cancel_pending = false;
		if (c->on_cancel)
			c->on_cancel(c, c->cancel_ud);
	}
}

static void expire_deadlines(struct ttrpc_server *s)
{
	int64_t now = ttrpc_now_ns(), next = 0;
	for (struct ttrpc_call *c = s->calls; c; c = c->next) {
		if (!c->deadline || c->cancelled)
			continue;
		if (c->deadline <= now) {
			if (!c->answered && c->conn && !c->conn->dead)
				send_error(c->conn, c->stream_id, TTRPC_DEADLINE_EXCEEDED,
					   "context deadline exceeded");
			c->answered = true;
			c->cancelled = true;
			c->cancel_pending = true;
		} else if (!next || c->deadline < next) {
			next = c->deadline;
		}
	}
	resume_listeners(s, now, &next);
	if (s->sweep_at && s->sweep_at <= now) {
		bool more = false;
		for (struct sconn *sc = s->conns; sc; sc = sc->next)
			more |= ttrpc_conn_sweep(&sc->c);
		s->sweep_at = more ? now + TTRPC_CONN_SWEEP_NS : 0;
	}
	if (s->sweep_at && (!next || s->sweep_at < next))
		next = s->sweep_at;
	ttrpc_poller_set(&s->poller, next);
	run_cancels(s);
}

/* ---- frames ---- */

/* Copies a slice out of the frame as a C string; returns the byte after its NUL. */
static char *put_str(char *dst, struct ttrpc_slice v, const char **out)
{
	memcpy(dst, v.p, v.n);
	dst[v.n] = '\0';
	*out = dst;
	return dst + v.n + 1;
}

/* One allocation per call: the struct, then its service and method names and
 * metadata, copied out of the frame; nothing else of the envelope is kept. */
static struct ttrpc_call *call_new(const struct ttrpc_env_req *r)
{
	size_t n = sizeof(struct ttrpc_call) + r->n_md * sizeof(struct ttrpc_kv) +
		   r->service.n + 1 + r->method.n + 1 + r->md_bytes + 2 * r->n_md;
	struct ttrpc_call *call = calloc(1, n);
	if (!call)
		return NULL;
	call->held = n + r->payload.n;
	call->md = (struct ttrpc_kv *)(call + 1);
	call->n_md = r->n_md;
	char *p = (char *)(call->md + r->n_md);
	p = put_str(p, r->service, &call->service);
	p = put_str(p, r->method, &call->method_name);
	for (size_t i = 0; i < r->n_md; i++) {
		p = put_str(p, r->md[i][0], &call->md[i].key);
		p = put_str(p, r->md[i][1], &call->md[i].value);
	}
	call->timeout_nano = r->timeout_nano;
	return call;
}

static const struct service *find_service_n(struct ttrpc_server *s, struct ttrpc_slice name)
{
	for (unsigned i = 0; i < s->n_services; i++) {
		const char *d = s->services[i].desc->name;
		if (strlen(d) == name.n && memcmp(d, name.p, name.n) == 0)
			return &s->services[i];
	}
	return NULL;
}

static const ProtobufCMethodDescriptor *find_method_n(const ProtobufCServiceDescriptor *d,
						      struct ttrpc_slice name)
{
	for (unsigned i = 0; i < d->n_methods; i++)
		if (strlen(d->methods[i].name) == name.n &&
		    memcmp(d->methods[i].name, name.p, name.n) == 0)
			return &d->methods[i];
	return NULL;
}

static int handle_request(struct sconn *sc, struct ttrpc_frame *f)
{
	struct ttrpc_server *s = sc->srv;
	uint32_t id = f->hdr.stream_id;
	struct ttrpc_env_req r;
	char err[96];
	/* Walked in place before anything is allocated: a hostile envelope (say,
	 * millions of empty metadata entries) costs one pass, no memory. */
	if (ttrpc_env_parse_request(f->data, f->hdr.length, &r, err, sizeof(err)) < 0)
		return send_error(sc, id, TTRPC_INVALID_ARGUMENT, "unmarshal request error: %s", err);
	if (id % 2 == 0)
		return send_error(sc, id, TTRPC_INVALID_ARGUMENT,
				  "StreamID must be odd for client initiated streams");
	if (s->shutting_down)
		return send_error(sc, id, TTRPC_UNAVAILABLE, "ttrpc: server shutting down");
	if (r.n_md > TTRPC_METADATA_MAX)
		return send_error(sc, id, TTRPC_INVALID_ARGUMENT,
				  "ttrpc: %zu metadata pairs exceed the limit of %d", r.n_md,
				  TTRPC_METADATA_MAX);
	if (r.md_bytes > TTRPC_METADATA_MAX_BYTES)
		return send_error(sc, id, TTRPC_INVALID_ARGUMENT,
				  "ttrpc: %zu bytes of metadata exceed the limit of %u", r.md_bytes,
				  TTRPC_METADATA_MAX_BYTES);
	/* Parked calls (long waits) have their own budget, see ttrpc_call_park(). */
	unsigned active = sc->inflight - sc->parked;
	if (active >= TTRPC_CONN_MAX_INFLIGHT)
		return send_error(sc, id, TTRPC_RESOURCE_EXHAUSTED,
				  "ttrpc: %u calls in flight on this connection", active);
	const struct service *svc = find_service_n(s, r.service);
	if (!svc)
		return send_error(sc, id, TTRPC_UNIMPLEMENTED, "service %.*s", (int)r.service.n,
				  (const char *)r.service.p);
	const ProtobufCMethodDescriptor *m = find_method_n(svc->desc, r.method);
	if (!m || !svc->handlers[m - svc->desc->methods])
		return send_error(sc, id, TTRPC_UNIMPLEMENTED, "method %.*s", (int)r.method.n,
				  (const char *)r.method.p);
	ProtobufCMessage *req =
		protobuf_c_message_unpack(m->input, NULL, r.payload.n, r.payload.p);
	if (!req) {
		if (ttrpc_env_truncated(r.payload.p, r.payload.n))
			return send_error(sc, id, TTRPC_INTERNAL,
					  "ttrpc: error unmarshalling payload: unexpected EOF");
		return send_error(sc, id, TTRPC_INTERNAL,
				  "ttrpc: error unmarshalling payload: proto: malformed %s",
				  m->input->name);
	}
	struct ttrpc_call *call = call_new(&r);
	if (!call) {
		protobuf_c_message_free_unpacked(req, NULL);
		return send_error(sc, id, TTRPC_RESOURCE_EXHAUSTED, "ttrpc: out of memory");
	}
	call->srv = s;
	call->conn = sc;
	call->svc = svc;
	call->method = m;
	call->req = req;
	call->stream_id = id;
	call->req_flags = f->hdr.flags;
	if (r.timeout_nano && r.timeout_nano < INT64_MAX / 2) {
		call->deadline = ttrpc_now_ns() + r.timeout_nano;
		if (call->deadline <= 0)
			call->deadline = 1;
	}
	call->next = s->calls;
	if (s->calls)
		s->calls->prev = call;
	s->calls = call;
	if (call->req_flags & TTRPC_FLAG_REMOTE_OPEN) {
		call->snext = s->streams;
		if (s->streams)
			s->streams->sprev = call;
		s->streams = call;
		call->in_streams = true;
	}
	sc->inflight++;
	s->in_handler = call;
	s->in_handler_freed = false;
	svc->handlers[m - svc->desc->methods](call, req, svc->userdata);
	s->in_handler = NULL;
	/* the deadline's timer only for a call still out: most are answered
	 * inside their handler */
	if (!s->in_handler_freed && call->deadline && !call->answered)
		ttrpc_poller_arm(&s->poller, call->deadline);
	/* A stream whose client sends nothing (remote-closed request): tell a
	 * data handler at once that its input is complete. */
	if (!s->in_handler_freed && call->on_data && (call->req_flags & TTRPC_FLAG_REMOTE_CLOSED) &&
	    !(call->req_flags & TTRPC_FLAG_REMOTE_OPEN))
		call->on_data(call, NULL, true, call->data_ud);
	return 0;
}

static void handle_data(struct sconn *sc, struct ttrpc_frame *f)
{
	struct ttrpc_call *call = sc->srv->streams;
	while (call && !(call->conn == sc && call->stream_id == f->hdr.stream_id))
		call = call->snext;
	/* Data for no live stream is ignored, as ttrpc 1.1 does. */
	if (!call || !(call->req_flags & TTRPC_FLAG_REMOTE_OPEN) || !call->on_data)
		return;
	bool closed = f->hdr.flags & TTRPC_FLAG_REMOTE_CLOSED;
	ProtobufCMessage *msg = NULL;
	if (!(f->hdr.flags & TTRPC_FLAG_NO_DATA)) {
		msg = protobuf_c_message_unpack(call->method->input, NULL, f->hdr.length, f->data);
		if (!msg) {
			/* Answer now; the handler learns through its cancel callback
			 * and still finishes the call (its reply is dropped). */
			if (!call->answered && !call->cancelled) {
				send_error(sc, call->stream_id, TTRPC_INTERNAL,
					   "ttrpc: error unmarshalling stream data: proto: malformed %s",
					   call->method->input->name);
				call->answered = true;
				call->cancelled = true;
				call->cancel_pending = true;
				run_cancels(sc->srv);
			}
			return;
		}
	}
	if (closed) {
		call->req_flags &= (uint8_t)~TTRPC_FLAG_REMOTE_OPEN;
		stream_unlink(call);
	}
	call->on_data(call, msg, closed, call->data_ud);
	if (msg)
		protobuf_c_message_free_unpacked(msg, NULL);
}

static int on_frame(struct ttrpc_conn *c, struct ttrpc_frame *f)
{
	struct sconn *sc = c->owner;
	int rc = 0;
	if (f->oversized) {
		rc = send_error(sc, f->hdr.stream_id, TTRPC_RESOURCE_EXHAUSTED,
				"message length %u exceed maximum message size of %u", f->hdr.length,
				TTRPC_MAX_DATA);
	} else if (f->hdr.type == TTRPC_TYPE_REQUEST) {
		rc = handle_request(sc, f);
	} else if (f->hdr.type == TTRPC_TYPE_DATA) {
		handle_data(sc, f);
	}
	/* other types: ignored for forward compatibility */
	return rc < 0 && rc != -ENOMEM ? rc : 0;
}

static void conn_close(struct sconn *sc)
{
	struct ttrpc_server *s = sc->srv;
	for (struct ttrpc_call *c = s->calls; c; c = c->next) {
		if (c->conn != sc)
			continue;
		c->conn = NULL;
		if (!c->cancelled) {
			c->cancelled = true;
			c->cancel_pending = true;
		}
	}
	ttrpc_conn_release(&sc->c);
	if (sc->prev)
		sc->prev->next = sc->next;
	else
		s->conns = sc->next;
	if (sc->next)
		sc->next->prev = sc->prev;
	s->n_conns--;
	free(sc);
	run_cancels(s);
}

static void reap_conns(struct ttrpc_server *s)
{
	struct sconn *sc = s->conns;
	while (sc) {
		struct sconn *next = sc->next;
		bool idle = sc->inflight == 0 && ttrpc_conn_flushed(&sc->c);
		if (sc->dead || ((sc->c.eof || s->shutting_down) && idle)) {
			conn_close(sc);
			next = s->conns; /* cancels may have changed the list */
		}
		sc = next;
	}
}

int ttrpc_server_dispatch(struct ttrpc_server *s)
{
	struct epoll_event ev[EVENTS_PER_DISPATCH];
	int n = epoll_wait(s->poller.epfd, ev, EVENTS_PER_DISPATCH, 0);
	if (n < 0)
		return errno == EINTR ? 0 : -errno;
	s->in_dispatch = true;
	for (int i = 0; i < n; i++) {
		int kind = *(int *)ev[i].data.ptr;
		if (kind == TTRPC_SRC_TIMER) {
			ttrpc_poller_ack(&s->poller);
			expire_deadlines(s);
		} else if (kind == TTRPC_SRC_LISTENER) {
			accept_all(s, ev[i].data.ptr);
		} else {
			struct sconn *sc = ev[i].data.ptr;
			if (!sc->dead)
				conn_io(s, sc, ev[i].events);
		}
	}
	reap_conns(s);
	s->in_dispatch = false;
	return n;
}

void ttrpc_server_shutdown(struct ttrpc_server *s)
{
	s->shutting_down = true;
	close_listeners(s);
	for (struct sconn *sc = s->conns; sc; sc = sc->next) {
		sc->c.eof = true; /* read no more requests */
		ttrpc_conn_update(&sc->c);
	}
	if (!s->in_dispatch)
		reap_conns(s);
}

bool ttrpc_server_drained(const struct ttrpc_server *s)
{
	return s->shutting_down && s->conns == NULL;
}

int ttrpc_server_run(struct ttrpc_server *s, int timeout_ms)
{
	int64_t end = timeout_ms >= 0 ? ttrpc_now_ns() + (int64_t)timeout_ms * 1000000 : 0;
	while (!ttrpc_server_drained(s)) {
		int wait = -1;
		if (end) {
			int64_t left = end - ttrpc_now_ns();
			if (left <= 0)
				return -ETIMEDOUT;
			wait = (int)((left + 999999) / 1000000);
		}
		struct epoll_event e;
		int n = epoll_wait(s->poller.epfd, &e, 1, wait);
		if (n < 0 && errno != EINTR)
			return -errno;
		int rc = ttrpc_server_dispatch(s);
		if (rc < 0)
			return rc;
	}
	return 0;
}

/* ---- handing over to another process ---- */

void ttrpc_server_hold(struct ttrpc_server *s, bool hold)
{
	if (s->held == hold)
		return;
	s->held = hold;
	for (struct listener *l = s->listeners; l; l = l->next) {
		if (l->paused_until)
			continue; /* out of epoll already, back in once its back-off ends */
		if (hold)
			epoll_ctl(s->poller.epfd, EPOLL_CTL_DEL, l->fd, NULL);
		else
			listener_poll(s, l);
	}
	if (!hold)
		for (struct listener *l = s->listeners; l; l = l->next)
			if (l->paused_until && l->paused_until <= ttrpc_now_ns() &&
			    listener_poll(s, l) == 0)
				l->paused_until = 0;
	for (struct sconn *sc = s->conns; sc; sc = sc->next) {
		sc->c.held = hold;
		if (!sc->dead && ttrpc_conn_update(&sc->c) < 0)
			sc->dead = true;
	}
}

int ttrpc_call_conn_fd(const struct ttrpc_call *call)
{
	return call->conn && !call->conn->dead ? call->conn->c.fd : -1;
}

void ttrpc_export_free(struct ttrpc_export *e)
{
	for (size_t i = 0; i < e->n_calls; i++)
		free(e->calls[i].frame);
	free(e->calls);
	for (size_t i = 0; i < e->n_conns; i++)
		free(e->conns[i].partial);
	free(e->conns);
	free(e->listeners);
	memset(e, 0, sizeof(*e));
}

int ttrpc_server_export(const struct ttrpc_server *s, const struct ttrpc_call *except,
			struct ttrpc_export *out, struct ttrpc_status *st)
{
	memset(out, 0, sizeof(*out));
	if (s->shutting_down) {
		ttrpc_status_set(st, TTRPC_FAILED_PRECONDITION, "the server is shutting down");
		return -EBUSY;
	}
	unsigned calls = 0, parked = 0;
	for (const struct ttrpc_call *c = s->calls; c; c = c->next) {
		if (c == except)
			continue;
		if (c->parked && c->conn && !c->conn->dead && !c->answered && !c->cancelled &&
		    !ttrpc_call_is_stream(c))
			parked++;
		else
			calls++;
	}
	if (calls) {
		ttrpc_status_set(st, TTRPC_FAILED_PRECONDITION, "%u call%s in flight", calls,
				 calls == 1 ? "" : "s");
		return -EBUSY;
	}
	size_t nl = 0, nc = 0;
	for (const struct listener *l = s->listeners; l; l = l->next)
		nl++;
	for (const struct sconn *sc = s->conns; sc; sc = sc->next) {
		if (sc->dead)
			continue;
		if (!ttrpc_conn_flushed(&sc->c)) {
			ttrpc_status_set(st, TTRPC_FAILED_PRECONDITION,
					 "replies not yet written to a client");
			return -EBUSY;
		}
		nc++;
	}
	out->listeners = calloc(nl ? nl : 1, sizeof(int));
	out->conns = calloc(nc ? nc : 1, sizeof(*out->conns));
	out->calls = calloc(parked ? parked : 1, sizeof(*out->calls));
	if (!out->listeners || !out->conns || !out->calls)
		goto nomem;
	int64_t now = ttrpc_now_ns();
	for (const struct ttrpc_call *c = s->calls; c; c = c->next) {
		if (c == except || !c->parked)
			continue;
		int64_t left = c->deadline ? c->deadline - now : 0;
		struct ttrpc_obuf *b = ttrpc_env_request(NULL, c->stream_id, c->req_flags, c->service,
							 c->method_name, c->req, left > 0 ? left : (c->deadline ? 1 : 0),
							 c->md, c->n_md);
		if (!b)
			goto nomem;
		struct ttrpc_export_call *e = &out->calls[out->n_calls];
		e->frame = malloc(b->len);
		if (e->frame) {
			memcpy(e->frame, b->data, b->len);
			e->len = b->len;
			e->conn_fd = c->conn->c.fd;
			out->n_calls++;
		}
		free(b);
		if (!e->frame)
			goto nomem;
	}
	for (const struct listener *l = s->listeners; l; l = l->next)
		out->listeners[out->n_listeners++] = l->fd;
	for (const struct sconn *sc = s->conns; sc; sc = sc->next) {
		if (sc->dead)
			continue;
		struct ttrpc_export_conn *e = &out->conns[out->n_conns];
		long n = ttrpc_reader_pending(&sc->c.rd, &e->partial);
		if (n == -EBUSY) {
			ttrpc_export_free(out);
			ttrpc_status_set(st, TTRPC_FAILED_PRECONDITION,
					 "an oversized frame is being skipped");
			return -EBUSY;
		}
		if (n < 0)
			goto nomem;
		e->fd = sc->c.fd;
		e->n_partial = (size_t)n;
		out->n_conns++;
	}
	return 0;
nomem:
	ttrpc_export_free(out);
	ttrpc_status_set(st, TTRPC_RESOURCE_EXHAUSTED, "out of memory");
	return -ENOMEM;
}

int ttrpc_server_adopt_conn(struct ttrpc_server *s, int fd, const uint8_t *partial, size_t n)
{
	int rc = ttrpc_server_add_conn(s, fd);
	if (rc < 0 || !n)
		return rc;
	struct sconn *sc = s->conns; /* add_conn puts it first */
	while (n) {
		size_t used;
		rc = ttrpc_reader_feed(&sc->c.rd, partial, n, &used);
		if (rc < 0)
			break;
		partial += used;
		n -= used;
		/* moves a large frame's bytes into its body buffer; a partial frame
		 * is never complete here */
		struct ttrpc_frame f;
		while ((rc = ttrpc_reader_next(&sc->c.rd, &f)) == 1)
			on_frame(&sc->c, &f);
		if (rc < 0)
			break;
	}
	if (rc < 0)
		sc->dead = true; /* closed at the next dispatch */
	return rc < 0 ? rc : 0;
}

int ttrpc_server_replay(struct ttrpc_server *s, int conn_fd, const uint8_t *frame, size_t len)
{
	struct sconn *sc = s->conns;
	while (sc && sc->c.fd != conn_fd)
		sc = sc->next;
	if (!sc || sc->dead)
		return -ENOENT;
	struct ttrpc_frame f = {.data = frame + TTRPC_HEADER_LEN};
	if (len < TTRPC_HEADER_LEN)
		return -EBADMSG;
	ttrpc_frame_hdr_decode(frame, &f.hdr);
	if (f.hdr.type != TTRPC_TYPE_REQUEST || f.hdr.length != len - TTRPC_HEADER_LEN ||
	    f.hdr.length > TTRPC_MAX_DATA)
		return -EBADMSG;
	return on_frame(&sc->c, &f);
}

int ttrpc_server_respond(struct ttrpc_server *s, int conn_fd, uint32_t stream_id,
			 const ProtobufCMessage *resp)
{
	struct sconn *sc = s->conns;
	while (sc && sc->c.fd != conn_fd)
		sc = sc->next;
	if (!sc || sc->dead)
		return -ENOENT;
	struct ttrpc_obuf *b = ttrpc_env_response_ok(&sc->c, stream_id, resp);
	if (!b)
		return -errno;
	return send_frame(sc, b);
}

int ttrpc_server_respond_status(struct ttrpc_server *s, int conn_fd, uint32_t stream_id,
				const struct ttrpc_status *st)
{
	struct sconn *sc = s->conns;
	while (sc && sc->c.fd != conn_fd)
		sc = sc->next;
	if (!sc || sc->dead)
		return -ENOENT;
	return send_error(sc, stream_id, st->code == TTRPC_OK ? TTRPC_UNKNOWN : st->code, "%s",
			  st->message);
}
