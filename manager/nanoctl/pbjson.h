/* pbjson: protobuf-c messages as JSON and back, for nanoctl and the e2e tools.
 * Output goes through yajl_gen: proto field names, every scalar field (defaults
 * too), unset message fields left out, 64-bit integers as JSON numbers, bytes as
 * base64, enums by name, maps as objects, google.protobuf.Any as
 * {"type_url", "value": base64}, google.protobuf.Timestamp as an RFC 3339 string.
 * Input sets fields from "name=value" strings (command lines) or from one JSON
 * object (yajl_tree); a refusal says which field and why in a pbjson_error.
 * oneof members (none in the containerd APIs used here) are printed when set and
 * refused on input. */
#pragma once

#include <protobuf-c/protobuf-c.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <yajl/yajl_gen.h>

#define PBJSON_ERR_MAX 512
#define PBJSON_DEPTH_MAX 32        /* nesting of messages, arrays and objects */
#define PBJSON_FILE_MAX (4u << 20) /* an @FILE value: ttrpc's message bound */
#define PBJSON_NAME_MAX 256        /* a dotted field path */

struct pbjson_error {
	char msg[PBJSON_ERR_MAX];
};

/* ---- message -> JSON ---------------------------------------------------- */

/* Generates m as one JSON object into g. 0 or -errno (err filled). */
int pbjson_gen(yajl_gen g, const ProtobufCMessage *m, struct pbjson_error *err);
/* m as a malloc'ed, NUL-terminated JSON text (pretty: two-space indent and a
 * final newline). 0 or -errno. */
int pbjson_format(const ProtobufCMessage *m, bool pretty, char **out, struct pbjson_error *err);

/* Output of a google.protobuf.Any whose type fn knows (fn returns its descriptor,
 * else NULL): {"type_url": U, "value": <the message as JSON>}. NULL: base64 always. */
typedef const ProtobufCMessageDescriptor *(*pbjson_any_resolver_fn)(const char *type_url);
void pbjson_set_any_resolver(pbjson_any_resolver_fn fn);

/* ---- input -------------------------------------------------------------- */

/* A zeroed, initialised message of type d, malloc'ed so that
 * protobuf_c_message_free_unpacked(m, NULL) frees it and everything pbjson put
 * in it. NULL on ENOMEM. */
ProtobufCMessage *pbjson_new(const ProtobufCMessageDescriptor *d);

/* Sets one field from a command-line value. name is a proto field name, dotted
 * into message fields ("spec.type_url", "exited_at.seconds") or naming a map key
 * ("annotations.io.example/key"). value: strings as given; bytes as given, or
 * @FILE for a file's content; bools true/false/1/0; integers in C syntax (0x..
 * too); enums by name or number; a Timestamp as RFC 3339; an Any as its JSON
 * value, or @FILE (type URL from FIELD.type_url=URL, default: the runtime-spec
 * type containerd uses for the field, see pbjson_default_type_url); any other
 * message as a JSON object. A repeated field gets one more element per call.
 * 0 or -errno (-EINVAL for bad input, err says which field and why). */
int pbjson_set(ProtobufCMessage *m, const char *name, const char *value, struct pbjson_error *err);
/* The same, from one "name=value" argument. */
int pbjson_set_arg(ProtobufCMessage *m, const char *arg, struct pbjson_error *err);
/* Sets the fields a JSON object names (the output format above: a Timestamp
 * may also be {"seconds","nanos"}; an Any may also be a JSON object or array
 * that is its value, with the default type URL; integers may be strings).
 * Fields already set are overwritten, repeated ones appended to. 0 or -errno. */
int pbjson_parse(ProtobufCMessage *m, const char *json, struct pbjson_error *err);

/* The type URL an Any field named field gets when none is given: containerd's
 * runtime-spec types for ExecProcessRequest.spec and UpdateTaskRequest.resources,
 * else "". */
const char *pbjson_default_type_url(const char *field);

/* ---- pieces, exported for tests and other tools ----------------------------- */

/* A method's name as a person types it: "ResizePty" matches resizepty,
 * resize_pty and RESIZE-PTY. */
bool pbjson_same_method(const char *name, const char *arg);
/* The size of one element of field f in a repeated field's array. */
size_t pbjson_elem_size(const ProtobufCFieldDescriptor *f);

/* RFC 3339 ("2026-12-06T05:44:24.5Z", "...+02:00") <-> seconds and nanoseconds
 * since the Unix epoch, years 0001-9999. */
int pbjson_parse_timestamp(const char *s, int64_t *seconds, int32_t *nanos);
/* Fractions as 0, 3, 6 or 9 digits (protobuf's JSON mapping); always UTC "Z".
 * -ERANGE outside years 0001-9999 or nanos outside 0..999999999. */
int pbjson_format_timestamp(int64_t seconds, int32_t nanos, char *buf, size_t len);
/* Standard base64 with padding; the decoder also takes the URL alphabet and
 * missing padding. encode: malloc'ed string; decode: malloc'ed bytes, -EINVAL
 * on a bad character. */
int pbjson_base64_encode(const uint8_t *data, size_t len, char **out);
int pbjson_base64_decode(const char *s, uint8_t **out, size_t *len);
