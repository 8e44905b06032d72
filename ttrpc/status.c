/* Status codes and the errno mapping (see status.h). */
#include "status.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

static const char *const names[] = {
	"OK",		 "Canceled",	       "Unknown",	    "InvalidArgument",
	"DeadlineExceeded", "NotFound",	       "AlreadyExists",	    "PermissionDenied",
	"ResourceExhausted", "FailedPrecondition", "Aborted",	    "OutOfRange",
	"Unimplemented",	 "Internal",	       "Unavailable",	    "DataLoss",
	"Unauthenticated",
};

const char *ttrpc_code_name(int code)
{
	if (code < 0 || code >= (int)(sizeof(names) / sizeof(names[0])))
		return "Unknown";
	return names[code];
}

int ttrpc_code_from_errno(int err)
{
	if (err < 0)
		err = -err;
	switch (err) {
	case 0:
		return TTRPC_OK;
	case ENOENT:
	case ESRCH:
		return TTRPC_NOT_FOUND;
	case EEXIST:
		return TTRPC_ALREADY_EXISTS;
	case EINVAL:
	case ENAMETOOLONG:
		return TTRPC_INVALID_ARGUMENT;
	case EPERM:
	case EACCES:
		return TTRPC_PERMISSION_DENIED;
	case ENOMEM:
	case ENOSPC:
	case EMFILE:
	case ENFILE:
	case EMSGSIZE:
	case E2BIG:
		return TTRPC_RESOURCE_EXHAUSTED;
	case EBUSY:
	case ENOTEMPTY:
		return TTRPC_FAILED_PRECONDITION;
	case ETIMEDOUT:
		return TTRPC_DEADLINE_EXCEEDED;
	case ECANCELED:
		return TTRPC_CANCELLED;
	case ENOSYS:
	case EOPNOTSUPP:
		return TTRPC_UNIMPLEMENTED;
	case ECONNREFUSED:
	case ECONNRESET:
	case EPIPE:
	case ENOTCONN:
	case EAGAIN:
		return TTRPC_UNAVAILABLE;
	case ERANGE:
	case EOVERFLOW:
		return TTRPC_OUT_OF_RANGE;
	default:
		return TTRPC_UNKNOWN;
	}
}

void ttrpc_status_vset(struct ttrpc_status *st, int code, const char *fmt, va_list ap)
{
	st->code = code;
	int n = vsnprintf(st->message, sizeof(st->message), fmt, ap);
	if (n >= (int)sizeof(st->message))
		memcpy(st->message + sizeof(st->message) - 4, "...", 4);
}

void ttrpc_status_set(struct ttrpc_status *st, int code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	ttrpc_status_vset(st, code, fmt, ap);
	va_end(ap);
}

void ttrpc_status_ok(struct ttrpc_status *st)
{
	st->code = TTRPC_OK;
	st->message[0] = '\0';
}
