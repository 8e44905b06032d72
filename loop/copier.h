/* One byte mover for every stream a nanoshim process carries (the shim: container pipes to FIFOs,
 * files or loggers; stdin FIFO to the container; pty master both ways): splice
 * when either end is a pipe, a small buffer otherwise, backpressure through
 * epoll on whichever side is blocking, and a callback once the source hit EOF
 * and every byte read has been written. */
#pragma once

#include "loop.h"

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

struct copier;
typedef void (*copier_done_fn)(struct copier *c, void *userdata);

/* Takes ownership of src and dst (dst may be shared: dst_owned false). */
struct copier *copier_new(struct loop *l, int src, int dst, bool dst_owned, copier_done_fn done,
			  void *userdata);
/* Ask the copier to stop once the source has nothing more right now (stdin
 * after CloseIO): it drains what is readable, then finishes. */
void copier_finish_when_idle(struct copier *c);
bool copier_done(const struct copier *c);
/* Closes fds; NULL fine. */
void copier_free(struct copier *c);
int copier_src(const struct copier *c);
/* What a copier holds, for handing its fds to another process (live
 * upgrade): its fds (-1 once done), the bytes read and not yet written (a
 * buffered copier between writes, its spool), and whether it ends once idle. */
struct copier_export {
	int src, dst;
	size_t buffered; /* in its copy buffer: cannot move */
	size_t spooled;	 /* in its output spool: copier_spool_take moves them */
	bool finishing;
};
void copier_export(const struct copier *c, struct copier_export *out);
/* Moves the spooled bytes, oldest first, to fd (a regular file, written at
 * its offset): the count, or -errno. */
ssize_t copier_spool_take(struct copier *c, int fd);
/* Reads bytes from fd (from its offset to EOF) into the copier's spool, to go
 * out before anything newer, and looks at once whether the reader is there:
 * copier_spool_take undone, or its bytes in another process's copier. 0, or
 * -errno (-ENOSPC past the spool's cap; no spool: -EINVAL). */
int copier_spool_give(struct copier *c, int fd);

struct spool;
/* For output whose writer must not stall while its reader is away: from now
 * on, while the destination is full the copier keeps reading the source into
 * s (taken; freed with the copier) and delivers the spooled bytes, in order,
 * before anything newer. Only a full spool stops it reading, and that is
 * logged, with how long the writer waited, under label (copied). drained (may
 * be NULL) is called when the source has ended and every byte is written or
 * spooled, if the copier is not done by then; done, as ever, once all is
 * written. Spooled bytes still unread when the copier is freed are dropped,
 * and counted in the log. */
void copier_set_spool(struct copier *c, struct spool *s, const char *label,
		      copier_done_fn drained);
/* Every byte the source gave is written, or held in the spool. */
bool copier_drained(const struct copier *c);
