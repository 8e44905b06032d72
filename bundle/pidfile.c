/* Reading runtime pid files (see pidfile.h). */
#include "pidfile.h"

#include "atomic.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

/* "2147483647\n" and then some */
#define PID_FILE_MAX 32

int bundle_read_pid(int dirfd, const char *name, pid_t *out)
{
	char buf[PID_FILE_MAX + 2], *end;
	size_t len;
	int r = bundle_read_small(dirfd, name, buf, sizeof(buf), &len);
	if (r == -EFBIG || r == -EINVAL)
		return -EBADMSG;
	if (r < 0)
		return r;
	/* runc writes the bare number; allow the newline a human or a script adds */
	if (len > 0 && buf[len - 1] == '\n')
		buf[--len] = '\0';
	if (len == 0 || strlen(buf) != len || buf[0] < '1' || buf[0] > '9')
		return -EBADMSG;
	errno = 0;
	long v = strtol(buf, &end, 10);
	if (errno || *end || v <= 0 || v > INT_MAX)
		return -EBADMSG;
	*out = (pid_t)v;
	return 0;
}
