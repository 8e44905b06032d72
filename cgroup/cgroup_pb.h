/* Building protobuf-c messages by hand on the heap, so that one
 * protobuf_c_message_free_unpacked(msg, NULL) frees the whole tree: every
 * nested message, repeated array and string must come from malloc. */
#pragma once

#include <protobuf-c/protobuf-c.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A new zero-valued message of type d, or NULL. */
void *cgroup_pb_new(const ProtobufCMessageDescriptor *d);

/* Appends elem to a repeated field (*arr, *n); -E2BIG past max entries,
 * -ENOMEM. On failure elem is not taken: the caller frees it. */
int cgroup_pb_append(void ***arr, size_t *n, void *elem, size_t max);

/* Appends one value to a repeated uint64 field. */
int cgroup_pb_append_u64(uint64_t **arr, size_t *n, uint64_t v, size_t max);

/* One "key value" line of a stats file mapped onto a uint64 field. */
struct cgroup_pb_u64_field {
	const char *key;
	size_t offset; /* offsetof the uint64_t field in the message */
};

/* Stores v into the field of msg named key; false if the table has no key. */
bool cgroup_pb_set_u64(const struct cgroup_pb_u64_field *table, size_t n, void *msg,
                       const char *key, uint64_t v);

/* Reads a file of "key value" lines (memory.stat, cpu.stat, memory.events)
 * into msg through table; keys not in the table are ignored. A line without
 * exactly two fields fails with -EINVAL; so does a value that is not a
 * number when strict (containerd/cgroups v1), which v2 skips instead.
 * *nlines (may be NULL) counts the lines read. */
int cgroup_pb_read_kv(int dirfd, const char *name, const struct cgroup_pb_u64_field *table,
                      size_t n, void *msg, bool strict, size_t *nlines);
