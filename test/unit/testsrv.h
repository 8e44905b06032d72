/* Test support: the Bench service (proto/ttrpc/bench.proto) served by our
 * server on its own thread, so client tests can make blocking calls. Sleep
 * answers from the loop's timer list, never blocking, and stops on cancel. */
#pragma once

#include "ttrpc.h"
#include "ttrpc/bench.pb-c.h"
#include "google/protobuf/empty.pb-c.h"

#include <dirent.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define BIG_REPLY_MARKER "BIG-REPLY"

struct sleeper {
	struct ttrpc_call *call;
	int64_t due;
	struct sleeper *next;
};

struct testsrv {
	struct ttrpc_server *srv;
	pthread_t thr;
	int stop_fd;
	struct sleeper *sleepers;
	char path[108];
	char dir[64];
	int calls_seen;
	bool park_sleeps; /* Sleep parks its call, as the shim's Wait does */
};

static void ts_echo(struct ttrpc_call *call, const ProtobufCMessage *req, void *ud)
{
	const Ttrpc__Bench__V1__EchoPayload *in = (const void *)req;
	struct testsrv *ts = ud;
	ts->calls_seen++;
	if (in->value.len == sizeof(BIG_REPLY_MARKER) - 1 &&
	    memcmp(in->value.data, BIG_REPLY_MARKER, in->value.len) == 0) {
		Ttrpc__Bench__V1__EchoPayload out = TTRPC__BENCH__V1__ECHO_PAYLOAD__INIT;
		out.value.len = TTRPC_MAX_DATA + 1;
		out.value.data = calloc(1, out.value.len);
		ttrpc_call_reply(call, &out.base);
		free(out.value.data);
		return;
	}
	ttrpc_call_reply(call, req);
}

static void ts_sleep_cancel(struct ttrpc_call *call, void *ud)
{
	struct testsrv *ts = ud;
	for (struct sleeper **pp = &ts->sleepers; *pp; pp = &(*pp)->next) {
		if ((*pp)->call == call) {
			struct sleeper *s = *pp;
			*pp = s->next;
			free(s);
			break;
		}
	}
	ttrpc_call_fail(call, TTRPC_DEADLINE_EXCEEDED, "context deadline exceeded");
}

static void ts_sleep(struct ttrpc_call *call, const ProtobufCMessage *req, void *ud)
{
	const Ttrpc__Bench__V1__SleepRequest *in = (const void *)req;
	struct testsrv *ts = ud;
	ts->calls_seen++;
	if (in->millis <= 0) {
		Google__Protobuf__Empty e = GOOGLE__PROTOBUF__EMPTY__INIT;
		ttrpc_call_reply(call, &e.base);
		return;
	}
	struct sleeper *s = calloc(1, sizeof(*s));
	s->call = call;
	s->due = ttrpc_now_ns() + in->millis * 1000000;
	s->next = ts->sleepers;
	ts->sleepers = s;
	ttrpc_call_on_cancel(call, ts_sleep_cancel, ts);
	if (ts->park_sleeps && ttrpc_call_park(call) < 0) {
		ts->sleepers = s->next;
		free(s);
		ttrpc_call_fail(call, TTRPC_RESOURCE_EXHAUSTED, "no room to park");
	}
}

static void ts_fail(struct ttrpc_call *call, const ProtobufCMessage *req, void *ud)
{
	const Ttrpc__Bench__V1__FailRequest *in = (const void *)req;
	ttrpc_call_fail(call, in->code, "%s", in->message);
}

static void ts_metadata(struct ttrpc_call *call, const ProtobufCMessage *req, void *ud)
{
	Ttrpc__Bench__V1__MetadataReply out = TTRPC__BENCH__V1__METADATA_REPLY__INIT;
	size_t n = ttrpc_call_metadata_count(call);
	Ttrpc__Bench__V1__MetadataEntry *e = calloc(n + 1, sizeof(*e));
	Ttrpc__Bench__V1__MetadataEntry **pe = calloc(n + 1, sizeof(*pe));
	for (size_t i = 0; i < n; i++) {
		struct ttrpc_kv kv = ttrpc_call_metadata_at(call, i);
		ttrpc__bench__v1__metadata_entry__init(&e[i]);
		e[i].key = (char *)kv.key;
		e[i].value = (char *)kv.value;
		pe[i] = &e[i];
	}
	out.n_entries = n;
	out.entries = pe;
	out.timeout_nano = ttrpc_call_timeout_nano(call);
	ttrpc_call_reply(call, &out.base);
	free(e);
	free(pe);
}

static void ts_stream(struct ttrpc_call *call, const ProtobufCMessage *req, void *ud)
{
	const Ttrpc__Bench__V1__StreamRequest *in = (const void *)req;
	if (!ttrpc_call_is_stream(call)) {
		ttrpc_call_fail(call, TTRPC_INVALID_ARGUMENT, "Stream needs a streaming request");
		return;
	}
	Ttrpc__Bench__V1__EchoPayload out = TTRPC__BENCH__V1__ECHO_PAYLOAD__INIT;
	out.value.len = (size_t)in->size;
	out.value.data = malloc(out.value.len + 1);
	for (int i = 0; i < in->count; i++) {
		memset(out.value.data, 'a' + i % 26, out.value.len);
		int rc = ttrpc_call_send(call, &out.base);
		if (rc < 0) {
			free(out.value.data);
			ttrpc_call_fail(call, ttrpc_code_from_errno(rc), "stream send: %s",
					strerror(-rc));
			return;
		}
	}
	free(out.value.data);
	ttrpc_call_reply(call, NULL);
}

struct sum_state {
	size_t total;
};

static void ts_sum_data(struct ttrpc_call *call, const ProtobufCMessage *msg, bool closed,
			void *ud)
{
	struct sum_state *st = ud;
	if (msg)
		st->total += ((const Ttrpc__Bench__V1__EchoPayload *)msg)->value.len;
	if (closed) {
		char buf[32];
		Ttrpc__Bench__V1__EchoPayload out = TTRPC__BENCH__V1__ECHO_PAYLOAD__INIT;
		out.value.len = (size_t)snprintf(buf, sizeof(buf), "%zu", st->total);
		out.value.data = (uint8_t *)buf;
		free(st);
		ttrpc_call_reply(call, &out.base);
	}
}

static void ts_sum_cancel(struct ttrpc_call *call, void *ud)
{
	free(ud);
	ttrpc_call_fail(call, TTRPC_CANCELLED, "stream cancelled");
}

static void ts_sum(struct ttrpc_call *call, const ProtobufCMessage *req, void *ud)
{
	struct sum_state *st = calloc(1, sizeof(*st));
	st->total = ((const Ttrpc__Bench__V1__EchoPayload *)req)->value.len;
	ttrpc_call_on_data(call, ts_sum_data, st);
	ttrpc_call_on_cancel(call, ts_sum_cancel, st);
}

static const ttrpc_handler_fn ts_handlers[] = {ts_echo,	    ts_sleep, ts_fail,
					       ts_metadata, ts_stream, ts_sum};

static inline void ts_fire_sleepers(struct testsrv *ts)
{
	int64_t now = ttrpc_now_ns();
	for (struct sleeper **pp = &ts->sleepers; *pp;) {
		struct sleeper *s = *pp;
		if (s->due <= now) {
			*pp = s->next;
			Google__Protobuf__Empty e = GOOGLE__PROTOBUF__EMPTY__INIT;
			ttrpc_call_reply(s->call, &e.base);
			free(s);
		} else {
			pp = &s->next;
		}
	}
}

static inline int ts_poll_ms(struct testsrv *ts)
{
	int64_t next = 0;
	for (struct sleeper *s = ts->sleepers; s; s = s->next)
		if (!next || s->due < next)
			next = s->due;
	if (!next)
		return -1;
	int64_t left = next - ttrpc_now_ns();
	return left <= 0 ? 0 : (int)(left / 1000000) + 1;
}

/* One iteration of the server loop; returns false when asked to stop. */
static inline bool ts_step(struct testsrv *ts, int max_ms)
{
	struct pollfd p[2] = {{.fd = ttrpc_server_fd(ts->srv), .events = POLLIN},
			      {.fd = ts->stop_fd, .events = POLLIN}};
	int ms = ts_poll_ms(ts);
	if (max_ms >= 0 && (ms < 0 || ms > max_ms))
		ms = max_ms;
	poll(p, ts->stop_fd >= 0 ? 2 : 1, ms);
	if (ts->stop_fd >= 0 && (p[1].revents & POLLIN))
		return false;
	ttrpc_server_dispatch(ts->srv);
	ts_fire_sleepers(ts);
	return true;
}

static inline void *ts_main(void *arg)
{
	struct testsrv *ts = arg;
	while (ts_step(ts, -1))
		;
	return NULL;
}

static inline void ts_init(struct testsrv *ts)
{
	memset(ts, 0, sizeof(*ts));
	ts->stop_fd = -1;
	ts->srv = ttrpc_server_new();
	if (!ts->srv)
		abort();
	if (ttrpc_server_register(ts->srv, &ttrpc__bench__v1__bench__descriptor, ts_handlers, ts))
		abort();
}

/* Listens on a fresh socket in a fresh temp dir and serves it on a thread. */
static inline void ts_start(struct testsrv *ts)
{
	ts_init(ts);
	strcpy(ts->dir, "/tmp/nanoshim-test-XXXXXX");
	if (!mkdtemp(ts->dir))
		abort();
	snprintf(ts->path, sizeof(ts->path), "%s/s.sock", ts->dir);
	if (ttrpc_server_listen(ts->srv, ts->path) < 0)
		abort();
	ts->stop_fd = eventfd(0, EFD_CLOEXEC);
	pthread_create(&ts->thr, NULL, ts_main, ts);
}

static inline void ts_stop(struct testsrv *ts)
{
	if (ts->stop_fd >= 0) {
		uint64_t one = 1;
		if (write(ts->stop_fd, &one, sizeof(one)) < 0)
			abort();
		pthread_join(ts->thr, NULL);
		close(ts->stop_fd);
		ts->stop_fd = -1;
	}
	ttrpc_server_free(ts->srv); /* cancels and finishes leftover sleepers */
	ts->srv = NULL;
	while (ts->sleepers) {
		struct sleeper *s = ts->sleepers;
		ts->sleepers = s->next;
		free(s);
	}
	if (ts->path[0])
		unlink(ts->path);
	if (ts->dir[0])
		rmdir(ts->dir);
}

/* The fds this process holds now (what a client or a group costs is a
 * difference of two of these). */
static inline int ts_count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	if (!d)
		abort();
	int n = 0;
	struct dirent *e;
	while ((e = readdir(d)))
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n - 1; /* opendir's own */
}

/* A listener nobody accepts from, in a fresh temp dir: connections wait in its
 * backlog (0: the kernel queues one, then refuses with EAGAIN). Returns its
 * fd; dir (at least 32 bytes) and path (108) are filled for ts_backlog_close. */
static inline int ts_backlog_listener(char *dir, char *path, int backlog)
{
	strcpy(dir, "/tmp/nanoshim-test-XXXXXX");
	if (!mkdtemp(dir))
		abort();
	snprintf(path, 108, "%s/s.sock", dir);
	struct sockaddr_un sa;
	int len = ttrpc_sockaddr(path, &sa);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (len < 0 || fd < 0 || bind(fd, (struct sockaddr *)&sa, (socklen_t)len) < 0 ||
	    listen(fd, backlog) < 0)
		abort();
	return fd;
}

static inline void ts_backlog_close(int fd, const char *dir, const char *path)
{
	close(fd);
	unlink(path);
	rmdir(dir);
}
