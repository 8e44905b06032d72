/* Server contract, byte level: what our server answers to every kind of frame,
 * checked against the bytes ttrpc 1.1.1 (Go) sends for the same input (probed
 * with test/interop's gopeer). Our own bounds, which Go does not have (metadata
 * pairs and bytes, calls in flight), answer with texts of ours. The client side
 * of each test is a raw socket. */
#include "testsrv.h"

#include <criterion/criterion.h>
#include <fcntl.h>
#include <malloc.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>

#include "ttrpc/ttrpc.pb-c.h"
#include "google/rpc/status.pb-c.h"

static struct testsrv ts;
static int peer = -1; /* raw client end */
static char peer_dir[64], peer_path[108]; /* peer_with_other_uid_refused's socket */

static void setup(void)
{
	signal(SIGPIPE, SIG_IGN);
	ts_init(&ts);
	int sv[2];
	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	cr_assert_eq(ttrpc_server_add_conn(ts.srv, sv[0]), 0);
	peer = sv[1];
	fcntl(peer, F_SETFL, O_NONBLOCK);
}

static void teardown(void)
{
	if (peer >= 0)
		close(peer);
	peer = -1;
	ts_stop(&ts);
	if (peer_path[0])
		unlink(peer_path);
	if (peer_dir[0])
		rmdir(peer_dir);
	peer_path[0] = peer_dir[0] = '\0';
}

TestSuite(server, .init = setup, .fini = teardown, .timeout = 30);

static void send_bytes(const void *p, size_t n)
{
	const uint8_t *b = p;
	while (n) {
		ssize_t w = write(peer, b, n);
		if (w < 0 && errno == EAGAIN) {
			ts_step(&ts, 10);
			continue;
		}
		cr_assert(w > 0, "write: %s", strerror(errno));
		b += w;
		n -= (size_t)w;
		ts_step(&ts, 0);
	}
}

static void send_frame(uint32_t id, uint8_t type, uint8_t flags, const void *data, size_t len)
{
	uint8_t h[TTRPC_HEADER_LEN];
	struct ttrpc_frame_hdr hdr = {
		.length = (uint32_t)len, .stream_id = id, .type = type, .flags = flags};
	ttrpc_frame_hdr_encode(h, &hdr);
	send_bytes(h, sizeof(h));
	if (len)
		send_bytes(data, len);
}

/* Reads exactly n bytes from the peer while serving; false on EOF. */
static bool recv_exact(void *p, size_t n, int timeout_ms)
{
	uint8_t *b = p;
	int64_t end = ttrpc_now_ns() + (int64_t)timeout_ms * 1000000;
	fcntl(peer, F_SETFL, O_NONBLOCK);
	while (n) {
		ssize_t r = read(peer, b, n);
		if (r == 0)
			return false;
		if (r > 0) {
			b += r;
			n -= (size_t)r;
			continue;
		}
		cr_assert(errno == EAGAIN, "read: %s", strerror(errno));
		cr_assert(ttrpc_now_ns() < end, "no reply in time");
		ts_step(&ts, 5);
	}
	return true;
}

/* Reads one frame; returns its body (caller frees). */
static uint8_t *recv_frame(struct ttrpc_frame_hdr *h)
{
	uint8_t hb[TTRPC_HEADER_LEN];
	cr_assert(recv_exact(hb, sizeof(hb), 5000), "connection closed");
	ttrpc_frame_hdr_decode(hb, h);
	uint8_t *body = malloc(h->length + 1);
	cr_assert(recv_exact(body, h->length, 5000));
	return body;
}

static void expect_status(uint32_t id, int code, const char *msg)
{
	struct ttrpc_frame_hdr h;
	uint8_t *body = recv_frame(&h);
	cr_assert_eq(h.stream_id, id);
	cr_assert_eq(h.type, TTRPC_TYPE_RESPONSE);
	cr_assert_eq(h.flags, 0);
	/* Response{status{code, message}} */
	cr_assert(h.length >= 2 && body[0] == 0x0a, "no status in reply");
	Google__Rpc__Status *st = google__rpc__status__unpack(NULL, body[1], body + 2);
	cr_assert_not_null(st);
	cr_assert_eq(st->code, code, "code %d (%s)", st->code, st->message);
	cr_assert_str_eq(st->message, msg);
	google__rpc__status__free_unpacked(st, NULL);
	free(body);
}

static const uint8_t echo_hi[] = {
	0x0a, 0x14, 't', 't', 'r', 'p', 'c', '.', 'b', 'e', 'n', 'c', 'h', '.', 'v', '1', '.',
	'B',  'e',  'n', 'c', 'h', 0x12, 0x04, 'E', 'c', 'h', 'o', 0x1a, 0x04, 0x0a, 0x02, 'h', 'i'};

static void expect_echo_hi(uint32_t id)
{
	struct ttrpc_frame_hdr h;
	uint8_t *body = recv_frame(&h);
	const uint8_t want[] = {0x12, 0x04, 0x0a, 0x02, 'h', 'i'};
	cr_assert_eq(h.stream_id, id);
	cr_assert_eq(h.type, TTRPC_TYPE_RESPONSE);
	cr_assert_eq(h.length, sizeof(want));
	cr_assert(memcmp(body, want, sizeof(want)) == 0);
	free(body);
}

/* Builds a Request envelope with protobuf-c (independent of our encoder). */
static size_t build_request(uint8_t *out, const char *svc, const char *method,
			    const ProtobufCMessage *payload, int64_t timeout)
{
	Ttrpc__Request r = TTRPC__REQUEST__INIT;
	uint8_t pbuf[4096];
	r.service = (char *)svc;
	r.method = (char *)method;
	if (payload) {
		r.payload.len = protobuf_c_message_pack(payload, pbuf);
		r.payload.data = pbuf;
	}
	r.timeout_nano = timeout;
	return ttrpc__request__pack(&r, out);
}

static void send_sleep(uint32_t id, int64_t millis, int64_t timeout)
{
	Ttrpc__Bench__V1__SleepRequest s = TTRPC__BENCH__V1__SLEEP_REQUEST__INIT;
	s.millis = millis;
	uint8_t buf[256];
	size_t n = build_request(buf, "ttrpc.bench.v1.Bench", "Sleep", &s.base, timeout);
	send_frame(id, TTRPC_TYPE_REQUEST, 0, buf, n);
}

Test(server, echo_bytes_match_go)
{
	send_frame(1, TTRPC_TYPE_REQUEST, 0, echo_hi, sizeof(echo_hi));
	expect_echo_hi(1);
}

Test(server, empty_success_is_a_zero_length_frame)
{
	send_sleep(1, 0, 0);
	uint8_t hb[TTRPC_HEADER_LEN];
	cr_assert(recv_exact(hb, sizeof(hb), 5000));
	const uint8_t want[] = {0, 0, 0, 0, 0, 0, 0, 1, 2, 0};
	cr_assert(memcmp(hb, want, sizeof(want)) == 0);
}

Test(server, error_bytes_match_go)
{
	Ttrpc__Bench__V1__FailRequest f = TTRPC__BENCH__V1__FAIL_REQUEST__INIT;
	f.code = 5;
	f.message = "nope";
	uint8_t buf[256];
	size_t n = build_request(buf, "ttrpc.bench.v1.Bench", "Fail", &f.base, 0);
	send_frame(1, TTRPC_TYPE_REQUEST, 0, buf, n);
	uint8_t got[20];
	cr_assert(recv_exact(got, 20, 5000));
	const uint8_t want[] = {0, 0, 0, 0x0a, 0, 0, 0, 1, 2, 0, 0x0a, 0x08,
				0x08, 0x05, 0x12, 0x04, 'n', 'o', 'p', 'e'};
	cr_assert(memcmp(got, want, sizeof(want)) == 0);
}

Test(server, unknown_service_and_method)
{
	uint8_t buf[256];
	size_t n = build_request(buf, "no.Such", "Echo", NULL, 0);
	send_frame(1, TTRPC_TYPE_REQUEST, 0, buf, n);
	expect_status(1, TTRPC_UNIMPLEMENTED, "service no.Such");
	n = build_request(buf, "ttrpc.bench.v1.Bench", "Nope", NULL, 0);
	send_frame(3, TTRPC_TYPE_REQUEST, 0, buf, n);
	expect_status(3, TTRPC_UNIMPLEMENTED, "method Nope");
	send_frame(5, TTRPC_TYPE_REQUEST, 0, "", 0); /* empty request: service "" */
	expect_status(5, TTRPC_UNIMPLEMENTED, "service ");
}

Test(server, even_stream_ids_refused_connection_kept)
{
	send_frame(2, TTRPC_TYPE_REQUEST, 0, echo_hi, sizeof(echo_hi));
	expect_status(2, TTRPC_INVALID_ARGUMENT, "StreamID must be odd for client initiated streams");
	send_frame(0, TTRPC_TYPE_REQUEST, 0, echo_hi, sizeof(echo_hi));
	expect_status(0, TTRPC_INVALID_ARGUMENT, "StreamID must be odd for client initiated streams");
	send_frame(7, TTRPC_TYPE_REQUEST, 0, echo_hi, sizeof(echo_hi));
	expect_echo_hi(7);
}

/* The texts below are Go ttrpc 1.1.1's (gogo/protobuf's decoder), as probed
 * with test/interop's gopeer. */
Test(server, garbage_request_and_payload)
{
	const uint8_t garbage[] = {0x0a, 0x50, 'x'}; /* length runs past the end */
	send_frame(1, TTRPC_TYPE_REQUEST, 0, garbage, sizeof(garbage));
	expect_status(1, TTRPC_INVALID_ARGUMENT, "unmarshal request error: unexpected EOF");
	Ttrpc__Request r = TTRPC__REQUEST__INIT;
	uint8_t bad_payload[] = {0x0a, 0x7f, 1}, buf[128];
	r.service = "ttrpc.bench.v1.Bench";
	r.method = "Echo";
	r.payload.data = bad_payload;
	r.payload.len = sizeof(bad_payload);
	size_t n = ttrpc__request__pack(&r, buf);
	send_frame(3, TTRPC_TYPE_REQUEST, 0, buf, n);
	/* ttrpc's prefix, then what gogo-generated decoders (containerd's API, and
	 * gopeer's hand-written one) say of a truncated message */
	expect_status(3, TTRPC_INTERNAL, "ttrpc: error unmarshalling payload: unexpected EOF");
	send_frame(5, TTRPC_TYPE_REQUEST, 0, echo_hi, sizeof(echo_hi));
	expect_echo_hi(5);
}

Test(server, malformed_envelopes_answered_as_go)
{
	const uint8_t wt7[] = {0x0f}, wt4[] = {0x0c}, tag0[] = {0x00, 0x01};
	send_frame(1, TTRPC_TYPE_REQUEST, 0, wt7, sizeof(wt7));
	expect_status(1, TTRPC_INVALID_ARGUMENT,
		      "unmarshal request error: proto: can't skip unknown wire type 7");
	send_frame(3, TTRPC_TYPE_REQUEST, 0, wt4, sizeof(wt4));
	expect_status(3, TTRPC_INVALID_ARGUMENT,
		      "unmarshal request error: proto: can't skip unknown wire type 4");
	send_frame(5, TTRPC_TYPE_REQUEST, 0, tag0, sizeof(tag0));
	expect_status(5, TTRPC_INVALID_ARGUMENT,
		      "unmarshal request error: proto: ttrpc.Request: illegal tag 0 (wire type 0)");
	/* a known field with the wrong wire type is skipped as unknown, as gogo does */
	uint8_t buf[128] = {0x08, 0x05};
	size_t n = 2 + build_request(buf + 2, "ttrpc.bench.v1.Bench", "Nope", NULL, 0);
	send_frame(7, TTRPC_TYPE_REQUEST, 0, buf, n);
	expect_status(7, TTRPC_UNIMPLEMENTED, "method Nope");
}

Test(server, invalid_utf8_refused)
{
	uint8_t buf[128];
	size_t n = build_request(buf, "ttrpc.bench.v1.\xff", "Echo", NULL, 0);
	send_frame(1, TTRPC_TYPE_REQUEST, 0, buf, n);
	expect_status(1, TTRPC_INVALID_ARGUMENT,
		      "unmarshal request error: proto: field \".service\" contains invalid UTF-8");
	/* in metadata: the KeyValue's own field name */
	Ttrpc__Request r = TTRPC__REQUEST__INIT;
	Ttrpc__KeyValue kv = TTRPC__KEY_VALUE__INIT, *pkv = &kv;
	r.service = "ttrpc.bench.v1.Bench";
	r.method = "Echo";
	kv.key = "k";
	kv.value = "v\xff";
	r.n_metadata = 1;
	r.metadata = &pkv;
	n = ttrpc__request__pack(&r, buf);
	send_frame(3, TTRPC_TYPE_REQUEST, 0, buf, n);
	expect_status(3, TTRPC_INVALID_ARGUMENT,
		      "unmarshal request error: proto: field \".value\" contains invalid UTF-8");
}

static long vm_hwm_kib(void)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	long v = -1;
	while (f && fgets(line, sizeof(line), f))
		if (sscanf(line, "VmHWM: %ld kB", &v) == 1)
			break;
	if (f)
		fclose(f);
	return v;
}

/* reliability review §9: 4 MiB of empty metadata entries (2M pairs) used to be
 * unpacked in full before the 64-pair check: 186 MB of heap for one request. */
Test(server, metadata_flood_refused_before_allocating)
{
	size_t n = TTRPC_MAX_DATA;
	uint8_t *buf = malloc(n);
	for (size_t i = 0; i < n; i += 2) {
		buf[i] = 0x2a; /* field 5, length-delimited */
		buf[i + 1] = 0x00;
	}
	int fd = open("/proc/self/clear_refs", O_WRONLY);
	cr_assert(fd >= 0 && write(fd, "5", 1) == 1, "reset VmHWM");
	close(fd);
	long before = vm_hwm_kib();
	send_frame(1, TTRPC_TYPE_REQUEST, 0, buf, n);
	expect_status(1, TTRPC_INVALID_ARGUMENT,
		      "ttrpc: 2097152 metadata pairs exceed the limit of 64");
	long grew = vm_hwm_kib() - before;
	cr_log_info("VmHWM grew by %ld KiB", grew);
	cr_assert_lt(grew, 12 << 10, "peak RSS grew by %ld KiB for one request", grew);
	free(buf);
	/* bytes too: one 20 KiB value is over TTRPC_METADATA_MAX_BYTES */
	Ttrpc__Request r = TTRPC__REQUEST__INIT;
	Ttrpc__KeyValue kv = TTRPC__KEY_VALUE__INIT, *pkv = &kv;
	char *big = malloc(20 << 10);
	memset(big, 'a', 20 << 10);
	big[(20 << 10) - 1] = '\0';
	r.service = "ttrpc.bench.v1.Bench";
	r.method = "Echo";
	kv.key = "k";
	kv.value = big;
	r.n_metadata = 1;
	r.metadata = &pkv;
	uint8_t *b2 = malloc(32 << 10);
	n = ttrpc__request__pack(&r, b2);
	send_frame(3, TTRPC_TYPE_REQUEST, 0, b2, n);
	expect_status(3, TTRPC_INVALID_ARGUMENT,
		      "ttrpc: 20480 bytes of metadata exceed the limit of 16384");
	free(b2);
	free(big);
	send_frame(5, TTRPC_TYPE_REQUEST, 0, echo_hi, sizeof(echo_hi));
	expect_echo_hi(5);
}

/* reliability review §5: calls a handler parks (the shim's Wait) must not use
 * up the in-flight cap, or abandoned Waits lock every other call out. */
Test(server, parked_calls_do_not_count_toward_the_cap)
{
	ts.park_sleeps = true;
	for (uint32_t i = 0; i < TTRPC_CONN_MAX_INFLIGHT + 100; i++)
		send_sleep(2 * i + 1, 600000, 0);
	send_frame(1000001, TTRPC_TYPE_REQUEST, 0, echo_hi, sizeof(echo_hi));
	expect_echo_hi(1000001); /* the first reply on the wire: no refusals before it */
	/* active (unparked) calls are still capped */
	ts.park_sleeps = false;
	for (uint32_t i = 0; i < TTRPC_CONN_MAX_INFLIGHT; i++)
		send_sleep(2000001 + 2 * i, 600000, 0);
	send_sleep(3000001, 600000, 0);
	expect_status(3000001, TTRPC_RESOURCE_EXHAUSTED,
		      "ttrpc: 4096 calls in flight on this connection");
}

/* Parked calls are bounded by the bytes they hold, too: 16 KB of metadata
 * each fills TTRPC_CONN_MAX_PARKED_BYTES after about 2000 of them. */
Test(server, parked_calls_bounded_by_bytes)
{
	ts.park_sleeps = true;
	Ttrpc__Bench__V1__SleepRequest sl = TTRPC__BENCH__V1__SLEEP_REQUEST__INIT;
	uint8_t pbuf[32];
	sl.millis = 600000;
	Ttrpc__Request r = TTRPC__REQUEST__INIT;
	Ttrpc__KeyValue kv = TTRPC__KEY_VALUE__INIT, *pkv = &kv;
	char *v = malloc(16000);
	memset(v, 'v', 15999);
	v[15999] = '\0';
	r.service = "ttrpc.bench.v1.Bench";
	r.method = "Sleep";
	r.payload.len = protobuf_c_message_pack(&sl.base, pbuf);
	r.payload.data = pbuf;
	kv.key = "k";
	kv.value = v;
	r.n_metadata = 1;
	r.metadata = &pkv;
	uint8_t *buf = malloc(ttrpc__request__get_packed_size(&r));
	size_t n = ttrpc__request__pack(&r, buf);
	uint32_t id;
	struct ttrpc_frame_hdr h;
	uint8_t hb[TTRPC_HEADER_LEN];
	for (id = 1; id < 2 * 3000; id += 2) {
		send_frame(id, TTRPC_TYPE_REQUEST, 0, buf, n);
		if (read(peer, hb, sizeof(hb)) == (ssize_t)sizeof(hb))
			break; /* the first reply: the first call refused */
	}
	ttrpc_frame_hdr_decode(hb, &h);
	cr_log_info("parked %u calls of %zu bytes before the first refusal", h.stream_id / 2, n);
	cr_assert_eq(h.stream_id, id);
	cr_assert_gt(id / 2, 1900);
	cr_assert_lt(id / 2, 2100);
	uint8_t *body = malloc(h.length);
	cr_assert(recv_exact(body, h.length, 5000));
	free(body);
	send_frame(id + 2, TTRPC_TYPE_REQUEST, 0, echo_hi, sizeof(echo_hi));
	expect_echo_hi(id + 2);
	free(buf);
	free(v);
}

Test(server, unknown_types_and_stray_frames_ignored)
{
	send_frame(1, 9, 0, "zz", 2);
	send_frame(1, TTRPC_TYPE_RESPONSE, 0, "", 0);
	send_frame(3, TTRPC_TYPE_DATA, TTRPC_FLAG_REMOTE_CLOSED, "q", 1);
	send_frame(5, TTRPC_TYPE_REQUEST, TTRPC_FLAG_NO_DATA, echo_hi, sizeof(echo_hi));
	/* flags on a Request to a unary handler are tolerated (1.1.1 ignores them) */
	expect_echo_hi(5);
}

Test(server, oversized_frame_discarded_then_resource_exhausted)
{
	uint32_t len = TTRPC_MAX_DATA + 10;
	uint8_t *big = calloc(1, len);
	send_frame(9, TTRPC_TYPE_REQUEST, 0, big, len);
	free(big);
	expect_status(9, TTRPC_RESOURCE_EXHAUSTED,
		      "message length 4194314 exceed maximum message size of 4194304");
	send_frame(11, TTRPC_TYPE_REQUEST, 0, echo_hi, sizeof(echo_hi));
	expect_echo_hi(11);
}

Test(server, exactly_max_size_request_served)
{
	/* An Echo request whose envelope is exactly 4194304 bytes. */
	size_t total = TTRPC_MAX_DATA, plen;
	Ttrpc__Bench__V1__EchoPayload e = TTRPC__BENCH__V1__ECHO_PAYLOAD__INIT;
	Ttrpc__Request r = TTRPC__REQUEST__INIT;
	r.service = "ttrpc.bench.v1.Bench";
	r.method = "Echo";
	e.value.len = total - 64;
	for (;;) { /* grow the payload until the envelope is exactly the maximum */
		r.payload.len = protobuf_c_message_get_packed_size(&e.base);
		size_t n = ttrpc__request__get_packed_size(&r);
		if (n == total)
			break;
		cr_assert(n < total);
		e.value.len += total - n > 8 ? total - n - 4 : 1;
	}
	e.value.data = calloc(1, e.value.len);
	uint8_t *inner = malloc(e.value.len + 16);
	plen = protobuf_c_message_pack(&e.base, inner);
	r.payload.data = inner;
	uint8_t *buf = malloc(total + 64);
	size_t n = ttrpc__request__pack(&r, buf);
	cr_assert_eq(n, TTRPC_MAX_DATA);
	send_frame(1, TTRPC_TYPE_REQUEST, 0, buf, n);
	struct ttrpc_frame_hdr h;
	uint8_t *body = recv_frame(&h);
	cr_assert_eq(h.stream_id, 1);
	cr_assert_eq(h.length, 1 + 4 + plen); /* tag, 4-byte varint, payload */
	free(body);
	free(buf);
	free(inner);
	free(e.value.data);
}

Test(server, never_sends_a_reply_over_4mib)
{
	Ttrpc__Bench__V1__EchoPayload e = TTRPC__BENCH__V1__ECHO_PAYLOAD__INIT;
	e.value.data = (uint8_t *)BIG_REPLY_MARKER;
	e.value.len = strlen(BIG_REPLY_MARKER);
	uint8_t buf[256];
	size_t n = build_request(buf, "ttrpc.bench.v1.Bench", "Echo", &e.base, 0);
	send_frame(1, TTRPC_TYPE_REQUEST, 0, buf, n);
	expect_status(1, TTRPC_RESOURCE_EXHAUSTED,
		      "message length 4194310 exceed maximum message size of 4194304");
}

Test(server, replies_in_completion_order)
{
	send_sleep(1, 200, 0);
	send_frame(3, TTRPC_TYPE_REQUEST, 0, echo_hi, sizeof(echo_hi));
	expect_echo_hi(3);
	struct ttrpc_frame_hdr h;
	free(recv_frame(&h));
	cr_assert_eq(h.stream_id, 1);
	cr_assert_eq(h.length, 0);
}

Test(server, timeout_nano_deadline)
{
	send_sleep(1, 5000, 50 * 1000000LL);
	expect_status(1, TTRPC_DEADLINE_EXCEEDED, "context deadline exceeded");
	send_sleep(3, 5000, -1); /* already expired */
	expect_status(3, TTRPC_DEADLINE_EXCEEDED, "context deadline exceeded");
	/* a handler that answers at once wins over an expired deadline, as in Go */
	Ttrpc__Bench__V1__EchoPayload e = TTRPC__BENCH__V1__ECHO_PAYLOAD__INIT;
	uint8_t buf[128];
	size_t n = build_request(buf, "ttrpc.bench.v1.Bench", "Echo", &e.base, -1);
	send_frame(5, TTRPC_TYPE_REQUEST, 0, buf, n);
	struct ttrpc_frame_hdr h;
	free(recv_frame(&h));
	cr_assert_eq(h.stream_id, 5);
	cr_assert_eq(h.length, 0);
	cr_assert_null(ts.sleepers, "cancelled sleepers were finished");
}

Test(server, half_close_still_gets_replies_then_eof)
{
	send_sleep(1, 100, 0);
	send_frame(3, TTRPC_TYPE_REQUEST, 0, echo_hi, sizeof(echo_hi));
	shutdown(peer, SHUT_WR);
	expect_echo_hi(3);
	struct ttrpc_frame_hdr h;
	free(recv_frame(&h));
	cr_assert_eq(h.stream_id, 1);
	uint8_t b;
	cr_assert(!recv_exact(&b, 1, 5000), "server closes after the last reply");
	cr_assert_eq(ttrpc_server_conn_count(ts.srv), 0);
}

Test(server, peer_death_mid_frame_closes_and_cancels)
{
	send_sleep(1, 10000, 0);
	ts_step(&ts, 20);
	cr_assert_not_null(ts.sleepers);
	send_bytes(echo_hi, 5); /* a header fragment */
	close(peer);
	peer = -1;
	for (int i = 0; i < 100 && ttrpc_server_conn_count(ts.srv); i++)
		ts_step(&ts, 10);
	cr_assert_eq(ttrpc_server_conn_count(ts.srv), 0);
	cr_assert_null(ts.sleepers, "the in-flight call was cancelled");
}

Test(server, graceful_shutdown_finishes_inflight)
{
	send_sleep(1, 100, 0);
	ts_step(&ts, 10);
	ttrpc_server_shutdown(ts.srv);
	struct ttrpc_frame_hdr h;
	free(recv_frame(&h));
	cr_assert_eq(h.stream_id, 1);
	cr_assert_eq(h.length, 0);
	uint8_t b;
	cr_assert(!recv_exact(&b, 1, 5000));
	cr_assert(ttrpc_server_drained(ts.srv));
}

Test(server, pipelined_many)
{
	for (uint32_t i = 0; i < 200; i++)
		send_frame(2 * i + 1, TTRPC_TYPE_REQUEST, 0, echo_hi, sizeof(echo_hi));
	for (uint32_t i = 0; i < 200; i++)
		expect_echo_hi(2 * i + 1);
}

Test(server, peer_with_other_uid_refused)
{
	snprintf(peer_dir, sizeof(peer_dir), "/tmp/nanoshim-peer-XXXXXX");
	cr_assert_not_null(mkdtemp(peer_dir));
	char *dir = peer_dir, *path = peer_path;
	chmod(dir, 0755);
	snprintf(path, sizeof(peer_path), "%s/s.sock", dir);
	cr_assert_eq(ttrpc_server_listen(ts.srv, path), 0);
	chmod(path, 0666);
	int pfd[2];
	cr_assert_eq(pipe(pfd), 0);
	pid_t pid = fork();
	if (pid == 0) {
		if (setgid(65534) || setuid(65534))
			_exit(3);
		int fd = socket(AF_UNIX, SOCK_STREAM, 0);
		struct sockaddr_un sa;
		int len = ttrpc_sockaddr(path, &sa);
		if (connect(fd, (struct sockaddr *)&sa, (socklen_t)len) < 0)
			_exit(4);
		uint8_t h[TTRPC_HEADER_LEN];
		struct ttrpc_frame_hdr hdr = {.length = sizeof(echo_hi), .stream_id = 1, .type = 1};
		ttrpc_frame_hdr_encode(h, &hdr);
		if (write(pfd[1], "c", 1) != 1)
			_exit(6);
		/* the server closes without a byte: read sees EOF (or a reset) */
		(void)!write(fd, h, sizeof(h));
		(void)!write(fd, echo_hi, sizeof(echo_hi));
		uint8_t b;
		ssize_t r = read(fd, &b, 1);
		_exit(r <= 0 ? 0 : 7);
	}
	close(pfd[1]);
	int status = 0;
	bool reaped = false;
	for (int i = 0; i < 500 && !reaped; i++) {
		ts_step(&ts, 10);
		reaped = waitpid(pid, &status, WNOHANG) == pid;
	}
	if (!reaped) { /* a server that keeps the foreign peer open: end the child first */
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
	}
	cr_assert(reaped, "the foreign peer's read never ended: the server kept its connection");
	cr_assert(WIFEXITED(status));
	cr_assert_eq(WEXITSTATUS(status), 0, "child status %d", WEXITSTATUS(status));
	cr_assert_eq(ts.calls_seen, 0);
	close(pfd[0]);
}

Test(server, a_request_waiting_at_accept_is_answered_by_that_dispatch)
{
	/* a client that connects and calls at once (nanoshimd recovering, or
	 * containerd): one dispatch accepts and answers, no second trip
	 * through epoll (and no second wakeup of the shim) */
	snprintf(peer_dir, sizeof(peer_dir), "/tmp/nanoshim-accept-XXXXXX");
	cr_assert_not_null(mkdtemp(peer_dir));
	snprintf(peer_path, sizeof(peer_path), "%s/s.sock", peer_dir);
	cr_assert_eq(ttrpc_server_listen(ts.srv, peer_path), 0);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_un sa;
	int len = ttrpc_sockaddr(peer_path, &sa);
	cr_assert_eq(connect(fd, (struct sockaddr *)&sa, (socklen_t)len), 0);
	uint8_t h[TTRPC_HEADER_LEN];
	struct ttrpc_frame_hdr hdr = {.length = sizeof(echo_hi), .stream_id = 1, .type = 1};
	ttrpc_frame_hdr_encode(h, &hdr);
	cr_assert_eq(write(fd, h, sizeof(h)), (ssize_t)sizeof(h));
	cr_assert_eq(write(fd, echo_hi, sizeof(echo_hi)), (ssize_t)sizeof(echo_hi));
	struct pollfd p = {.fd = ttrpc_server_fd(ts.srv), .events = POLLIN};
	cr_assert_eq(poll(&p, 1, 1000), 1);
	cr_assert(ttrpc_server_dispatch(ts.srv) > 0);
	p = (struct pollfd){.fd = fd, .events = POLLIN};
	cr_assert_eq(poll(&p, 1, 0), 1, "no reply after the dispatch that accepted");
	/* the reply is Echo's, on stream 1 */
	uint8_t rh[TTRPC_HEADER_LEN];
	cr_assert_eq(read(fd, rh, sizeof(rh)), (ssize_t)sizeof(rh));
	struct ttrpc_frame_hdr got;
	ttrpc_frame_hdr_decode(rh, &got);
	cr_assert_eq(got.stream_id, 1);
	cr_assert_eq(got.type, TTRPC_TYPE_RESPONSE);
	cr_assert_eq(ts.calls_seen, 1);
	close(fd);
}

static long proc_cpu_ticks(pid_t pid)
{
	char path[64], buf[1024];
	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	FILE *f = fopen(path, "r");
	cr_assert_not_null(f);
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	const char *p = strrchr(buf, ')');
	long ut = 0, st = 0;
	/* after "pid (comm)": state is field 3; utime and stime are 14 and 15 */
	cr_assert(p && sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %ld %ld", &ut,
			      &st) == 2);
	return ut + st;
}

/* reliability review §6: out of fds, accept(2) fails with EMFILE while the
 * listener stays readable; the server spun at 100% CPU until peers left. */
Test(server, out_of_fds_backs_off_then_serves_again)
{
	snprintf(peer_dir, sizeof(peer_dir), "/tmp/nanoshim-emfile-XXXXXX");
	cr_assert_not_null(mkdtemp(peer_dir));
	snprintf(peer_path, sizeof(peer_path), "%s/s.sock", peer_dir);
	int alive[2]; /* the child serves until this test process goes away */
	cr_assert_eq(pipe2(alive, O_CLOEXEC), 0);
	pid_t pid = fork();
	if (pid == 0) {
		close(alive[1]);
		ts_init(&ts); /* a fresh server, alone in this process */
		if (ttrpc_server_listen(ts.srv, peer_path) < 0)
			_exit(3);
		int lowest = dup(0); /* room for 4 connections, no more */
		close(lowest);
		struct rlimit rl;
		getrlimit(RLIMIT_NOFILE, &rl);
		rl.rlim_cur = (rlim_t)lowest + 4;
		if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
			_exit(4);
		int64_t end = ttrpc_now_ns() + 30 * 1000000000LL;
		struct pollfd pf = {.fd = alive[0], .events = POLLIN};
		while (ttrpc_now_ns() < end && poll(&pf, 1, 0) == 0)
			ts_step(&ts, 50);
		_exit(0);
	}
	close(alive[0]);
	struct sockaddr_un sa;
	int len = ttrpc_sockaddr(peer_path, &sa);
	int peers[12];
	for (int i = 0; i < 1000 && access(peer_path, F_OK) < 0; i++)
		usleep(10000);
	for (int i = 0; i < 12; i++) {
		peers[i] = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		cr_assert_eq(connect(peers[i], (struct sockaddr *)&sa, (socklen_t)len), 0);
	}
	usleep(100000);
	long t0 = proc_cpu_ticks(pid);
	usleep(500000);
	long used = proc_cpu_ticks(pid) - t0;
	cr_log_info("server used %ld ticks in 0.5 s while out of fds", used);
	for (int i = 0; i < 12; i++)
		close(peers[i]);
	/* once fds are free again, a new peer is served */
	struct ttrpc_client *c = NULL;
	cr_assert_eq(ttrpc_client_connect(peer_path, &c), 0);
	Ttrpc__Bench__V1__EchoPayload e = TTRPC__BENCH__V1__ECHO_PAYLOAD__INIT;
	e.value.data = (uint8_t *)"hi";
	e.value.len = 2;
	struct ttrpc_call_opts o = {.timeout_ns = 10000000000LL};
	ProtobufCMessage *reply = NULL;
	struct ttrpc_status st;
	int rc = ttrpc_client_call(c, "ttrpc.bench.v1.Bench", "Echo", &e.base,
				   &ttrpc__bench__v1__echo_payload__descriptor, &o, &reply, &st);
	ttrpc_client_free(c);
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	close(alive[1]);
	cr_assert_eq(rc, 0, "echo after fds freed: %s", st.message);
	protobuf_c_message_free_unpacked(reply, NULL);
	cr_assert_leq(used, 5, "server used %ld ticks of 10 ms in 0.5 s while out of fds", used);
}

Test(server, raise_nofile_limit_to_hard)
{
	struct rlimit rl;
	cr_assert_eq(getrlimit(RLIMIT_NOFILE, &rl), 0);
	rlim_t hard = rl.rlim_max;
	rl.rlim_cur = 64;
	cr_assert_eq(setrlimit(RLIMIT_NOFILE, &rl), 0);
	int n = ttrpc_raise_nofile_limit();
	cr_assert_gt(n, 64);
	cr_assert_eq(getrlimit(RLIMIT_NOFILE, &rl), 0);
	cr_assert_eq(rl.rlim_cur, hard);
}

static size_t heap_in_use(void)
{
	struct mallinfo2 mi = mallinfo2();
	return mi.uordblks + mi.hblkhd;
}

/* Large-frame buffers are reused while a connection is busy (no heap regrowth
 * per call) and freed once it has been idle for a sweep period or two. */
Test(server, buffers_kept_while_busy_and_freed_when_idle)
{
	size_t len = 512 << 10;
	Ttrpc__Bench__V1__EchoPayload e = TTRPC__BENCH__V1__ECHO_PAYLOAD__INIT;
	Ttrpc__Request r = TTRPC__REQUEST__INIT;
	e.value.len = len;
	e.value.data = calloc(1, len);
	r.service = "ttrpc.bench.v1.Bench";
	r.method = "Echo";
	r.payload.len = protobuf_c_message_get_packed_size(&e.base);
	r.payload.data = malloc(r.payload.len);
	protobuf_c_message_pack(&e.base, r.payload.data);
	uint8_t *buf = malloc(ttrpc__request__get_packed_size(&r));
	size_t n = ttrpc__request__pack(&r, buf);
	size_t base = heap_in_use();
	if (base == 0)
		cr_skip_test("mallinfo2() sees nothing: a sanitizer's allocator");
	for (uint32_t id = 1; id <= 5; id += 2) {
		send_frame(id, TTRPC_TYPE_REQUEST, 0, buf, n);
		struct ttrpc_frame_hdr h;
		free(recv_frame(&h));
		cr_assert_eq(h.length, 1 + 3 + r.payload.len);
	}
	size_t busy = heap_in_use() - base;
	cr_log_info("held after 3 calls: %zu KiB", busy >> 10);
	cr_assert_geq(busy, 2 * len, "request and reply buffers kept for reuse");
	cr_assert_lt(busy, 3 * len, "and not one per call");
	int64_t end = ttrpc_now_ns() + 3500 * 1000000LL;
	while (ttrpc_now_ns() < end)
		ts_step(&ts, 100);
	ssize_t idle = (ssize_t)heap_in_use() - (ssize_t)base;
	cr_log_info("held when idle: %zd KiB", idle >> 10);
	cr_assert_lt(idle, 32 << 10, "idle connection holds %zd bytes", idle);
	free(buf);
	free(r.payload.data);
	free(e.value.data);
}
