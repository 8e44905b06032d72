/* Frame codec: header round trips, every way a byte stream can be split,
 * large and oversized frames. */
#include "frame.h"

#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

static size_t make_frame(uint8_t *out, uint32_t id, uint8_t type, uint8_t flags,
			 const void *data, uint32_t len)
{
	struct ttrpc_frame_hdr h = {.length = len, .stream_id = id, .type = type, .flags = flags};
	ttrpc_frame_hdr_encode(out, &h);
	memcpy(out + TTRPC_HEADER_LEN, data, len);
	return TTRPC_HEADER_LEN + len;
}

Test(frame, header_round_trip_and_byte_order)
{
	uint8_t b[TTRPC_HEADER_LEN];
	struct ttrpc_frame_hdr h = {.length = 0x01020304, .stream_id = 0xa0b0c0d0, .type = 2,
				    .flags = 5},
			       g;
	ttrpc_frame_hdr_encode(b, &h);
	const uint8_t want[] = {1, 2, 3, 4, 0xa0, 0xb0, 0xc0, 0xd0, 2, 5};
	cr_assert(memcmp(b, want, sizeof(want)) == 0);
	ttrpc_frame_hdr_decode(b, &g);
	cr_assert_eq(g.length, h.length);
	cr_assert_eq(g.stream_id, h.stream_id);
	cr_assert_eq(g.type, 2);
	cr_assert_eq(g.flags, 5);
}

Test(frame, go_example_bytes)
{
	/* "Empty success" response as the Go server writes it */
	const uint8_t wire[] = {0, 0, 0, 0, 0, 0, 0, 1, 2, 0};
	struct ttrpc_reader r;
	ttrpc_reader_init(&r);
	size_t used;
	cr_assert_eq(ttrpc_reader_feed(&r, wire, sizeof(wire), &used), 0);
	struct ttrpc_frame f;
	cr_assert_eq(ttrpc_reader_next(&r, &f), 1);
	cr_assert_eq(f.hdr.length, 0);
	cr_assert_eq(f.hdr.stream_id, 1);
	cr_assert_eq(f.hdr.type, TTRPC_TYPE_RESPONSE);
	cr_assert(!f.oversized);
	cr_assert(ttrpc_reader_idle(&r));
	ttrpc_reader_release(&r);
}

/* Feeds buf in chunks of `chunk` bytes and collects the frames. */
static int feed_all(struct ttrpc_reader *r, const uint8_t *buf, size_t n, size_t chunk,
		    struct ttrpc_frame *out, int max)
{
	int got = 0;
	size_t off = 0;
	while (off < n) {
		size_t want = n - off < chunk ? n - off : chunk;
		size_t used;
		cr_assert_eq(ttrpc_reader_feed(r, buf + off, want, &used), 0);
		cr_assert(used > 0);
		off += used;
		struct ttrpc_frame f;
		int rc;
		while ((rc = ttrpc_reader_next(r, &f)) == 1) {
			cr_assert(got < max);
			/* frames are borrowed until the next read: keep copies */
			out[got] = f;
			if (f.data) {
				uint8_t *d = malloc(f.hdr.length + 1);
				memcpy(d, f.data, f.hdr.length);
				out[got].data = d;
			}
			got++;
		}
		cr_assert_eq(rc, 0);
	}
	return got;
}

Test(frame, every_split_of_three_frames)
{
	uint8_t buf[256];
	size_t n = 0;
	n += make_frame(buf + n, 1, 1, 0, "hello", 5);
	n += make_frame(buf + n, 3, 1, 0, "", 0);
	n += make_frame(buf + n, 5, 3, TTRPC_FLAG_REMOTE_CLOSED, "xyz", 3);
	for (size_t chunk = 1; chunk <= n; chunk++) {
		struct ttrpc_reader r;
		ttrpc_reader_init(&r);
		struct ttrpc_frame f[3];
		int got = feed_all(&r, buf, n, chunk, f, 3);
		cr_assert_eq(got, 3, "chunk %zu", chunk);
		cr_assert_eq(f[0].hdr.stream_id, 1);
		cr_assert(memcmp(f[0].data, "hello", 5) == 0);
		cr_assert_eq(f[1].hdr.length, 0);
		cr_assert_eq(f[2].hdr.flags, TTRPC_FLAG_REMOTE_CLOSED);
		cr_assert(memcmp(f[2].data, "xyz", 3) == 0);
		for (int i = 0; i < 3; i++)
			free((void *)f[i].data);
		cr_assert(ttrpc_reader_idle(&r));
		ttrpc_reader_release(&r);
	}
}

Test(frame, partial_header_is_not_idle)
{
	struct ttrpc_reader r;
	ttrpc_reader_init(&r);
	uint8_t b[TTRPC_HEADER_LEN + 4];
	make_frame(b, 1, 1, 0, "abcd", 4);
	size_t used;
	ttrpc_reader_feed(&r, b, 7, &used);
	struct ttrpc_frame f;
	cr_assert_eq(ttrpc_reader_next(&r, &f), 0);
	cr_assert(!ttrpc_reader_idle(&r));
	ttrpc_reader_feed(&r, b + 7, 5, &used);
	cr_assert_eq(ttrpc_reader_next(&r, &f), 0);
	cr_assert(!ttrpc_reader_idle(&r), "inside a body is not a frame boundary");
	ttrpc_reader_release(&r);
}

static void large_frame(uint32_t len, size_t chunk)
{
	size_t n = TTRPC_HEADER_LEN + len;
	uint8_t *buf = malloc(n + 32);
	uint8_t *payload = malloc(len);
	for (uint32_t i = 0; i < len; i++)
		payload[i] = (uint8_t)(i * 7 + 3);
	make_frame(buf, 7, 1, 0, payload, len);
	n += make_frame(buf + n, 9, 1, 0, "t", 1); /* a small one right after */
	struct ttrpc_reader r;
	ttrpc_reader_init(&r);
	struct ttrpc_frame f[2];
	int got = feed_all(&r, buf, n, chunk, f, 2);
	cr_assert_eq(got, 2);
	cr_assert(!f[0].oversized);
	cr_assert_eq(f[0].hdr.length, len);
	cr_assert(memcmp(f[0].data, payload, len) == 0);
	cr_assert_eq(f[1].hdr.stream_id, 9);
	free((void *)f[0].data);
	free((void *)f[1].data);
	ttrpc_reader_release(&r);
	free(buf);
	free(payload);
}

Test(frame, large_frames_split)
{
	large_frame(TTRPC_READER_SCRATCH - TTRPC_HEADER_LEN, 1000);
	large_frame(TTRPC_READER_SCRATCH, 4096);
	large_frame(TTRPC_READER_SCRATCH + 1, 65536);
	large_frame(1 << 20, 7919);
}

Test(frame, maximum_is_inclusive)
{
	large_frame(TTRPC_MAX_DATA, 1 << 20);
}

Test(frame, oversized_is_discarded_then_reported)
{
	uint32_t len = TTRPC_MAX_DATA + 1;
	size_t n = TTRPC_HEADER_LEN + len;
	uint8_t *buf = calloc(1, n + 32);
	struct ttrpc_frame_hdr h = {.length = len, .stream_id = 11, .type = 1};
	ttrpc_frame_hdr_encode(buf, &h);
	n += make_frame(buf + n, 13, 1, 0, "ok", 2);
	struct ttrpc_reader r;
	ttrpc_reader_init(&r);
	struct ttrpc_frame f[2];
	int got = feed_all(&r, buf, n, 100000, f, 2);
	cr_assert_eq(got, 2);
	cr_assert(f[0].oversized);
	cr_assert_null(f[0].data);
	cr_assert_eq(f[0].hdr.stream_id, 11);
	cr_assert_eq(f[0].hdr.length, len);
	cr_assert(!f[1].oversized);
	cr_assert(memcmp(f[1].data, "ok", 2) == 0);
	free((void *)f[1].data);
	ttrpc_reader_release(&r);
	free(buf);
}

Test(frame, oversized_header_only_waits)
{
	uint8_t b[TTRPC_HEADER_LEN];
	struct ttrpc_frame_hdr h = {.length = 0xffffffff, .stream_id = 1, .type = 1};
	ttrpc_frame_hdr_encode(b, &h);
	struct ttrpc_reader r;
	ttrpc_reader_init(&r);
	size_t used;
	ttrpc_reader_feed(&r, b, sizeof(b), &used);
	struct ttrpc_frame f;
	cr_assert_eq(ttrpc_reader_next(&r, &f), 0);
	cr_assert(!ttrpc_reader_idle(&r));
	ttrpc_reader_release(&r);
}

Test(frame, trim_frees_scratch_only_when_idle)
{
	struct ttrpc_reader r;
	ttrpc_reader_init(&r);
	uint8_t b[TTRPC_HEADER_LEN + 4];
	make_frame(b, 1, 1, 0, "abcd", 4);
	size_t used;
	ttrpc_reader_feed(&r, b, 6, &used);
	ttrpc_reader_trim(&r);
	cr_assert_not_null(r.scratch, "a partial header is kept");
	ttrpc_reader_feed(&r, b + 6, sizeof(b) - 6, &used);
	struct ttrpc_frame f;
	cr_assert_eq(ttrpc_reader_next(&r, &f), 1);
	cr_assert(memcmp(f.data, "abcd", 4) == 0);
	ttrpc_reader_trim(&r);
	cr_assert_null(r.scratch, "idle: nothing held");
	ttrpc_reader_feed(&r, b, sizeof(b), &used); /* and reading works again */
	cr_assert_eq(ttrpc_reader_next(&r, &f), 1);
	ttrpc_reader_release(&r);
}

Test(frame, large_body_buffer_reused_and_trimmed)
{
	uint32_t len = 3 * TTRPC_READER_SCRATCH;
	uint8_t *buf = calloc(1, 2 * (TTRPC_HEADER_LEN + len)), *zero = calloc(1, len);
	size_t n = make_frame(buf, 1, 1, 0, zero, len);
	n += make_frame(buf + n, 3, 1, 0, zero, len - 5);
	struct ttrpc_reader r;
	ttrpc_reader_init(&r);
	struct ttrpc_frame f;
	const uint8_t *first = NULL;
	size_t off = 0;
	int got = 0;
	while (off < n) {
		size_t used;
		cr_assert_eq(ttrpc_reader_feed(&r, buf + off, n - off, &used), 0);
		off += used;
		while (ttrpc_reader_next(&r, &f) == 1) {
			if (got++ == 0)
				first = f.data;
			else
				cr_assert_eq(f.data, first, "the second large frame reuses the buffer");
		}
	}
	cr_assert_eq(got, 2);
	cr_assert_not_null(r.body, "kept for the next large frame");
	ttrpc_reader_trim(&r);
	cr_assert_null(r.body, "freed by trim when idle");
	cr_assert_null(r.scratch);
	ttrpc_reader_release(&r);
	free(buf);
	free(zero);
}
