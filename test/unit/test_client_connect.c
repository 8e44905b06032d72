/* Client contract, connection life: ttrpc_client_connect_nb against a listener
 * whose backlog is full (held calls, retries, timeouts), immediate refusals,
 * on_close (once, after the failed calls, never from free or a call), a client
 * freed from its own callbacks, and what one client costs in fds. */
#include "testsrv.h"

#include <criterion/criterion.h>
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/un.h>

static const char *SVC = "ttrpc.bench.v1.Bench";

static void init(void)
{
	signal(SIGPIPE, SIG_IGN);
}

TestSuite(client_connect, .init = init, .timeout = 60);

/* ---- a listener that does not accept, its backlog full ---- */

struct wedged {
	char dir[64];
	char path[108];
	int lfd;    /* listening, never accepted from until serve() */
	int filler; /* the connection that fills the backlog */
	struct testsrv ts;
	bool serving;
};

static void wedged_start(struct wedged *w)
{
	memset(w, 0, sizeof(*w));
	strcpy(w->dir, "/tmp/nanoshim-test-XXXXXX");
	cr_assert_not_null(mkdtemp(w->dir));
	snprintf(w->path, sizeof(w->path), "%s/s.sock", w->dir);
	struct sockaddr_un sa;
	int len = ttrpc_sockaddr(w->path, &sa);
	cr_assert(len > 0);
	w->lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	cr_assert(w->lfd >= 0);
	cr_assert_eq(bind(w->lfd, (struct sockaddr *)&sa, (socklen_t)len), 0);
	/* backlog 0: the kernel queues one connection, then refuses with EAGAIN */
	cr_assert_eq(listen(w->lfd, 0), 0);
	w->filler = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	cr_assert_eq(connect(w->filler, (struct sockaddr *)&sa, (socklen_t)len), 0);
}

/* Starts our server on the wedged listener: it accepts the filler, then us. */
static void wedged_serve(struct wedged *w)
{
	ts_init(&w->ts);
	cr_assert_eq(ttrpc_server_add_listener(w->ts.srv, w->lfd), 0);
	w->lfd = -1;
	w->ts.stop_fd = eventfd(0, EFD_CLOEXEC);
	pthread_create(&w->ts.thr, NULL, ts_main, &w->ts);
	w->serving = true;
}

static void wedged_stop(struct wedged *w)
{
	if (w->serving)
		ts_stop(&w->ts);
	if (w->lfd >= 0)
		close(w->lfd);
	close(w->filler);
	unlink(w->path);
	rmdir(w->dir);
}

/* ---- recording callbacks ---- */

struct rec {
	int n; /* reply callbacks run */
	int codes[8];
	char msgs[8][TTRPC_STATUS_MSG_MAX];
	int closes; /* on_close calls */
	int close_err;
	int replies_at_close; /* n when on_close ran */
	bool free_on_close;
	struct ttrpc_client **clp; /* set to NULL when the callback frees */
};

struct tag {
	struct rec *r;
	int idx;
};

static void on_reply(const struct ttrpc_status *st, ProtobufCMessage *reply, void *ud)
{
	struct tag *t = ud;
	t->r->codes[t->idx] = st->code;
	snprintf(t->r->msgs[t->idx], sizeof(t->r->msgs[0]), "%s", st->message);
	t->r->n++;
	if (reply)
		protobuf_c_message_free_unpacked(reply, NULL);
}

static void on_close(struct ttrpc_client *c, int err, void *ud)
{
	struct rec *r = ud;
	r->closes++;
	r->close_err = err;
	r->replies_at_close = r->n;
	if (r->free_on_close) {
		ttrpc_client_free(c);
		*r->clp = NULL;
	}
}

static int64_t echo_async(struct ttrpc_client *c, int64_t timeout_ns, struct tag *t)
{
	Ttrpc__Bench__V1__EchoPayload in = TTRPC__BENCH__V1__ECHO_PAYLOAD__INIT;
	in.value.data = (uint8_t *)"hi";
	in.value.len = 2;
	struct ttrpc_call_opts o = {.timeout_ns = timeout_ns};
	return ttrpc_client_call_async(c, SVC, "Echo", &in.base,
				       &ttrpc__bench__v1__echo_payload__descriptor, &o, on_reply, t);
}

static int64_t sleep_async(struct ttrpc_client *c, int ms, struct tag *t)
{
	Ttrpc__Bench__V1__SleepRequest s = TTRPC__BENCH__V1__SLEEP_REQUEST__INIT;
	s.millis = ms;
	return ttrpc_client_call_async(c, SVC, "Sleep", &s.base,
				       &google__protobuf__empty__descriptor, NULL, on_reply, t);
}

/* Dispatches *clp as its owner would (poll its fd, dispatch when readable)
 * until *counter reaches want or the client is gone; a generous bound only
 * keeps a broken build from hanging. */
static void pump(struct ttrpc_client **clp, const int *counter, int want)
{
	int64_t end = ttrpc_now_ns() + 20 * 1000000000LL;
	while (*clp && *counter < want) {
		cr_assert(ttrpc_now_ns() < end, "gave up waiting (%d of %d)", *counter, want);
		struct pollfd p = {.fd = ttrpc_client_fd(*clp), .events = POLLIN};
		if (poll(&p, 1, 100) > 0)
			ttrpc_client_dispatch(*clp);
	}
}

/* Dispatches for about ms, whatever happens. */
static void pump_for(struct ttrpc_client **clp, int ms)
{
	int64_t end = ttrpc_now_ns() + ms * 1000000LL;
	while (*clp && ttrpc_now_ns() < end) {
		struct pollfd p = {.fd = ttrpc_client_fd(*clp), .events = POLLIN};
		if (poll(&p, 1, 10) > 0)
			ttrpc_client_dispatch(*clp);
	}
}

/* ---- what the kernel does ---- */

Test(client_connect, kernel_full_backlog_nonblocking_connect_is_eagain)
{
	/* AF_UNIX: no connection in progress (not EINPROGRESS), so EPOLLOUT
	 * cannot tell when to try again; the same socket may retry later. */
	struct wedged w;
	wedged_start(&w);
	struct sockaddr_un sa;
	int len = ttrpc_sockaddr(w.path, &sa);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	cr_assert_eq(connect(fd, (struct sockaddr *)&sa, (socklen_t)len), -1);
	cr_assert_eq(errno, EAGAIN, "errno %d (%s)", errno, strerror(errno));
	int a = accept(w.lfd, NULL, NULL);
	cr_assert(a >= 0);
	cr_assert_eq(connect(fd, (struct sockaddr *)&sa, (socklen_t)len), 0,
		     "retry on the same socket: %s", strerror(errno));
	close(a);
	close(fd);
	wedged_stop(&w);
}

/* ---- connect_nb ---- */

Test(client_connect, full_backlog_returns_at_once_and_call_deadline_applies)
{
	struct wedged w;
	wedged_start(&w);
	struct ttrpc_client *c = NULL;
	cr_assert_eq(ttrpc_client_connect_nb(w.path, 0, &c), 0);
	cr_assert(ttrpc_client_connecting(c));
	cr_assert(!ttrpc_client_closed(c));
	struct rec r = {0};
	struct tag t = {&r, 0};
	cr_assert_eq(echo_async(c, 200 * 1000000LL, &t), 1);
	cr_assert_eq(r.n, 0, "callbacks never run from inside the call");
	pump(&c, &r.n, 1);
	cr_assert_eq(r.codes[0], TTRPC_DEADLINE_EXCEEDED, "%s", r.msgs[0]);
	cr_assert(ttrpc_client_connecting(c), "still trying: no connect timeout was set");
	cr_assert_eq(r.closes, 0);
	ttrpc_client_free(c);
	wedged_stop(&w);
}

Test(client_connect, held_calls_go_out_in_order_once_accepted)
{
	struct wedged w;
	wedged_start(&w);
	struct ttrpc_client *c = NULL;
	cr_assert_eq(ttrpc_client_connect_nb(w.path, 0, &c), 0);
	cr_assert(ttrpc_client_connecting(c));
	struct rec r = {0};
	struct tag t[4] = {{&r, 0}, {&r, 1}, {&r, 2}, {&r, 3}};
	ttrpc_client_on_close(c, on_close, &r);
	/* call 0 ends before the connection exists: it must never be sent */
	cr_assert_eq(echo_async(c, 50 * 1000000LL, &t[0]), 1);
	pump(&c, &r.n, 1);
	cr_assert_eq(r.codes[0], TTRPC_DEADLINE_EXCEEDED);
	cr_assert_eq(echo_async(c, 0, &t[1]), 3);
	cr_assert_eq(echo_async(c, 20 * 1000000000LL, &t[2]), 5);
	cr_assert_eq(echo_async(c, 0, &t[3]), 7);
	pump_for(&c, 100);
	cr_assert_eq(r.n, 1, "nothing answers before the server accepts");
	cr_assert(ttrpc_client_connecting(c));
	wedged_serve(&w);
	pump(&c, &r.n, 4);
	for (int i = 1; i < 4; i++)
		cr_assert_eq(r.codes[i], TTRPC_OK, "call %d: %s", i, r.msgs[i]);
	cr_assert(!ttrpc_client_connecting(c));
	cr_assert(!ttrpc_client_closed(c));
	/* and the connection is an ordinary one now */
	struct ttrpc_status st;
	ProtobufCMessage *out;
	Ttrpc__Bench__V1__EchoPayload in = TTRPC__BENCH__V1__ECHO_PAYLOAD__INIT;
	cr_assert_eq(ttrpc_client_call(c, SVC, "Echo", &in.base,
				       &ttrpc__bench__v1__echo_payload__descriptor, NULL, &out, &st),
		     0, "%s", st.message);
	protobuf_c_message_free_unpacked(out, NULL);
	ttrpc_client_free(c);
	cr_assert_eq(w.ts.calls_seen, 4, "the expired call was never sent");
	cr_assert_eq(r.closes, 0);
	wedged_stop(&w);
}

struct md_seen {
	int n;
	int code;
	int64_t timeout_nano;
	size_t n_entries;
	char value[32];
};

static void on_md(const struct ttrpc_status *st, ProtobufCMessage *reply, void *ud)
{
	struct md_seen *m = ud;
	m->n++;
	m->code = st->code;
	if (!reply)
		return;
	Ttrpc__Bench__V1__MetadataReply *r = (void *)reply;
	m->timeout_nano = r->timeout_nano;
	m->n_entries = r->n_entries;
	if (r->n_entries)
		snprintf(m->value, sizeof(m->value), "%s", r->entries[r->n_entries - 1]->value);
	protobuf_c_message_free_unpacked(reply, NULL);
}

Test(client_connect, held_request_carries_the_time_left)
{
	struct wedged w;
	wedged_start(&w);
	struct ttrpc_client *c = NULL;
	cr_assert_eq(ttrpc_client_connect_nb(w.path, 0, &c), 0);
	struct ttrpc_kv md[] = {{"containerd-namespace-ttrpc", "default"}, {"k", "after"}};
	struct ttrpc_call_opts o = {.timeout_ns = 20 * 1000000000LL, .metadata = md, .n_metadata = 2};
	struct md_seen m[2] = {0};
	Google__Protobuf__Empty e = GOOGLE__PROTOBUF__EMPTY__INIT;
	cr_assert(ttrpc_client_call_async(c, SVC, "Metadata", &e.base,
					  &ttrpc__bench__v1__metadata_reply__descriptor, &o, on_md,
					  &m[0]) > 0);
	o.timeout_ns = 0;
	cr_assert(ttrpc_client_call_async(c, SVC, "Metadata", &e.base,
					  &ttrpc__bench__v1__metadata_reply__descriptor, &o, on_md,
					  &m[1]) > 0);
	pump_for(&c, 200);
	wedged_serve(&w);
	int done = 0;
	while (done < 2) {
		pump(&c, &m[done].n, 1);
		done++;
	}
	cr_assert_eq(m[0].code, TTRPC_OK);
	cr_assert(m[0].timeout_nano > 0, "%lld", (long long)m[0].timeout_nano);
	cr_assert(m[0].timeout_nano <= 20 * 1000000000LL - 200 * 1000000LL,
		  "the 200 ms spent waiting are not offered to the server: %lld",
		  (long long)m[0].timeout_nano);
	cr_assert_eq(m[0].n_entries, 2, "metadata intact after the rewrite");
	cr_assert_str_eq(m[0].value, "after");
	cr_assert_eq(m[1].code, TTRPC_OK);
	cr_assert_eq(m[1].timeout_nano, 0, "no deadline, none sent");
	cr_assert_eq(m[1].n_entries, 2);
	ttrpc_client_free(c);
	wedged_stop(&w);
}

Test(client_connect, sync_call_waits_for_the_connection)
{
	struct wedged w;
	wedged_start(&w);
	struct ttrpc_client *c = NULL;
	cr_assert_eq(ttrpc_client_connect_nb(w.path, 0, &c), 0);
	wedged_serve(&w);
	Ttrpc__Bench__V1__EchoPayload in = TTRPC__BENCH__V1__ECHO_PAYLOAD__INIT;
	struct ttrpc_call_opts o = {.timeout_ns = 20 * 1000000000LL};
	struct ttrpc_status st;
	ProtobufCMessage *out;
	cr_assert_eq(ttrpc_client_call(c, SVC, "Echo", &in.base,
				       &ttrpc__bench__v1__echo_payload__descriptor, &o, &out, &st),
		     0, "%s", st.message);
	protobuf_c_message_free_unpacked(out, NULL);
	ttrpc_client_free(c);
	wedged_stop(&w);
}

Test(client_connect, connect_timeout_fails_held_calls_then_on_close_once)
{
	struct wedged w;
	wedged_start(&w);
	struct ttrpc_client *c = NULL;
	cr_assert_eq(ttrpc_client_connect_nb(w.path, 300 * 1000000LL, &c), 0);
	struct rec r = {0};
	struct tag t[2] = {{&r, 0}, {&r, 1}};
	ttrpc_client_on_close(c, on_close, &r);
	cr_assert(echo_async(c, 0, &t[0]) > 0);
	cr_assert(sleep_async(c, 10, &t[1]) > 0);
	pump(&c, &r.closes, 1);
	cr_assert_eq(r.n, 2);
	for (int i = 0; i < 2; i++) {
		cr_assert_eq(r.codes[i], TTRPC_UNAVAILABLE);
		cr_assert_str_eq(r.msgs[i], "ttrpc: connect: timed out");
	}
	cr_assert_eq(r.replies_at_close, 2, "calls fail before on_close");
	cr_assert_eq(r.close_err, ETIMEDOUT);
	cr_assert(ttrpc_client_closed(c));
	cr_assert(!ttrpc_client_connecting(c));
	cr_assert_eq(echo_async(c, 0, &t[0]), -EPIPE);
	pump_for(&c, 100);
	cr_assert_eq(r.closes, 1, "once");
	ttrpc_client_free(c);
	cr_assert_eq(r.closes, 1);
	wedged_stop(&w);
}

Test(client_connect, listener_gone_while_waiting_fails_with_its_errno)
{
	struct wedged w;
	wedged_start(&w);
	struct ttrpc_client *c = NULL;
	cr_assert_eq(ttrpc_client_connect_nb(w.path, 0, &c), 0);
	struct rec r = {0};
	struct tag t = {&r, 0};
	ttrpc_client_on_close(c, on_close, &r);
	cr_assert(echo_async(c, 0, &t) > 0);
	pump_for(&c, 20);
	close(w.lfd); /* the shim died: the path stays, nobody listens */
	w.lfd = -1;
	pump(&c, &r.closes, 1);
	cr_assert_eq(r.codes[0], TTRPC_UNAVAILABLE);
	cr_assert_str_eq(r.msgs[0], "ttrpc: connect: Connection refused");
	cr_assert_eq(r.close_err, ECONNREFUSED);
	ttrpc_client_free(c);
	wedged_stop(&w);
}

Test(client_connect, immediate_failures)
{
	char dir[] = "/tmp/nanoshim-test-XXXXXX";
	cr_assert_not_null(mkdtemp(dir));
	char path[108];
	snprintf(path, sizeof(path), "%s/s.sock", dir);
	struct ttrpc_client *c = NULL;
	cr_assert_eq(ttrpc_client_connect_nb(path, 0, &c), -ENOENT);
	cr_assert_null(c);

	/* bound, not listening: refused */
	struct sockaddr_un sa;
	int len = ttrpc_sockaddr(path, &sa);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	cr_assert_eq(bind(fd, (struct sockaddr *)&sa, (socklen_t)len), 0);
	cr_assert_eq(ttrpc_client_connect_nb(path, 0, &c), -ECONNREFUSED);
	char unixpath[128];
	snprintf(unixpath, sizeof(unixpath), "unix://%s", path);
	cr_assert_eq(ttrpc_client_connect_nb(unixpath, 0, &c), -ECONNREFUSED);
	close(fd);
	unlink(path);
	rmdir(dir);

	char longpath[200];
	memset(longpath, 'x', sizeof(longpath) - 1);
	longpath[sizeof(longpath) - 1] = '\0';
	cr_assert_eq(ttrpc_client_connect_nb(longpath, 0, &c), -ENAMETOOLONG);
	cr_assert_eq(ttrpc_client_connect_nb("", 0, &c), -ENAMETOOLONG);
	cr_assert_eq(ttrpc_client_connect_nb("@nanoshim-test-no-such-abstract", 0, &c),
		     -ECONNREFUSED);
	cr_assert_null(c);
}

Test(client_connect, connects_at_once_to_a_server)
{
	struct testsrv ts;
	ts_start(&ts);
	struct ttrpc_client *c = NULL;
	cr_assert_eq(ttrpc_client_connect_nb(ts.path, 1000000000LL, &c), 0);
	cr_assert(!ttrpc_client_connecting(c));
	struct rec r = {0};
	struct tag t = {&r, 0};
	ttrpc_client_on_close(c, on_close, &r);
	cr_assert(echo_async(c, 0, &t) > 0);
	pump(&c, &r.n, 1);
	cr_assert_eq(r.codes[0], TTRPC_OK);
	pump_for(&c, 50);
	cr_assert_eq(r.closes, 0, "the connect timeout ends with the connect");
	ttrpc_client_free(c);
	ts_stop(&ts);
}

/* ---- on_close on a connected client ---- */

Test(client_connect, server_close_fails_calls_then_on_close_may_free)
{
	struct testsrv ts;
	ts_start(&ts);
	struct ttrpc_client *c = NULL;
	cr_assert_eq(ttrpc_client_connect_nb(ts.path, 0, &c), 0);
	struct rec r = {.free_on_close = true, .clp = &c};
	struct tag t[2] = {{&r, 0}, {&r, 1}};
	ttrpc_client_on_close(c, on_close, &r);
	cr_assert(sleep_async(c, 10000, &t[0]) > 0);
	cr_assert(sleep_async(c, 10000, &t[1]) > 0);
	pump_for(&c, 100);
	ts_stop(&ts); /* closes every connection */
	pump(&c, &r.closes, 1);
	cr_assert_null(c, "freed by on_close");
	cr_assert_eq(r.closes, 1);
	cr_assert_eq(r.close_err, 0, "EOF, not %d (%s)", r.close_err, strerror(r.close_err));
	cr_assert_eq(r.replies_at_close, 2, "calls fail before on_close");
	for (int i = 0; i < 2; i++) {
		cr_assert_eq(r.codes[i], TTRPC_UNAVAILABLE);
		cr_assert_str_eq(r.msgs[i], "ttrpc: closed");
	}
}

Test(client_connect, on_close_once_with_errno_for_death_mid_frame)
{
	int sv[2];
	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	struct ttrpc_client *c = ttrpc_client_new(sv[0]);
	struct rec r = {0};
	struct tag t = {&r, 0};
	ttrpc_client_on_close(c, on_close, &r);
	cr_assert(echo_async(c, 0, &t) > 0);
	const uint8_t partial[] = {0, 0, 0, 20, 0, 0, 0, 1, 2, 0, 0x12};
	cr_assert_eq(write(sv[1], partial, sizeof(partial)), (ssize_t)sizeof(partial));
	close(sv[1]);
	pump(&c, &r.closes, 1);
	cr_assert_eq(r.codes[0], TTRPC_UNAVAILABLE);
	cr_assert_eq(r.close_err, ECONNRESET);
	pump_for(&c, 50);
	cr_assert_eq(r.closes, 1);
	ttrpc_client_free(c);
}

Test(client_connect, broken_on_send_on_close_is_not_run_by_the_call)
{
	int sv[2];
	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	struct ttrpc_client *c = ttrpc_client_new(sv[0]);
	close(sv[1]);
	struct rec r = {0};
	struct tag t = {&r, 0};
	ttrpc_client_on_close(c, on_close, &r);
	cr_assert(echo_async(c, 0, &t) > 0, "the send fails inside the call");
	cr_assert_eq(r.n, 0);
	cr_assert_eq(r.closes, 0, "not from inside ttrpc_client_call_async");
	/* the owner learns it from its own loop: the fd is readable */
	struct pollfd p = {.fd = ttrpc_client_fd(c), .events = POLLIN};
	cr_assert_eq(poll(&p, 1, 5000), 1);
	pump(&c, &r.closes, 1);
	cr_assert_eq(r.codes[0], TTRPC_UNAVAILABLE);
	cr_assert_eq(r.replies_at_close, 1);
	cr_assert(r.close_err == EPIPE || r.close_err == ECONNRESET, "err %d", r.close_err);
	ttrpc_client_free(c);
}

Test(client_connect, sync_call_never_runs_on_close)
{
	int sv[2];
	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	struct ttrpc_client *c = ttrpc_client_new(sv[0]);
	struct rec r = {0};
	ttrpc_client_on_close(c, on_close, &r);
	shutdown(sv[1], SHUT_WR); /* EOF for the client, its request still goes out */
	Ttrpc__Bench__V1__EchoPayload in = TTRPC__BENCH__V1__ECHO_PAYLOAD__INIT;
	struct ttrpc_status st;
	ProtobufCMessage *out;
	cr_assert_eq(ttrpc_client_call(c, SVC, "Echo", &in.base,
				       &ttrpc__bench__v1__echo_payload__descriptor, NULL, &out, &st),
		     -EIO);
	cr_assert_eq(st.code, TTRPC_UNAVAILABLE);
	cr_assert_eq(r.closes, 0, "not from inside ttrpc_client_call");
	pump(&c, &r.closes, 1);
	cr_assert_eq(r.close_err, 0);
	ttrpc_client_free(c);
	close(sv[1]);
}

Test(client_connect, free_never_runs_on_close)
{
	struct testsrv ts;
	ts_start(&ts);
	struct ttrpc_client *c = NULL;
	cr_assert_eq(ttrpc_client_connect_nb(ts.path, 0, &c), 0);
	struct rec r = {0};
	struct tag t = {&r, 0};
	ttrpc_client_on_close(c, on_close, &r);
	cr_assert(sleep_async(c, 10000, &t) > 0);
	pump_for(&c, 50);
	ttrpc_client_free(c);
	cr_assert_eq(r.n, 1);
	cr_assert_eq(r.codes[0], TTRPC_CANCELLED);
	cr_assert_eq(r.closes, 0);
	ts_stop(&ts);
}

Test(client_connect, free_while_connecting_never_runs_on_close)
{
	struct wedged w;
	wedged_start(&w);
	struct ttrpc_client *c = NULL;
	cr_assert_eq(ttrpc_client_connect_nb(w.path, 100 * 1000000LL, &c), 0);
	struct rec r = {0};
	struct tag t = {&r, 0};
	ttrpc_client_on_close(c, on_close, &r);
	cr_assert(echo_async(c, 0, &t) > 0);
	pump_for(&c, 20);
	ttrpc_client_free(c);
	cr_assert_eq(r.n, 1);
	cr_assert_eq(r.codes[0], TTRPC_CANCELLED);
	cr_assert_eq(r.closes, 0);
	wedged_stop(&w);
}

Test(client_connect, free_after_close_before_dispatch_never_runs_on_close)
{
	int sv[2];
	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	struct ttrpc_client *c = ttrpc_client_new(sv[0]);
	close(sv[1]);
	struct rec r = {0};
	struct tag t = {&r, 0};
	ttrpc_client_on_close(c, on_close, &r);
	echo_async(c, 0, &t); /* closes the client: on_close is due */
	ttrpc_client_free(c);
	cr_assert_eq(r.n, 1);
	cr_assert_eq(r.closes, 0);
}

/* ---- freeing the client from a reply callback ---- */

struct freer {
	struct ttrpc_client **clp;
	int n;
	int codes[4];
};

static void free_in_reply(const struct ttrpc_status *st, ProtobufCMessage *reply, void *ud)
{
	struct freer *f = ud;
	f->codes[f->n++] = st->code;
	if (reply)
		protobuf_c_message_free_unpacked(reply, NULL);
	if (*f->clp) {
		ttrpc_client_free(*f->clp);
		*f->clp = NULL;
	}
}

Test(client_connect, reply_callback_may_free_the_client)
{
	struct testsrv ts;
	ts_start(&ts);
	struct ttrpc_client *c = NULL;
	cr_assert_eq(ttrpc_client_connect_nb(ts.path, 0, &c), 0);
	struct freer f = {.clp = &c};
	Ttrpc__Bench__V1__SleepRequest s = TTRPC__BENCH__V1__SLEEP_REQUEST__INIT;
	s.millis = 10000;
	cr_assert(ttrpc_client_call_async(c, SVC, "Sleep", &s.base,
					  &google__protobuf__empty__descriptor, NULL, free_in_reply,
					  &f) > 0);
	s.millis = 0;
	cr_assert(ttrpc_client_call_async(c, SVC, "Sleep", &s.base,
					  &google__protobuf__empty__descriptor, NULL, free_in_reply,
					  &f) > 0);
	int64_t end = ttrpc_now_ns() + 20 * 1000000000LL;
	while (c) {
		cr_assert(ttrpc_now_ns() < end);
		struct pollfd p = {.fd = ttrpc_client_fd(c), .events = POLLIN};
		if (poll(&p, 1, 100) > 0)
			ttrpc_client_dispatch(c);
	}
	cr_assert_eq(f.n, 2);
	cr_assert_eq(f.codes[0], TTRPC_OK, "the quick Sleep answers first");
	cr_assert_eq(f.codes[1], TTRPC_CANCELLED, "the other is cancelled by the free");
	ts_stop(&ts);
}

/* ---- fd cost ---- */

Test(client_connect, one_client_holds_three_fds)
{
	int n0 = ts_count_fds();
	int sv[2];
	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	struct ttrpc_client *c = ttrpc_client_new(sv[0]);
	cr_assert_not_null(c);
	close(sv[1]);
	cr_assert_eq(ts_count_fds() - n0, 3, "socket + epoll + timerfd (ttrpc.h)");
	struct rec r = {0};
	ttrpc_client_on_close(c, on_close, &r);
	pump(&c, &r.closes, 1);
	cr_assert_eq(ts_count_fds() - n0, 2, "closed: the socket is gone");
	ttrpc_client_free(c);
	cr_assert_eq(ts_count_fds(), n0);
}

struct stream_freer {
	struct ttrpc_client **clp;
	int msgs;
	int done;
	int code;
};

static void free_in_msg(ProtobufCMessage *m, void *ud)
{
	struct stream_freer *f = ud;
	f->msgs++;
	protobuf_c_message_free_unpacked(m, NULL);
	ttrpc_client_free(*f->clp);
	*f->clp = NULL;
}

static void stream_done(const struct ttrpc_status *st, ProtobufCMessage *reply, void *ud)
{
	struct stream_freer *f = ud;
	f->done++;
	f->code = st->code;
	if (reply)
		protobuf_c_message_free_unpacked(reply, NULL);
}

Test(client_connect, stream_message_callback_may_free_the_client)
{
	/* a peer that ends its stream with data (Data + remote-closed, no
	 * Response): the frame that ends the stream is the one whose callback
	 * frees the client */
	int sv[2];
	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	struct ttrpc_client *c = ttrpc_client_new(sv[0]);
	struct stream_freer f = {.clp = &c};
	Ttrpc__Bench__V1__StreamRequest r = TTRPC__BENCH__V1__STREAM_REQUEST__INIT;
	cr_assert_eq(ttrpc_client_stream(c, SVC, "Stream", &r.base,
					 &ttrpc__bench__v1__echo_payload__descriptor, 0, NULL,
					 free_in_msg, stream_done, &f, NULL),
		     0);
	uint8_t frame[TTRPC_HEADER_LEN + 3];
	struct ttrpc_frame_hdr h = {.length = 3,
				    .stream_id = 1,
				    .type = TTRPC_TYPE_DATA,
				    .flags = TTRPC_FLAG_REMOTE_CLOSED};
	ttrpc_frame_hdr_encode(frame, &h);
	memcpy(frame + TTRPC_HEADER_LEN, "\x0a\x01x", 3);
	cr_assert_eq(write(sv[1], frame, sizeof(frame)), (ssize_t)sizeof(frame));
	int64_t end = ttrpc_now_ns() + 20 * 1000000000LL;
	while (c) {
		cr_assert(ttrpc_now_ns() < end);
		struct pollfd p = {.fd = ttrpc_client_fd(c), .events = POLLIN};
		if (poll(&p, 1, 100) > 0)
			ttrpc_client_dispatch(c);
	}
	cr_assert_eq(f.msgs, 1);
	cr_assert_eq(f.done, 1, "on_done once");
	cr_assert_eq(f.code, TTRPC_CANCELLED, "freed before the stream ended");
	close(sv[1]);
}
