/* ttrpc envelope wire encoding (see envelope.h). Fields are written in
 * ascending order and zero values omitted, as Go's marshaller does. */
#include "envelope.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { WT_VARINT = 0, WT_I64 = 1, WT_LEN = 2, WT_I32 = 5 };

static size_t varint_len(uint64_t v)
{
	size_t n = 1;
	while (v >= 0x80) {
		v >>= 7;
		n++;
	}
	return n;
}

static uint8_t *put_varint(uint8_t *p, uint64_t v)
{
	while (v >= 0x80) {
		*p++ = (uint8_t)(v | 0x80);
		v >>= 7;
	}
	*p++ = (uint8_t)v;
	return p;
}

static size_t field_len_size(size_t len)
{
	return 1 + varint_len(len) + len;
}

static uint8_t *put_bytes(uint8_t *p, unsigned field, const void *data, size_t len)
{
	*p++ = (uint8_t)(field << 3 | WT_LEN);
	p = put_varint(p, len);
	if (len)
		memcpy(p, data, len);
	return p + len;
}

static uint8_t *body(struct ttrpc_obuf *b)
{
	return b->data + TTRPC_HEADER_LEN;
}

static struct ttrpc_obuf *new_frame(struct ttrpc_conn *c, uint8_t type, uint8_t flags, uint32_t id,
				    size_t len)
{
	if (len > TTRPC_MAX_DATA) {
		errno = EMSGSIZE;
		return NULL;
	}
	struct ttrpc_obuf *b = ttrpc_obuf_new(c, type, flags, id, len);
	if (!b)
		errno = ENOMEM;
	return b;
}

struct ttrpc_obuf *ttrpc_env_request(struct ttrpc_conn *c, uint32_t stream_id, uint8_t flags, const char *service,
				     const char *method, const ProtobufCMessage *req,
				     int64_t timeout_nano, const struct ttrpc_kv *md, size_t n_md)
{
	size_t slen = strlen(service), mlen = strlen(method);
	size_t plen = req ? protobuf_c_message_get_packed_size(req) : 0;
	if (plen > TTRPC_MAX_DATA) {
		errno = EMSGSIZE;
		return NULL;
	}
	size_t total = 0;
	if (slen)
		total += field_len_size(slen);
	if (mlen)
		total += field_len_size(mlen);
	if (plen)
		total += field_len_size(plen);
	if (timeout_nano)
		total += 1 + varint_len((uint64_t)timeout_nano);
	for (size_t i = 0; i < n_md; i++) {
		size_t kl = strlen(md[i].key), vl = strlen(md[i].value);
		size_t kv = (kl ? field_len_size(kl) : 0) + (vl ? field_len_size(vl) : 0);
		total += field_len_size(kv);
	}
	struct ttrpc_obuf *b = new_frame(c, TTRPC_TYPE_REQUEST, flags, stream_id, total);
	if (!b)
		return NULL;
	uint8_t *p = body(b);
	if (slen)
		p = put_bytes(p, 1, service, slen);
	if (mlen)
		p = put_bytes(p, 2, method, mlen);
	if (plen) {
		*p++ = 3 << 3 | WT_LEN;
		p = put_varint(p, plen);
		p += protobuf_c_message_pack(req, p);
	}
	if (timeout_nano) {
		*p++ = 4 << 3 | WT_VARINT;
		p = put_varint(p, (uint64_t)timeout_nano);
	}
	for (size_t i = 0; i < n_md; i++) {
		size_t kl = strlen(md[i].key), vl = strlen(md[i].value);
		size_t kv = (kl ? field_len_size(kl) : 0) + (vl ? field_len_size(vl) : 0);
		*p++ = 5 << 3 | WT_LEN;
		p = put_varint(p, kv);
		if (kl) {
			/* keys go out lowercase, as Go's MD.Set does */
			uint8_t *k = p + 1 + varint_len(kl);
			p = put_bytes(p, 1, md[i].key, kl);
			for (size_t j = 0; j < kl; j++)
				if (k[j] >= 'A' && k[j] <= 'Z')
					k[j] = (uint8_t)(k[j] - 'A' + 'a');
		}
		if (vl)
			p = put_bytes(p, 2, md[i].value, vl);
	}
	return b;
}

struct ttrpc_obuf *ttrpc_env_response_ok(struct ttrpc_conn *c, uint32_t stream_id, const ProtobufCMessage *msg)
{
	size_t plen = msg ? protobuf_c_message_get_packed_size(msg) : 0;
	if (plen > TTRPC_MAX_DATA) {
		errno = EMSGSIZE;
		return NULL;
	}
	struct ttrpc_obuf *b =
		new_frame(c, TTRPC_TYPE_RESPONSE, 0, stream_id, plen ? field_len_size(plen) : 0);
	if (!b)
		return NULL;
	if (plen) {
		uint8_t *p = body(b);
		*p++ = 2 << 3 | WT_LEN;
		p = put_varint(p, plen);
		protobuf_c_message_pack(msg, p);
	}
	return b;
}

struct ttrpc_obuf *ttrpc_env_response_err(struct ttrpc_conn *c, uint32_t stream_id, int code, const char *message)
{
	size_t ml = strlen(message);
	size_t st = (code ? 1 + varint_len((uint64_t)(int64_t)code) : 0) +
		    (ml ? field_len_size(ml) : 0);
	struct ttrpc_obuf *b = new_frame(c, TTRPC_TYPE_RESPONSE, 0, stream_id, field_len_size(st));
	if (!b)
		return NULL;
	uint8_t *p = body(b);
	*p++ = 1 << 3 | WT_LEN;
	p = put_varint(p, st);
	if (code) {
		*p++ = 1 << 3 | WT_VARINT;
		p = put_varint(p, (uint64_t)(int64_t)code);
	}
	if (ml)
		put_bytes(p, 2, message, ml);
	return b;
}

struct ttrpc_obuf *ttrpc_env_data(struct ttrpc_conn *c, uint32_t stream_id, uint8_t flags, const ProtobufCMessage *msg)
{
	size_t plen = msg ? protobuf_c_message_get_packed_size(msg) : 0;
	struct ttrpc_obuf *b = new_frame(c, TTRPC_TYPE_DATA, flags, stream_id, plen);
	if (!b)
		return NULL;
	if (plen)
		protobuf_c_message_pack(msg, body(b));
	return b;
}

static int get_varint(const uint8_t **pp, const uint8_t *end, uint64_t *v)
{
	const uint8_t *p = *pp;
	uint64_t r = 0;
	for (int shift = 0; shift < 64; shift += 7) {
		if (p >= end)
			return -EBADMSG;
		uint8_t c = *p++;
		r |= (uint64_t)(c & 0x7f) << shift;
		if (!(c & 0x80)) {
			*pp = p;
			*v = r;
			return 0;
		}
	}
	return -EBADMSG;
}

/* Walks one message's fields; cb sees each (field, wiretype, varint or slice). */
typedef int (*field_fn)(unsigned field, int wt, uint64_t v, const uint8_t *d, size_t n, void *ud);

static int walk(const uint8_t *p, size_t n, field_fn cb, void *ud)
{
	const uint8_t *end = p + n;
	while (p < end) {
		uint64_t key, v = 0;
		if (get_varint(&p, end, &key) < 0)
			return -EBADMSG;
		unsigned field = (unsigned)(key >> 3);
		int wt = key & 7;
		const uint8_t *d = NULL;
		size_t dn = 0;
		if (field == 0)
			return -EBADMSG;
		switch (wt) {
		case WT_VARINT:
			if (get_varint(&p, end, &v) < 0)
				return -EBADMSG;
			break;
		case WT_I64:
		case WT_I32:
			dn = wt == WT_I64 ? 8 : 4;
			if ((size_t)(end - p) < dn)
				return -EBADMSG;
			d = p;
			p += dn;
			break;
		case WT_LEN:
			if (get_varint(&p, end, &v) < 0 || v > (uint64_t)(end - p))
				return -EBADMSG;
			d = p;
			dn = (size_t)v;
			p += dn;
			break;
		default:
			return -EBADMSG; /* groups are not used by any ttrpc peer */
		}
		int rc = cb(field, wt, v, d, dn, ud);
		if (rc < 0)
			return rc;
	}
	return 0;
}

static int status_field(unsigned field, int wt, uint64_t v, const uint8_t *d, size_t n, void *ud)
{
	struct ttrpc_status *st = ud;
	if (field == 1 && wt == WT_VARINT) {
		st->code = (int32_t)v;
	} else if (field == 2 && wt == WT_LEN) {
		size_t k = n < sizeof(st->message) - 1 ? n : sizeof(st->message) - 1;
		memcpy(st->message, d, k);
		st->message[k] = '\0';
	}
	return 0;
}

struct resp_parse {
	const uint8_t *payload;
	size_t plen;
	struct ttrpc_status *st;
};

static int response_field(unsigned field, int wt, uint64_t v, const uint8_t *d, size_t n, void *ud)
{
	struct resp_parse *rp = ud;
	if (field == 1 && wt == WT_LEN)
		return walk(d, n, status_field, rp->st);
	if (field == 2 && wt == WT_LEN) {
		rp->payload = d;
		rp->plen = n;
	}
	return 0;
}

int ttrpc_env_parse_response(const uint8_t *p, size_t n, const uint8_t **payload, size_t *plen,
			     struct ttrpc_status *st)
{
	struct resp_parse rp = {.payload = NULL, .plen = 0, .st = st};
	ttrpc_status_ok(st);
	int rc = walk(p, n, response_field, &rp);
	if (rc < 0)
		return rc;
	*payload = rp.payload;
	*plen = rp.plen;
	return 0;
}

bool ttrpc_utf8_valid(const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	while (*p) {
		unsigned c = *p;
		int n;
		uint32_t cp;
		if (c < 0x80) {
			p++;
			continue;
		} else if ((c & 0xe0) == 0xc0) {
			n = 1;
			cp = c & 0x1f;
		} else if ((c & 0xf0) == 0xe0) {
			n = 2;
			cp = c & 0x0f;
		} else if ((c & 0xf8) == 0xf0) {
			n = 3;
			cp = c & 0x07;
		} else {
			return false;
		}
		for (int i = 1; i <= n; i++) {
			if ((p[i] & 0xc0) != 0x80)
				return false;
			cp = cp << 6 | (p[i] & 0x3f);
		}
		if ((n == 1 && cp < 0x80) || (n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) ||
		    cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return false;
		p += n + 1;
	}
	return true;
}

bool ttrpc_utf8_valid_n(const uint8_t *p, size_t n)
{
	const uint8_t *end = p + n;
	while (p < end) {
		/* names and metadata are ASCII: eight bytes at a time */
		while (end - p >= 8) {
			uint64_t w;
			memcpy(&w, p, 8);
			if (w & 0x8080808080808080ull)
				break;
			p += 8;
		}
		if (p == end)
			break;
		unsigned c = *p;
		int k;
		uint32_t cp;
		if (c < 0x80) {
			p++;
			continue;
		} else if ((c & 0xe0) == 0xc0) {
			k = 1;
			cp = c & 0x1f;
		} else if ((c & 0xf0) == 0xe0) {
			k = 2;
			cp = c & 0x0f;
		} else if ((c & 0xf8) == 0xf0) {
			k = 3;
			cp = c & 0x07;
		} else {
			return false;
		}
		if (end - p <= k)
			return false;
		for (int i = 1; i <= k; i++) {
			if ((p[i] & 0xc0) != 0x80)
				return false;
			cp = cp << 6 | (p[i] & 0x3f);
		}
		if ((k == 1 && cp < 0x80) || (k == 2 && cp < 0x800) || (k == 3 && cp < 0x10000) ||
		    cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return false;
		p += k + 1;
	}
	return true;
}

/* ---- Request parsing, with gogo/protobuf's table decoder's rules ---- */

static const char GO_EOF[] = "unexpected EOF";

/* gogo's decodeVarint: at most 10 bytes; anything else is a truncation. */
static bool go_varint(const uint8_t **pp, const uint8_t *end, uint64_t *v)
{
	const uint8_t *p = *pp;
	uint64_t r = 0;
	for (int i = 0; i < 10; i++) {
		if (p >= end)
			return false;
		uint8_t c = *p++;
		r |= (uint64_t)(c & 0x7f) << (7 * i);
		if (!(c & 0x80)) {
			*pp = p;
			*v = r;
			return true;
		}
	}
	return false;
}

/* gogo's skipField (groups skipped up to their matching end). NULL on success,
 * else the error text. */
static const char *go_skip(const uint8_t **pp, const uint8_t *end, int wt, char *err, size_t errlen)
{
	uint64_t v;
	switch (wt) {
	case WT_VARINT:
		return go_varint(pp, end, &v) ? NULL : GO_EOF;
	case WT_I64:
	case WT_I32: {
		size_t k = wt == WT_I64 ? 8 : 4;
		if ((size_t)(end - *pp) < k)
			return GO_EOF;
		*pp += k;
		return NULL;
	}
	case WT_LEN:
		if (!go_varint(pp, end, &v) || v > (uint64_t)(end - *pp))
			return GO_EOF;
		*pp += v;
		return NULL;
	case 3: { /* start group: find the unpaired end group */
		int depth = 1;
		while (depth > 0) {
			uint64_t key;
			if (!go_varint(pp, end, &key))
				return GO_EOF;
			int w = (int)(key & 7);
			if (w == 3) {
				depth++;
			} else if (w == 4) {
				depth--;
			} else if (w == 6 || w == 7) {
				return GO_EOF;
			} else if (go_skip(pp, end, w, err, errlen)) {
				return GO_EOF;
			}
		}
		return NULL;
	}
	default:
		snprintf(err, errlen, "proto: can't skip unknown wire type %d", wt);
		return err;
	}
}

/* One length-delimited string field; invalid UTF-8 is remembered in *later
 * (first one wins) and parsing goes on, as gogo does for proto3 strings. */
static const char *go_string(const uint8_t **pp, const uint8_t *end, struct ttrpc_slice *out,
			     const char *name, const char **later)
{
	uint64_t v;
	if (!go_varint(pp, end, &v) || v > (uint64_t)(end - *pp))
		return GO_EOF;
	out->p = *pp;
	out->n = (size_t)v;
	*pp += v;
	if (!*later && !ttrpc_utf8_valid_n(out->p, out->n))
		*later = name;
	return NULL;
}

static const char *parse_kv(const uint8_t *p, const uint8_t *end, struct ttrpc_slice kv[2],
			    const char **bad_utf8, char *err, size_t errlen)
{
	kv[0] = kv[1] = (struct ttrpc_slice){(const uint8_t *)"", 0};
	while (p < end) {
		uint64_t key;
		if (!go_varint(&p, end, &key))
			return GO_EOF;
		uint64_t field = key >> 3;
		int wt = (int)(key & 7);
		const char *e;
		if (field == 0) {
			snprintf(err, errlen, "proto: ttrpc.KeyValue: illegal tag 0 (wire type %d)", wt);
			return err;
		}
		if ((field == 1 || field == 2) && wt == WT_LEN)
			e = go_string(&p, end, &kv[field - 1], field == 1 ? ".key" : ".value", bad_utf8);
		else
			e = go_skip(&p, end, wt, err, errlen);
		if (e)
			return e;
	}
	return NULL;
}

static const char *parse_request(const uint8_t *p, size_t n, struct ttrpc_env_req *r, char *err,
				 size_t errlen)
{
	const uint8_t *end = p + n;
	const char *later = NULL;
	memset(r, 0, offsetof(struct ttrpc_env_req, md));
	r->service = r->method = r->payload = (struct ttrpc_slice){(const uint8_t *)"", 0};
	while (p < end) {
		uint64_t key, v;
		if (!go_varint(&p, end, &key))
			return GO_EOF;
		uint64_t field = key >> 3;
		int wt = (int)(key & 7);
		const char *e = NULL;
		if (field == 0) {
			snprintf(err, errlen, "proto: ttrpc.Request: illegal tag 0 (wire type %d)", wt);
			return err;
		}
		if (field == 1 && wt == WT_LEN) {
			e = go_string(&p, end, &r->service, ".service", &later);
		} else if (field == 2 && wt == WT_LEN) {
			e = go_string(&p, end, &r->method, ".method", &later);
		} else if (field == 3 && wt == WT_LEN) {
			if (!go_varint(&p, end, &v) || v > (uint64_t)(end - p))
				return GO_EOF;
			r->payload = (struct ttrpc_slice){p, (size_t)v};
			p += v;
		} else if (field == 4 && wt == WT_VARINT) {
			if (!go_varint(&p, end, &v))
				return GO_EOF;
			r->timeout_nano = (int64_t)v;
		} else if (field == 5 && wt == WT_LEN) {
			if (!go_varint(&p, end, &v) || v > (uint64_t)(end - p))
				return GO_EOF;
			struct ttrpc_slice kv[2];
			const char *bad = NULL;
			e = parse_kv(p, p + v, kv, &bad, err, errlen);
			if (!e && bad) {
				/* a KeyValue's own error ends the parse at once */
				snprintf(err, errlen, "proto: field \"%s\" contains invalid UTF-8", bad);
				return err;
			}
			if (!e) {
				if (r->n_md < TTRPC_METADATA_MAX) {
					r->md[r->n_md][0] = kv[0];
					r->md[r->n_md][1] = kv[1];
				}
				r->n_md++;
				r->md_bytes += kv[0].n + kv[1].n;
			}
			p += v;
		} else {
			e = go_skip(&p, end, wt, err, errlen);
		}
		if (e)
			return e;
	}
	if (later) {
		snprintf(err, errlen, "proto: field \"%s\" contains invalid UTF-8", later);
		return err;
	}
	return NULL;
}

int ttrpc_env_parse_request(const uint8_t *p, size_t n, struct ttrpc_env_req *r, char *err,
			    size_t errlen)
{
	const char *e = parse_request(p, n, r, err, errlen);
	if (!e)
		return 0;
	if (e != err)
		snprintf(err, errlen, "%s", e);
	return -EBADMSG;
}

bool ttrpc_env_truncated(const uint8_t *p, size_t n)
{
	const uint8_t *end = p + n;
	char err[64];
	while (p < end) {
		uint64_t key;
		if (!go_varint(&p, end, &key))
			return true;
		const char *e = go_skip(&p, end, (int)(key & 7), err, sizeof(err));
		if (e)
			return e == GO_EOF;
	}
	return false;
}

struct ttrpc_obuf *ttrpc_env_request_retime(const struct ttrpc_obuf *b, int64_t timeout_nano)
{
	const uint8_t *body0 = b->data + TTRPC_HEADER_LEN, *end = b->data + b->len, *p = body0;
	/* the old field [at, after), or where field 4 goes when there is none */
	const uint8_t *at = end, *after = end;
	while (p < end) {
		const uint8_t *start = p;
		uint64_t key, v;
		if (get_varint(&p, end, &key) < 0)
			goto bad;
		if ((key >> 3) > 4) {
			at = after = start;
			break;
		}
		if (get_varint(&p, end, &v) < 0)
			goto bad;
		if ((key & 7) == WT_LEN) {
			if (v > (uint64_t)(end - p))
				goto bad;
			p += v;
		} else if ((key & 7) != WT_VARINT) {
			goto bad; /* ttrpc_env_request writes no other kind */
		}
		if ((key >> 3) == 4) {
			at = start;
			after = p;
			break;
		}
	}
	size_t field = timeout_nano ? 1 + varint_len((uint64_t)timeout_nano) : 0;
	size_t len = (size_t)(end - body0) - (size_t)(after - at) + field;
	struct ttrpc_frame_hdr h;
	ttrpc_frame_hdr_decode(b->data, &h);
	struct ttrpc_obuf *nb = new_frame(NULL, h.type, h.flags, h.stream_id, len);
	if (!nb)
		return NULL;
	uint8_t *q = body(nb);
	memcpy(q, body0, (size_t)(at - body0));
	q += at - body0;
	if (timeout_nano) {
		*q++ = 4 << 3 | WT_VARINT;
		q = put_varint(q, (uint64_t)timeout_nano);
	}
	memcpy(q, after, (size_t)(end - after));
	return nb;
bad:
	errno = EBADMSG;
	return NULL;
}
