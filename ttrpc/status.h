/* gRPC status codes as ttrpc carries them in google.rpc.Status, and the one
 * errno -> code table everything in nanoshim uses. */
#pragma once

#include <stdarg.h>

enum ttrpc_code {
	TTRPC_OK = 0,
	TTRPC_CANCELLED = 1,
	TTRPC_UNKNOWN = 2,
	TTRPC_INVALID_ARGUMENT = 3,
	TTRPC_DEADLINE_EXCEEDED = 4,
	TTRPC_NOT_FOUND = 5,
	TTRPC_ALREADY_EXISTS = 6,
	TTRPC_PERMISSION_DENIED = 7,
	TTRPC_RESOURCE_EXHAUSTED = 8,
	TTRPC_FAILED_PRECONDITION = 9,
	TTRPC_ABORTED = 10,
	TTRPC_OUT_OF_RANGE = 11,
	TTRPC_UNIMPLEMENTED = 12,
	TTRPC_INTERNAL = 13,
	TTRPC_UNAVAILABLE = 14,
	TTRPC_DATA_LOSS = 15,
	TTRPC_UNAUTHENTICATED = 16,
};

#define TTRPC_STATUS_MSG_MAX 1024

struct ttrpc_status {
	int code;
	char message[TTRPC_STATUS_MSG_MAX]; /* truncated with "..." if longer */
};

const char *ttrpc_code_name(int code);
int ttrpc_code_from_errno(int err); /* err positive or negative */
void ttrpc_status_set(struct ttrpc_status *st, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
void ttrpc_status_vset(struct ttrpc_status *st, int code, const char *fmt, va_list ap)
	__attribute__((format(printf, 3, 0)));
void ttrpc_status_ok(struct ttrpc_status *st);
