/* Bundle file names and their typed accessors (see files.h). */
#include "files.h"

#include "atomic.h"
#include "pidfile.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ADDRESS_MAX 4096

bool bundle_exec_id_reserved(const char *exec_id)
{
	return exec_id && (strcmp(exec_id, "init") == 0 || strcmp(exec_id, "shim") == 0);
}

int bundle_exec_pid_name(const char *exec_id, char *out, size_t outlen)
{
	if (!exec_id || !*exec_id || bundle_exec_id_reserved(exec_id) || strchr(exec_id, '/'))
		return -EINVAL;
	int n = snprintf(out, outlen, "%s%s", exec_id, BUNDLE_PID_SUFFIX);
	return n < 0 || (size_t)n >= outlen ? -ENAMETOOLONG : 0;
}

int bundle_read_address(int dirfd, char *out, size_t outlen)
{
	char buf[ADDRESS_MAX + 2];
	size_t len;
	int rc = bundle_read_small(dirfd, BUNDLE_ADDRESS_FILE, buf, sizeof(buf), &len);
	if (rc < 0)
		return rc == -EFBIG || rc == -EINVAL ? -EBADMSG : rc;
	if (len && buf[len - 1] == '\n')
		buf[--len] = '\0';
	if (!len || memchr(buf, '\n', len) || strlen(buf) != len)
		return -EBADMSG;
	if (len >= outlen)
		return -ENAMETOOLONG;
	memcpy(out, buf, len + 1);
	return 0;
}

int bundle_read_shim_pid(int dirfd, pid_t *pid)
{
	return bundle_read_pid(dirfd, BUNDLE_SHIM_PID_FILE, pid);
}
