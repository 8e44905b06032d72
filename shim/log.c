/* Shim logging (see log.h). */
#include "log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static struct {
	bool debug;
	const char *ns;
	const char *id;
	unsigned long dropped;
} lg;

static const char *const level_names[] = {"error", "warning", "info", "debug"};

void shim_log_init(bool debug, const char *ns, const char *id)
{
	lg.debug = debug;
	lg.ns = ns;
	lg.id = id;
}

/* Appends s to the line with logrus' quoting of '"' and '\\' and newlines. */
static size_t quote(char *out, size_t room, const char *s)
{
	size_t n = 0;
	for (; *s && n + 2 < room; s++) {
		if (*s == '"' || *s == '\\') {
			out[n++] = '\\';
			out[n++] = *s;
		} else if (*s == '\n') {
			out[n++] = '\\';
			out[n++] = 'n';
		} else {
			out[n++] = *s;
		}
	}
	return n;
}

void shim_log(enum shim_log_level level, const char *fmt, ...)
{
	if (level == SHIM_LOG_DEBUG && !lg.debug)
		return;
	int saved = errno;
	char msg[1024], line[2560];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	struct tm tm;
	gmtime_r(&ts.tv_sec, &tm);
	size_t n = (size_t)snprintf(line, sizeof(line),
				    "time=\"%04d-%02d-%02dT%02d:%02d:%02d.%09ldZ\" level=%s msg=\"",
				    tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
				    tm.tm_min, tm.tm_sec, ts.tv_nsec, level_names[level]);
	n += quote(line + n, sizeof(line) - n - 200, msg);
	n += (size_t)snprintf(line + n, sizeof(line) - n, "\"");
	if (lg.ns)
		n += (size_t)snprintf(line + n, sizeof(line) - n, " namespace=%s", lg.ns);
	if (lg.id)
		n += (size_t)snprintf(line + n, sizeof(line) - n, " id=%s", lg.id);
	if (n > sizeof(line) - 2)
		n = sizeof(line) - 2;
	line[n++] = '\n';
	/* fd 2 is non-blocking when it is the log FIFO */
	if (write(STDERR_FILENO, line, n) != (ssize_t)n)
		lg.dropped++;
	errno = saved;
}
