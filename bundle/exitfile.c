/* Exit record files (see exitfile.h). */
#include "exitfile.h"

#include "atomic.h"
#include "id.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Longer than any valid record ("pid=-2147483648 status=... exited_at=..."). */
#define EXIT_RECORD_MAX 128

static int file_name(const char *exec_id, char *out, size_t outlen)
{
	if (exec_id) {
		if (bundle_validate_id("exec id", exec_id, NULL) < 0 ||
		    strcmp(exec_id, BUNDLE_EXIT_INIT) == 0)
			return -EINVAL;
	} else {
		exec_id = BUNDLE_EXIT_INIT;
	}
	int n = snprintf(out, outlen, "%s%s", exec_id, BUNDLE_EXIT_SUFFIX);
	return n < 0 || (size_t)n >= outlen ? -ENAMETOOLONG : 0;
}

int bundle_exit_write(int dirfd, const char *exec_id, const struct bundle_exit *e)
{
	char name[BUNDLE_ID_MAX + sizeof(BUNDLE_EXIT_SUFFIX)];
	char line[EXIT_RECORD_MAX];
	int r = file_name(exec_id, name, sizeof(name));
	if (r < 0)
		return r;
	if (e->exited_nsec < 0 || e->exited_nsec > 999999999)
		return -ERANGE;
	int n = snprintf(line, sizeof(line), "pid=%" PRId32 " status=%" PRId32
			 " exited_at=%" PRId64 ".%09" PRId32 "\n",
			 e->pid, e->status, e->exited_sec, e->exited_nsec);
	if (n < 0 || (size_t)n >= sizeof(line))
		return -EOVERFLOW;
	return bundle_write_file_atomic(dirfd, name, line, (size_t)n, 0600);
}

/* Parses "<key><signed decimal>" at *p, advancing past it; strict: no spaces,
 * no plus sign, no leading zeros beyond a lone 0, within [lo, hi]. */
static int parse_field(const char **p, const char *key, long long lo, long long hi,
		       long long *out)
{
	size_t kl = strlen(key);
	if (strncmp(*p, key, kl) != 0)
		return -EBADMSG;
	const char *s = *p + kl;
	const char *d = s[0] == '-' ? s + 1 : s;
	if (d[0] < '0' || d[0] > '9' || (d[0] == '0' && d[1] >= '0' && d[1] <= '9'))
		return -EBADMSG;
	char *end;
	errno = 0;
	long long v = strtoll(s, &end, 10);
	if (errno || v < lo || v > hi)
		return -EBADMSG;
	*p = end;
	*out = v;
	return 0;
}

int bundle_exit_read(int dirfd, const char *exec_id, struct bundle_exit *e)
{
	char name[BUNDLE_ID_MAX + sizeof(BUNDLE_EXIT_SUFFIX)];
	char *buf;
	size_t len;
	long long pid, status, sec;
	int r = file_name(exec_id, name, sizeof(name));
	if (r < 0)
		return r;
	r = bundle_read_file(dirfd, name, &buf, &len, EXIT_RECORD_MAX);
	if (r == -EFBIG || r == -EINVAL)
		return -EBADMSG;
	if (r < 0)
		return r;
	/* the newline is written last: without it the record is cut short */
	if (len == 0 || buf[len - 1] != '\n' || strlen(buf) != len) {
		r = -EBADMSG;
		goto out;
	}
	const char *p = buf;
	if ((r = parse_field(&p, "pid=", INT32_MIN, INT32_MAX, &pid)) < 0)
		goto out;
	if ((r = parse_field(&p, " status=", INT32_MIN, INT32_MAX, &status)) < 0)
		goto out;
	if ((r = parse_field(&p, " exited_at=", INT64_MIN, INT64_MAX, &sec)) < 0)
		goto out;
	/* exactly nine digits of nanoseconds, then the newline */
	if (*p++ != '.') {
		r = -EBADMSG;
		goto out;
	}
	int32_t nsec = 0;
	for (int i = 0; i < 9; i++, p++) {
		if (*p < '0' || *p > '9') {
			r = -EBADMSG;
			goto out;
		}
		nsec = nsec * 10 + (*p - '0');
	}
	if (strcmp(p, "\n") != 0) {
		r = -EBADMSG;
		goto out;
	}
	e->pid = (int32_t)pid;
	e->status = (int32_t)status;
	e->exited_sec = sec;
	e->exited_nsec = nsec;
	r = 0;
out:
	free(buf);
	return r;
}

int bundle_exit_remove(int dirfd, const char *exec_id)
{
	char name[BUNDLE_ID_MAX + sizeof(BUNDLE_EXIT_SUFFIX)];
	int r = file_name(exec_id, name, sizeof(name));
	if (r < 0)
		return r;
	if (unlinkat(dirfd, name, 0) < 0 && errno != ENOENT)
		return -errno;
	return 0;
}
