/* Client contract: calls against our server on a real unix socket (served on
 * a thread), and against raw fake servers for what a well-behaved server
 * never does (dying mid-frame, oversized replies). */
#include "testsrv.h"

#include <criterion/criterion.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/un.h>

#include "ttrpc/ttrpc.pb-c.h"

static struct testsrv ts;
static struct ttrpc_client *cl;

static void setup(void)
{
	signal(SIGPIPE, SIG_IGN);
	ts_start(&ts);
	cr_assert_eq(ttrpc_client_connect(ts.path, &cl), 0);
}

static void teardown(void)
{
	ttrpc_client_free(cl);
	cl = NULL;
	ts_stop(&ts);
}

TestSuite(client, .init = setup, .fini = teardown, .timeout = 60);

static const char *SVC = "ttrpc.bench.v1.Bench";

static int echo(size_t len, struct ttrpc_status *st)
{
	Ttrpc__Bench__V1__EchoPayload in = TTRPC__BENCH__V1__ECHO_PAYLOAD__INIT;
	in.value.len = len;
	in.value.data = malloc(len + 1);
	for (size_t i = 0; i < len; i++)
		in.value.data[i] = (uint8_t)(i * 31 + 7);
	ProtobufCMessage *out;
	int rc = ttrpc_client_call(cl, SVC, "Echo", &in.base,
				   &ttrpc__bench__v1__echo_payload__descriptor, NULL, &out, st);
	if (rc == 0) {
		Ttrpc__Bench__V1__EchoPayload *o = (void *)out;
		cr_assert_eq(o->value.len, len);
		cr_assert(len == 0 || memcmp(o->value.data, in.value.data, len) == 0);
		protobuf_c_message_free_unpacked(out, NULL);
	}
	free(in.value.data);
	return rc;
}

Test(client, echo_sizes)
{
	struct ttrpc_status st;
	size_t sizes[] = {0, 1, 1024, 16 << 10, 64 << 10, 1 << 20, TTRPC_MAX_DATA - 64};
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++)
		cr_assert_eq(echo(sizes[i], &st), 0, "size %zu: %s", sizes[i], st.message);
}

Test(client, oversized_request_refused_locally)
{
	struct ttrpc_status st;
	cr_assert_eq(echo(TTRPC_MAX_DATA, &st), -EMSGSIZE);
	cr_assert_eq(st.code, TTRPC_RESOURCE_EXHAUSTED);
	cr_assert_eq(echo(10, &st), 0, "connection still usable");
}

Test(client, errors_carry_code_and_message)
{
	Ttrpc__Bench__V1__FailRequest f = TTRPC__BENCH__V1__FAIL_REQUEST__INIT;
	int codes[] = {TTRPC_NOT_FOUND, TTRPC_ALREADY_EXISTS, TTRPC_FAILED_PRECONDITION,
		       TTRPC_UNAVAILABLE};
	for (size_t i = 0; i < 4; i++) {
		f.code = codes[i];
		f.message = "container \"web\": nope";
		ProtobufCMessage *out;
		struct ttrpc_status st;
		cr_assert_eq(ttrpc_client_call(cl, SVC, "Fail", &f.base,
					       &google__protobuf__empty__descriptor, NULL, &out, &st),
			     -EIO);
		cr_assert_null(out);
		cr_assert_eq(st.code, codes[i]);
		cr_assert_str_eq(st.message, "container \"web\": nope");
	}
}

Test(client, unknown_method)
{
	Google__Protobuf__Empty e = GOOGLE__PROTOBUF__EMPTY__INIT;
	ProtobufCMessage *out;
	struct ttrpc_status st;
	cr_assert_eq(ttrpc_client_call(cl, SVC, "Nope", &e.base,
				       &google__protobuf__empty__descriptor, NULL, &out, &st),
		     -EIO);
	cr_assert_eq(st.code, TTRPC_UNIMPLEMENTED);
	cr_assert_str_eq(st.message, "method Nope");
}

Test(client, metadata_and_timeout_reach_the_handler)
{
	struct ttrpc_kv md[] = {{"Containerd-Namespace-Ttrpc", "default"}, {"k", "1"}, {"k", "2"}};
	struct ttrpc_call_opts o = {.timeout_ns = 2000000000LL, .metadata = md, .n_metadata = 3};
	Google__Protobuf__Empty e = GOOGLE__PROTOBUF__EMPTY__INIT;
	ProtobufCMessage *out;
	struct ttrpc_status st;
	cr_assert_eq(ttrpc_client_call(cl, SVC, "Metadata", &e.base,
				       &ttrpc__bench__v1__metadata_reply__descriptor, &o, &out, &st),
		     0);
	Ttrpc__Bench__V1__MetadataReply *r = (void *)out;
	cr_assert_eq(r->n_entries, 3);
	cr_assert_str_eq(r->entries[0]->key, "containerd-namespace-ttrpc", "keys go out lowercase");
	cr_assert_str_eq(r->entries[0]->value, "default");
	cr_assert_str_eq(r->entries[1]->value, "1");
	cr_assert_str_eq(r->entries[2]->value, "2");
	cr_assert_eq(r->timeout_nano, 2000000000LL);
	protobuf_c_message_free_unpacked(out, NULL);
}

struct done_rec {
	int order[64];
	int n;
	int codes[64];
};

struct tag {
	struct done_rec *rec;
	int idx;
};

static void record(const struct ttrpc_status *st, ProtobufCMessage *reply, void *ud)
{
	struct tag *t = ud;
	t->rec->codes[t->idx] = st->code;
	t->rec->order[t->rec->n++] = t->idx;
	if (reply)
		protobuf_c_message_free_unpacked(reply, NULL);
}

static void pump_until(int *counter, int want)
{
	int64_t end = ttrpc_now_ns() + 20 * 1000000000LL;
	while (*counter < want) {
		cr_assert(ttrpc_now_ns() < end, "calls did not complete");
		struct pollfd p = {.fd = ttrpc_client_fd(cl), .events = POLLIN};
		poll(&p, 1, 100);
		ttrpc_client_dispatch(cl);
	}
}

Test(client, concurrent_calls_complete_out_of_order)
{
	struct done_rec rec = {0};
	struct tag tags[8];
	int ms[8] = {400, 350, 300, 250, 200, 150, 100, 0};
	for (int i = 0; i < 8; i++) {
		Ttrpc__Bench__V1__SleepRequest s = TTRPC__BENCH__V1__SLEEP_REQUEST__INIT;
		s.millis = ms[i];
		tags[i] = (struct tag){&rec, i};
		cr_assert(ttrpc_client_call_async(cl, SVC, "Sleep", &s.base,
						  &google__protobuf__empty__descriptor, NULL,
						  record, &tags[i]) > 0);
	}
	cr_assert_eq(ttrpc_client_pending(cl), 8);
	pump_until(&rec.n, 8);
	for (int i = 0; i < 8; i++) {
		cr_assert_eq(rec.codes[i], TTRPC_OK);
		cr_assert_eq(rec.order[i], 7 - i, "completion %d was call %d", i, rec.order[i]);
	}
}

Test(client, stream_ids_are_odd_and_increasing)
{
	Google__Protobuf__Empty e = GOOGLE__PROTOBUF__EMPTY__INIT;
	struct done_rec rec = {0};
	struct tag t[3] = {{&rec, 0}, {&rec, 1}, {&rec, 2}};
	int64_t ids[3];
	for (int i = 0; i < 3; i++)
		ids[i] = ttrpc_client_call_async(cl, SVC, "Metadata", &e.base,
						 &ttrpc__bench__v1__metadata_reply__descriptor, NULL,
						 record, &t[i]);
	cr_assert_eq(ids[0], 1);
	cr_assert_eq(ids[1], 3);
	cr_assert_eq(ids[2], 5);
	pump_until(&rec.n, 3);
}

Test(client, per_call_timeout_then_connection_still_usable)
{
	Ttrpc__Bench__V1__SleepRequest s = TTRPC__BENCH__V1__SLEEP_REQUEST__INIT;
	s.millis = 3000;
	struct ttrpc_call_opts o = {.timeout_ns = 50 * 1000000LL};
	ProtobufCMessage *out;
	struct ttrpc_status st;
	cr_assert_eq(ttrpc_client_call(cl, SVC, "Sleep", &s.base,
				       &google__protobuf__empty__descriptor, &o, &out, &st),
		     -EIO);
	cr_assert_eq(st.code, TTRPC_DEADLINE_EXCEEDED);
	cr_assert_str_eq(st.message, "context deadline exceeded");
	cr_assert_eq(echo(100, &st), 0);
}

Test(client, many_large_calls_in_flight_slow_reader)
{
	/* 32 x 1 MiB echoes queued before the client reads anything: the server
	 * must stop reading rather than buffer without bound, and finish all. */
	struct done_rec rec = {0};
	struct tag t[32];
	Ttrpc__Bench__V1__EchoPayload in = TTRPC__BENCH__V1__ECHO_PAYLOAD__INIT;
	in.value.len = 1 << 20;
	in.value.data = calloc(1, in.value.len);
	for (int i = 0; i < 32; i++) {
		t[i] = (struct tag){&rec, i};
		cr_assert(ttrpc_client_call_async(cl, SVC, "Echo", &in.base,
						  &ttrpc__bench__v1__echo_payload__descriptor,
						  NULL, record, &t[i]) > 0);
	}
	usleep(200 * 1000);
	pump_until(&rec.n, 32);
	for (int i = 0; i < 32; i++)
		cr_assert_eq(rec.codes[i], TTRPC_OK);
	free(in.value.data);
}

static int stream_msgs;
static size_t stream_bytes;

static void on_stream_msg(ProtobufCMessage *m, void *ud)
{
	stream_msgs++;
	stream_bytes += ((Ttrpc__Bench__V1__EchoPayload *)m)->value.len;
	protobuf_c_message_free_unpacked(m, NULL);
}

Test(client, server_stream)
{
	Ttrpc__Bench__V1__StreamRequest r = TTRPC__BENCH__V1__STREAM_REQUEST__INIT;
	r.count = 5;
	r.size = 1000;
	struct done_rec rec = {0};
	struct tag t = {&rec, 0};
	stream_msgs = 0;
	stream_bytes = 0;
	cr_assert_eq(ttrpc_client_stream(cl, SVC, "Stream", &r.base,
					 &ttrpc__bench__v1__echo_payload__descriptor, 0, NULL,
					 on_stream_msg, record, &t, NULL),
		     0);
	pump_until(&rec.n, 1);
	cr_assert_eq(rec.codes[0], TTRPC_OK);
	cr_assert_eq(stream_msgs, 5);
	cr_assert_eq(stream_bytes, 5000);
}

static char sum_result[32];

static void on_sum_done(const struct ttrpc_status *st, ProtobufCMessage *reply, void *ud)
{
	int *done = ud;
	cr_assert_eq(st->code, TTRPC_OK, "%s", st->message);
	Ttrpc__Bench__V1__EchoPayload *p = (void *)reply;
	snprintf(sum_result, sizeof(sum_result), "%.*s", (int)p->value.len, p->value.data);
	protobuf_c_message_free_unpacked(reply, NULL);
	(*done)++;
}

Test(client, client_stream)
{
	Ttrpc__Bench__V1__EchoPayload p = TTRPC__BENCH__V1__ECHO_PAYLOAD__INIT;
	p.value.data = (uint8_t *)"0123456789";
	p.value.len = 10;
	struct ttrpc_stream *s;
	int done = 0;
	cr_assert_eq(ttrpc_client_stream(cl, SVC, "Sum", &p.base,
					 &ttrpc__bench__v1__echo_payload__descriptor,
					 TTRPC_STREAM_SEND, NULL, NULL, on_sum_done, &done, &s),
		     0);
	p.value.len = 3;
	cr_assert_eq(ttrpc_stream_send(s, &p.base, false), 0);
	p.value.len = 7;
	cr_assert_eq(ttrpc_stream_send(s, &p.base, false), 0);
	cr_assert_eq(ttrpc_stream_send(s, NULL, true), 0);
	cr_assert_eq(ttrpc_stream_send(s, &p.base, false), -EPIPE, "no data after close");
	pump_until(&done, 1);
	cr_assert_str_eq(sum_result, "20");
}

Test(client, server_gone_mid_call)
{
	struct done_rec rec = {0};
	struct tag t = {&rec, 0};
	Ttrpc__Bench__V1__SleepRequest s = TTRPC__BENCH__V1__SLEEP_REQUEST__INIT;
	s.millis = 10000;
	cr_assert(ttrpc_client_call_async(cl, SVC, "Sleep", &s.base,
					  &google__protobuf__empty__descriptor, NULL, record,
					  &t) > 0);
	usleep(100 * 1000);
	ts_stop(&ts); /* server closes every connection */
	pump_until(&rec.n, 1);
	cr_assert_eq(rec.codes[0], TTRPC_UNAVAILABLE);
	cr_assert(ttrpc_client_closed(cl));
	struct ttrpc_status st;
	cr_assert_eq(echo(1, &st), -EPIPE);
	ts_start(&ts); /* for teardown */
}

Test(client, free_with_pending_calls_cancels_them)
{
	struct done_rec rec = {0};
	struct tag t = {&rec, 0};
	Ttrpc__Bench__V1__SleepRequest s = TTRPC__BENCH__V1__SLEEP_REQUEST__INIT;
	s.millis = 10000;
	cr_assert(ttrpc_client_call_async(cl, SVC, "Sleep", &s.base,
					  &google__protobuf__empty__descriptor, NULL, record,
					  &t) > 0);
	ttrpc_client_free(cl);
	cl = NULL;
	cr_assert_eq(rec.n, 1);
	cr_assert_eq(rec.codes[0], TTRPC_CANCELLED);
}

/* ---- against a raw fake server ---- */

static int fake_pair(int *srv_end)
{
	int sv[2];
	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	*srv_end = sv[1];
	return sv[0];
}

static void read_request(int fd, struct ttrpc_frame_hdr *h)
{
	uint8_t hb[TTRPC_HEADER_LEN];
	cr_assert_eq(read(fd, hb, sizeof(hb)), sizeof(hb));
	ttrpc_frame_hdr_decode(hb, h);
	uint8_t *b = malloc(h->length + 1);
	size_t got = 0;
	while (got < h->length) {
		ssize_t r = read(fd, b + got, h->length - got);
		cr_assert(r > 0);
		got += (size_t)r;
	}
	free(b);
}

Test(client, peer_death_mid_reply)
{
	int fs;
	struct ttrpc_client *c = ttrpc_client_new(fake_pair(&fs));
	struct done_rec rec = {0};
	struct tag t = {&rec, 0};
	Google__Protobuf__Empty e = GOOGLE__PROTOBUF__EMPTY__INIT;
	cr_assert(ttrpc_client_call_async(c, SVC, "Metadata", &e.base,
					  &ttrpc__bench__v1__metadata_reply__descriptor, NULL,
					  record, &t) > 0);
	struct ttrpc_frame_hdr h;
	read_request(fs, &h);
	cr_assert_eq(h.stream_id, 1);
	const uint8_t partial[] = {0, 0, 0, 20, 0, 0, 0, 1, 2, 0, 0x12, 0x05};
	cr_assert_eq(write(fs, partial, sizeof(partial)), (ssize_t)sizeof(partial));
	close(fs);
	int64_t end = ttrpc_now_ns() + 5000000000LL;
	while (rec.n < 1 && ttrpc_now_ns() < end) {
		struct pollfd p = {.fd = ttrpc_client_fd(c), .events = POLLIN};
		poll(&p, 1, 100);
		ttrpc_client_dispatch(c);
	}
	cr_assert_eq(rec.n, 1);
	cr_assert_eq(rec.codes[0], TTRPC_UNAVAILABLE);
	ttrpc_client_free(c);
}

Test(client, oversized_reply_refused_connection_kept)
{
	int fs;
	struct ttrpc_client *c = ttrpc_client_new(fake_pair(&fs));
	fcntl(fs, F_SETFL, O_NONBLOCK);
	struct done_rec rec = {0};
	struct tag t[2] = {{&rec, 0}, {&rec, 1}};
	Google__Protobuf__Empty e = GOOGLE__PROTOBUF__EMPTY__INIT;
	ttrpc_client_call_async(c, SVC, "Sleep", &e.base, &google__protobuf__empty__descriptor,
				NULL, record, &t[0]);
	ttrpc_client_call_async(c, SVC, "Sleep", &e.base, &google__protobuf__empty__descriptor,
				NULL, record, &t[1]);
	/* reply to id 1 with 4 MiB + 1 of body, then a proper empty reply to id 3 */
	size_t big = TTRPC_MAX_DATA + 1;
	uint8_t *buf = calloc(1, TTRPC_HEADER_LEN * 2 + big);
	struct ttrpc_frame_hdr h1 = {.length = (uint32_t)big, .stream_id = 1, .type = 2};
	struct ttrpc_frame_hdr h2 = {.length = 0, .stream_id = 3, .type = 2};
	ttrpc_frame_hdr_encode(buf, &h1);
	ttrpc_frame_hdr_encode(buf + TTRPC_HEADER_LEN + big, &h2);
	size_t total = TTRPC_HEADER_LEN * 2 + big, off = 0;
	int64_t end = ttrpc_now_ns() + 10000000000LL;
	while ((off < total || rec.n < 2) && ttrpc_now_ns() < end) {
		if (off < total) {
			ssize_t w = write(fs, buf + off, total - off);
			if (w > 0)
				off += (size_t)w;
		}
		uint8_t sink[4096];
		while (read(fs, sink, sizeof(sink)) > 0)
			; /* the requests */
		struct pollfd p = {.fd = ttrpc_client_fd(c), .events = POLLIN};
		poll(&p, 1, 10);
		ttrpc_client_dispatch(c);
	}
	cr_assert_eq(rec.n, 2);
	cr_assert_eq(rec.codes[0], TTRPC_RESOURCE_EXHAUSTED);
	cr_assert_eq(rec.codes[1], TTRPC_OK);
	cr_assert(!ttrpc_client_closed(c));
	free(buf);
	close(fs);
	ttrpc_client_free(c);
}

Test(client, client_stream_method_called_without_data)
{
	/* Request with remote-closed: the handler's data callback hears "closed"
	 * at once and answers from the request alone. */
	Ttrpc__Bench__V1__EchoPayload p = TTRPC__BENCH__V1__ECHO_PAYLOAD__INIT;
	p.value.data = (uint8_t *)"abcd";
	p.value.len = 4;
	int done = 0;
	cr_assert_eq(ttrpc_client_stream(cl, SVC, "Sum", &p.base,
					 &ttrpc__bench__v1__echo_payload__descriptor, 0, NULL, NULL,
					 on_sum_done, &done, NULL),
		     0);
	pump_until(&done, 1);
	cr_assert_str_eq(sum_result, "4");
}
