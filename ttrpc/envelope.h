/* Internal: ttrpc envelope encoding straight into outgoing frame buffers (one
 * pack of the inner message, no intermediate copy) and Response parsing that
 * leaves the payload in place. Field numbers as ttrpc.proto. */
#pragma once

#include "conn.h"
#include "status.h"
#include "ttrpc.h"

#include <protobuf-c/protobuf-c.h>

/* Each returns NULL with errno set: EMSGSIZE when the frame would exceed
 * TTRPC_MAX_DATA (never sent: containerd 1.6's client panics on one). */
struct ttrpc_obuf *ttrpc_env_request(uint32_t stream_id, uint8_t flags, const char *service,
				     const char *method, const ProtobufCMessage *req,
				     int64_t timeout_nano, const struct ttrpc_kv *md, size_t n_md);
struct ttrpc_obuf *ttrpc_env_response_ok(uint32_t stream_id, const ProtobufCMessage *msg);
struct ttrpc_obuf *ttrpc_env_response_err(uint32_t stream_id, int code, const char *message);
struct ttrpc_obuf *ttrpc_env_data(uint32_t stream_id, uint8_t flags, const ProtobufCMessage *msg);

/* Parses a Response: payload points into p. Returns 0 (st filled from the
 * status field, OK when absent) or -EBADMSG. */
int ttrpc_env_parse_response(const uint8_t *p, size_t n, const uint8_t **payload, size_t *plen,
			     struct ttrpc_status *st);
bool ttrpc_utf8_valid(const char *s);
