/* One byte mover for every stream a nanoshim process carries (the shim: container pipes to FIFOs,
 * files or loggers; stdin FIFO to the container; pty master both ways): splice
 * when either end is a pipe, a small buffer otherwise, backpressure through
 * epoll on whichever side is blocking, and a callback once the source hit EOF
 * and every byte read has been written. */
#pragma once

#include "loop.h"

#include <stdbool.h>
#include <stddef.h>

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
 * buffered copier between writes), and whether it ends once idle. */
struct copier_export {
	int src, dst;
	size_t buffered;
	bool finishing;
};
void copier_export(const struct copier *c, struct copier_export *out);
