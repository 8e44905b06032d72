/* Shim log: logrus-style text lines on fd 2, which the serving shim points at
 * the bundle's `log` FIFO (containerd copies it into its own log). Writes never
 * block the loop: a line that does not fit while nobody reads is dropped and
 * counted. */
#pragma once

#include <stdbool.h>

enum shim_log_level { SHIM_LOG_ERROR, SHIM_LOG_WARN, SHIM_LOG_INFO, SHIM_LOG_DEBUG };

void shim_log_init(bool debug, const char *ns, const char *id);
void shim_log(enum shim_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_error(...) shim_log(SHIM_LOG_ERROR, __VA_ARGS__)
#define log_warn(...) shim_log(SHIM_LOG_WARN, __VA_ARGS__)
#define log_info(...) shim_log(SHIM_LOG_INFO, __VA_ARGS__)
#define log_debug(...) shim_log(SHIM_LOG_DEBUG, __VA_ARGS__)
