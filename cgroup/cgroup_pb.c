/* Heap-built protobuf-c messages (see cgroup_pb.h). */
#include "cgroup_pb.h"
#include "cgroup_file.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

void *cgroup_pb_new(const ProtobufCMessageDescriptor *d)
{
	void *m = calloc(1, d->sizeof_message);

	if (m)
		d->message_init(m);
	return m;
}

/* Capacity grows in powers of two, so it is implied by the count. */
static size_t grow_to(size_t n)
{
	size_t cap = 4;

	while (cap < n)
		cap *= 2;
	return cap;
}

int cgroup_pb_append(void ***arr, size_t *n, void *elem, size_t max)
{
	if (*n >= max)
		return -E2BIG;
	if (*n == 0 || (*n >= 4 && (*n & (*n - 1)) == 0)) {
		void **na = realloc(*arr, grow_to(*n + 1) * sizeof(void *));

		if (!na)
			return -ENOMEM;
		*arr = na;
	}
	(*arr)[(*n)++] = elem;
	return 0;
}

int cgroup_pb_append_u64(uint64_t **arr, size_t *n, uint64_t v, size_t max)
{
	if (*n >= max)
		return -E2BIG;
	if (*n == 0 || (*n >= 4 && (*n & (*n - 1)) == 0)) {
		uint64_t *na = realloc(*arr, grow_to(*n + 1) * sizeof(uint64_t));

		if (!na)
			return -ENOMEM;
		*arr = na;
	}
	(*arr)[(*n)++] = v;
	return 0;
}

bool cgroup_pb_set_u64(const struct cgroup_pb_u64_field *table, size_t n, void *msg,
                       const char *key, uint64_t v)
{
	for (size_t i = 0; i < n; i++) {
		if (strcmp(table[i].key, key) == 0) {
			memcpy((char *)msg + table[i].offset, &v, sizeof(v));
			return true;
		}
	}
	return false;
}

struct kv_ctx {
	const struct cgroup_pb_u64_field *table;
	size_t n;
	void *msg;
	bool strict;
	size_t lines;
};

static int kv_line(char *line, void *ctx)
{
	struct kv_ctx *c = ctx;
	char *key, *value;
	uint64_t v;
	int r;

	if (cgroup_split_kv(line, &key, &value) < 0)
		return -EINVAL;
	c->lines++;
	r = cgroup_parse_u64(value, &v);
	if (r < 0)
		return c->strict ? r : 0;
	cgroup_pb_set_u64(c->table, c->n, c->msg, key, v);
	return 0;
}

int cgroup_pb_read_kv(int dirfd, const char *name, const struct cgroup_pb_u64_field *table,
                      size_t n, void *msg, bool strict, size_t *nlines)
{
	struct kv_ctx c = {.table = table, .n = n, .msg = msg, .strict = strict};
	int r = cgroup_file_lines(dirfd, name, kv_line, &c);

	if (nlines)
		*nlines = c.lines;
	return r;
}
