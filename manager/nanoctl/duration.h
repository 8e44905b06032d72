/* Durations as Go's time.ParseDuration writes them ("500ms", "2s", "1.5s",
 * "1m30s"; units ns, us, µs, ms, s, m, h), for nanoctl's --timeout options. */
#pragma once

#include <stdint.h>

/* 0 with *ns set, -EINVAL for a malformed text, -ERANGE past INT64_MAX ns. A
 * bare "0" is accepted; other numbers need a unit. */
int nanoctl_parse_duration(const char *s, int64_t *ns);
