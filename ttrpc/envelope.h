/* Internal: ttrpc envelope encoding straight into outgoing frame buffers (one
 * pack of the inner message, no intermediate copy) and Response parsing that
 * leaves the payload in place. Field numbers as ttrpc.proto. */
#pragma once

#include "conn.h"
#include "status.h"
#include "ttrpc.h"

#include <protobuf-c/protobuf-c.h>

/* Each returns NULL with errno set: EMSGSIZE when the frame would exceed
 * TTRPC_MAX_DATA (never sent: containerd 1.6's client panics on one). The
 * buffer comes from c's spare when it has one big enough (c may be NULL). */
struct ttrpc_obuf *ttrpc_env_request(struct ttrpc_conn *c, uint32_t stream_id, uint8_t flags, const char *service,
				     const char *method, const ProtobufCMessage *req,
				     int64_t timeout_nano, const struct ttrpc_kv *md, size_t n_md);
/* A copy of Request frame b (as ttrpc_env_request made it) with timeout_nano
 * replaced (0: removed): a request held until its connection exists goes out
 * with the time its call has left. NULL with errno set. */
struct ttrpc_obuf *ttrpc_env_request_retime(const struct ttrpc_obuf *b, int64_t timeout_nano);
struct ttrpc_obuf *ttrpc_env_response_ok(struct ttrpc_conn *c, uint32_t stream_id, const ProtobufCMessage *msg);
struct ttrpc_obuf *ttrpc_env_response_err(struct ttrpc_conn *c, uint32_t stream_id, int code, const char *message);
struct ttrpc_obuf *ttrpc_env_data(struct ttrpc_conn *c, uint32_t stream_id, uint8_t flags, const ProtobufCMessage *msg);

/* Parses a Response: payload points into p. Returns 0 (st filled from the
 * status field, OK when absent) or -EBADMSG. */
int ttrpc_env_parse_response(const uint8_t *p, size_t n, const uint8_t **payload, size_t *plen,
			     struct ttrpc_status *st);
bool ttrpc_utf8_valid(const char *s);
bool ttrpc_utf8_valid_n(const uint8_t *s, size_t n);

/* A Request envelope, parsed in place: every slice points into the frame. */
struct ttrpc_slice {
	const uint8_t *p;
	size_t n;
};
struct ttrpc_env_req {
	struct ttrpc_slice service, method, payload;
	int64_t timeout_nano;
	size_t n_md;	 /* metadata pairs seen (all of them) */
	size_t md_bytes; /* key and value bytes of all pairs */
	struct ttrpc_slice md[TTRPC_METADATA_MAX][2]; /* the first TTRPC_METADATA_MAX pairs */
};
/* Parses a Request as ttrpc 1.1.1's decoder (gogo/protobuf) does: last value
 * wins, unknown fields and fields of the wrong wire type are skipped. Nothing is
 * allocated, so a hostile envelope costs one walk. Returns 0, or -EBADMSG with
 * err set to Go's error text ("unexpected EOF", "proto: field \".service\"
 * contains invalid UTF-8", ...). */
int ttrpc_env_parse_request(const uint8_t *p, size_t n, struct ttrpc_env_req *r, char *err,
			    size_t errlen);
/* True when p is a message whose top-level fields run past its end: what
 * gogo-generated decoders (containerd's API) report as "unexpected EOF". */
bool ttrpc_env_truncated(const uint8_t *p, size_t n);
