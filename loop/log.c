/* Logging in logrus' text format (see log.h). */
#include "log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static struct {
	enum log_level level;
	int fd;
	char fields[LOG_FIELDS_MAX]; /* " key=value ..." */
	unsigned long dropped;
} lg = {.level = LOG_LEVEL_INFO, .fd = STDERR_FILENO};

static const char *const level_names[] = {"error", "warning", "info", "debug"};

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

/* logrus' TextFormatter.needsQuoting */
static bool needs_quoting(const char *s)
{
	for (; *s; s++) {
		char c = *s;
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '-' || c == '.' || c == '_' || c == '/' || c == '@' || c == '^' || c == '+'))
			return true;
	}
	return false;
}

int log_init(enum log_level level, const struct log_field *fields, size_t n_fields)
{
	char buf[LOG_FIELDS_MAX];
	size_t n = 0;
	buf[0] = '\0';
	for (size_t i = 0; i < n_fields; i++) {
		const char *v = fields[i].value ? fields[i].value : "";
		bool q = needs_quoting(v);
		/* worst case: every byte of the value escaped */
		size_t need = 1 + strlen(fields[i].key) + 1 + (q ? 2 * strlen(v) + 2 : strlen(v));
		if (n + need >= sizeof(buf))
			return -ENAMETOOLONG;
		n += (size_t)snprintf(buf + n, sizeof(buf) - n, " %s=%s", fields[i].key, q ? "\"" : "");
		if (q) {
			n += quote(buf + n, sizeof(buf) - n, v);
			buf[n++] = '"';
			buf[n] = '\0';
		} else {
			n += (size_t)snprintf(buf + n, sizeof(buf) - n, "%s", v);
		}
	}
	memcpy(lg.fields, buf, n + 1);
	lg.level = level;
	return 0;
}

void log_set_fd(int fd)
{
	lg.fd = fd;
}

bool log_enabled(enum log_level level)
{
	return level <= lg.level;
}

unsigned long log_dropped(void)
{
	return lg.dropped;
}

void log_write(enum log_level level, const char *fmt, ...)
{
	if (!log_enabled(level))
		return;
	int saved = errno;
	char msg[1024], line[1024 * 2 + LOG_FIELDS_MAX + 128];
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
	n += quote(line + n, sizeof(line) - n - LOG_FIELDS_MAX - 2, msg);
	n += (size_t)snprintf(line + n, sizeof(line) - n, "\"%s", lg.fields);
	if (n > sizeof(line) - 2)
		n = sizeof(line) - 2;
	line[n++] = '\n';
	if (write(lg.fd, line, n) != (ssize_t)n)
		lg.dropped++;
	errno = saved;
}
