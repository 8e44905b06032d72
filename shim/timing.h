/* Where a call's time went, for bench/start-bench.sh: at debug level, one line
 * per Create and Start with the shim's own share apart from the runtime's.
 * All times are reaper_now_ns() (CLOCK_MONOTONIC). */
#pragma once

#include "log.h"
#include "reaper.h"

#include <stdint.h>

static inline double timing_ms(int64_t from, int64_t to)
{
	return (double)(to - from) / 1e6;
}

/* recv: the handler ran; rt_start/rt_done: the runtime's run; the reply is now. */
static inline void timing_log(const char *what, const char *id, int64_t recv, int64_t rt_start,
			      int64_t rt_done)
{
	if (!log_enabled(LOG_LEVEL_DEBUG))
		return;
	int64_t now = reaper_now_ns();
	log_debug("timing %s %s: shim %.3f ms, runtime %.3f ms (received to runtime %.3f, runtime "
		  "to reply %.3f)",
		  what, id, timing_ms(recv, now) - timing_ms(rt_start, rt_done),
		  timing_ms(rt_start, rt_done), timing_ms(recv, rt_start), timing_ms(rt_done, now));
}
