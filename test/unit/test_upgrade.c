/* Live upgrade (shim/upgrade.c and its hooks in ttrpc/): a frame read in part
 * handed to a fresh reader; a server handed over to another one (connection,
 * partial frame, parked call replayed, the upgrade call answered by the new
 * server); the state encoded and decoded through a memfd, its version
 * checked; and what the shim refuses to hand over. */
#include "envelope.h"
#include "copier.h"
#include "events.h"
#include "loop.h"
#include "spool.h"
#include "process.h"
#include "shim.h"
#include "upgrade.h"

#include "containerd/events/task.pb-c.h"
#include "ttrpc/bench.pb-c.h"
#include "google/protobuf/empty.pb-c.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* ---- the frame reader's pending bytes ---- */

static void frame_bytes(uint32_t id, size_t body, uint8_t **out, size_t *len)
{
	*len = TTRPC_HEADER_LEN + body;
	*out = malloc(*len);
	struct ttrpc_frame_hdr h = {.length = (uint32_t)body, .stream_id = id, .type = 1};
	ttrpc_frame_hdr_encode(*out, &h);
	for (size_t i = 0; i < body; i++)
		(*out)[TTRPC_HEADER_LEN + i] = (uint8_t)(i * 7 + 1);
}

static void feed_all(struct ttrpc_reader *r, const uint8_t *p, size_t n, struct ttrpc_frame *f,
                     int *frames)
{
	while (n) {
		size_t used;
		cr_assert_eq(ttrpc_reader_feed(r, p, n, &used), 0);
		p += used;
		n -= used;
		int rc;
		while ((rc = ttrpc_reader_next(r, f)) == 1)
			(*frames)++;
		cr_assert_eq(rc, 0);
	}
}

/* A frame cut at `cut`: the first reader's pending bytes, fed to a second
 * reader with the rest, give the whole frame. */
static void handover_at(size_t body, size_t cut)
{
	uint8_t *fr;
	size_t len;
	frame_bytes(5, body, &fr, &len);
	struct ttrpc_reader a, b;
	ttrpc_reader_init(&a);
	ttrpc_reader_init(&b);
	struct ttrpc_frame f;
	int frames = 0;
	feed_all(&a, fr, cut, &f, &frames);
	cr_assert_eq(frames, 0);
	uint8_t *pend;
	long n = ttrpc_reader_pending(&a, &pend);
	cr_assert_eq(n, (long)cut, "cut %zu of %zu: %ld pending", cut, len, n);
	if (n)
		cr_assert_eq(memcmp(pend, fr, (size_t)n), 0);
	feed_all(&b, pend, (size_t)n, &f, &frames);
	cr_assert_eq(frames, 0);
	uint8_t *copy = malloc(len);
	memcpy(copy, fr, len); /* f.data may point into b's buffers only */
	size_t rest = len - cut;
	const uint8_t *p = copy + cut;
	int got = 0;
	while (rest) {
		size_t used;
		cr_assert_eq(ttrpc_reader_feed(&b, p, rest, &used), 0);
		p += used;
		rest -= used;
		if (ttrpc_reader_next(&b, &f) == 1) {
			got++;
			cr_assert_eq(f.hdr.stream_id, 5);
			cr_assert_eq(f.hdr.length, body);
			cr_assert_eq(memcmp(f.data, fr + TTRPC_HEADER_LEN, body), 0);
		}
	}
	cr_assert_eq(got, 1, "cut %zu of %zu", cut, len);
	free(pend);
	free(copy);
	free(fr);
	ttrpc_reader_release(&a);
	ttrpc_reader_release(&b);
}

Test(reader, pending_bytes_resume_a_frame_anywhere)
{
	/* small frames in the scratch buffer, large ones in the body buffer */
	const size_t bodies[] = {0, 100, 70000};
	for (size_t i = 0; i < 3; i++) {
		size_t len = TTRPC_HEADER_LEN + bodies[i];
		const size_t cuts[] = {0, 1, 9, 10, 11, len / 2, len - 1};
		for (size_t j = 0; j < 7; j++)
			if (cuts[j] < len)
				handover_at(bodies[i], cuts[j]);
	}
}

Test(reader, pending_refused_while_skipping_an_oversized_frame)
{
	struct ttrpc_reader r;
	ttrpc_reader_init(&r);
	uint8_t hdr[TTRPC_HEADER_LEN];
	struct ttrpc_frame_hdr h = {.length = TTRPC_MAX_DATA + 1, .stream_id = 1, .type = 1};
	ttrpc_frame_hdr_encode(hdr, &h);
	struct ttrpc_frame f;
	int frames = 0;
	feed_all(&r, hdr, sizeof(hdr), &f, &frames);
	uint8_t *p;
	cr_assert_eq(ttrpc_reader_pending(&r, &p), -EBUSY);
	cr_assert_null(p);
	ttrpc_reader_release(&r);
}

/* ---- a server handed over ---- */

static int sleeps_seen;
static struct ttrpc_call *parked[4];
static int n_parked;
static bool park_sleeps = true;

static void h_echo(struct ttrpc_call *call, const ProtobufCMessage *req, void *ud)
{
	ttrpc_call_reply(call, req);
}

static void h_sleep(struct ttrpc_call *call, const ProtobufCMessage *req, void *ud)
{
	sleeps_seen++;
	if (park_sleeps)
		cr_assert_eq(ttrpc_call_park(call), 0);
	parked[n_parked++] = call;
}

static const ttrpc_handler_fn bench_handlers[] = {h_echo, h_sleep, NULL, NULL, NULL, NULL};

static struct ttrpc_server *bench_server(void)
{
	struct ttrpc_server *s = ttrpc_server_new();
	cr_assert_not_null(s);
	cr_assert_eq(
	    ttrpc_server_register(s, &ttrpc__bench__v1__bench__descriptor, bench_handlers, NULL),
	    0);
	return s;
}

static void send_request(int fd, uint32_t id, const char *method, const ProtobufCMessage *m,
                         int64_t timeout, size_t only)
{
	struct ttrpc_obuf *b =
	    ttrpc_env_request(NULL, id, 0, "ttrpc.bench.v1.Bench", method, m, timeout, NULL, 0);
	cr_assert_not_null(b);
	size_t n = only && only < b->len ? only : b->len;
	cr_assert_eq(write(fd, b->data, n), (ssize_t)n);
	free(b);
}

static void send_rest(int fd, uint32_t id, const char *method, const ProtobufCMessage *m,
                      size_t from)
{
	struct ttrpc_obuf *b =
	    ttrpc_env_request(NULL, id, 0, "ttrpc.bench.v1.Bench", method, m, 0, NULL, 0);
	cr_assert_eq(write(fd, b->data + from, b->len - from), (ssize_t)(b->len - from));
	free(b);
}

/* Reads one Response frame: its stream id. */
static uint32_t read_response(int fd)
{
	uint8_t hdr[TTRPC_HEADER_LEN], body[4096];
	cr_assert_eq(read(fd, hdr, sizeof(hdr)), (ssize_t)sizeof(hdr));
	struct ttrpc_frame_hdr h;
	ttrpc_frame_hdr_decode(hdr, &h);
	cr_assert_eq(h.type, TTRPC_TYPE_RESPONSE);
	cr_assert_leq(h.length, sizeof(body));
	cr_assert_eq(read(fd, body, h.length), (ssize_t)h.length);
	return h.stream_id;
}

static void pump(struct ttrpc_server *s)
{
	for (int i = 0; i < 5; i++)
		ttrpc_server_dispatch(s);
}

Test(server, export_refuses_a_call_in_flight)
{
	int sv[2];
	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	struct ttrpc_server *s = bench_server();
	cr_assert_eq(ttrpc_server_add_conn(s, sv[1]), 0);
	park_sleeps = false;
	n_parked = 0;
	Ttrpc__Bench__V1__SleepRequest sr = TTRPC__BENCH__V1__SLEEP_REQUEST__INIT;
	sr.millis = 1000;
	send_request(sv[0], 1, "Sleep", &sr.base, 0, 0);
	pump(s);
	cr_assert_eq(n_parked, 1);
	struct ttrpc_export ex;
	struct ttrpc_status st;
	cr_assert_eq(ttrpc_server_export(s, NULL, &ex, &st), -EBUSY);
	cr_assert_str_eq(st.message, "1 call in flight");
	/* the call being the upgrade itself: it does not count */
	cr_assert_eq(ttrpc_server_export(s, parked[0], &ex, &st), 0);
	cr_assert_eq(ex.n_conns, 1);
	cr_assert_eq(ex.n_calls, 0);
	ttrpc_export_free(&ex);
	Google__Protobuf__Empty e = GOOGLE__PROTOBUF__EMPTY__INIT;
	ttrpc_call_reply(parked[0], &e.base);
	ttrpc_server_free(s);
	close(sv[0]);
	park_sleeps = true;
}

Test(server, handover_keeps_connection_partial_frame_and_parked_call)
{
	int sv[2];
	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	struct ttrpc_server *old = bench_server();
	cr_assert_eq(ttrpc_server_add_conn(old, sv[1]), 0);
	sleeps_seen = n_parked = 0;
	Ttrpc__Bench__V1__SleepRequest sr = TTRPC__BENCH__V1__SLEEP_REQUEST__INIT;
	sr.millis = 1000;
	send_request(sv[0], 1, "Sleep", &sr.base, 10LL * 1000000000, 0); /* parked */
	Ttrpc__Bench__V1__EchoPayload ep = TTRPC__BENCH__V1__ECHO_PAYLOAD__INIT;
	ep.value.data = (uint8_t *)"hello";
	ep.value.len = 5;
	send_request(sv[0], 3, "Echo", &ep.base, 0, 13); /* the header and 3 bytes */
	pump(old);
	cr_assert_eq(sleeps_seen, 1);

	struct ttrpc_export ex;
	struct ttrpc_status st;
	cr_assert_eq(ttrpc_server_export(old, NULL, &ex, &st), 0, "%s", st.message);
	cr_assert_eq(ex.n_conns, 1);
	cr_assert_eq(ex.conns[0].n_partial, 13);
	cr_assert_eq(ex.n_calls, 1);
	cr_assert_eq(ex.calls[0].conn_fd, sv[1]);

	/* the new process: the same fd number is a dup here */
	int fd2 = dup(sv[1]);
	struct ttrpc_server *nw = bench_server();
	cr_assert_eq(ttrpc_server_adopt_conn(nw, fd2, ex.conns[0].partial, ex.conns[0].n_partial),
	             0);
	cr_assert_eq(ttrpc_server_replay(nw, fd2, ex.calls[0].frame, ex.calls[0].len), 0);
	cr_assert_eq(sleeps_seen, 2, "the parked call's handler ran again");
	struct ttrpc_call *again = parked[1];
	int64_t left = ttrpc_call_timeout_nano(again);
	cr_assert(left > 0 && left <= 10LL * 1000000000, "time left %lld", (long long)left);
	cr_assert_eq(ttrpc_server_replay(nw, fd2, ex.calls[0].frame, 5), -EBADMSG);
	cr_assert_eq(ttrpc_server_replay(nw, 12345, ex.calls[0].frame, ex.calls[0].len), -ENOENT);
	ttrpc_export_free(&ex);
	ttrpc_server_free(old); /* closes sv[1]; the dup serves on */
	Google__Protobuf__Empty e = GOOGLE__PROTOBUF__EMPTY__INIT;
	ttrpc_call_reply(parked[0], &e.base); /* orphaned: nothing is sent */

	send_rest(sv[0], 3, "Echo", &ep.base, 13);
	pump(nw);
	cr_assert_eq(read_response(sv[0]), 3, "the Echo begun before completes after");
	ttrpc_call_reply(again, &e.base);
	cr_assert_eq(read_response(sv[0]), 1, "the replayed Sleep answers the original call");
	cr_assert_eq(ttrpc_server_respond(nw, fd2, 7, &e.base), 0);
	cr_assert_eq(read_response(sv[0]), 7);
	cr_assert_eq(ttrpc_server_respond(nw, 999, 7, &e.base), -ENOENT);
	ttrpc_server_free(nw);
	close(sv[0]);
}

Test(server, held_reads_nothing_until_released)
{
	int sv[2];
	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	struct ttrpc_server *s = bench_server();
	cr_assert_eq(ttrpc_server_add_conn(s, sv[1]), 0);
	ttrpc_server_hold(s, true);
	Ttrpc__Bench__V1__EchoPayload ep = TTRPC__BENCH__V1__ECHO_PAYLOAD__INIT;
	send_request(sv[0], 1, "Echo", &ep.base, 0, 0);
	pump(s);
	struct ttrpc_export ex;
	struct ttrpc_status st;
	cr_assert_eq(ttrpc_server_export(s, NULL, &ex, &st), 0, "nothing read: nothing in flight");
	cr_assert_eq(ex.conns[0].n_partial, 0);
	ttrpc_export_free(&ex);
	ttrpc_server_hold(s, false);
	pump(s);
	cr_assert_eq(read_response(sv[0]), 1, "read and answered once released");
	ttrpc_server_free(s);
	close(sv[0]);
}

/* ---- the state ---- */

typedef Nanoshim__Shim__V1__UpgradeState UpgradeState;

static int memfd(void)
{
	int fd = memfd_create("test-upgrade", MFD_CLOEXEC);
	cr_assert_geq(fd, 0);
	return fd;
}

Test(state, roundtrip_through_a_memfd)
{
	UpgradeState s = NANOSHIM__SHIM__V1__UPGRADE_STATE__INIT;
	s.version = UPGRADE_STATE_VERSION;
	int32_t listeners[] = {3};
	s.listeners = listeners;
	s.n_listeners = 1;
	Nanoshim__Shim__V1__UpgradeConn conn = NANOSHIM__SHIM__V1__UPGRADE_CONN__INIT;
	conn.fd = 9;
	conn.partial.data = (uint8_t *)"\0\0\0\5";
	conn.partial.len = 4;
	ProtobufCBinaryData call = {.len = 3, .data = (uint8_t *)"abc"};
	conn.calls = &call;
	conn.n_calls = 1;
	Nanoshim__Shim__V1__UpgradeConn *conns[] = {&conn};
	s.conns = conns;
	s.n_conns = 1;
	Nanoshim__Shim__V1__UpgradeStdio io = NANOSHIM__SHIM__V1__UPGRADE_STDIO__INIT;
	io.in_src = io.in_dst = io.console = -1;
	io.out_src = 20;
	io.out_dst = 21;
	io.err_src = 22;
	io.err_dst = 23;
	Nanoshim__Shim__V1__UpgradeProcess init = NANOSHIM__SHIM__V1__UPGRADE_PROCESS__INIT;
	init.exec_id = "";
	init.state = PROC_RUNNING;
	init.pid = 4242;
	init.stdin = "";
	init.stdout = "file:///var/log/web.log";
	init.stderr = "";
	init.io = &io;
	Nanoshim__Shim__V1__UpgradeProcess ex = NANOSHIM__SHIM__V1__UPGRADE_PROCESS__INIT;
	ex.exec_id = "e1";
	ex.state = PROC_STOPPED;
	ex.pid = 4343;
	ex.exit_status = 7;
	ex.exited_sec = 1700000000;
	ex.exited_nsec = 5;
	ex.reaped = true;
	ex.stdin = ex.stdout = ex.stderr = "";
	Nanoshim__Shim__V1__UpgradeProcess *execs[] = {&ex};
	Nanoshim__Shim__V1__UpgradeContainer c = NANOSHIM__SHIM__V1__UPGRADE_CONTAINER__INIT;
	c.id = "web";
	c.bundle = "/run/containerd/io.containerd.runtime.v2.task/default/web";
	c.bundle_fd = 11;
	c.runc_root = "/run/containerd/runc/default";
	c.runc_binary = "crun";
	c.private_pidns = true;
	c.oom_watched = true;
	c.init = &init;
	c.execs = execs;
	c.n_execs = 1;
	Nanoshim__Shim__V1__UpgradeContainer *cs[] = {&c};
	s.containers = cs;
	s.n_containers = 1;
	s.reply_fd = 9;
	s.reply_stream_id = 17;

	int fd = memfd();
	cr_assert_eq(upgrade_state_write(fd, &s), 0);
	UpgradeState *r;
	uint32_t v;
	cr_assert_eq(upgrade_state_read(fd, &r, &v), 0);
	cr_assert_eq(v, UPGRADE_STATE_VERSION);
	cr_assert_eq(r->n_listeners, 1);
	cr_assert_eq(r->listeners[0], 3);
	cr_assert_eq(r->n_conns, 1);
	cr_assert_eq(r->conns[0]->fd, 9);
	cr_assert_eq(r->conns[0]->partial.len, 4);
	cr_assert_eq(r->conns[0]->n_calls, 1);
	cr_assert_eq(memcmp(r->conns[0]->calls[0].data, "abc", 3), 0);
	cr_assert_eq(r->n_containers, 1);
	const Nanoshim__Shim__V1__UpgradeContainer *rc = r->containers[0];
	cr_assert_str_eq(rc->id, "web");
	cr_assert_str_eq(rc->runc_binary, "crun");
	cr_assert_eq(rc->bundle_fd, 11);
	cr_assert(rc->private_pidns && rc->oom_watched);
	cr_assert_eq(rc->init->pid, 4242);
	cr_assert_eq(rc->init->io->in_src, -1, "-1 survives: no fd 0 by default");
	cr_assert_eq(rc->init->io->console, -1);
	cr_assert_eq(rc->init->io->err_dst, 23);
	cr_assert_str_eq(rc->init->stdout, "file:///var/log/web.log");
	cr_assert_eq(rc->n_execs, 1);
	cr_assert_str_eq(rc->execs[0]->exec_id, "e1");
	cr_assert_eq(rc->execs[0]->exit_status, 7);
	cr_assert_eq(rc->execs[0]->exited_nsec, 5);
	cr_assert(rc->execs[0]->reaped);
	cr_assert_null(rc->execs[0]->io);
	cr_assert_eq(r->reply_stream_id, 17);
	nanoshim__shim__v1__upgrade_state__free_unpacked(r, NULL);
	close(fd);
}

Test(state, another_version_or_garbage_is_refused)
{
	UpgradeState s = NANOSHIM__SHIM__V1__UPGRADE_STATE__INIT;
	s.version = UPGRADE_STATE_VERSION + 1;
	int fd = memfd();
	cr_assert_eq(upgrade_state_write(fd, &s), 0);
	UpgradeState *r;
	uint32_t v;
	cr_assert_eq(upgrade_state_read(fd, &r, &v), -EPROTO);
	cr_assert_null(r);
	cr_assert_eq(v, UPGRADE_STATE_VERSION + 1);
	close(fd);

	fd = memfd();
	cr_assert_eq(upgrade_state_read(fd, &r, &v), -EBADMSG, "empty");
	cr_assert_eq(write(fd, "\xff\xff\xff", 3), 3);
	cr_assert_eq(upgrade_state_read(fd, &r, &v), -EBADMSG, "not a message");
	close(fd);
}

/* ---- what the shim hands over, and what it refuses to ---- */

static struct container *plant(const char *id, enum proc_state state, pid_t pid)
{
	struct container *c = calloc(1, sizeof(*c));
	c->id = strdup(id);
	c->bundle = strdup("/run/b");
	c->bundle_fd = -1;
	c->init.c = c;
	c->init.state = state;
	c->init.pid = pid;
	c->init.pidfd = -1;
	c->init.reaped = state == PROC_STOPPED;
	c->init.stdin_path = c->init.stdout_path = c->init.stderr_path = "";
	c->next = shim.containers;
	shim.containers = c;
	return c;
}

static void serve_setup(void)
{
	shim.ns = "default";
	shim.id = "web";
	shim.containers = NULL;
	shim.server = ttrpc_server_new();
	int l = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr sa = {.sa_family = AF_UNIX}; /* autobind: an abstract address */
	cr_assert_eq(bind(l, &sa, sizeof(sa_family_t)), 0);
	cr_assert_eq(listen(l, 1), 0);
	cr_assert_eq(ttrpc_server_add_listener(shim.server, l), 0);
}

static void serve_teardown(void)
{
	ttrpc_server_free(shim.server);
	shim.server = NULL;
	while (shim.containers) {
		struct container *c = shim.containers;
		shim.containers = c->next;
		struct process *e = c->execs;
		while (e) {
			struct process *n = e->next;
			free(e->exec_id);
			free(e);
			e = n;
		}
		free(c->id);
		free(c->bundle);
		free(c);
	}
}

TestSuite(collect, .init = serve_setup, .fini = serve_teardown);

Test(collect, idle_shim_is_handed_over)
{
	struct container *c = plant("web", PROC_STOPPED, 4242);
	c->init.exit_status = 3;
	plant("db", PROC_RUNNING, 4343);
	UpgradeState s;
	struct ttrpc_status st;
	cr_assert_eq(upgrade_state_collect(NULL, &s, &st), 0, "%s", st.message);
	cr_assert_eq(s.version, UPGRADE_STATE_VERSION);
	cr_assert_eq(s.n_listeners, 1);
	cr_assert_eq(s.n_containers, 2);
	cr_assert_str_eq(s.containers[0]->id, "db");
	cr_assert_eq(s.containers[0]->init->state, PROC_RUNNING);
	cr_assert_str_eq(s.containers[1]->id, "web");
	cr_assert_eq(s.containers[1]->init->exit_status, 3);
	cr_assert(s.containers[1]->init->reaped);
	int fd = memfd();
	cr_assert_eq(upgrade_state_write(fd, &s), 0);
	upgrade_state_release(&s);
	UpgradeState *r;
	uint32_t v;
	cr_assert_eq(upgrade_state_read(fd, &r, &v), 0);
	cr_assert_eq(r->n_containers, 2);
	nanoshim__shim__v1__upgrade_state__free_unpacked(r, NULL);
	close(fd);
}

static void assert_refused_rc(int rc, const char *want)
{
	UpgradeState s;
	struct ttrpc_status st;
	cr_assert_eq(upgrade_state_collect(NULL, &s, &st), rc);
	cr_assert_eq(st.code, TTRPC_FAILED_PRECONDITION);
	cr_assert_str_eq(st.message, want);
}

/* in motion: the upgrade waits for it to end */
static void assert_refused(const char *want)
{
	assert_refused_rc(-EBUSY, want);
}

Test(collect, runtime_call_in_flight_is_refused)
{
	plant("web", PROC_RUNNING, 4242)->refs = 1;
	assert_refused("container web: a runtime call is in flight");
}

Test(collect, process_being_started_is_refused)
{
	plant("web", PROC_CREATED, 4242)->init.announcing = true;
	assert_refused("web: being created or started");
}

Test(collect, exit_being_announced_is_refused)
{
	struct container *c = plant("web", PROC_RUNNING, 4242);
	c->init.reaped = true;
	assert_refused("web: its exit is being announced");
}

Test(collect, exec_not_started_is_carried)
{
	struct container *c = plant("web", PROC_RUNNING, 4242);
	struct process *e = calloc(1, sizeof(*e));
	e->c = c;
	e->exec_id = strdup("e1");
	e->state = PROC_CREATED;
	e->pidfd = -1;
	e->stdin_path = e->stdout_path = e->stderr_path = "";
	e->spec = "{\"args\":[\"true\"]}";
	e->spec_len = strlen(e->spec);
	c->execs = e;
	UpgradeState s;
	struct ttrpc_status st;
	cr_assert_eq(upgrade_state_collect(NULL, &s, &st), 0, "%s", st.message);
	cr_assert_eq(s.containers[0]->n_execs, 1);
	const Nanoshim__Shim__V1__UpgradeProcess *m = s.containers[0]->execs[0];
	cr_assert_str_eq(m->exec_id, "e1");
	cr_assert_eq(m->state, PROC_CREATED);
	cr_assert_eq(m->pid, 0);
	cr_assert_null(m->io);
	cr_assert_eq(m->spec.len, e->spec_len);
	upgrade_state_release(&s);
	e->spec = NULL;
}

Test(collect, init_without_pid_is_refused)
{
	plant("web", PROC_CREATED, 0);
	assert_refused("web: created but not started");
}

Test(collect, shutdown_is_refused)
{
	plant("web", PROC_RUNNING, 4242);
	shim.shutdown_requested = true;
	assert_refused_rc(-EOPNOTSUPP, "the shim is shutting down");
	shim.shutdown_requested = false;
}

/* ---- undelivered events ---- */

static int collect_item(const struct events_item *it, void *ud)
{
	char *buf = ud;
	size_t n = strlen(buf);
	snprintf(buf + n, 512 - n, "%s%s@%lld", n ? " " : "", it->topic, (long long)it->ts.tv_sec);
	return 0;
}

Test(collect, undelivered_events_are_handed_over_in_order)
{
	struct loop *l = loop_new();
	events_init(l, "/nonexistent/containerd.sock.ttrpc", "ns1"); /* nothing delivers */
	Containerd__Events__TaskExit ex = CONTAINERD__EVENTS__TASK_EXIT__INIT;
	ex.container_id = ex.id = "web";
	ex.exit_status = 7;
	Containerd__Events__TaskOOM oom = CONTAINERD__EVENTS__TASK_OOM__INIT;
	oom.container_id = "db";
	Containerd__Events__TaskDelete del = CONTAINERD__EVENTS__TASK_DELETE__INIT;
	del.container_id = "web";
	cr_assert_eq(events_publish("/tasks/exit", &ex.base), 0);
	cr_assert_eq(events_publish("/tasks/oom", &oom.base), 0);
	cr_assert_eq(events_publish("/tasks/delete", &del.base), 0);
	plant("web", PROC_STOPPED, 4242);
	UpgradeState s;
	struct ttrpc_status st;
	cr_assert_eq(upgrade_state_collect(NULL, &s, &st), 0, "%s", st.message);
	cr_assert_eq(s.n_events, 3);
	cr_assert_str_eq(s.events[0]->topic, "/tasks/exit");
	cr_assert_str_eq(s.events[1]->oom_id, "db");
	cr_assert_str_eq(s.events[2]->type_url, "containerd.events.TaskDelete");
	int fd = memfd();
	cr_assert_eq(upgrade_state_write(fd, &s), 0);
	upgrade_state_release(&s);
	events_shutdown();

	/* the new process */
	events_init(l, "/nonexistent/containerd.sock.ttrpc", "ns1");
	UpgradeState *r;
	uint32_t v;
	cr_assert_eq(upgrade_state_read(fd, &r, &v), 0);
	for (size_t i = 0; i < r->n_events; i++)
		cr_assert_eq(upgrade_event_requeue(r->events[i]), 0);
	cr_assert_eq(events_queued(), 3);
	char got[512] = "", want[512];
	snprintf(want, sizeof(want), "/tasks/exit@%lld /tasks/oom@%lld /tasks/delete@%lld",
	         (long long)r->events[0]->ts_sec, (long long)r->events[1]->ts_sec,
	         (long long)r->events[2]->ts_sec);
	events_each(collect_item, got);
	cr_assert_str_eq(got, want);
	/* the requeued OOM still coalesces a repeat */
	cr_assert_eq(events_publish("/tasks/oom", &oom.base), 0);
	cr_assert_eq(events_queued(), 3);
	Containerd__Events__TaskExit *back = containerd__events__task_exit__unpack(
	    NULL, r->events[0]->value.len, r->events[0]->value.data);
	cr_assert_not_null(back);
	cr_assert_eq(back->exit_status, 7);
	containerd__events__task_exit__free_unpacked(back, NULL);
	nanoshim__shim__v1__upgrade_state__free_unpacked(r, NULL);
	close(fd);
	events_shutdown();
	loop_free(l);
}

/* ---- a state the new binary cannot take goes back to the old one ---- */

static char fb_dir[64];

static int state_of_version(uint32_t version, const char *old_binary)
{
	UpgradeState s = NANOSHIM__SHIM__V1__UPGRADE_STATE__INIT;
	s.version = version;
	s.old_binary = (char *)old_binary;
	int fd = memfd_create("test-upgrade", 0); /* inherited, as the real one */
	cr_assert_geq(fd, 0);
	cr_assert_eq(upgrade_state_write(fd, &s), 0);
	return fd;
}

/* Runs upgrade_resume_begin in a child: its exit status, 100 + -rc when it
 * returned instead of exec'ing. */
static int resume_in_child(int fd, bool fallback)
{
	pid_t pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		shim.ns = "ns1";
		shim.id = "web";
		shim.address = "/run/c.sock";
		struct ttrpc_server *srv = ttrpc_server_new();
		int rc = upgrade_resume_begin(fd, srv, fallback);
		_exit(100 + (rc < 0 ? -rc : 0) % 100);
	}
	close(fd);
	int ws;
	cr_assert_eq(waitpid(pid, &ws, 0), pid);
	cr_assert(WIFEXITED(ws));
	return WEXITSTATUS(ws);
}

static void fb_setup(void)
{
	snprintf(fb_dir, sizeof(fb_dir), "/tmp/nanoshim-upgrade-XXXXXX");
	cr_assert_not_null(mkdtemp(fb_dir));
	char path[128], body[256];
	snprintf(path, sizeof(path), "%s/old-shim", fb_dir);
	snprintf(body, sizeof(body), "#!/bin/sh\necho \"$@\" >%s/args\n", fb_dir);
	FILE *f = fopen(path, "w");
	cr_assert_not_null(f);
	fputs(body, f);
	fclose(f);
	chmod(path, 0755);
}

static void fb_teardown(void)
{
	char path[128];
	snprintf(path, sizeof(path), "%s/old-shim", fb_dir);
	unlink(path);
	snprintf(path, sizeof(path), "%s/args", fb_dir);
	unlink(path);
	rmdir(fb_dir);
}

TestSuite(fallback, .init = fb_setup, .fini = fb_teardown);

Test(fallback, another_version_goes_back_to_the_old_binary)
{
	char old[128], args[128], want[256], got[256] = "";
	snprintf(old, sizeof(old), "%s/old-shim", fb_dir);
	snprintf(args, sizeof(args), "%s/args", fb_dir);
	int fd = state_of_version(UPGRADE_STATE_VERSION + 1, old);
	snprintf(
	    want, sizeof(want),
	    "-namespace ns1 -id web -address /run/c.sock -upgrade-resume %d -upgrade-fallback\n",
	    fd);
	cr_assert_eq(resume_in_child(fd, false), 0, "the old binary ran");
	FILE *f = fopen(args, "r");
	cr_assert_not_null(f);
	cr_assert_not_null(fgets(got, sizeof(got), f));
	fclose(f);
	cr_assert_str_eq(got, want);
}

Test(fallback, never_twice_nor_to_a_deleted_binary)
{
	char old[128], deleted[160];
	snprintf(old, sizeof(old), "%s/old-shim", fb_dir);
	int fd = state_of_version(UPGRADE_STATE_VERSION + 1, old);
	cr_assert_eq(resume_in_child(fd, true), 100 + EPROTO, "handed back already: no exec");
	snprintf(deleted, sizeof(deleted), "%s (deleted)", old);
	fd = state_of_version(UPGRADE_STATE_VERSION + 1, deleted);
	cr_assert_eq(resume_in_child(fd, false), 100 + EPROTO, "a deleted binary: no exec");
	fd = state_of_version(UPGRADE_STATE_VERSION + 1, "");
	cr_assert_eq(resume_in_child(fd, false), 100 + EPROTO, "no old binary: no exec");
}

/* ---- a copier's spooled output moves to another copier, in order ---- */

static void fill_pattern(char *b, size_t n, size_t *seq)
{
	for (size_t i = 0; i < n; i++)
		b[i] = (char)((*seq)++ % 251);
}

/* Pumps l until the reader (dst_r) has `want` bytes, checking their order. */
static size_t read_in_order(struct loop *l, int dst_r, size_t want, size_t *seq)
{
	static char sink[65536];
	size_t got = 0;
	for (int i = 0; i < 5000 && got < want; i++) {
		ssize_t n;
		while ((n = read(dst_r, sink, sizeof(sink))) > 0) {
			for (ssize_t k = 0; k < n; k++)
				cr_assert_eq((unsigned char)sink[k], (*seq)++ % 251, "byte %zu",
				             got + (size_t)k);
			got += (size_t)n;
		}
		loop_iterate(l, 2);
	}
	return got;
}

Test(copier, spooled_output_moves_to_another_copier_in_order, .timeout = 30)
{
	struct loop *l = loop_new();
	int src[2], dst[2];
	cr_assert_eq(pipe2(src, O_CLOEXEC | O_NONBLOCK), 0);
	cr_assert_eq(pipe2(dst, O_CLOEXEC | O_NONBLOCK), 0);
	struct copier *c = copier_new(l, src[0], dst[1], true, NULL, NULL);
	cr_assert_not_null(c);
	copier_set_spool(c, spool_new(NULL, 1 << 20, 4 << 20), "old stdout", NULL);
	static char chunk[16384];
	size_t wseq = 0, wrote = 0;
	struct copier_export e = {0};
	/* nobody reads dst: once it is full (the reader away) the copier spools */
	for (int i = 0; i < 400 && e.spooled < (256u << 10); i++) {
		size_t before = wseq;
		fill_pattern(chunk, sizeof(chunk), &wseq);
		ssize_t n = write(src[1], chunk, sizeof(chunk));
		if (n < (ssize_t)sizeof(chunk))
			wseq = before + (size_t)(n > 0 ? n : 0);
		if (n > 0)
			wrote += (size_t)n;
		loop_iterate(l, 5);
		copier_export(c, &e);
	}
	cr_assert_gt(e.spooled, 0, "spooled (wrote %zu)", wrote);
	cr_assert_eq(e.buffered, 0, "nothing in a copy buffer");
	cr_assert_eq(e.src, src[0]);
	cr_assert_eq(e.dst, dst[1]);

	/* taken into a memfd, and back (an exec that failed): nothing lost */
	int m = memfd_create("spool", MFD_CLOEXEC);
	size_t spooled = e.spooled;
	cr_assert_eq(copier_spool_take(c, m), (ssize_t)spooled);
	copier_export(c, &e);
	cr_assert_eq(e.spooled, 0);
	lseek(m, 0, SEEK_SET);
	cr_assert_eq(copier_spool_give(c, m), 0);
	copier_export(c, &e);
	cr_assert_eq(e.spooled, spooled);

	/* taken again for "the new process": a new copier on the same fds */
	lseek(m, 0, SEEK_SET);
	cr_assert_eq(ftruncate(m, 0), 0);
	cr_assert_eq(copier_spool_take(c, m), (ssize_t)spooled);
	int src2 = dup(src[0]), dst2 = dup(dst[1]);
	copier_free(c); /* closes the originals: the dups are "the same fds" */
	struct copier *c2 = copier_new(l, src2, dst2, true, NULL, NULL);
	cr_assert_not_null(c2);
	copier_set_spool(c2, spool_new(NULL, 1 << 20, 4 << 20), "new stdout", NULL);
	lseek(m, 0, SEEK_SET);
	cr_assert_eq(copier_spool_give(c2, m), 0);
	close(m);
	/* the process writes on; the reader comes back: every byte, in order */
	for (int i = 0; i < 8; i++) {
		size_t before = wseq;
		fill_pattern(chunk, sizeof(chunk), &wseq);
		ssize_t n = write(src[1], chunk, sizeof(chunk));
		if (n < (ssize_t)sizeof(chunk))
			wseq = before + (size_t)(n > 0 ? n : 0);
		loop_iterate(l, 2);
	}
	size_t rseq = 0;
	size_t got = read_in_order(l, dst[0], wseq, &rseq);
	cr_assert_eq(got, wseq, "the reader got %zu of %zu bytes", got, wseq);
	copier_free(c2);
	close(src[1]);
	close(dst[0]);
	loop_free(l);
}
