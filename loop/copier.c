/* Stream copier (see copier.h). */
#include "copier.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/stat.h>
#include <unistd.h>

#define SPLICE_CHUNK (1u << 20)
#define BUF_SIZE (32u << 10)

struct copier {
	struct loop *loop;
	int src, dst;
	bool dst_owned;
	bool splice;
	struct loop_source *src_s, *dst_s;
	char *buf; /* non-splice path only */
	size_t off, len;
	bool src_eof;
	bool finish_when_idle;
	bool done;
	copier_done_fn on_done;
	void *userdata;
};

static bool is_pipe(int fd)
{
	struct stat st;
	return fstat(fd, &st) == 0 && S_ISFIFO(st.st_mode);
}

static bool is_file(int fd)
{
	struct stat st;
	return fstat(fd, &st) == 0 && S_ISREG(st.st_mode);
}

static void on_dst(struct loop_source *s, int fd, uint32_t events, void *ud);

/* Waits for the source to be readable, or for room in the destination. A side
 * waited for with no events leaves the loop's epoll set: a hung-up source with
 * bytes left behind a full destination (stdin the process does not read, output
 * behind a stalled reader) must not wake the loop until the destination has
 * room again. */
static void wait_for(struct copier *c, bool src_in, bool dst_out)
{
	loop_io_set_events(c->src_s, src_in ? EPOLLIN : 0);
	if (dst_out && !c->dst_s)
		c->dst_s = loop_add_io(c->loop, c->dst, EPOLLOUT, on_dst, c);
	if (c->dst_s)
		loop_io_set_events(c->dst_s, dst_out ? EPOLLOUT : 0);
}

static void complete(struct copier *c)
{
	if (c->done)
		return;
	c->done = true;
	loop_io_remove(c->src_s);
	c->src_s = NULL;
	loop_io_remove(c->dst_s);
	c->dst_s = NULL;
	/* Closing is the message: EOF for a process's stdin, the writer gone
	 * for an output FIFO's reader. */
	close(c->src);
	c->src = -1;
	if (c->dst_owned)
		close(c->dst);
	c->dst = -1;
	if (c->on_done)
		c->on_done(c, c->userdata);
}

static bool dst_writable(int fd)
{
	struct pollfd p = {.fd = fd, .events = POLLOUT};
	return poll(&p, 1, 0) == 1 && (p.revents & POLLOUT);
}

/* Moves as much as possible now. Returns true when the copier is complete. */
static bool pump(struct copier *c, uint32_t src_events)
{
	bool room_seen = false, moved = false;
	for (int rounds = 0; rounds < 64; rounds++) {
		if (c->splice) {
			ssize_t n = splice(c->src, NULL, c->dst, NULL, SPLICE_CHUNK,
					   SPLICE_F_NONBLOCK | SPLICE_F_MOVE);
			if (n > 0) {
				room_seen = false;
				moved = true;
				/* less than asked: the source is empty or the destination
				 * full; epoll is level-triggered, so waiting for input is
				 * safe either way and costs no probe now */
				if ((size_t)n < SPLICE_CHUNK && !c->finish_when_idle) {
					wait_for(c, true, false);
					return false;
				}
				continue;
			}
			if (n == 0) {
				/* 0 also means "no writer right now" on a FIFO:
				 * only a hangup (or CloseIO) is the end. */
				if (!(src_events & EPOLLHUP) && !c->finish_when_idle) {
					wait_for(c, true, false);
					return false;
				}
				return true;
			}
			if (errno == EINTR)
				continue;
			if (errno == EINVAL) { /* this pair cannot splice after all */
				c->buf = malloc(BUF_SIZE);
				if (!c->buf)
					return true;
				c->splice = false;
				continue;
			}
			if (errno == EAGAIN && !moved && (src_events & EPOLLIN) &&
			    !c->finish_when_idle) {
				/* woken because the source has data and none moved:
				 * only we read it, so the destination is full */
				wait_for(c, false, true);
				return false;
			}
			if (errno == EAGAIN) {
				/* EAGAIN means an empty source or a full destination.
				 * Only a splice that fails right after the destination
				 * was seen writable proves the source empty: the
				 * process may have drained its pipe in between. */
				if (!dst_writable(c->dst)) {
					room_seen = false;
					wait_for(c, false, true);
					return false;
				}
				if (!room_seen) {
					room_seen = true;
					continue;
				}
				if (c->finish_when_idle)
					return true;
				wait_for(c, true, false);
				return false;
			}
			return true; /* EPIPE, EIO...: nothing more can move */
		}
		if (c->off < c->len) {
			ssize_t w = write(c->dst, c->buf + c->off, c->len - c->off);
			if (w > 0) {
				c->off += (size_t)w;
				continue;
			}
			if (w < 0 && errno == EINTR)
				continue;
			if (w < 0 && errno == EAGAIN) {
				wait_for(c, false, true);
				return false;
			}
			return true; /* dst gone: drop */
		}
		if (c->src_eof)
			return true;
		ssize_t r = read(c->src, c->buf, BUF_SIZE);
		if (r > 0) {
			c->off = 0;
			c->len = (size_t)r;
			continue;
		}
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0 && errno == EAGAIN) {
			if (c->finish_when_idle)
				return true;
			wait_for(c, true, false);
			return false;
		}
		if (r == 0 && !(src_events & EPOLLHUP) && !c->finish_when_idle) {
			wait_for(c, true, false);
			return false;
		}
		c->src_eof = true; /* EOF, or EIO from a pty whose slave closed */
		return true;
	}
	return false; /* more to do: come back on the next readiness */
}

static void on_src(struct loop_source *s, int fd, uint32_t events, void *ud)
{
	struct copier *c = ud;
	if (pump(c, events))
		complete(c);
}

static void on_dst(struct loop_source *s, int fd, uint32_t events, void *ud)
{
	struct copier *c = ud;
	if (events & (EPOLLERR | EPOLLHUP)) {
		complete(c); /* nobody can read what is left */
		return;
	}
	if (pump(c, 0))
		complete(c);
}

struct copier *copier_new(struct loop *l, int src, int dst, bool dst_owned, copier_done_fn done,
			  void *userdata)
{
	struct copier *c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	c->loop = l;
	c->src = src;
	c->dst = dst;
	c->dst_owned = dst_owned;
	c->on_done = done;
	c->userdata = userdata;
	fcntl(src, F_SETFL, fcntl(src, F_GETFL) | O_NONBLOCK);
	fcntl(dst, F_SETFL, fcntl(dst, F_GETFL) | O_NONBLOCK);
	/* splice needs a pipe on one side and splice support on the other:
	 * pipes and regular files have it, ttys do not. */
	c->splice = is_pipe(src) && (is_pipe(dst) || is_file(dst));
	if (!c->splice) {
		c->buf = malloc(BUF_SIZE);
		if (!c->buf) {
			free(c);
			return NULL;
		}
	}
	c->src_s = loop_add_io(l, src, EPOLLIN, on_src, c);
	if (!c->src_s) {
		free(c->buf);
		free(c);
		return NULL;
	}
	return c;
}

void copier_finish_when_idle(struct copier *c)
{
	if (c->done)
		return;
	c->finish_when_idle = true;
	if (pump(c, 0))
		complete(c);
}

bool copier_done(const struct copier *c)
{
	return c->done;
}

int copier_src(const struct copier *c)
{
	return c->src;
}

void copier_free(struct copier *c)
{
	if (!c)
		return;
	loop_io_remove(c->src_s);
	loop_io_remove(c->dst_s);
	if (c->src >= 0)
		close(c->src);
	if (c->dst_owned && c->dst >= 0)
		close(c->dst);
	free(c->buf);
	free(c);
}

void copier_export(const struct copier *c, struct copier_export *out)
{
	out->src = c->done ? -1 : c->src;
	out->dst = c->done ? -1 : c->dst;
	out->buffered = c->splice ? 0 : c->len - c->off;
	out->finishing = c->finish_when_idle;
}
