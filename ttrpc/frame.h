/* ttrpc frame codec: the 10-byte header and an incremental frame reader.
 * No I/O here: callers hand in bytes and take out frames, so every split and
 * malformed case can be tested (and fuzzed) without a socket. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TTRPC_HEADER_LEN 10
#define TTRPC_MAX_DATA (4u << 20) /* inclusive, as containerd/ttrpc */

enum ttrpc_msg_type {
	TTRPC_TYPE_REQUEST = 1,
	TTRPC_TYPE_RESPONSE = 2,
	TTRPC_TYPE_DATA = 3,
};

enum ttrpc_flags {
	TTRPC_FLAG_REMOTE_CLOSED = 0x1,
	TTRPC_FLAG_REMOTE_OPEN = 0x2,
	TTRPC_FLAG_NO_DATA = 0x4,
};

struct ttrpc_frame_hdr {
	uint32_t length;
	uint32_t stream_id;
	uint8_t type;
	uint8_t flags;
};

void ttrpc_frame_hdr_encode(uint8_t out[TTRPC_HEADER_LEN], const struct ttrpc_frame_hdr *h);
void ttrpc_frame_hdr_decode(const uint8_t in[TTRPC_HEADER_LEN], struct ttrpc_frame_hdr *h);

/* One frame out of the reader. For an oversized frame (length > TTRPC_MAX_DATA)
 * the body is discarded as it arrives and the frame is delivered once it has been
 * skipped, with oversized set and no data. */
struct ttrpc_frame {
	struct ttrpc_frame_hdr hdr;
	/* Borrowed from the reader: valid until the reader is called again. */
	const uint8_t *data;
	bool oversized;
};

/* Reader: a small scratch buffer for headers and small frames, which are
 * handed out in place; a frame body larger than the scratch is read straight
 * into a body buffer, kept for the next large frame until ttrpc_reader_trim(). */
#define TTRPC_READER_SCRATCH (16u << 10)

struct ttrpc_reader {
	uint8_t *scratch; /* TTRPC_READER_SCRATCH bytes, allocated on first use */
	size_t start, end; /* unparsed bytes in scratch */
	bool have_hdr;
	bool in_body; /* filling body with a large frame */
	struct ttrpc_frame_hdr hdr;
	uint8_t *body; /* body_cap bytes, NULL until a large frame comes */
	size_t body_cap;
	size_t body_have;
	uint64_t discard; /* oversized body bytes still to skip */
	uint32_t max_data;
};

void ttrpc_reader_init(struct ttrpc_reader *r);
void ttrpc_reader_release(struct ttrpc_reader *r);

/* Where the next read(2) should go. Returns 0 or -ENOMEM. */
int ttrpc_reader_space(struct ttrpc_reader *r, uint8_t **ptr, size_t *len);
/* n bytes were written at the pointer ttrpc_reader_space() gave. */
void ttrpc_reader_commit(struct ttrpc_reader *r, size_t n);
/* 1 and a frame, 0 when more bytes are needed, -ENOMEM. */
int ttrpc_reader_next(struct ttrpc_reader *r, struct ttrpc_frame *f);
/* Frees the scratch and body buffers when nothing is buffered: an idle
 * connection then holds no read memory (allocated again on the next read). */
void ttrpc_reader_trim(struct ttrpc_reader *r);
/* True when the reader holds no partial frame (so EOF here is clean). */
bool ttrpc_reader_idle(const struct ttrpc_reader *r);
/* The bytes of the frame read in part, as they came off the wire (header
 * first), for handing a connection to another process (a live upgrade):
 * the size, with *out malloc'd (NULL when 0), or -EBUSY while an oversized
 * body is being skipped, -ENOMEM. Fed to a fresh reader (ttrpc_reader_feed)
 * they leave it where this one is. */
long ttrpc_reader_pending(const struct ttrpc_reader *r, uint8_t **out);
/* Convenience for tests and fuzzing: copy bytes in, as many reads would. */
int ttrpc_reader_feed(struct ttrpc_reader *r, const uint8_t *p, size_t n, size_t *used);
