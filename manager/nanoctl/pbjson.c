/* pbjson: protobuf-c messages <-> JSON through yajl, and fields set from
 * "name=value" arguments. Works on any message from its descriptor; the only
 * types it knows by name are google.protobuf.Any and google.protobuf.Timestamp.
 * Everything allocated into a message uses malloc, so that
 * protobuf_c_message_free_unpacked(m, NULL) releases it. */
#include "pbjson.h"

#include "google/protobuf/any.pb-c.h"
#include "google/protobuf/timestamp.pb-c.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <yajl/yajl_tree.h>

static int fail(struct pbjson_error *err, int rc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int fail(struct pbjson_error *err, int rc, const char *fmt, ...)
{
	if (err) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
		va_end(ap);
	}
	return rc;
}

static int oom(struct pbjson_error *err)
{
	return fail(err, -ENOMEM, "out of memory");
}

/* ---- field storage ---------------------------------------------------------- */

size_t pbjson_elem_size(const ProtobufCFieldDescriptor *f)
{
	switch (f->type) {
	case PROTOBUF_C_TYPE_STRING:
	case PROTOBUF_C_TYPE_MESSAGE:
		return sizeof(void *);
	case PROTOBUF_C_TYPE_BYTES:
		return sizeof(ProtobufCBinaryData);
	case PROTOBUF_C_TYPE_BOOL:
		return sizeof(protobuf_c_boolean);
	case PROTOBUF_C_TYPE_ENUM:
		return sizeof(int);
	case PROTOBUF_C_TYPE_INT64:
	case PROTOBUF_C_TYPE_SINT64:
	case PROTOBUF_C_TYPE_SFIXED64:
	case PROTOBUF_C_TYPE_UINT64:
	case PROTOBUF_C_TYPE_FIXED64:
	case PROTOBUF_C_TYPE_DOUBLE:
		return 8;
	default:
		return 4;
	}
}

static void *field_ptr(const ProtobufCMessage *m, const ProtobufCFieldDescriptor *f)
{
	return (char *)m + f->offset;
}

static bool is_oneof(const ProtobufCFieldDescriptor *f)
{
	return f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF;
}

static bool has_quantifier(const ProtobufCFieldDescriptor *f)
{
	return !is_oneof(f) && f->label == PROTOBUF_C_LABEL_OPTIONAL && f->quantifier_offset &&
	       f->type != PROTOBUF_C_TYPE_MESSAGE && f->type != PROTOBUF_C_TYPE_STRING;
}

static void set_present(ProtobufCMessage *m, const ProtobufCFieldDescriptor *f)
{
	if (has_quantifier(f))
		*(protobuf_c_boolean *)((char *)m + f->quantifier_offset) = 1;
}

static bool is_present(const ProtobufCMessage *m, const ProtobufCFieldDescriptor *f)
{
	/* members of a oneof share their storage: only the one its case names is set */
	if (is_oneof(f))
		return *(const uint32_t *)((const char *)m + f->quantifier_offset) == f->id;
	if (has_quantifier(f))
		return *(const protobuf_c_boolean *)((const char *)m + f->quantifier_offset);
	if (f->type == PROTOBUF_C_TYPE_MESSAGE)
		return *(ProtobufCMessage *const *)field_ptr(m, f) != NULL;
	return true;
}

/* A map<K,V> field is a repeated XxxEntry{key = 1; value = 2}. */
static bool is_map_entry(const ProtobufCMessageDescriptor *d)
{
	size_t n = strlen(d->short_name);
	return d->n_fields == 2 && n > 5 && strcmp(d->short_name + n - 5, "Entry") == 0 &&
	       d->fields[0].id == 1 && strcmp(d->fields[0].name, "key") == 0 &&
	       d->fields[1].id == 2 && strcmp(d->fields[1].name, "value") == 0;
}

static bool is_map(const ProtobufCFieldDescriptor *f)
{
	return f->label == PROTOBUF_C_LABEL_REPEATED && f->type == PROTOBUF_C_TYPE_MESSAGE &&
	       is_map_entry(f->descriptor);
}

ProtobufCMessage *pbjson_new(const ProtobufCMessageDescriptor *d)
{
	ProtobufCMessage *m = calloc(1, d->sizeof_message);
	if (m)
		d->message_init(m);
	return m;
}

/* Appends one zeroed element to a repeated field; returns its address. */
static void *repeated_append(ProtobufCMessage *m, const ProtobufCFieldDescriptor *f)
{
	size_t *n = (size_t *)((char *)m + f->quantifier_offset);
	void **arr = field_ptr(m, f);
	size_t sz = pbjson_elem_size(f);
	char *na = realloc(*arr, (*n + 1) * sz);
	if (!na)
		return NULL;
	memset(na + *n * sz, 0, sz);
	*arr = na;
	return na + (*n)++ * sz;
}

/* ---- base64 ---------------------------------------------------------------- */

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

int pbjson_base64_encode(const uint8_t *data, size_t len, char **out)
{
	char *s = malloc((len + 2) / 3 * 4 + 1), *p = s;
	if (!s)
		return -ENOMEM;
	for (size_t i = 0; i < len; i += 3) {
		uint32_t v = (uint32_t)data[i] << 16;
		if (i + 1 < len)
			v |= (uint32_t)data[i + 1] << 8;
		if (i + 2 < len)
			v |= data[i + 2];
		*p++ = b64[v >> 18 & 63];
		*p++ = b64[v >> 12 & 63];
		*p++ = i + 1 < len ? b64[v >> 6 & 63] : '=';
		*p++ = i + 2 < len ? b64[v & 63] : '=';
	}
	*p = '\0';
	*out = s;
	return 0;
}

static int b64_value(char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+' || c == '-')
		return 62;
	if (c == '/' || c == '_')
		return 63;
	return -1;
}

int pbjson_base64_decode(const char *s, uint8_t **out, size_t *len)
{
	size_t n = strlen(s);
	while (n > 0 && s[n - 1] == '=')
		n--;
	if (n % 4 == 1)
		return -EINVAL;
	uint8_t *d = malloc(n * 3 / 4 + 1);
	if (!d)
		return -ENOMEM;
	size_t k = 0;
	uint32_t acc = 0;
	int bits = 0;
	for (size_t i = 0; i < n; i++) {
		int v = b64_value(s[i]);
		if (v < 0) {
			free(d);
			return -EINVAL;
		}
		acc = acc << 6 | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			d[k++] = (uint8_t)(acc >> bits);
		}
	}
	*out = d;
	*len = k;
	return 0;
}

/* ---- timestamps -------------------------------------------------------------- */

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm). */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
	y -= m <= 2;
	int64_t era = (y >= 0 ? y : y - 399) / 400;
	unsigned yoe = (unsigned)(y - era * 400);
	unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + (int64_t)doe - 719468;
}

static void civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d)
{
	z += 719468;
	int64_t era = (z >= 0 ? z : z - 146096) / 146097;
	unsigned doe = (unsigned)(z - era * 146097);
	unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	unsigned mp = (5 * doy + 2) / 153;
	*d = doy - (153 * mp + 2) / 5 + 1;
	*m = mp < 10 ? mp + 3 : mp - 9;
	*y = (int64_t)yoe + era * 400 + (*m <= 2);
}

#define TS_MIN_SECONDS (-62135596800LL) /* 0001-01-01T00:00:00Z */
#define TS_MAX_SECONDS 253402300799LL   /* 9999-12-31T23:59:59Z */

int pbjson_format_timestamp(int64_t seconds, int32_t nanos, char *buf, size_t len)
{
	if (seconds < TS_MIN_SECONDS || seconds > TS_MAX_SECONDS || nanos < 0 || nanos > 999999999)
		return -ERANGE;
	int64_t days = seconds >= 0 ? seconds / 86400 : -((-seconds + 86399) / 86400);
	int64_t sod = seconds - days * 86400;
	int64_t y;
	unsigned mo, d;
	civil_from_days(days, &y, &mo, &d);
	char frac[16] = "";
	if (nanos % 1000000 == 0 && nanos)
		snprintf(frac, sizeof(frac), ".%03d", nanos / 1000000);
	else if (nanos % 1000 == 0 && nanos)
		snprintf(frac, sizeof(frac), ".%06d", nanos / 1000);
	else if (nanos)
		snprintf(frac, sizeof(frac), ".%09d", nanos);
	int n = snprintf(buf, len, "%04" PRId64 "-%02u-%02uT%02d:%02d:%02d%sZ", y, mo, d,
	                 (int)(sod / 3600), (int)(sod / 60 % 60), (int)(sod % 60), frac);
	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

/* n decimal digits at *p into *out; advances *p */
static bool digits(const char **p, int n, int *out)
{
	int v = 0;
	for (int i = 0; i < n; i++) {
		if (!isdigit((unsigned char)(*p)[i]))
			return false;
		v = v * 10 + ((*p)[i] - '0');
	}
	*p += n;
	*out = v;
	return true;
}

static bool expect_char(const char **p, const char *set)
{
	if (**p && strchr(set, **p)) {
		(*p)++;
		return true;
	}
	return false;
}

int pbjson_parse_timestamp(const char *s, int64_t *seconds, int32_t *nanos)
{
	static const unsigned mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	const char *p = s;
	int y, mo, d, h, mi, sec, ns = 0;
	if (!digits(&p, 4, &y) || !expect_char(&p, "-") || !digits(&p, 2, &mo) ||
	    !expect_char(&p, "-") || !digits(&p, 2, &d) || !expect_char(&p, "Tt ") ||
	    !digits(&p, 2, &h) || !expect_char(&p, ":") || !digits(&p, 2, &mi) ||
	    !expect_char(&p, ":") || !digits(&p, 2, &sec))
		return -EINVAL;
	if (*p == '.') {
		p++;
		int n = 0;
		while (isdigit((unsigned char)*p)) {
			if (n < 9) {
				ns = ns * 10 + (*p - '0');
				n++;
			}
			p++;
		}
		if (n == 0)
			return -EINVAL;
		for (; n < 9; n++)
			ns *= 10;
	}
	int off = 0;
	if (*p == 'Z' || *p == 'z') {
		p++;
	} else if (*p == '+' || *p == '-') {
		int sign = *p++ == '-' ? -1 : 1, oh, om;
		if (!digits(&p, 2, &oh) || !expect_char(&p, ":") || !digits(&p, 2, &om) ||
		    oh > 23 || om > 59)
			return -EINVAL;
		off = sign * (oh * 3600 + om * 60);
	} else {
		return -EINVAL;
	}
	if (*p || y < 1 || mo < 1 || mo > 12 || d < 1 || (unsigned)d > mdays[mo - 1] || h > 23 ||
	    mi > 59 || sec > 60)
		return -EINVAL;
	if (mo == 2 && d == 29 && !(y % 4 == 0 && (y % 100 != 0 || y % 400 == 0)))
		return -EINVAL;
	int64_t t = days_from_civil(y, (unsigned)mo, (unsigned)d) * 86400 + h * 3600 + mi * 60 +
	            (sec == 60 ? 59 : sec) - off;
	if (t < TS_MIN_SECONDS || t > TS_MAX_SECONDS)
		return -ERANGE;
	*seconds = t;
	*nanos = ns;
	return 0;
}

/* ---- output ------------------------------------------------------------------ */

static int gen_check(yajl_gen_status st, struct pbjson_error *err)
{
	if (st == yajl_gen_status_ok)
		return 0;
	return fail(err, -EINVAL, "JSON generation failed (yajl status %d)", (int)st);
}

static int gen_str(yajl_gen g, const char *s, struct pbjson_error *err)
{
	s = s ? s : "";
	return gen_check(yajl_gen_string(g, (const unsigned char *)s, strlen(s)), err);
}

static int gen_bytes(yajl_gen g, const ProtobufCBinaryData *b, struct pbjson_error *err)
{
	char *s;
	if (pbjson_base64_encode(b->data, b->len, &s) < 0)
		return oom(err);
	int rc = gen_str(g, s, err);
	free(s);
	return rc;
}

static int gen_message(yajl_gen g, const ProtobufCMessage *m, int depth, struct pbjson_error *err);

static pbjson_any_resolver_fn any_resolver;

void pbjson_set_any_resolver(pbjson_any_resolver_fn fn)
{
	any_resolver = fn;
}

static int gen_u64(yajl_gen g, uint64_t v, struct pbjson_error *err)
{
	char buf[32];
	int n = snprintf(buf, sizeof(buf), "%" PRIu64, v);
	return gen_check(yajl_gen_number(g, buf, (size_t)n), err);
}

static int gen_double(yajl_gen g, double v, struct pbjson_error *err)
{
	if (isnan(v))
		return gen_str(g, "NaN", err);
	if (isinf(v))
		return gen_str(g, v > 0 ? "Infinity" : "-Infinity", err);
	return gen_check(yajl_gen_double(g, v), err);
}

static int gen_value(yajl_gen g, const ProtobufCFieldDescriptor *f, const void *p, int depth,
                     struct pbjson_error *err)
{
	switch (f->type) {
	case PROTOBUF_C_TYPE_STRING:
		return gen_str(g, *(char *const *)p, err);
	case PROTOBUF_C_TYPE_BYTES:
		return gen_bytes(g, p, err);
	case PROTOBUF_C_TYPE_BOOL:
		return gen_check(yajl_gen_bool(g, *(const protobuf_c_boolean *)p), err);
	case PROTOBUF_C_TYPE_UINT32:
	case PROTOBUF_C_TYPE_FIXED32:
		return gen_check(yajl_gen_integer(g, *(const uint32_t *)p), err);
	case PROTOBUF_C_TYPE_INT32:
	case PROTOBUF_C_TYPE_SINT32:
	case PROTOBUF_C_TYPE_SFIXED32:
		return gen_check(yajl_gen_integer(g, *(const int32_t *)p), err);
	case PROTOBUF_C_TYPE_UINT64:
	case PROTOBUF_C_TYPE_FIXED64:
		return gen_u64(g, *(const uint64_t *)p, err);
	case PROTOBUF_C_TYPE_INT64:
	case PROTOBUF_C_TYPE_SINT64:
	case PROTOBUF_C_TYPE_SFIXED64:
		return gen_check(yajl_gen_integer(g, *(const int64_t *)p), err);
	case PROTOBUF_C_TYPE_FLOAT:
		return gen_double(g, *(const float *)p, err);
	case PROTOBUF_C_TYPE_DOUBLE:
		return gen_double(g, *(const double *)p, err);
	case PROTOBUF_C_TYPE_ENUM: {
		int v = *(const int *)p;
		const ProtobufCEnumValue *ev =
		    protobuf_c_enum_descriptor_get_value(f->descriptor, v);
		return ev ? gen_str(g, ev->name, err) : gen_check(yajl_gen_integer(g, v), err);
	}
	case PROTOBUF_C_TYPE_MESSAGE: {
		const ProtobufCMessage *sub = *(ProtobufCMessage *const *)p;
		if (!sub)
			return gen_check(yajl_gen_null(g), err);
		return gen_message(g, sub, depth + 1, err);
	}
	}
	return fail(err, -EINVAL, "field %s: unknown protobuf type %d", f->name, (int)f->type);
}

/* A map's entries as one object; keys of any scalar type as strings. */
static int gen_map(yajl_gen g, const ProtobufCFieldDescriptor *f, const ProtobufCMessage *m,
                   int depth, struct pbjson_error *err)
{
	size_t n = *(const size_t *)((const char *)m + f->quantifier_offset);
	ProtobufCMessage *const *entries = *(ProtobufCMessage * *const *)field_ptr(m, f);
	const ProtobufCMessageDescriptor *ed = f->descriptor;
	int rc = gen_check(yajl_gen_map_open(g), err);
	for (size_t i = 0; rc == 0 && i < n; i++) {
		const ProtobufCFieldDescriptor *kf = &ed->fields[0], *vf = &ed->fields[1];
		const void *kp = field_ptr(entries[i], kf);
		if (kf->type == PROTOBUF_C_TYPE_STRING) {
			rc = gen_str(g, *(char *const *)kp, err);
		} else {
			/* non-string keys: their JSON text, as a string */
			yajl_gen kg = yajl_gen_alloc(NULL);
			if (!kg)
				return oom(err);
			const unsigned char *buf;
			size_t len;
			rc = gen_value(kg, kf, kp, depth, err);
			if (rc == 0 && yajl_gen_get_buf(kg, &buf, &len) == yajl_gen_status_ok)
				rc = gen_check(yajl_gen_string(g, buf, len), err);
			yajl_gen_free(kg);
		}
		if (rc == 0)
			rc = gen_value(g, vf, field_ptr(entries[i], vf), depth, err);
	}
	return rc ? rc : gen_check(yajl_gen_map_close(g), err);
}

static int gen_message(yajl_gen g, const ProtobufCMessage *m, int depth, struct pbjson_error *err)
{
	const ProtobufCMessageDescriptor *d = m->descriptor;
	if (depth > PBJSON_DEPTH_MAX)
		return fail(err, -ELOOP, "%s: nested deeper than %d", d->name, PBJSON_DEPTH_MAX);
	if (d == &google__protobuf__timestamp__descriptor) {
		const Google__Protobuf__Timestamp *ts = (const void *)m;
		char buf[64];
		if (pbjson_format_timestamp(ts->seconds, ts->nanos, buf, sizeof(buf)) == 0)
			return gen_str(g, buf, err);
		/* not representable in RFC 3339: fall through to the plain fields */
	}
	if (d == &google__protobuf__any__descriptor && any_resolver) {
		/* a type the caller knows: its value as JSON instead of base64 */
		const Google__Protobuf__Any *a = (const void *)m;
		const ProtobufCMessageDescriptor *vd = a->type_url ? any_resolver(a->type_url) : NULL;
		ProtobufCMessage *v =
		    vd ? protobuf_c_message_unpack(vd, NULL, a->value.len, a->value.data) : NULL;
		if (v) {
			int rc = gen_check(yajl_gen_map_open(g), err);
			if (rc == 0)
				rc = gen_str(g, "type_url", err);
			if (rc == 0)
				rc = gen_str(g, a->type_url, err);
			if (rc == 0)
				rc = gen_str(g, "value", err);
			if (rc == 0)
				rc = gen_message(g, v, depth + 1, err);
			if (rc == 0)
				rc = gen_check(yajl_gen_map_close(g), err);
			protobuf_c_message_free_unpacked(v, NULL);
			return rc;
		}
	}
	int rc = gen_check(yajl_gen_map_open(g), err);
	for (unsigned i = 0; rc == 0 && i < d->n_fields; i++) {
		const ProtobufCFieldDescriptor *f = &d->fields[i];
		if (f->label != PROTOBUF_C_LABEL_REPEATED &&
		    (!is_present(m, f) ||
		     (f->type == PROTOBUF_C_TYPE_MESSAGE && !*(void *const *)field_ptr(m, f))))
			continue;
		rc = gen_str(g, f->name, err);
		if (rc)
			break;
		if (is_map(f)) {
			rc = gen_map(g, f, m, depth, err);
		} else if (f->label == PROTOBUF_C_LABEL_REPEATED) {
			size_t n = *(const size_t *)((const char *)m + f->quantifier_offset);
			const char *arr = *(char *const *)field_ptr(m, f);
			rc = gen_check(yajl_gen_array_open(g), err);
			for (size_t k = 0; rc == 0 && k < n; k++)
				rc = gen_value(g, f, arr + k * pbjson_elem_size(f), depth, err);
			if (rc == 0)
				rc = gen_check(yajl_gen_array_close(g), err);
		} else {
			rc = gen_value(g, f, field_ptr(m, f), depth, err);
		}
	}
	return rc ? rc : gen_check(yajl_gen_map_close(g), err);
}

int pbjson_gen(yajl_gen g, const ProtobufCMessage *m, struct pbjson_error *err)
{
	return gen_message(g, m, 0, err);
}

/* yajl's beautified output opens an empty object or array on one line and
 * closes it on another ("{\n\n}"): make those "{}" and "[]", in place. */
static void collapse_empty(char *s)
{
	char *w = s;
	bool in_str = false;
	for (const char *r = s; *r;) {
		char c = *r;
		if (in_str) {
			if (c == '\\' && r[1]) {
				*w++ = *r++;
			} else if (c == '"') {
				in_str = false;
			}
			*w++ = *r++;
			continue;
		}
		if (c == '"')
			in_str = true;
		if (c == '{' || c == '[') {
			const char *q = r + 1;
			while (*q == ' ' || *q == '\n' || *q == '\t' || *q == '\r')
				q++;
			if (*q == (c == '{' ? '}' : ']')) {
				*w++ = c;
				*w++ = *q;
				r = q + 1;
				continue;
			}
		}
		*w++ = *r++;
	}
	*w = '\0';
}

int pbjson_format(const ProtobufCMessage *m, bool pretty, char **out, struct pbjson_error *err)
{
	yajl_gen g = yajl_gen_alloc(NULL);
	if (!g)
		return oom(err);
	if (pretty) {
		yajl_gen_config(g, yajl_gen_beautify, 1);
		yajl_gen_config(g, yajl_gen_indent_string, "  ");
	}
	int rc = pbjson_gen(g, m, err);
	const unsigned char *buf;
	size_t len;
	if (rc == 0)
		rc = gen_check(yajl_gen_get_buf(g, &buf, &len), err);
	if (rc == 0) {
		/* yajl's beautified output already ends in a newline */
		*out = strndup((const char *)buf, len);
		if (!*out)
			rc = oom(err);
		else if (pretty)
			collapse_empty(*out);
	}
	yajl_gen_free(g);
	return rc;
}

/* ---- input: scalars ------------------------------------------------------------ */

const char *pbjson_default_type_url(const char *field)
{
	if (strcmp(field, "spec") == 0)
		return "types.containerd.io/opencontainers/runtime-spec/1/Process";
	if (strcmp(field, "resources") == 0)
		return "types.containerd.io/opencontainers/runtime-spec/1/LinuxResources";
	return "";
}

static int read_file(const char *path, uint8_t **out, size_t *len, const char *what,
                     struct pbjson_error *err)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return fail(err, -errno, "%s: %s: %s", what, path, strerror(errno));
	size_t cap = 4096, n = 0;
	uint8_t *buf = malloc(cap + 1);
	int rc = 0;
	for (;;) {
		if (!buf) {
			rc = oom(err);
			break;
		}
		ssize_t r = read(fd, buf + n, cap - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			rc = fail(err, -errno, "%s: %s: %s", what, path, strerror(errno));
			break;
		}
		if (r == 0)
			break;
		n += (size_t)r;
		if (n > PBJSON_FILE_MAX) {
			rc = fail(err, -EFBIG, "%s: %s: larger than %u bytes", what, path,
			          PBJSON_FILE_MAX);
			break;
		}
		if (n == cap) {
			cap *= 2;
			uint8_t *nb = realloc(buf, cap + 1);
			if (!nb)
				free(buf);
			buf = nb;
		}
	}
	close(fd);
	if (rc) {
		free(buf);
		return rc;
	}
	buf[n] = '\0';
	*out = buf;
	*len = n;
	return 0;
}

/* raw text, or @FILE */
static int set_bytes_arg(ProtobufCBinaryData *b, const char *value, const char *path,
                         struct pbjson_error *err)
{
	uint8_t *data = NULL;
	size_t n = 0;
	if (value[0] == '@') {
		int rc = read_file(value + 1, &data, &n, path, err);
		if (rc)
			return rc;
	} else {
		n = strlen(value);
		data = (uint8_t *)strdup(value);
		if (!data)
			return oom(err);
	}
	free(b->data);
	b->data = data;
	b->len = n;
	return 0;
}

static int parse_int(const char *v, int64_t lo, int64_t hi, int64_t *out, const char *path,
                     struct pbjson_error *err)
{
	char *end;
	errno = 0;
	long long x = strtoll(v, &end, 0);
	if (errno || end == v || *end || isspace((unsigned char)*v) || x < lo || x > hi)
		return fail(err, -EINVAL,
		            "field %s: not an integer in [%" PRId64 ", %" PRId64 "]: \"%s\"", path,
		            lo, hi, v);
	*out = x;
	return 0;
}

static int parse_uint(const char *v, uint64_t hi, uint64_t *out, const char *path,
                      struct pbjson_error *err)
{
	char *end;
	errno = 0;
	unsigned long long x = *v == '-' || isspace((unsigned char)*v) ? 0 : strtoull(v, &end, 0);
	if (*v == '-' || isspace((unsigned char)*v) || errno || end == v || *end || x > hi)
		return fail(err, -EINVAL,
		            "field %s: not an unsigned integer in [0, %" PRIu64 "]: \"%s\"", path,
		            hi, v);
	*out = x;
	return 0;
}

static int parse_double(const char *v, double *out, const char *path, struct pbjson_error *err)
{
	char *end;
	errno = 0;
	double x = strtod(v, &end);
	if (errno || end == v || *end)
		return fail(err, -EINVAL, "field %s: not a number: \"%s\"", path, v);
	*out = x;
	return 0;
}

enum src {
	SRC_ARG,  /* command line: bytes raw or @FILE */
	SRC_JSON, /* JSON string: bytes in base64 */
};

/* A scalar field (or one element of a repeated one) at p, from text. */
static int set_scalar(const ProtobufCFieldDescriptor *f, void *p, const char *v, enum src src,
                      const char *path, struct pbjson_error *err)
{
	int64_t i;
	uint64_t u;
	double dv;
	int rc;
	switch (f->type) {
	case PROTOBUF_C_TYPE_STRING: {
		char *s = strdup(v);
		if (!s)
			return oom(err);
		char **sp = p;
		/* neither the shared empty string nor a proto2 default is ours to free */
		if (*sp != protobuf_c_empty_string && *sp != (const char *)f->default_value)
			free(*sp);
		*sp = s;
		return 0;
	}
	case PROTOBUF_C_TYPE_BYTES:
		if (src == SRC_ARG)
			return set_bytes_arg(p, v, path, err);
		{
			ProtobufCBinaryData *b = p;
			uint8_t *data;
			size_t n;
			rc = pbjson_base64_decode(v, &data, &n);
			if (rc == -ENOMEM)
				return oom(err);
			if (rc)
				return fail(err, rc, "field %s: not base64: \"%s\"", path, v);
			free(b->data);
			b->data = data;
			b->len = n;
			return 0;
		}
	case PROTOBUF_C_TYPE_BOOL:
		if (!strcmp(v, "true") || !strcmp(v, "1"))
			*(protobuf_c_boolean *)p = 1;
		else if (!strcmp(v, "false") || !strcmp(v, "0"))
			*(protobuf_c_boolean *)p = 0;
		else
			return fail(err, -EINVAL,
			            "field %s: not a bool (true, false, 1, 0): \"%s\"", path, v);
		return 0;
	case PROTOBUF_C_TYPE_UINT32:
	case PROTOBUF_C_TYPE_FIXED32:
		if ((rc = parse_uint(v, UINT32_MAX, &u, path, err)))
			return rc;
		*(uint32_t *)p = (uint32_t)u;
		return 0;
	case PROTOBUF_C_TYPE_INT32:
	case PROTOBUF_C_TYPE_SINT32:
	case PROTOBUF_C_TYPE_SFIXED32:
		if ((rc = parse_int(v, INT32_MIN, INT32_MAX, &i, path, err)))
			return rc;
		*(int32_t *)p = (int32_t)i;
		return 0;
	case PROTOBUF_C_TYPE_UINT64:
	case PROTOBUF_C_TYPE_FIXED64:
		if ((rc = parse_uint(v, UINT64_MAX, &u, path, err)))
			return rc;
		*(uint64_t *)p = u;
		return 0;
	case PROTOBUF_C_TYPE_INT64:
	case PROTOBUF_C_TYPE_SINT64:
	case PROTOBUF_C_TYPE_SFIXED64:
		if ((rc = parse_int(v, INT64_MIN, INT64_MAX, &i, path, err)))
			return rc;
		*(int64_t *)p = i;
		return 0;
	case PROTOBUF_C_TYPE_FLOAT:
		if ((rc = parse_double(v, &dv, path, err)))
			return rc;
		*(float *)p = (float)dv;
		return 0;
	case PROTOBUF_C_TYPE_DOUBLE:
		if ((rc = parse_double(v, &dv, path, err)))
			return rc;
		*(double *)p = dv;
		return 0;
	case PROTOBUF_C_TYPE_ENUM: {
		const ProtobufCEnumDescriptor *e = f->descriptor;
		const ProtobufCEnumValue *ev = protobuf_c_enum_descriptor_get_value_by_name(e, v);
		if (!ev && parse_int(v, INT32_MIN, INT32_MAX, &i, path, NULL) == 0) {
			*(int *)p = (int)i;
			return 0;
		}
		if (!ev) {
			char names[256] = "";
			size_t off = 0;
			for (unsigned k = 0; k < e->n_values && off < sizeof(names); k++)
				off += (size_t)snprintf(names + off, sizeof(names) - off, "%s%s",
				                        k ? ", " : "", e->values[k].name);
			return fail(err, -EINVAL, "field %s: \"%s\" is not a value of %s (%s)",
			            path, v, e->name, names);
		}
		*(int *)p = ev->value;
		return 0;
	}
	case PROTOBUF_C_TYPE_MESSAGE:
		break;
	}
	return fail(err, -EINVAL, "field %s: not a scalar", path);
}

/* ---- input: JSON trees ------------------------------------------------------------- */

static int set_from_json(ProtobufCMessage *m, const ProtobufCFieldDescriptor *f, yajl_val v,
                         const char *path, int depth, struct pbjson_error *err);
static int message_from_json(ProtobufCMessage *m, yajl_val v, const char *path, int depth,
                             struct pbjson_error *err);

static const char *json_kind(yajl_val v)
{
	if (YAJL_IS_STRING(v))
		return "a string";
	if (YAJL_IS_NUMBER(v))
		return "a number";
	if (YAJL_IS_OBJECT(v))
		return "an object";
	if (YAJL_IS_ARRAY(v))
		return "an array";
	if (YAJL_IS_TRUE(v) || YAJL_IS_FALSE(v))
		return "a bool";
	return "null";
}

/* A JSON tree back to text (an Any's value given as JSON). */
static int gen_tree(yajl_gen g, yajl_val v, int depth, const char *path, struct pbjson_error *err)
{
	if (depth > PBJSON_DEPTH_MAX)
		return fail(err, -ELOOP, "field %s: nested deeper than %d", path, PBJSON_DEPTH_MAX);
	int rc;
	switch (v ? v->type : yajl_t_null) {
	case yajl_t_string:
		return gen_str(g, YAJL_GET_STRING(v), err);
	case yajl_t_number:
		return gen_check(yajl_gen_number(g, YAJL_GET_NUMBER(v), strlen(YAJL_GET_NUMBER(v))),
		                 err);
	case yajl_t_true:
	case yajl_t_false:
		return gen_check(yajl_gen_bool(g, YAJL_IS_TRUE(v)), err);
	case yajl_t_object:
		rc = gen_check(yajl_gen_map_open(g), err);
		for (size_t i = 0; rc == 0 && i < v->u.object.len; i++) {
			rc = gen_str(g, v->u.object.keys[i], err);
			if (rc == 0)
				rc = gen_tree(g, v->u.object.values[i], depth + 1, path, err);
		}
		return rc ? rc : gen_check(yajl_gen_map_close(g), err);
	case yajl_t_array:
		rc = gen_check(yajl_gen_array_open(g), err);
		for (size_t i = 0; rc == 0 && i < v->u.array.len; i++)
			rc = gen_tree(g, v->u.array.values[i], depth + 1, path, err);
		return rc ? rc : gen_check(yajl_gen_array_close(g), err);
	default:
		return gen_check(yajl_gen_null(g), err);
	}
}

static int tree_text(yajl_val v, const char *path, uint8_t **out, size_t *len,
                     struct pbjson_error *err)
{
	yajl_gen g = yajl_gen_alloc(NULL);
	if (!g)
		return oom(err);
	int rc = gen_tree(g, v, 0, path, err);
	const unsigned char *buf;
	size_t n;
	if (rc == 0)
		rc = gen_check(yajl_gen_get_buf(g, &buf, &n), err);
	if (rc == 0) {
		*out = malloc(n + 1);
		if (!*out) {
			rc = oom(err);
		} else {
			memcpy(*out, buf, n);
			(*out)[n] = '\0';
			*len = n;
		}
	}
	yajl_gen_free(g);
	return rc;
}

static yajl_val object_get(yajl_val obj, const char *key)
{
	for (size_t i = 0; i < obj->u.object.len; i++)
		if (strcmp(obj->u.object.keys[i], key) == 0)
			return obj->u.object.values[i];
	return NULL;
}

/* An Any from JSON: {"type_url": U, "value": base64 | JSON value}, or any other
 * object/array: the value itself, as JSON text, with the field's default URL. */
static int any_from_json(Google__Protobuf__Any *a, yajl_val v, const char *field, const char *path,
                         struct pbjson_error *err)
{
	bool wrapped = false;
	if (YAJL_IS_OBJECT(v) && v->u.object.len > 0) {
		wrapped = true;
		for (size_t i = 0; i < v->u.object.len; i++)
			if (strcmp(v->u.object.keys[i], "type_url") &&
			    strcmp(v->u.object.keys[i], "value"))
				wrapped = false;
	}
	if (!YAJL_IS_OBJECT(v) && !YAJL_IS_ARRAY(v))
		return fail(err, -EINVAL,
		            "field %s: an Any is {\"type_url\": ..., \"value\": base64} or a JSON "
		            "object or array, not %s",
		            path, json_kind(v));
	yajl_val url = wrapped ? object_get(v, "type_url") : NULL;
	yajl_val val = wrapped ? object_get(v, "value") : v;
	if (url && !YAJL_IS_STRING(url))
		return fail(err, -EINVAL, "field %s.type_url: a string, not %s", path,
		            json_kind(url));
	const char *usrc = url ? YAJL_GET_STRING(url) : NULL;
	if (!usrc)
		usrc = a->type_url && *a->type_url ? a->type_url : pbjson_default_type_url(field);
	char *u = strdup(usrc);
	if (!u)
		return oom(err);
	uint8_t *data = NULL;
	size_t n = 0;
	int rc = 0;
	if (YAJL_IS_STRING(val) && wrapped) {
		rc = pbjson_base64_decode(YAJL_GET_STRING(val), &data, &n);
		if (rc == -ENOMEM)
			rc = oom(err);
		else if (rc)
			rc = fail(err, rc, "field %s.value: not base64", path);
	} else if (val && !YAJL_IS_NULL(val)) {
		rc = tree_text(val, path, &data, &n, err);
	}
	if (rc) {
		free(u);
		return rc;
	}
	if (a->type_url != protobuf_c_empty_string)
		free(a->type_url);
	a->type_url = u;
	if (data || !val) {
		free(a->value.data);
		a->value.data = data;
		a->value.len = n;
	}
	return 0;
}

static int timestamp_from_json(Google__Protobuf__Timestamp *ts, yajl_val v, const char *path,
                               int depth, struct pbjson_error *err)
{
	if (YAJL_IS_STRING(v)) {
		int rc = pbjson_parse_timestamp(YAJL_GET_STRING(v), &ts->seconds, &ts->nanos);
		if (rc)
			return fail(err, rc,
			            "field %s: not an RFC 3339 time in years 0001-9999: \"%s\"",
			            path, YAJL_GET_STRING(v));
		return 0;
	}
	if (YAJL_IS_OBJECT(v))
		return message_from_json(&ts->base, v, path, depth + 1, err);
	return fail(err, -EINVAL, "field %s: a Timestamp is an RFC 3339 string, not %s", path,
	            json_kind(v));
}

/* A message field: allocates it when unset. */
static ProtobufCMessage *sub_message(ProtobufCMessage *m, const ProtobufCFieldDescriptor *f,
                                     struct pbjson_error *err)
{
	ProtobufCMessage **sp = field_ptr(m, f);
	if (!*sp) {
		*sp = pbjson_new(f->descriptor);
		if (!*sp)
			oom(err);
	}
	return *sp;
}

/* One value into p: an element of a repeated field or the field itself. For a
 * message, p points at the message pointer. */
static int value_from_json(const ProtobufCFieldDescriptor *f, void *p, yajl_val v, const char *path,
                           int depth, struct pbjson_error *err)
{
	if (f->type == PROTOBUF_C_TYPE_MESSAGE) {
		ProtobufCMessage **sp = p;
		if (!*sp && !(*sp = pbjson_new(f->descriptor)))
			return oom(err);
		if (f->descriptor == &google__protobuf__any__descriptor)
			return any_from_json((void *)*sp, v, f->name, path, err);
		if (f->descriptor == &google__protobuf__timestamp__descriptor)
			return timestamp_from_json((void *)*sp, v, path, depth, err);
		return message_from_json(*sp, v, path, depth + 1, err);
	}
	char buf[8];
	const char *text = NULL, *want;
	bool ok = false;
	switch (f->type) {
	case PROTOBUF_C_TYPE_STRING:
		ok = YAJL_IS_STRING(v);
		want = "a string";
		break;
	case PROTOBUF_C_TYPE_BYTES:
		ok = YAJL_IS_STRING(v);
		want = "a base64 string";
		break;
	case PROTOBUF_C_TYPE_BOOL:
		ok = YAJL_IS_TRUE(v) || YAJL_IS_FALSE(v);
		if (ok)
			text = strcpy(buf, YAJL_IS_TRUE(v) ? "true" : "false");
		want = "true or false";
		break;
	case PROTOBUF_C_TYPE_ENUM:
		ok = YAJL_IS_STRING(v) || YAJL_IS_INTEGER(v);
		want = "a value's name or number";
		break;
	default: /* numbers, also as strings (proto3 JSON writes 64-bit ones so) */
		ok = YAJL_IS_STRING(v) || YAJL_IS_NUMBER(v);
		want = "a number";
		break;
	}
	if (!ok)
		return fail(err, -EINVAL, "field %s: %s expected, not %s", path, want,
		            json_kind(v));
	if (!text)
		text = YAJL_IS_STRING(v) ? YAJL_GET_STRING(v) : YAJL_GET_NUMBER(v);
	return set_scalar(f, p, text, SRC_JSON, path, err);
}

static int map_from_json(ProtobufCMessage *m, const ProtobufCFieldDescriptor *f, yajl_val v,
                         const char *path, int depth, struct pbjson_error *err)
{
	if (!YAJL_IS_OBJECT(v))
		return fail(err, -EINVAL, "field %s: a map is a JSON object, not %s", path,
		            json_kind(v));
	const ProtobufCMessageDescriptor *ed = f->descriptor;
	for (size_t i = 0; i < v->u.object.len; i++) {
		char sub[PBJSON_NAME_MAX];
		snprintf(sub, sizeof(sub), "%s.%s", path, v->u.object.keys[i]);
		ProtobufCMessage **slot = repeated_append(m, f);
		if (!slot || !(*slot = pbjson_new(ed)))
			return oom(err);
		int rc = set_scalar(&ed->fields[0], field_ptr(*slot, &ed->fields[0]),
		                    v->u.object.keys[i], SRC_JSON, sub, err);
		if (rc == 0)
			rc = value_from_json(&ed->fields[1], field_ptr(*slot, &ed->fields[1]),
			                     v->u.object.values[i], sub, depth + 1, err);
		if (rc)
			return rc;
	}
	return 0;
}

static int set_from_json(ProtobufCMessage *m, const ProtobufCFieldDescriptor *f, yajl_val v,
                         const char *path, int depth, struct pbjson_error *err)
{
	if (depth > PBJSON_DEPTH_MAX)
		return fail(err, -ELOOP, "field %s: nested deeper than %d", path, PBJSON_DEPTH_MAX);
	if (YAJL_IS_NULL(v))
		return 0;
	if (is_oneof(f))
		return fail(err, -EOPNOTSUPP, "field %s: a oneof member: not supported", path);
	if (is_map(f))
		return map_from_json(m, f, v, path, depth, err);
	if (f->label == PROTOBUF_C_LABEL_REPEATED) {
		if (!YAJL_IS_ARRAY(v))
			return fail(err, -EINVAL, "field %s: repeated, so a JSON array, not %s",
			            path, json_kind(v));
		for (size_t i = 0; i < v->u.array.len; i++) {
			char sub[PBJSON_NAME_MAX];
			snprintf(sub, sizeof(sub), "%s[%zu]", path, i);
			void *p = repeated_append(m, f);
			if (!p)
				return oom(err);
			int rc = value_from_json(f, p, v->u.array.values[i], sub, depth + 1, err);
			if (rc)
				return rc;
		}
		return 0;
	}
	int rc = value_from_json(f, field_ptr(m, f), v, path, depth, err);
	if (rc == 0)
		set_present(m, f);
	return rc;
}

static int message_from_json(ProtobufCMessage *m, yajl_val v, const char *path, int depth,
                             struct pbjson_error *err)
{
	const ProtobufCMessageDescriptor *d = m->descriptor;
	if (depth > PBJSON_DEPTH_MAX)
		return fail(err, -ELOOP, "%s: nested deeper than %d", *path ? path : d->name,
		            PBJSON_DEPTH_MAX);
	if (!YAJL_IS_OBJECT(v))
		return fail(err, -EINVAL, "%s%s%s: a JSON object expected, not %s",
		            *path ? "field " : "", *path ? path : d->name, *path ? "" : "",
		            json_kind(v));
	for (size_t i = 0; i < v->u.object.len; i++) {
		const char *key = v->u.object.keys[i];
		const ProtobufCFieldDescriptor *f =
		    protobuf_c_message_descriptor_get_field_by_name(d, key);
		if (!f)
			return fail(err, -EINVAL, "%s has no field \"%s\"", d->name, key);
		char sub[PBJSON_NAME_MAX];
		snprintf(sub, sizeof(sub), "%s%s%s", path, *path ? "." : "", key);
		int rc = set_from_json(m, f, v->u.object.values[i], sub, depth, err);
		if (rc)
			return rc;
	}
	return 0;
}

static int parse_tree(const char *json, yajl_val *out, const char *what, struct pbjson_error *err)
{
	char ebuf[256] = "";
	*out = yajl_tree_parse(json, ebuf, sizeof(ebuf));
	if (!*out) {
		/* yajl's message spans lines (the text and a caret): keep the first */
		char *nl = strchr(ebuf, '\n');
		if (nl)
			*nl = '\0';
		return fail(err, -EINVAL, "%s: not JSON: %s", what, *ebuf ? ebuf : "parse error");
	}
	return 0;
}

int pbjson_parse(ProtobufCMessage *m, const char *json, struct pbjson_error *err)
{
	yajl_val v;
	int rc = parse_tree(json, &v, m->descriptor->name, err);
	if (rc)
		return rc;
	rc = message_from_json(m, v, "", 0, err);
	yajl_tree_free(v);
	return rc;
}

/* ---- input: name=value -------------------------------------------------------------- */

/* A whole message field from a JSON text (an argument, or a repeated element). */
static int set_json_arg(ProtobufCMessage *m, const ProtobufCFieldDescriptor *f, void *p,
                        const char *value, const char *path, struct pbjson_error *err)
{
	yajl_val v;
	int rc = parse_tree(value, &v, path, err);
	if (rc)
		return rc;
	rc = value_from_json(f, p, v, path, 0, err);
	yajl_tree_free(v);
	return rc;
}

static int set_any_arg(Google__Protobuf__Any *a, const char *field, const char *sub,
                       const char *value, const char *path, struct pbjson_error *err)
{
	if (!a->type_url || a->type_url == protobuf_c_empty_string || !*a->type_url) {
		char *u = strdup(pbjson_default_type_url(field));
		if (!u)
			return oom(err);
		if (a->type_url != protobuf_c_empty_string)
			free(a->type_url);
		a->type_url = u;
	}
	if (sub && strcmp(sub, "type_url") == 0) {
		char *u = strdup(value);
		if (!u)
			return oom(err);
		free(a->type_url);
		a->type_url = u;
		return 0;
	}
	if (sub && strcmp(sub, "value") != 0)
		return fail(err, -EINVAL, "field %s.%s: an Any has type_url and value", path, sub);
	return set_bytes_arg(&a->value, value, path, err);
}

static int set_path(ProtobufCMessage *m, const char *name, const char *value, const char *prefix,
                    int depth, struct pbjson_error *err)
{
	const ProtobufCMessageDescriptor *d = m->descriptor;
	char fname[PBJSON_NAME_MAX], path[PBJSON_NAME_MAX];
	if (depth > PBJSON_DEPTH_MAX)
		return fail(err, -ELOOP, "field %s: nested deeper than %d", name, PBJSON_DEPTH_MAX);
	if (strlen(name) >= sizeof(fname))
		return fail(err, -ENAMETOOLONG, "field name longer than %d bytes",
		            PBJSON_NAME_MAX - 1);
	strcpy(fname, name);
	char *dot = strchr(fname, '.');
	const char *sub = NULL;
	if (dot) {
		*dot = '\0';
		sub = dot + 1;
	}
	snprintf(path, sizeof(path), "%s%s%s", prefix, *prefix ? "." : "", fname);
	const ProtobufCFieldDescriptor *f =
	    protobuf_c_message_descriptor_get_field_by_name(d, fname);
	if (!f)
		return fail(err, -EINVAL, "%s has no field \"%s\"", d->name, fname);
	if (is_oneof(f))
		return fail(err, -EOPNOTSUPP, "field %s: a oneof member: not supported", path);

	if (is_map(f)) {
		if (!sub || !*sub) {
			/* the whole map as a JSON object */
			yajl_val v;
			int rc = parse_tree(value, &v, path, err);
			if (rc)
				return rc;
			rc = map_from_json(m, f, v, path, 0, err);
			yajl_tree_free(v);
			return rc;
		}
		const ProtobufCMessageDescriptor *ed = f->descriptor;
		char kpath[PBJSON_NAME_MAX];
		snprintf(kpath, sizeof(kpath), "%s.%s", path, sub);
		ProtobufCMessage **slot = repeated_append(m, f);
		if (!slot || !(*slot = pbjson_new(ed)))
			return oom(err);
		int rc = set_scalar(&ed->fields[0], field_ptr(*slot, &ed->fields[0]), sub, SRC_ARG,
		                    kpath, err);
		if (rc)
			return rc;
		if (ed->fields[1].type == PROTOBUF_C_TYPE_MESSAGE)
			return set_json_arg(*slot, &ed->fields[1], field_ptr(*slot, &ed->fields[1]),
			                    value, kpath, err);
		return set_scalar(&ed->fields[1], field_ptr(*slot, &ed->fields[1]), value, SRC_ARG,
		                  kpath, err);
	}
	if (f->type != PROTOBUF_C_TYPE_MESSAGE && sub)
		return fail(err, -EINVAL, "field %s has no subfields", path);
	if (f->label == PROTOBUF_C_LABEL_REPEATED) {
		if (sub)
			return fail(err, -EINVAL,
			            "field %s: repeated: give each element as JSON (%s='{...}'), "
			            "or the whole request as JSON",
			            path, path);
		void *p = repeated_append(m, f);
		if (!p)
			return oom(err);
		if (f->type == PROTOBUF_C_TYPE_MESSAGE)
			return set_json_arg(m, f, p, value, path, err);
		return set_scalar(f, p, value, SRC_ARG, path, err);
	}
	int rc;
	if (f->type == PROTOBUF_C_TYPE_MESSAGE) {
		ProtobufCMessage *sm = sub_message(m, f, err);
		if (!sm)
			return -ENOMEM;
		if (f->descriptor == &google__protobuf__any__descriptor)
			rc = set_any_arg((void *)sm, f->name, sub, value, path, err);
		else if (sub)
			rc = set_path(sm, sub, value, path, depth + 1, err);
		else if (f->descriptor == &google__protobuf__timestamp__descriptor &&
		         value[0] != '{')
			rc = pbjson_parse_timestamp(value,
			                            &((Google__Protobuf__Timestamp *)sm)->seconds,
			                            &((Google__Protobuf__Timestamp *)sm)->nanos)
			         ? fail(err, -EINVAL,
			                "field %s: not an RFC 3339 time in years 0001-9999: \"%s\"",
			                path, value)
			         : 0;
		else
			rc = set_json_arg(m, f, field_ptr(m, f), value, path, err);
	} else {
		rc = set_scalar(f, field_ptr(m, f), value, SRC_ARG, path, err);
	}
	if (rc == 0)
		set_present(m, f);
	return rc;
}

int pbjson_set(ProtobufCMessage *m, const char *name, const char *value, struct pbjson_error *err)
{
	return set_path(m, name, value, "", 0, err);
}

int pbjson_set_arg(ProtobufCMessage *m, const char *arg, struct pbjson_error *err)
{
	const char *eq = strchr(arg, '=');
	if (!eq || eq == arg)
		return fail(err, -EINVAL, "FIELD=VALUE expected, got \"%s\"", arg);
	char name[PBJSON_NAME_MAX];
	if ((size_t)(eq - arg) >= sizeof(name))
		return fail(err, -ENAMETOOLONG, "field name longer than %d bytes",
		            PBJSON_NAME_MAX - 1);
	memcpy(name, arg, (size_t)(eq - arg));
	name[eq - arg] = '\0';
	return pbjson_set(m, name, eq + 1, err);
}

bool pbjson_same_method(const char *name, const char *arg)
{
	for (;;) {
		while (*arg == '_' || *arg == '-')
			arg++;
		if (!*name || !*arg)
			return !*name && !*arg;
		if (tolower((unsigned char)*name) != tolower((unsigned char)*arg))
			return false;
		name++;
		arg++;
	}
}
