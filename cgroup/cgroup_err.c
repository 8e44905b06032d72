/* cgroup_err_set (see cgroup_err.h). */
#include "cgroup_err.h"

#include <stdarg.h>
#include <stdio.h>

int cgroup_err_set(struct cgroup_err *e, int code, const char *fmt, ...)
{
	va_list ap;

	if (!e)
		return code;
	e->code = code;
	va_start(ap, fmt);
	vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
	va_end(ap);
	return code;
}
