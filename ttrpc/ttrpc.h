/* ttrpc for C: containerd's RPC protocol over unix sockets, byte-compatible with
 * github.com/containerd/ttrpc. Single-threaded and non-blocking: a server or a
 * client exposes one pollable fd; the caller adds it to its own epoll loop and
 * calls *_dispatch() when it is readable. Messages are protobuf-c messages,
 * services come straight from protoc-c's ProtobufCServiceDescriptor. */
#pragma once

#include "frame.h"
#include "status.h"

#include <protobuf-c/protobuf-c.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct ttrpc_server;
struct ttrpc_client;
struct ttrpc_call;
struct ttrpc_stream;

/* Metadata: (key, value) pairs, keys sent lowercase as Go's MD does. */
struct ttrpc_kv {
	const char *key;
	const char *value;
};

#define TTRPC_METADATA_MAX 64		 /* pairs per request, refused beyond */
#define TTRPC_METADATA_MAX_BYTES (16u << 10) /* key and value bytes per request */
#define TTRPC_SERVER_MAX_CONNS 1024	 /* accepted connections at once */
#define TTRPC_CONN_MAX_INFLIGHT 4096	 /* active calls per connection */
#define TTRPC_CONN_MAX_PARKED 65536	 /* parked calls per connection */
#define TTRPC_CONN_MAX_PARKED_BYTES (32u << 20) /* request bytes they hold */

/* ---- server ---------------------------------------------------------- */

/* A method handler. req (owned by the call) stays valid until the call is
 * finished with ttrpc_call_reply() or ttrpc_call_fail(), now or later: a
 * handler may start work (a child process, a timer) and answer when it ends. */
typedef void (*ttrpc_handler_fn)(struct ttrpc_call *call, const ProtobufCMessage *req,
				 void *userdata);

enum ttrpc_peer_check {
	TTRPC_PEER_SAME_UID = 0, /* default: peer euid must equal ours (at ttrpc_server_new) */
	TTRPC_PEER_SAME_UID_GID, /* as Go's UnixSocketRequireSameUser */
	TTRPC_PEER_ANY,
};

struct ttrpc_server *ttrpc_server_new(void);
void ttrpc_server_free(struct ttrpc_server *s); /* closes everything; NULL ok */
void ttrpc_server_set_peer_check(struct ttrpc_server *s, enum ttrpc_peer_check check);
/* handlers[i] serves desc->methods[i]; NULL entries answer Unimplemented. The
 * arrays must outlive the server. */
int ttrpc_server_register(struct ttrpc_server *s, const ProtobufCServiceDescriptor *desc,
			  const ttrpc_handler_fn *handlers, void *userdata);
/* Serve on a listening socket (takes ownership of fd), or bind one at path
 * ("unix://" prefix allowed, mode 0600, an existing stale socket is replaced). */
int ttrpc_server_add_listener(struct ttrpc_server *s, int fd);
int ttrpc_server_listen(struct ttrpc_server *s, const char *path);
/* Serve one already-connected socket (socketpair, inherited fd). */
int ttrpc_server_add_conn(struct ttrpc_server *s, int fd);
/* The fd to poll for readability, and the dispatcher: runs everything ready
 * (accepts, reads, writes, deadline expiries) without blocking. */
int ttrpc_server_fd(const struct ttrpc_server *s);
int ttrpc_server_dispatch(struct ttrpc_server *s);
/* Graceful shutdown: stop accepting and reading new requests; connections
 * close once their in-flight calls are answered and flushed. */
void ttrpc_server_shutdown(struct ttrpc_server *s);
bool ttrpc_server_drained(const struct ttrpc_server *s);
/* Runs dispatch in a loop until ttrpc_server_drained() after shutdown, or
 * timeout_ms passes (<0: forever). For tools and tests. */
int ttrpc_server_run(struct ttrpc_server *s, int timeout_ms);
unsigned ttrpc_server_conn_count(const struct ttrpc_server *s);

/* While held, the server accepts no connection and reads no request (they
 * wait in the backlog and the socket buffers); calls in flight go on, their
 * replies are written, deadlines and cancellations run. For letting what is
 * in flight end before the server is handed over; releasing reads on. */
void ttrpc_server_hold(struct ttrpc_server *s, bool hold);

/* Handing a server to another process across execve(2) (the shim's live
 * upgrade): its listening and connected fds, each connection with the bytes
 * of a frame it has read in part. Nothing is closed or changed: the caller
 * clears FD_CLOEXEC on the fds it keeps. */
struct ttrpc_export_conn {
	int fd;
	uint8_t *partial; /* malloc'd, or NULL */
	size_t n_partial;
};
/* A parked call (ttrpc_call_park) handed over: its Request frame as the
 * client sent it, the time it has left as its timeout. */
struct ttrpc_export_call {
	int conn_fd;
	uint8_t *frame; /* malloc'd: header and envelope */
	size_t len;
};
struct ttrpc_export {
	int *listeners;
	size_t n_listeners;
	struct ttrpc_export_conn *conns;
	size_t n_conns;
	struct ttrpc_export_call *calls;
	size_t n_calls;
};
/* 0, or -EBUSY with why in st when the server holds what cannot move: a
 * call in flight other than except (NULL: none) that is not parked (parked
 * calls are exported, to be replayed: their handlers must be safe to run
 * again, as a Wait is), a reply not yet written, an oversized frame being
 * skipped, a shutdown under way; -ENOMEM. */
int ttrpc_server_export(const struct ttrpc_server *s, const struct ttrpc_call *except,
			struct ttrpc_export *out, struct ttrpc_status *st);
void ttrpc_export_free(struct ttrpc_export *e);
/* The other end: serve fd, an exported connection, first reading partial
 * (the bytes of its unfinished frame). Takes ownership of fd. */
int ttrpc_server_adopt_conn(struct ttrpc_server *s, int fd, const uint8_t *partial, size_t n);
/* Runs an exported parked call again on the connection on conn_fd: its
 * handler gets the same request. -ENOENT without such a connection,
 * -EBADMSG for bytes that are not one Request frame. */
int ttrpc_server_replay(struct ttrpc_server *s, int conn_fd, const uint8_t *frame, size_t len);
/* Answers a call the exporting process began: a Response with resp on the
 * connection on conn_fd. -ENOENT without such a connection. */
int ttrpc_server_respond(struct ttrpc_server *s, int conn_fd, uint32_t stream_id,
			 const ProtobufCMessage *resp);
/* The same with an error status instead. */
int ttrpc_server_respond_status(struct ttrpc_server *s, int conn_fd, uint32_t stream_id,
				const struct ttrpc_status *st);
/* The fd of the call's connection, -1 once it is gone. */
int ttrpc_call_conn_fd(const struct ttrpc_call *call);

/* ---- a call on the server side ------------------------------------- */

int ttrpc_call_reply(struct ttrpc_call *call, const ProtobufCMessage *resp);
int ttrpc_call_fail(struct ttrpc_call *call, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
int ttrpc_call_fail_status(struct ttrpc_call *call, const struct ttrpc_status *st);
/* Streaming (the request had stream flags): send a Data frame to the client.
 * Finish the stream with ttrpc_call_reply(call, NULL) or ttrpc_call_fail(). */
int ttrpc_call_send(struct ttrpc_call *call, const ProtobufCMessage *msg);
bool ttrpc_call_is_stream(const struct ttrpc_call *call);
/* Client-to-server stream data: called per Data frame with the message
 * (unpacked as the method's input type, freed after the callback; NULL for an
 * empty closing frame), closed set on the last one. When the request said the
 * client sends nothing (remote-closed), it is called once with NULL and closed
 * right after the handler returns. */
typedef void (*ttrpc_call_data_fn)(struct ttrpc_call *call, const ProtobufCMessage *msg,
				   bool closed, void *userdata);
void ttrpc_call_on_data(struct ttrpc_call *call, ttrpc_call_data_fn fn, void *userdata);
/* Called once if the call is cancelled (deadline passed: the server has already
 * answered DeadlineExceeded; or the connection died). The handler must still
 * finish the call; its reply is then dropped. */
typedef void (*ttrpc_call_cancel_fn)(struct ttrpc_call *call, void *userdata);
void ttrpc_call_on_cancel(struct ttrpc_call *call, ttrpc_call_cancel_fn fn, void *userdata);
bool ttrpc_call_cancelled(const struct ttrpc_call *call);
int64_t ttrpc_call_timeout_nano(const struct ttrpc_call *call); /* as received, 0 = none */
/* The handler will answer much later (a Wait until its process exits) and the
 * call holds little (and running its handler twice is harmless: a server
 * handed to another process, ttrpc_server_export, replays parked calls): it stops counting toward TTRPC_CONN_MAX_INFLIGHT, so calls
 * parked forever (a client that gave up on a Wait without a deadline) never make
 * the server refuse new ones. Parked calls have their own, larger budget,
 * TTRPC_CONN_MAX_PARKED calls holding at most TTRPC_CONN_MAX_PARKED_BYTES of
 * request (metadata and payload): -ENOSPC past it, and the call then stays
 * active (the handler should fail it). The request and metadata stay valid as before. */
int ttrpc_call_park(struct ttrpc_call *call);
size_t ttrpc_call_metadata_count(const struct ttrpc_call *call);
struct ttrpc_kv ttrpc_call_metadata_at(const struct ttrpc_call *call, size_t i);
/* First value whose key matches case-insensitively, or NULL. */
const char *ttrpc_call_metadata_get(const struct ttrpc_call *call, const char *key);
const char *ttrpc_call_method(const struct ttrpc_call *call);
const char *ttrpc_call_service(const struct ttrpc_call *call);
uint32_t ttrpc_call_stream_id(const struct ttrpc_call *call);
void *ttrpc_call_userdata(const struct ttrpc_call *call); /* the service's */

/* ---- client ----------------------------------------------------------- */

struct ttrpc_call_opts {
	int64_t timeout_ns; /* 0: none; sent as timeout_nano */
	const struct ttrpc_kv *metadata;
	size_t n_metadata;
};

/* Called once per call. On success st->code == TTRPC_OK and reply is the
 * unpacked response (the callee owns it: protobuf_c_message_free_unpacked);
 * otherwise reply is NULL and st says why: the server's status, or
 * DeadlineExceeded for a local timeout, Unavailable "ttrpc: closed" when the
 * connection is lost, Canceled when the client is freed. */
typedef void (*ttrpc_reply_fn)(const struct ttrpc_status *st, ProtobufCMessage *reply,
			       void *userdata);

/* File descriptors: a client holds 3 while it exists — its socket, the epoll
 * set behind ttrpc_client_fd() and the timerfd for deadlines, connect retries
 * and idle buffer sweeps (2 once the connection is lost); a member of a
 * client group (below) holds its socket only. A daemon with a client per shim
 * needs 3 per shim beyond its own, or 1 with a group: call
 * ttrpc_raise_nofile_limit() at start (the default soft limit, 1024, ends near
 * 340 lone clients). The timerfd is not made lazily: every call with a deadline and
 * the sweep after any I/O arm it, so it would be made at the first call anyway,
 * and arming could then fail with EMFILE where today nothing can. */

/* "unix:///path", "/path" or "@abstract". Blocking connect: for tools, never
 * on an event loop (a listener whose backlog is full blocks it). */
int ttrpc_client_connect(const char *address, struct ttrpc_client **out);
/* Connect that never blocks. Returns 0 with a client at once, or -errno for
 * an immediate, definitive failure (-ENOENT, -ECONNREFUSED, a bad address...).
 * When the listener's backlog is full the client starts unconnected: calls
 * may be issued at once, are held in order and sent once connected; connect()
 * is retried on the client's timer (1 ms doubling to 50 ms), so the owner only
 * keeps dispatching when ttrpc_client_fd() is readable. Each call's own
 * deadline applies meanwhile (DeadlineExceeded). If not connected within
 * timeout_ns (0: no limit), or a retry fails definitively, the held calls fail
 * Unavailable "ttrpc: connect: timed out" / "ttrpc: connect: <errno text>"
 * and on_close runs with ETIMEDOUT / that errno. A held request goes out with
 * the time its call has left as timeout_nano. */
int ttrpc_client_connect_nb(const char *address, int64_t timeout_ns, struct ttrpc_client **out);
struct ttrpc_client *ttrpc_client_new(int fd); /* takes ownership of a connected fd */
/* Client groups: many clients behind one pollable fd, one epoll set and one
 * timerfd for all of them (a client alone has its own, 3 fds and 6 syscalls
 * to make, and a wakeup of its own per reply): for a daemon with a client per
 * shim. A member is made with ttrpc_client_group_connect_nb() and used as any
 * client, except that its ttrpc_client_fd() is the group's and dispatching it
 * dispatches the whole group (a sync call on a member runs the other
 * members' callbacks too). ttrpc_client_free() of a member may come from any
 * callback of the group; its memory is kept until the group's outermost
 * dispatch returns. ttrpc_client_group_free() frees the members left (their
 * calls fail Canceled) and must not be called from a callback. */
struct ttrpc_client_group;
int ttrpc_client_group_new(struct ttrpc_client_group **out);
void ttrpc_client_group_free(struct ttrpc_client_group *g);
int ttrpc_client_group_fd(const struct ttrpc_client_group *g);
/* Dispatches the members whose sockets are ready and, when the group's timer
 * fired, lets every member look at its deadlines. Returns the events handled
 * or -errno. */
int ttrpc_client_group_dispatch(struct ttrpc_client_group *g);
int ttrpc_client_group_connect_nb(struct ttrpc_client_group *g, const char *address,
				  int64_t timeout_ns, struct ttrpc_client **out);
unsigned ttrpc_client_group_size(const struct ttrpc_client_group *g); /* members */

/* Fails pending calls (Canceled); never runs on_close; NULL ok. May be called
 * from any of c's callbacks (reply, stream message, on_close): c is then freed
 * when the dispatch (or sync call) running the callback returns, and the
 * owner must not touch c after that callback. */
void ttrpc_client_free(struct ttrpc_client *c);
int ttrpc_client_fd(const struct ttrpc_client *c);
int ttrpc_client_dispatch(struct ttrpc_client *c);
bool ttrpc_client_closed(const struct ttrpc_client *c);
bool ttrpc_client_connecting(const struct ttrpc_client *c); /* connect_nb still waiting */
unsigned ttrpc_client_pending(const struct ttrpc_client *c);

/* Called once when the connection is lost (peer EOF: err 0; an I/O error:
 * its errno) or a connect_nb connect finally fails (ETIMEDOUT or the errno),
 * after every pending call's callback has run with Unavailable. It runs only
 * from the owner's own ttrpc_client_dispatch() — never from
 * ttrpc_client_free(), a call function, or a dispatch nested inside another
 * of c's callbacks. The callback may free c. fn NULL: no callback. */
typedef void (*ttrpc_close_fn)(struct ttrpc_client *c, int err, void *userdata);
void ttrpc_client_on_close(struct ttrpc_client *c, ttrpc_close_fn fn, void *userdata);

/* Asynchronous unary call; returns the stream id (>0) or -errno. The callback
 * never runs from inside this function. */
int64_t ttrpc_client_call_async(struct ttrpc_client *c, const char *service, const char *method,
				const ProtobufCMessage *req,
				const ProtobufCMessageDescriptor *reply_desc,
				const struct ttrpc_call_opts *opts, ttrpc_reply_fn cb,
				void *userdata);
/* Synchronous unary call: dispatches this client until the reply arrives.
 * Returns 0 with *reply set, or -EIO / -errno with st filled. */
int ttrpc_client_call(struct ttrpc_client *c, const char *service, const char *method,
		      const ProtobufCMessage *req, const ProtobufCMessageDescriptor *reply_desc,
		      const struct ttrpc_call_opts *opts, ProtobufCMessage **reply,
		      struct ttrpc_status *st);

/* Streams. TTRPC_STREAM_SEND: the client will send Data (flag remote-open);
 * otherwise the request closes the client side (remote-closed) and only the
 * server streams. on_msg gets each server Data message (owned by the callee),
 * then on_done runs once with the final status and the Response payload, if
 * any. */
enum { TTRPC_STREAM_SEND = 1 };
typedef void (*ttrpc_stream_msg_fn)(ProtobufCMessage *msg, void *userdata);
int ttrpc_client_stream(struct ttrpc_client *c, const char *service, const char *method,
			const ProtobufCMessage *req, const ProtobufCMessageDescriptor *reply_desc,
			int flags, const struct ttrpc_call_opts *opts, ttrpc_stream_msg_fn on_msg,
			ttrpc_reply_fn on_done, void *userdata, struct ttrpc_stream **out);
/* Send a Data frame (msg NULL + close: an empty closing frame). The stream
 * handle stays valid until on_done has run. */
int ttrpc_stream_send(struct ttrpc_stream *s, const ProtobufCMessage *msg, bool close);

/* ---- helpers ---------------------------------------------------------- */

/* Raises the soft RLIMIT_NOFILE to the hard limit, as Go programs do at start
 * (a server out of fds refuses peers; it backs off rather than spin). Returns
 * the new soft limit or -errno. Call it once at start, before any fork. */
int ttrpc_raise_nofile_limit(void);
/* Monotonic clock in ns. */
int64_t ttrpc_now_ns(void);
/* Strips "unix://"; fills a sockaddr_un. Returns socklen or -errno. */
struct sockaddr_un;
int ttrpc_sockaddr(const char *address, struct sockaddr_un *sa);
