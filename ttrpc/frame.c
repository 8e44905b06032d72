/* ttrpc frame codec (see frame.h). Header is big-endian length, stream id,
 * then type and flags bytes. */
#include "frame.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static void put_be32(uint8_t *p, uint32_t v)
{
	p[0] = v >> 24;
	p[1] = v >> 16;
	p[2] = v >> 8;
	p[3] = v;
}

static uint32_t get_be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

void ttrpc_frame_hdr_encode(uint8_t out[TTRPC_HEADER_LEN], const struct ttrpc_frame_hdr *h)
{
	put_be32(out, h->length);
	put_be32(out + 4, h->stream_id);
	out[8] = h->type;
	out[9] = h->flags;
}

void ttrpc_frame_hdr_decode(const uint8_t in[TTRPC_HEADER_LEN], struct ttrpc_frame_hdr *h)
{
	h->length = get_be32(in);
	h->stream_id = get_be32(in + 4);
	h->type = in[8];
	h->flags = in[9];
}

void ttrpc_reader_init(struct ttrpc_reader *r)
{
	memset(r, 0, sizeof(*r));
	r->max_data = TTRPC_MAX_DATA;
}

void ttrpc_reader_release(struct ttrpc_reader *r)
{
	free(r->scratch);
	free(r->body);
	ttrpc_reader_init(r);
}

void ttrpc_reader_trim(struct ttrpc_reader *r)
{
	if (r->scratch && r->start == r->end && !r->have_hdr) {
		free(r->scratch);
		r->scratch = NULL;
		r->start = r->end = 0;
	}
	if (r->body && !r->in_body) {
		free(r->body);
		r->body = NULL;
		r->body_cap = 0;
	}
}

bool ttrpc_reader_idle(const struct ttrpc_reader *r)
{
	return !r->have_hdr && !r->in_body && r->discard == 0 && r->start == r->end;
}

int ttrpc_reader_space(struct ttrpc_reader *r, uint8_t **ptr, size_t *len)
{
	if (r->in_body) {
		*ptr = r->body + r->body_have;
		*len = r->hdr.length - r->body_have;
		return 0;
	}
	if (!r->scratch) {
		r->scratch = malloc(TTRPC_READER_SCRATCH);
		if (!r->scratch)
			return -ENOMEM;
	}
	if (r->start == r->end) {
		r->start = r->end = 0;
	} else if (r->start > 0 && TTRPC_READER_SCRATCH - r->end < TTRPC_HEADER_LEN) {
		memmove(r->scratch, r->scratch + r->start, r->end - r->start);
		r->end -= r->start;
		r->start = 0;
	}
	*ptr = r->scratch + r->end;
	*len = TTRPC_READER_SCRATCH - r->end;
	if (*len == 0) { /* cannot happen: a parse step always frees room */
		memmove(r->scratch, r->scratch + r->start, r->end - r->start);
		r->end -= r->start;
		r->start = 0;
		*ptr = r->scratch + r->end;
		*len = TTRPC_READER_SCRATCH - r->end;
	}
	return 0;
}

void ttrpc_reader_commit(struct ttrpc_reader *r, size_t n)
{
	if (r->in_body)
		r->body_have += n;
	else
		r->end += n;
}

int ttrpc_reader_next(struct ttrpc_reader *r, struct ttrpc_frame *f)
{
	for (;;) {
		size_t avail = r->end - r->start;

		if (r->discard) {
			size_t k = avail < r->discard ? avail : (size_t)r->discard;
			r->start += k;
			r->discard -= k;
			if (r->discard)
				return 0;
			f->hdr = r->hdr;
			f->data = NULL;
			f->oversized = true;
			r->have_hdr = false;
			return 1;
		}
		if (r->in_body) {
			if (r->body_have < r->hdr.length)
				return 0;
			f->hdr = r->hdr;
			f->data = r->body;
			f->oversized = false;
			r->in_body = false;
			r->body_have = 0;
			r->have_hdr = false;
			return 1;
		}
		if (!r->have_hdr) {
			if (avail < TTRPC_HEADER_LEN)
				return 0;
			ttrpc_frame_hdr_decode(r->scratch + r->start, &r->hdr);
			r->start += TTRPC_HEADER_LEN;
			avail -= TTRPC_HEADER_LEN;
			r->have_hdr = true;
			if (r->hdr.length > r->max_data) {
				r->discard = r->hdr.length;
				continue;
			}
		}
		uint32_t len = r->hdr.length;
		if (avail >= len) {
			/* whole body already buffered: handed out in place */
			f->hdr = r->hdr;
			f->data = r->scratch + r->start;
			f->oversized = false;
			r->start += len;
			r->have_hdr = false;
			return 1;
		}
		if (len <= TTRPC_READER_SCRATCH - TTRPC_HEADER_LEN) {
			/* small frame: compact so the rest lands in scratch */
			if (r->start + len > TTRPC_READER_SCRATCH) {
				memmove(r->scratch, r->scratch + r->start, avail);
				r->end = avail;
				r->start = 0;
			}
			return 0;
		}
		/* large frame: move what we have into the body buffer (reused from
		 * the last large frame when big enough), read the rest there */
		if (r->body_cap < len) {
			free(r->body);
			r->body_cap = 0;
			r->body = malloc(len);
			if (!r->body)
				return -ENOMEM;
			r->body_cap = len;
		}
		memcpy(r->body, r->scratch + r->start, avail);
		r->body_have = avail;
		r->in_body = true;
		r->start = r->end = 0;
		return 0;
	}
}

int ttrpc_reader_feed(struct ttrpc_reader *r, const uint8_t *p, size_t n, size_t *used)
{
	uint8_t *dst;
	size_t room;
	int rc = ttrpc_reader_space(r, &dst, &room);
	if (rc < 0)
		return rc;
	if (room > n)
		room = n;
	memcpy(dst, p, room);
	ttrpc_reader_commit(r, room);
	*used = room;
	return 0;
}

long ttrpc_reader_pending(const struct ttrpc_reader *r, uint8_t **out)
{
	*out = NULL;
	if (r->discard)
		return -EBUSY;
	size_t hdr = r->have_hdr ? TTRPC_HEADER_LEN : 0;
	size_t body = r->in_body ? r->body_have : r->end - r->start;
	if (hdr + body == 0)
		return 0;
	uint8_t *b = malloc(hdr + body);
	if (!b)
		return -ENOMEM;
	if (hdr)
		ttrpc_frame_hdr_encode(b, &r->hdr);
	memcpy(b + hdr, r->in_body ? r->body : r->scratch + r->start, body);
	*out = b;
	return (long)(hdr + body);
}
