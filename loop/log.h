/* A process's log: logrus-style text lines (time=... level=... msg="..." and
 * the fields set at init, e.g. namespace=... id=...), on fd 2 unless told
 * otherwise. Writes never block the loop: a line that does not fit (fd 2 is
 * non-blocking when it is the shim's log FIFO and nobody reads) is dropped and
 * counted. Before log_init: level info, no fields. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

/* Most severe first: a line is written when its level is <= the one set. */
enum log_level { LOG_LEVEL_ERROR, LOG_LEVEL_WARN, LOG_LEVEL_INFO, LOG_LEVEL_DEBUG };

struct log_field {
	const char *key;   /* a logrus key: letters, digits, '_' */
	const char *value; /* quoted as logrus quotes it when it needs to be */
};

/* Room for the fields' " key=value" text on every line. */
#define LOG_FIELDS_MAX 512

/* Sets the level and the fields every line ends with, in that order (copied).
 * -ENAMETOOLONG when the fields do not fit in LOG_FIELDS_MAX (nothing is
 * changed then). */
int log_init(enum log_level level, const struct log_field *fields, size_t n_fields);
/* Where lines go (fd 2 by default; not owned). */
void log_set_fd(int fd);
bool log_enabled(enum log_level level);
void log_write(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Lines dropped because the fd would have blocked or failed. */
unsigned long log_dropped(void);

#define log_error(...) log_write(LOG_LEVEL_ERROR, __VA_ARGS__)
#define log_warn(...) log_write(LOG_LEVEL_WARN, __VA_ARGS__)
#define log_info(...) log_write(LOG_LEVEL_INFO, __VA_ARGS__)
#define log_debug(...) log_write(LOG_LEVEL_DEBUG, __VA_ARGS__)
