/* cpeer: the C end of the ttrpc interop tests and benchmarks, the counterpart
 * of gopeer (test/interop/gopeer): a ttrpc.bench.v1.Bench server on one epoll
 * loop, the same interop check suite as a client, and an echo load generator.
 *
 *   cpeer server -socket PATH
 *   cpeer client -socket PATH [-streams]
 *   cpeer bench -socket PATH -size N -concurrency C -duration D [-warmup D]
 */
#include "ttrpc.h"
#include "google/protobuf/empty.pb-c.h"
#include "ttrpc/bench.pb-c.h"

#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>
#include <unistd.h>

#define SERVICE "ttrpc.bench.v1.Bench"
#define NS_PER_MS INT64_C(1000000)
#define NS_PER_S INT64_C(1000000000)

/* Leaves room in a 4 MiB frame for the Request envelope around an EchoPayload. */
#define MAX_ECHO ((4u << 20) - 64)
/* Stream: bound on what one call may ask the server to queue. */
#define STREAM_MAX_BYTES (64u << 20)
#define STREAM_MAX_SIZE (4u << 20)

static void fill_pattern(uint8_t *p, size_t n, uint8_t seed)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)(i * 31) + seed;
}

static void *xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);
	if (!p) {
		fprintf(stderr, "cpeer: out of memory\n");
		exit(1);
	}
	return p;
}

/* ======================================================================
 * server
 * ====================================================================== */

enum src_tag {
	SRC_TTRPC = 1,
	SRC_SIGNAL,
	SRC_SLEEP,
};

struct server_ctx {
	int epfd;
	struct ttrpc_server *srv;
	struct sleep_op *sleeps;  /* pending */
	struct sleep_op *zombies; /* finished, freed after the current event batch */
};

/* One Sleep call waiting for its timerfd. */
struct sleep_op {
	int tag; /* first: epoll data.ptr points here */
	int tfd;
	struct ttrpc_call *call;
	struct server_ctx *ctx;
	struct sleep_op *prev, *next;
};

static const int tag_ttrpc = SRC_TTRPC;
static const int tag_signal = SRC_SIGNAL;

static void reply_empty(struct ttrpc_call *call)
{
	Google__Protobuf__Empty e = GOOGLE__PROTOBUF__EMPTY__INIT;
	ttrpc_call_reply(call, &e.base);
}

static void handle_echo(struct ttrpc_call *call, const ProtobufCMessage *req, void *ud)
{
	ttrpc_call_reply(call, req);
}

/* Finishes a sleep: stops its timer, answers (a cancelled call drops the
 * answer) and parks the op until the event batch that may still name it is
 * over. */
static void sleep_finish(struct sleep_op *op)
{
	struct server_ctx *ctx = op->ctx;
	epoll_ctl(ctx->epfd, EPOLL_CTL_DEL, op->tfd, NULL);
	close(op->tfd);
	op->tfd = -1;
	if (op->prev)
		op->prev->next = op->next;
	else
		ctx->sleeps = op->next;
	if (op->next)
		op->next->prev = op->prev;
	op->prev = NULL;
	op->next = ctx->zombies;
	ctx->zombies = op;
	struct ttrpc_call *call = op->call;
	op->call = NULL;
	reply_empty(call);
}

static void sleep_cancelled(struct ttrpc_call *call, void *ud)
{
	sleep_finish(ud);
}

static void handle_sleep(struct ttrpc_call *call, const ProtobufCMessage *msg, void *ud)
{
	const Ttrpc__Bench__V1__SleepRequest *req = (const void *)msg;
	struct server_ctx *ctx = ud;
	if (req->millis <= 0) {
		reply_empty(call);
		return;
	}
	int tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	if (tfd < 0) {
		ttrpc_call_fail(call, ttrpc_code_from_errno(errno), "sleep: timerfd: %s",
				strerror(errno));
		return;
	}
	struct itimerspec its = {
		.it_value = {.tv_sec = req->millis / 1000,
			     .tv_nsec = (req->millis % 1000) * NS_PER_MS},
	};
	struct sleep_op *op = calloc(1, sizeof(*op));
	struct epoll_event ev = {.events = EPOLLIN, .data.ptr = op};
	if (!op || timerfd_settime(tfd, 0, &its, NULL) < 0 ||
	    epoll_ctl(ctx->epfd, EPOLL_CTL_ADD, tfd, &ev) < 0) {
		int err = op ? errno : ENOMEM;
		close(tfd);
		free(op);
		ttrpc_call_fail(call, ttrpc_code_from_errno(err), "sleep: timer: %s",
				strerror(err));
		return;
	}
	op->tag = SRC_SLEEP;
	op->tfd = tfd;
	op->call = call;
	op->ctx = ctx;
	op->next = ctx->sleeps;
	if (ctx->sleeps)
		ctx->sleeps->prev = op;
	ctx->sleeps = op;
	ttrpc_call_on_cancel(call, sleep_cancelled, op);
}

static void handle_fail(struct ttrpc_call *call, const ProtobufCMessage *msg, void *ud)
{
	const Ttrpc__Bench__V1__FailRequest *req = (const void *)msg;
	if (req->code == 0)
		reply_empty(call);
	else
		ttrpc_call_fail(call, req->code, "%s", req->message);
}

static int entry_cmp(const void *a, const void *b)
{
	const Ttrpc__Bench__V1__MetadataEntry *x = *(Ttrpc__Bench__V1__MetadataEntry *const *)a;
	const Ttrpc__Bench__V1__MetadataEntry *y = *(Ttrpc__Bench__V1__MetadataEntry *const *)b;
	int r = strcmp(x->key, y->key);
	return r ? r : strcmp(x->value, y->value);
}

/* Sorted by key then value, as gopeer reports what Go's MD map holds. */
static void handle_metadata(struct ttrpc_call *call, const ProtobufCMessage *msg, void *ud)
{
	size_t n = ttrpc_call_metadata_count(call);
	Ttrpc__Bench__V1__MetadataEntry *entries = xmalloc(n * sizeof(*entries));
	Ttrpc__Bench__V1__MetadataEntry **ptrs = xmalloc(n * sizeof(*ptrs));
	for (size_t i = 0; i < n; i++) {
		struct ttrpc_kv kv = ttrpc_call_metadata_at(call, i);
		ttrpc__bench__v1__metadata_entry__init(&entries[i]);
		entries[i].key = (char *)kv.key;
		entries[i].value = (char *)kv.value;
		ptrs[i] = &entries[i];
	}
	qsort(ptrs, n, sizeof(*ptrs), entry_cmp);
	Ttrpc__Bench__V1__MetadataReply reply = TTRPC__BENCH__V1__METADATA_REPLY__INIT;
	reply.n_entries = n;
	reply.entries = ptrs;
	reply.timeout_nano = ttrpc_call_timeout_nano(call);
	ttrpc_call_reply(call, &reply.base);
	free(ptrs);
	free(entries);
}

/* Stream: `count` EchoPayloads of `size` bytes as Data frames, then the
 * (empty) Response. */
static void handle_stream(struct ttrpc_call *call, const ProtobufCMessage *msg, void *ud)
{
	const Ttrpc__Bench__V1__StreamRequest *req = (const void *)msg;
	if (!ttrpc_call_is_stream(call)) {
		ttrpc_call_fail(call, TTRPC_FAILED_PRECONDITION, "Stream needs a streaming call");
		return;
	}
	if (req->count < 0 || req->size < 0 || (uint32_t)req->size > STREAM_MAX_SIZE ||
	    (uint64_t)req->count * (uint64_t)req->size > STREAM_MAX_BYTES) {
		ttrpc_call_fail(call, TTRPC_INVALID_ARGUMENT,
				"stream of %d x %d bytes: over the limit of %u bytes", req->count,
				req->size, STREAM_MAX_BYTES);
		return;
	}
	uint8_t *buf = xmalloc((size_t)req->size);
	fill_pattern(buf, (size_t)req->size, 0);
	Ttrpc__Bench__V1__EchoPayload p = TTRPC__BENCH__V1__ECHO_PAYLOAD__INIT;
	p.value.data = buf;
	p.value.len = (size_t)req->size;
	for (int32_t i = 0; i < req->count; i++) {
		int rc = ttrpc_call_send(call, &p.base);
		if (rc < 0) {
			free(buf);
			ttrpc_call_fail(call, ttrpc_code_from_errno(rc), "stream send %d: %s", i,
					strerror(-rc));
			return;
		}
	}
	free(buf);
	ttrpc_call_reply(call, NULL);
}

struct sum_state {
	uint64_t total;
	uint64_t frames;
};

static void sum_data(struct ttrpc_call *call, const ProtobufCMessage *msg, bool closed, void *ud)
{
	struct sum_state *st = ud;
	if (msg) {
		st->total += ((const Ttrpc__Bench__V1__EchoPayload *)(const void *)msg)->value.len;
		st->frames++;
	}
	if (!closed)
		return;
	char buf[32];
	int n = snprintf(buf, sizeof(buf), "%" PRIu64, st->total);
	Ttrpc__Bench__V1__EchoPayload reply = TTRPC__BENCH__V1__ECHO_PAYLOAD__INIT;
	reply.value.data = (uint8_t *)buf;
	reply.value.len = (size_t)n;
	free(st);
	ttrpc_call_reply(call, &reply.base);
}

static void sum_cancelled(struct ttrpc_call *call, void *ud)
{
	free(ud);
	ttrpc_call_fail(call, TTRPC_CANCELLED, "sum cancelled");
}

/* Sum: adds up the lengths of the EchoPayloads the client streams and answers
 * the decimal total once the client closes its side. */
static void handle_sum(struct ttrpc_call *call, const ProtobufCMessage *msg, void *ud)
{
	if (!ttrpc_call_is_stream(call)) {
		ttrpc_call_fail(call, TTRPC_FAILED_PRECONDITION, "Sum needs a streaming call");
		return;
	}
	struct sum_state *st = calloc(1, sizeof(*st));
	if (!st) {
		ttrpc_call_fail(call, TTRPC_RESOURCE_EXHAUSTED, "sum: out of memory");
		return;
	}
	ttrpc_call_on_data(call, sum_data, st);
	ttrpc_call_on_cancel(call, sum_cancelled, st);
}

static const struct {
	const char *name;
	ttrpc_handler_fn fn;
} bench_methods[] = {
	{"Echo", handle_echo},
	{"Sleep", handle_sleep},
	{"Fail", handle_fail},
	{"Metadata", handle_metadata},
	{"Stream", handle_stream},
	{"Sum", handle_sum},
};

static ttrpc_handler_fn bench_handlers[16];

static int serve(const char *socket_path)
{
	const ProtobufCServiceDescriptor *desc = &ttrpc__bench__v1__bench__descriptor;
	if (desc->n_methods > sizeof(bench_handlers) / sizeof(bench_handlers[0]))
		return -E2BIG;
	for (unsigned i = 0; i < desc->n_methods; i++)
		for (size_t j = 0; j < sizeof(bench_methods) / sizeof(bench_methods[0]); j++)
			if (strcmp(desc->methods[i].name, bench_methods[j].name) == 0)
				bench_handlers[i] = bench_methods[j].fn;

	struct server_ctx ctx = {.epfd = -1};
	int sfd = -1, rc;
	sigset_t mask;
	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigprocmask(SIG_BLOCK, &mask, NULL);

	ctx.epfd = epoll_create1(EPOLL_CLOEXEC);
	sfd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
	ctx.srv = ttrpc_server_new();
	if (ctx.epfd < 0 || sfd < 0 || !ctx.srv) {
		rc = -errno;
		fprintf(stderr, "cpeer server: setup: %s\n", strerror(errno));
		goto out;
	}
	rc = ttrpc_server_register(ctx.srv, desc, bench_handlers, &ctx);
	if (rc < 0) {
		fprintf(stderr, "cpeer server: register %s: %s\n", desc->name, strerror(-rc));
		goto out;
	}
	rc = ttrpc_server_listen(ctx.srv, socket_path);
	if (rc < 0) {
		fprintf(stderr, "cpeer server: listen on %s: %s\n", socket_path, strerror(-rc));
		goto out;
	}
	struct epoll_event ev = {.events = EPOLLIN, .data.ptr = (void *)&tag_ttrpc};
	if (epoll_ctl(ctx.epfd, EPOLL_CTL_ADD, ttrpc_server_fd(ctx.srv), &ev) < 0) {
		rc = -errno;
		goto out;
	}
	ev.data.ptr = (void *)&tag_signal;
	if (epoll_ctl(ctx.epfd, EPOLL_CTL_ADD, sfd, &ev) < 0) {
		rc = -errno;
		goto out;
	}
	printf("ready\n");
	fflush(stdout);

	bool stopping = false;
	int64_t stop_deadline = 0;
	while (!(stopping && ttrpc_server_drained(ctx.srv))) {
		int timeout = -1;
		if (stopping) {
			int64_t left = stop_deadline - ttrpc_now_ns();
			if (left <= 0)
				break; /* calls still pending: ttrpc_server_free cancels them */
			timeout = (int)(left / NS_PER_MS) + 1;
		}
		struct epoll_event evs[16];
		int n = epoll_wait(ctx.epfd, evs, 16, timeout);
		if (n < 0 && errno != EINTR) {
			rc = -errno;
			fprintf(stderr, "cpeer server: epoll_wait: %s\n", strerror(errno));
			goto out;
		}
		for (int i = 0; i < n; i++) {
			int tag = *(const int *)evs[i].data.ptr;
			if (tag == SRC_TTRPC) {
				rc = ttrpc_server_dispatch(ctx.srv);
				if (rc < 0) {
					fprintf(stderr, "cpeer server: dispatch: %s\n",
						strerror(-rc));
					goto out;
				}
			} else if (tag == SRC_SIGNAL) {
				struct signalfd_siginfo si;
				while (read(sfd, &si, sizeof(si)) == sizeof(si)) {
					if (stopping)
						continue;
					stopping = true;
					stop_deadline = ttrpc_now_ns() + 2 * NS_PER_S;
					ttrpc_server_shutdown(ctx.srv);
				}
			} else if (tag == SRC_SLEEP) {
				struct sleep_op *op = evs[i].data.ptr;
				if (op->call) { /* not finished earlier in this batch */
					uint64_t ticks;
					if (read(op->tfd, &ticks, sizeof(ticks)) == sizeof(ticks))
						sleep_finish(op);
				}
			}
		}
		while (ctx.zombies) {
			struct sleep_op *op = ctx.zombies;
			ctx.zombies = op->next;
			free(op);
		}
	}
	rc = 0;
out:
	ttrpc_server_free(ctx.srv); /* cancels what is left: pending sleeps finish */
	while (ctx.zombies) {
		struct sleep_op *op = ctx.zombies;
		ctx.zombies = op->next;
		free(op);
	}
	if (sfd >= 0)
		close(sfd);
	if (ctx.epfd >= 0)
		close(ctx.epfd);
	if (strncmp(socket_path, "unix://", 7) == 0)
		socket_path += 7;
	if (socket_path[0] != '@')
		unlink(socket_path);
	return rc;
}

/* ======================================================================
 * client: the interop check suite
 * ====================================================================== */

#define CALL_TIMEOUT_NS (20 * NS_PER_S)
#define WHY_LEN (TTRPC_STATUS_MSG_MAX + 512) /* a check's explanation */

struct checker {
	struct ttrpc_client *c;
	int failed;
};

static void report(struct checker *k, const char *name, const char *why)
{
	if (why) {
		k->failed++;
		printf("FAIL %s: %s\n", name, why);
	} else {
		printf("ok %s\n", name);
	}
	fflush(stdout);
}

static const struct ttrpc_call_opts default_opts = {.timeout_ns = CALL_TIMEOUT_NS};

/* Runs the client loop until *done or the deadline; false on timeout. */
static bool wait_until(struct ttrpc_client *c, const bool *done, int64_t timeout_ns)
{
	int64_t end = ttrpc_now_ns() + timeout_ns;
	while (!*done) {
		int64_t left = end - ttrpc_now_ns();
		if (left <= 0)
			return false;
		struct pollfd p = {.fd = ttrpc_client_fd(c), .events = POLLIN};
		int wait = (int)(left / NS_PER_MS) + 1;
		if (poll(&p, 1, wait) < 0 && errno != EINTR)
			return false;
		ttrpc_client_dispatch(c);
	}
	return true;
}

/* Checks a status against an expected code and (unless NULL) message; the
 * explanation goes to why, NULL for a match. */
static const char *want_status(char *why, size_t len, const struct ttrpc_status *st, int code,
			       const char *msg)
{
	if (st->code != code) {
		snprintf(why, len, "code %d \"%s\", want code %d", st->code, st->message, code);
		return why;
	}
	if (msg && strcmp(st->message, msg) != 0) {
		snprintf(why, len, "message \"%s\", want \"%s\"", st->message, msg);
		return why;
	}
	return NULL;
}

static const char *echo_check(struct checker *k, char *why, size_t len, size_t n, uint8_t seed)
{
	uint8_t *buf = xmalloc(n);
	fill_pattern(buf, n, seed);
	Ttrpc__Bench__V1__EchoPayload req = TTRPC__BENCH__V1__ECHO_PAYLOAD__INIT;
	req.value.data = buf;
	req.value.len = n;
	ProtobufCMessage *reply = NULL;
	struct ttrpc_status st;
	const char *res = NULL;
	int rc = ttrpc_client_call(k->c, SERVICE, "Echo", &req.base,
				   &ttrpc__bench__v1__echo_payload__descriptor, &default_opts,
				   &reply, &st);
	if (rc < 0) {
		snprintf(why, len, "code %d \"%s\"", st.code, st.message);
		res = why;
	} else {
		const Ttrpc__Bench__V1__EchoPayload *r = (const void *)reply;
		if (r->value.len != n || (n && memcmp(r->value.data, buf, n) != 0)) {
			snprintf(why, len, "echoed %zu bytes, got %zu different bytes", n,
				 r->value.len);
			res = why;
		}
	}
	if (reply)
		protobuf_c_message_free_unpacked(reply, NULL);
	free(buf);
	return res;
}

static void check_echo(struct checker *k)
{
	static const struct {
		const char *name;
		size_t n;
	} sizes[] = {
		{"echo_0B", 0},		  {"echo_1B", 1},	  {"echo_1KiB", 1 << 10},
		{"echo_64KiB", 64 << 10}, {"echo_1MiB", 1 << 20}, {"echo_4MiB_minus_64", MAX_ECHO},
	};
	char why[WHY_LEN];
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++)
		report(k, sizes[i].name, echo_check(k, why, sizeof(why), sizes[i].n, (uint8_t)i));

	/* Over 4 MiB: refused with ResourceExhausted (here before sending). */
	size_t n = 4u << 20;
	uint8_t *buf = xmalloc(n);
	fill_pattern(buf, n, 7);
	Ttrpc__Bench__V1__EchoPayload req = TTRPC__BENCH__V1__ECHO_PAYLOAD__INIT;
	req.value.data = buf;
	req.value.len = n;
	ProtobufCMessage *reply = NULL;
	struct ttrpc_status st;
	int rc = ttrpc_client_call(k->c, SERVICE, "Echo", &req.base,
				   &ttrpc__bench__v1__echo_payload__descriptor, &default_opts,
				   &reply, &st);
	const char *res;
	if (rc == 0) {
		snprintf(why, sizeof(why), "succeeded, want code %d", TTRPC_RESOURCE_EXHAUSTED);
		res = why;
	} else {
		res = want_status(why, sizeof(why), &st, TTRPC_RESOURCE_EXHAUSTED, NULL);
	}
	if (reply)
		protobuf_c_message_free_unpacked(reply, NULL);
	free(buf);
	report(k, "echo_oversize", res);
	report(k, "echo_after_oversize", echo_check(k, why, sizeof(why), 100, 9));
}

static const char *metadata_check(struct checker *k, char *why, size_t len,
				  const struct ttrpc_call_opts *opts,
				  const Ttrpc__Bench__V1__MetadataEntry *want, size_t n_want,
				  int64_t min_timeout, int64_t max_timeout)
{
	Google__Protobuf__Empty req = GOOGLE__PROTOBUF__EMPTY__INIT;
	ProtobufCMessage *reply = NULL;
	struct ttrpc_status st;
	const char *res = NULL;
	int rc =
		ttrpc_client_call(k->c, SERVICE, "Metadata", &req.base,
				  &ttrpc__bench__v1__metadata_reply__descriptor, opts, &reply, &st);
	if (rc < 0) {
		snprintf(why, len, "code %d \"%s\"", st.code, st.message);
		return why;
	}
	const Ttrpc__Bench__V1__MetadataReply *r = (const void *)reply;
	bool same = r->n_entries == n_want;
	for (size_t i = 0; same && i < n_want; i++)
		same = strcmp(r->entries[i]->key, want[i].key) == 0 &&
		       strcmp(r->entries[i]->value, want[i].value) == 0;
	if (!same) {
		size_t off = (size_t)snprintf(why, len, "entries [");
		for (size_t i = 0; i < r->n_entries && off < len; i++)
			off += (size_t)snprintf(why + off, len - off, "%s%s=%s", i ? " " : "",
						r->entries[i]->key, r->entries[i]->value);
		if (off < len)
			snprintf(why + off, len - off, "], want %zu entries", n_want);
		res = why;
	} else if (r->timeout_nano < min_timeout || r->timeout_nano > max_timeout) {
		snprintf(why, len,
			 "server saw timeout %" PRId64 " ns, want [%" PRId64 ", %" PRId64 "]",
			 r->timeout_nano, min_timeout, max_timeout);
		res = why;
	}
	protobuf_c_message_free_unpacked(reply, NULL);
	return res;
}

static void check_metadata(struct checker *k)
{
	static const struct ttrpc_kv md[] = {
		{"k-one", "v1"},
		{"k-two", "b"},
		{"k-two", "a"},
		{"containerd-namespace-ttrpc", "default"},
	};
	Ttrpc__Bench__V1__MetadataEntry want[4];
	static const char *const kv[4][2] = {
		{"containerd-namespace-ttrpc", "default"},
		{"k-one", "v1"},
		{"k-two", "a"},
		{"k-two", "b"},
	};
	for (int i = 0; i < 4; i++) {
		ttrpc__bench__v1__metadata_entry__init(&want[i]);
		want[i].key = (char *)kv[i][0];
		want[i].value = (char *)kv[i][1];
	}
	char why[WHY_LEN];
	struct ttrpc_call_opts opts = {
		.timeout_ns = 10 * NS_PER_S, .metadata = md, .n_metadata = 4};
	report(k, "metadata",
	       metadata_check(k, why, sizeof(why), &opts, want, 4, 5 * NS_PER_S + 1,
			      10 * NS_PER_S));
	struct ttrpc_call_opts none = {0};
	report(k, "metadata_none", metadata_check(k, why, sizeof(why), &none, NULL, 0, 0, 0));
}

static void check_fail(struct checker *k)
{
	static const struct {
		int code;
		const char *msg;
	} cases[] = {
		{TTRPC_NOT_FOUND, "container \"web\" not found"},
		{TTRPC_ALREADY_EXISTS, "id web: already exists"},
		{TTRPC_FAILED_PRECONDITION, "process is not running: état ☃"},
		{TTRPC_UNIMPLEMENTED, "not supported"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		Ttrpc__Bench__V1__FailRequest req = TTRPC__BENCH__V1__FAIL_REQUEST__INIT;
		req.code = cases[i].code;
		req.message = (char *)cases[i].msg;
		ProtobufCMessage *reply = NULL;
		struct ttrpc_status st;
		char why[WHY_LEN], name[32];
		const char *res;
		int rc = ttrpc_client_call(k->c, SERVICE, "Fail", &req.base,
					   &google__protobuf__empty__descriptor, &default_opts,
					   &reply, &st);
		if (rc == 0) {
			snprintf(why, sizeof(why), "succeeded, want code %d", cases[i].code);
			res = why;
		} else {
			res = want_status(why, sizeof(why), &st, cases[i].code, cases[i].msg);
		}
		if (reply)
			protobuf_c_message_free_unpacked(reply, NULL);
		snprintf(name, sizeof(name), "fail_%d", cases[i].code);
		report(k, name, res);
	}
}

struct async_result {
	bool done;
	struct ttrpc_status st;
	int64_t at; /* completion time */
};

static void async_done(const struct ttrpc_status *st, ProtobufCMessage *reply, void *ud)
{
	struct async_result *r = ud;
	r->st = *st;
	r->at = ttrpc_now_ns();
	r->done = true;
	if (reply)
		protobuf_c_message_free_unpacked(reply, NULL);
}

static void check_sleep(struct checker *k)
{
	char why[WHY_LEN];
	Ttrpc__Bench__V1__SleepRequest req = TTRPC__BENCH__V1__SLEEP_REQUEST__INIT;
	ProtobufCMessage *reply = NULL;
	struct ttrpc_status st;
	const char *res = NULL;

	req.millis = 20;
	int64_t start = ttrpc_now_ns();
	int rc =
		ttrpc_client_call(k->c, SERVICE, "Sleep", &req.base,
				  &google__protobuf__empty__descriptor, &default_opts, &reply, &st);
	int64_t took = ttrpc_now_ns() - start;
	if (rc < 0) {
		snprintf(why, sizeof(why), "code %d \"%s\"", st.code, st.message);
		res = why;
	} else if (took < 20 * NS_PER_MS) {
		snprintf(why, sizeof(why), "returned after %" PRId64 " us, before 20ms",
			 took / 1000);
		res = why;
	}
	if (reply)
		protobuf_c_message_free_unpacked(reply, NULL);
	report(k, "sleep_short", res);

	/* The client's own deadline and the server's (timeout_nano) are the same
	 * 100 ms: either answer is DeadlineExceeded. */
	req.millis = 5000;
	struct ttrpc_call_opts opts = {.timeout_ns = 100 * NS_PER_MS};
	start = ttrpc_now_ns();
	rc = ttrpc_client_call(k->c, SERVICE, "Sleep", &req.base,
			       &google__protobuf__empty__descriptor, &opts, &reply, &st);
	took = ttrpc_now_ns() - start;
	if (rc == 0) {
		snprintf(why, sizeof(why), "succeeded, want code %d", TTRPC_DEADLINE_EXCEEDED);
		res = why;
	} else {
		res = want_status(why, sizeof(why), &st, TTRPC_DEADLINE_EXCEEDED,
				  "context deadline exceeded");
		if (!res && (took < 90 * NS_PER_MS || took > 2 * NS_PER_S)) {
			snprintf(why, sizeof(why),
				 "DeadlineExceeded after %" PRId64 " ms, want about 100ms",
				 took / NS_PER_MS);
			res = why;
		}
	}
	if (reply)
		protobuf_c_message_free_unpacked(reply, NULL);
	report(k, "sleep_deadline", res);

	/* A sleeping call must not hold up other calls on the same connection. */
	struct async_result sr = {0};
	req.millis = 300;
	int64_t id = ttrpc_client_call_async(k->c, SERVICE, "Sleep", &req.base,
					     &google__protobuf__empty__descriptor, &default_opts,
					     async_done, &sr);
	res = NULL;
	if (id < 0) {
		snprintf(why, sizeof(why), "async Sleep: %s", strerror((int)-id));
		report(k, "sleep_not_blocking", why);
		return;
	}
	bool never = false;
	wait_until(k->c, &never, 20 * NS_PER_MS);
	start = ttrpc_now_ns();
	res = echo_check(k, why, sizeof(why), 10, 3);
	took = ttrpc_now_ns() - start;
	if (!res && took > 150 * NS_PER_MS) {
		snprintf(why, sizeof(why),
			 "echo took %" PRId64 " ms while a Sleep(300ms) was pending",
			 took / NS_PER_MS);
		res = why;
	}
	if (!wait_until(k->c, &sr.done, 5 * NS_PER_S)) {
		if (!res) {
			snprintf(why, sizeof(why), "concurrent Sleep(300ms) did not finish in 5s");
			res = why;
		}
	} else if (!res && sr.st.code != TTRPC_OK) {
		snprintf(why, sizeof(why), "concurrent sleep: code %d \"%s\"", sr.st.code,
			 sr.st.message);
		res = why;
	}
	report(k, "sleep_not_blocking", res);
}

/* A client that goes away with a call in flight: the server cancels the call
 * and carries on serving everyone else. */
static void check_disconnect(struct checker *k, const char *socket_path)
{
	char why[WHY_LEN];
	const char *res = NULL;
	struct ttrpc_client *c2 = NULL;
	int rc = ttrpc_client_connect(socket_path, &c2);
	if (rc < 0) {
		snprintf(why, sizeof(why), "second connection: %s", strerror(-rc));
		report(k, "disconnect_during_sleep", why);
		return;
	}
	Ttrpc__Bench__V1__SleepRequest req = TTRPC__BENCH__V1__SLEEP_REQUEST__INIT;
	req.millis = 2000;
	struct async_result sr = {0};
	int64_t id = ttrpc_client_call_async(c2, SERVICE, "Sleep", &req.base,
					     &google__protobuf__empty__descriptor, &default_opts,
					     async_done, &sr);
	if (id < 0) {
		snprintf(why, sizeof(why), "async Sleep: %s", strerror((int)-id));
		res = why;
	}
	bool never = false;
	wait_until(c2, &never, 50 * NS_PER_MS);
	ttrpc_client_free(c2);
	if (!res)
		res = echo_check(k, why, sizeof(why), 10, 4);
	report(k, "disconnect_during_sleep", res);
}

struct pipelined {
	int done, bad;
	size_t n;
	uint8_t seed;
	int *counter, *bad_counter;
};

static void pipelined_done(const struct ttrpc_status *st, ProtobufCMessage *reply, void *ud)
{
	struct pipelined *p = ud;
	bool ok = st->code == TTRPC_OK && reply;
	if (ok) {
		const Ttrpc__Bench__V1__EchoPayload *r = (const void *)reply;
		ok = r->value.len == p->n;
		for (size_t i = 0; ok && i < p->n; i++)
			ok = r->value.data[i] == (uint8_t)((uint8_t)(i * 31) + p->seed);
	}
	if (reply)
		protobuf_c_message_free_unpacked(reply, NULL);
	(*p->counter)++;
	if (!ok)
		(*p->bad_counter)++;
}

static void check_pipelined(struct checker *k)
{
	enum { N = 64 };
	struct pipelined calls[N];
	int completed = 0, bad = 0;
	char why[WHY_LEN];
	const char *res = NULL;
	int started = 0;
	for (int i = 0; i < N; i++) {
		calls[i] = (struct pipelined){.n = (size_t)i * 97,
					      .seed = (uint8_t)i,
					      .counter = &completed,
					      .bad_counter = &bad};
		uint8_t *buf = xmalloc(calls[i].n);
		fill_pattern(buf, calls[i].n, calls[i].seed);
		Ttrpc__Bench__V1__EchoPayload req = TTRPC__BENCH__V1__ECHO_PAYLOAD__INIT;
		req.value.data = buf;
		req.value.len = calls[i].n;
		int64_t id = ttrpc_client_call_async(k->c, SERVICE, "Echo", &req.base,
						     &ttrpc__bench__v1__echo_payload__descriptor,
						     &default_opts, pipelined_done, &calls[i]);
		free(buf);
		if (id < 0) {
			snprintf(why, sizeof(why), "call %d: %s", i, strerror((int)-id));
			res = why;
			break;
		}
		started++;
	}
	int64_t end = ttrpc_now_ns() + 20 * NS_PER_S;
	while (completed < started && ttrpc_now_ns() < end) {
		bool never = false;
		wait_until(k->c, &never, 10 * NS_PER_MS);
	}
	if (!res && completed < started) {
		snprintf(why, sizeof(why), "%d of %d calls answered", completed, started);
		res = why;
	} else if (!res && bad) {
		snprintf(why, sizeof(why), "%d of %d replies wrong", bad, started);
		res = why;
	}
	report(k, "pipelined_64", res);
}

static void check_unknown(struct checker *k)
{
	static const struct {
		const char *name, *service, *method, *msg;
	} cases[] = {
		{"unknown_method", SERVICE, "Nope", "method Nope"},
		{"unknown_service", "ttrpc.bench.v1.Nope", "Echo", "service ttrpc.bench.v1.Nope"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		Google__Protobuf__Empty req = GOOGLE__PROTOBUF__EMPTY__INIT;
		ProtobufCMessage *reply = NULL;
		struct ttrpc_status st;
		char why[WHY_LEN];
		const char *res;
		int rc = ttrpc_client_call(k->c, cases[i].service, cases[i].method, &req.base,
					   &google__protobuf__empty__descriptor, &default_opts,
					   &reply, &st);
		if (rc == 0) {
			snprintf(why, sizeof(why), "succeeded, want code %d", TTRPC_UNIMPLEMENTED);
			res = why;
		} else {
			res = want_status(why, sizeof(why), &st, TTRPC_UNIMPLEMENTED, cases[i].msg);
		}
		if (reply)
			protobuf_c_message_free_unpacked(reply, NULL);
		report(k, cases[i].name, res);
	}
}

/* ---- streams (servers with ttrpc >= 1.2 semantics only) ---- */

struct stream_result {
	bool done;
	struct ttrpc_status st;
	int msgs;
	int bad_msgs;
	size_t want_size;
	char value[64]; /* Response payload's value, for Sum */
};

static void stream_msg(ProtobufCMessage *msg, void *ud)
{
	struct stream_result *r = ud;
	const Ttrpc__Bench__V1__EchoPayload *p = (const void *)msg;
	r->msgs++;
	bool ok = p->value.len == r->want_size;
	for (size_t i = 0; ok && i < p->value.len; i++)
		ok = p->value.data[i] == (uint8_t)(i * 31);
	if (!ok)
		r->bad_msgs++;
	protobuf_c_message_free_unpacked(msg, NULL);
}

static void stream_done(const struct ttrpc_status *st, ProtobufCMessage *reply, void *ud)
{
	struct stream_result *r = ud;
	r->st = *st;
	r->done = true;
	if (reply) {
		const Ttrpc__Bench__V1__EchoPayload *p = (const void *)reply;
		size_t n =
			p->value.len < sizeof(r->value) - 1 ? p->value.len : sizeof(r->value) - 1;
		if (n)
			memcpy(r->value, p->value.data, n);
		r->value[n] = '\0';
		protobuf_c_message_free_unpacked(reply, NULL);
	}
}

static const char *server_stream_check(struct checker *k, char *why, size_t len, int count,
				       int size)
{
	Ttrpc__Bench__V1__StreamRequest req = TTRPC__BENCH__V1__STREAM_REQUEST__INIT;
	req.count = count;
	req.size = size;
	struct stream_result r = {.want_size = (size_t)size};
	int rc = ttrpc_client_stream(k->c, SERVICE, "Stream", &req.base,
				     &ttrpc__bench__v1__echo_payload__descriptor, 0, &default_opts,
				     stream_msg, stream_done, &r, NULL);
	if (rc < 0) {
		snprintf(why, len, "start: %s", strerror(-rc));
		return why;
	}
	if (!wait_until(k->c, &r.done, 25 * NS_PER_S)) {
		snprintf(why, len, "no end of stream after %d messages", r.msgs);
		return why;
	}
	if (r.st.code != TTRPC_OK) {
		snprintf(why, len, "code %d \"%s\" after %d messages", r.st.code, r.st.message,
			 r.msgs);
		return why;
	}
	if (r.msgs != count || r.bad_msgs) {
		snprintf(why, len, "%d messages (%d wrong), want %d of %d bytes", r.msgs,
			 r.bad_msgs, count, size);
		return why;
	}
	return NULL;
}

/* Streams `sizes` to Sum; an empty closing frame after them when
 * empty_close, else the last payload closes. */
static const char *client_stream_check(struct checker *k, char *why, size_t len,
				       const size_t *sizes, size_t n, bool empty_close)
{
	Ttrpc__Bench__V1__EchoPayload req = TTRPC__BENCH__V1__ECHO_PAYLOAD__INIT;
	struct stream_result r = {0};
	struct ttrpc_stream *s = NULL;
	int rc = ttrpc_client_stream(k->c, SERVICE, "Sum", &req.base,
				     &ttrpc__bench__v1__echo_payload__descriptor, TTRPC_STREAM_SEND,
				     &default_opts, NULL, stream_done, &r, &s);
	if (rc < 0) {
		snprintf(why, len, "start: %s", strerror(-rc));
		return why;
	}
	uint64_t total = 0;
	for (size_t i = 0; i < n; i++) {
		uint8_t *buf = xmalloc(sizes[i]);
		fill_pattern(buf, sizes[i], (uint8_t)i);
		Ttrpc__Bench__V1__EchoPayload p = TTRPC__BENCH__V1__ECHO_PAYLOAD__INIT;
		p.value.data = buf;
		p.value.len = sizes[i];
		rc = ttrpc_stream_send(s, &p.base, !empty_close && i == n - 1);
		free(buf);
		total += sizes[i];
		if (rc < 0) {
			snprintf(why, len, "send %zu: %s", i, strerror(-rc));
			wait_until(k->c, &r.done, 5 * NS_PER_S);
			return why;
		}
	}
	if (empty_close && (rc = ttrpc_stream_send(s, NULL, true)) < 0) {
		snprintf(why, len, "send close: %s", strerror(-rc));
		wait_until(k->c, &r.done, 5 * NS_PER_S);
		return why;
	}
	if (!wait_until(k->c, &r.done, 25 * NS_PER_S)) {
		snprintf(why, len, "no reply");
		return why;
	}
	char want[32];
	snprintf(want, sizeof(want), "%" PRIu64, total);
	if (r.st.code != TTRPC_OK) {
		snprintf(why, len, "code %d \"%s\"", r.st.code, r.st.message);
		return why;
	}
	if (strcmp(r.value, want) != 0) {
		snprintf(why, len, "sum \"%s\", want \"%s\"", r.value, want);
		return why;
	}
	return NULL;
}

static void check_streams(struct checker *k)
{
	char why[WHY_LEN];
	report(k, "stream_5x100B", server_stream_check(k, why, sizeof(why), 5, 100));
	report(k, "stream_0", server_stream_check(k, why, sizeof(why), 0, 10));
	report(k, "stream_32x64KiB", server_stream_check(k, why, sizeof(why), 32, 64 << 10));
	static const size_t three[] = {10, 1000, 65536};
	report(k, "sum_3", client_stream_check(k, why, sizeof(why), three, 3, false));
	static const size_t two[] = {5, 7};
	report(k, "sum_empty_close", client_stream_check(k, why, sizeof(why), two, 2, true));
	report(k, "sum_none", client_stream_check(k, why, sizeof(why), NULL, 0, true));
	report(k, "echo_after_streams", echo_check(k, why, sizeof(why), 1000, 5));
}

static int run_checks(const char *socket_path, bool streams)
{
	struct checker k = {0};
	int rc = ttrpc_client_connect(socket_path, &k.c);
	if (rc < 0) {
		printf("FAIL connect: %s: %s\n", socket_path, strerror(-rc));
		return 1;
	}
	check_echo(&k);
	check_metadata(&k);
	check_fail(&k);
	check_sleep(&k);
	check_pipelined(&k);
	check_disconnect(&k, socket_path);
	check_unknown(&k);
	if (streams)
		check_streams(&k);
	ttrpc_client_free(k.c);
	if (k.failed) {
		printf("%d checks failed\n", k.failed);
		return 1;
	}
	return 0;
}

/* ======================================================================
 * bench: echo load, `concurrency` calls in flight on one connection
 * ====================================================================== */

struct bench {
	struct ttrpc_client *c;
	Ttrpc__Bench__V1__EchoPayload req;
	int64_t measure_from, end;
	int64_t *samples; /* latencies, ns */
	size_t n_samples, cap;
	int inflight;
	bool failed;
	struct ttrpc_status st;
};

struct bench_slot {
	struct bench *b;
	int64_t t0;
};

static void bench_issue(struct bench_slot *slot);

static void bench_done(const struct ttrpc_status *st, ProtobufCMessage *reply, void *ud)
{
	struct bench_slot *slot = ud;
	struct bench *b = slot->b;
	int64_t now = ttrpc_now_ns();
	b->inflight--;
	if (st->code != TTRPC_OK) {
		if (!b->failed)
			b->st = *st;
		b->failed = true;
		return;
	}
	const Ttrpc__Bench__V1__EchoPayload *r = (const void *)reply;
	if (r->value.len != b->req.value.len && !b->failed) {
		b->failed = true;
		ttrpc_status_set(&b->st, TTRPC_INTERNAL, "echo returned %zu bytes, sent %zu",
				 r->value.len, b->req.value.len);
	}
	protobuf_c_message_free_unpacked(reply, NULL);
	if (slot->t0 >= b->measure_from) {
		if (b->n_samples == b->cap) {
			b->cap = b->cap ? 2 * b->cap : 1 << 16;
			int64_t *p = realloc(b->samples, b->cap * sizeof(*p));
			if (!p) {
				fprintf(stderr, "cpeer bench: out of memory\n");
				exit(1);
			}
			b->samples = p;
		}
		b->samples[b->n_samples++] = now - slot->t0;
	}
	if (!b->failed && now < b->end)
		bench_issue(slot);
}

static void bench_issue(struct bench_slot *slot)
{
	struct bench *b = slot->b;
	slot->t0 = ttrpc_now_ns();
	int64_t id = ttrpc_client_call_async(b->c, SERVICE, "Echo", &b->req.base,
					     &ttrpc__bench__v1__echo_payload__descriptor, NULL,
					     bench_done, slot);
	if (id < 0) {
		if (!b->failed)
			ttrpc_status_set(&b->st, ttrpc_code_from_errno((int)id), "call: %s",
					 strerror((int)-id));
		b->failed = true;
		return;
	}
	b->inflight++;
}

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return x < y ? -1 : x > y;
}

/* Nearest rank, as gopeer. */
static int64_t percentile(const int64_t *sorted, size_t n, double p)
{
	if (!n)
		return 0;
	long i = (long)(p * (double)n + 0.5) - 1;
	if (i < 0)
		i = 0;
	if ((size_t)i >= n)
		i = (long)n - 1;
	return sorted[i];
}

static int run_bench(const char *socket_path, long size, int concurrency, int64_t duration,
		     int64_t warmup)
{
	if (size < 0 || concurrency < 1 || duration <= 0) {
		fprintf(stderr, "cpeer bench: bad arguments\n");
		return 2;
	}
	if (warmup < 0) {
		warmup = duration / 10;
		if (warmup > 500 * NS_PER_MS)
			warmup = 500 * NS_PER_MS;
	}
	struct bench b = {0};
	int rc = ttrpc_client_connect(socket_path, &b.c);
	if (rc < 0) {
		fprintf(stderr, "cpeer bench: connect %s: %s\n", socket_path, strerror(-rc));
		return 1;
	}
	uint8_t *buf = xmalloc((size_t)size);
	fill_pattern(buf, (size_t)size, 1);
	ttrpc__bench__v1__echo_payload__init(&b.req);
	b.req.value.data = buf;
	b.req.value.len = (size_t)size;

	struct bench_slot *slots = xmalloc((size_t)concurrency * sizeof(*slots));
	int64_t start = ttrpc_now_ns();
	b.measure_from = start + warmup;
	b.end = b.measure_from + duration;
	for (int i = 0; i < concurrency && !b.failed; i++) {
		slots[i].b = &b;
		bench_issue(&slots[i]);
	}
	while (b.inflight > 0) {
		struct pollfd p = {.fd = ttrpc_client_fd(b.c), .events = POLLIN};
		if (poll(&p, 1, -1) < 0 && errno != EINTR)
			break;
		rc = ttrpc_client_dispatch(b.c);
		if (rc < 0)
			break;
	}
	ttrpc_client_free(b.c);
	free(slots);
	free(buf);
	if (b.failed) {
		fprintf(stderr, "cpeer bench: code %d \"%s\"\n", b.st.code, b.st.message);
		free(b.samples);
		return 1;
	}
	qsort(b.samples, b.n_samples, sizeof(*b.samples), cmp_i64);
	printf("{\"calls\":%zu,\"calls_per_sec\":%.1f,\"p50_us\":%.3f,\"p99_us\":%.3f}\n",
	       b.n_samples, (double)b.n_samples * NS_PER_S / (double)duration,
	       (double)percentile(b.samples, b.n_samples, 0.50) / 1e3,
	       (double)percentile(b.samples, b.n_samples, 0.99) / 1e3);
	free(b.samples);
	return 0;
}

/* ======================================================================
 * main
 * ====================================================================== */

/* "3s", "500ms", "1.5s", "250us", "2m"; a bare number is seconds. */
static int64_t parse_duration(const char *s)
{
	char *end;
	errno = 0;
	double v = strtod(s, &end);
	if (errno || end == s || v < 0)
		return -1;
	static const struct {
		const char *unit;
		double ns;
	} units[] = {{"", 1e9}, {"s", 1e9}, {"ms", 1e6}, {"us", 1e3}, {"ns", 1}, {"m", 60e9}};
	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++)
		if (strcmp(end, units[i].unit) == 0)
			return (int64_t)(v * units[i].ns);
	return -1;
}

static int usage(void)
{
	fprintf(stderr, "usage: cpeer server -socket PATH\n"
			"       cpeer client -socket PATH [-streams]\n"
			"       cpeer bench -socket PATH -size N -concurrency C -duration D "
			"[-warmup D]\n");
	return 2;
}

int main(int argc, char **argv)
{
	if (argc < 2)
		return usage();
	const char *mode = argv[1], *socket_path = NULL;
	long size = 0;
	int concurrency = 1;
	int64_t duration = 3 * NS_PER_S, warmup = -1;
	bool streams = false;
	for (int i = 2; i < argc; i++) {
		/* Go's flag package accepts -name and --name, with a value after a
		 * space or '='. */
		const char *a = argv[i];
		if (a[0] != '-')
			return usage();
		a += a[1] == '-' ? 2 : 1;
		if (strcmp(a, "streams") == 0) {
			streams = true;
			continue;
		}
		const char *eq = strchr(a, '=');
		char name[32];
		const char *val;
		size_t nlen = eq ? (size_t)(eq - a) : strlen(a);
		if (nlen >= sizeof(name))
			return usage();
		memcpy(name, a, nlen);
		name[nlen] = '\0';
		if (eq)
			val = eq + 1;
		else if (i + 1 < argc)
			val = argv[++i];
		else
			return usage();
		char *end;
		if (strcmp(name, "socket") == 0) {
			socket_path = val;
		} else if (strcmp(name, "size") == 0) {
			size = strtol(val, &end, 10);
			if (*end || size < 0 || size > (long)(8u << 20))
				return usage();
		} else if (strcmp(name, "concurrency") == 0) {
			long c = strtol(val, &end, 10);
			if (*end || c < 1 || c > 4096)
				return usage();
			concurrency = (int)c;
		} else if (strcmp(name, "duration") == 0) {
			if ((duration = parse_duration(val)) <= 0)
				return usage();
		} else if (strcmp(name, "warmup") == 0) {
			if ((warmup = parse_duration(val)) < 0)
				return usage();
		} else {
			return usage();
		}
	}
	if (!socket_path)
		return usage();
	signal(SIGPIPE, SIG_IGN);
	if (strcmp(mode, "server") == 0)
		return serve(socket_path) < 0 ? 1 : 0;
	if (strcmp(mode, "client") == 0)
		return run_checks(socket_path, streams);
	if (strcmp(mode, "bench") == 0)
		return run_bench(socket_path, size, concurrency, duration, warmup);
	return usage();
}
