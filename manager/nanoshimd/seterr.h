/* The error text of nanoshimd_core's functions: a message into the caller's
 * buffer (err may be NULL), and the code to return with it. */
#pragma once

#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>

static inline int set_err(char *err, size_t errlen, int r, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static inline int set_err(char *err, size_t errlen, int r, const char *fmt, ...)
{
	if (err && errlen) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return r;
}
