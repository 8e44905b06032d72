/* Stream copier (see copier.h). */
#include "copier.h"
#include "log.h"
#include "spool.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define SPLICE_CHUNK (1u << 20)
#define BUF_SIZE (32u << 10)
#define BLOCKED_WARN_SECS 60
/* A destination full for this long has no reader, or one that stalls: only
 * then does the copier read ahead into the spool. A reader that is merely
 * slower than the writer keeps the direct path (and its pace). */
#define READER_AWAY_MS 100

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
	/* output mode (copier_set_spool) */
	struct spool *spool;
	char label[64];
	copier_done_fn on_drained;
	bool drained_told;
	bool spool_blocked;	    /* the spool is full: the source is left unread */
	struct timespec blocked_at; /* since when */
	unsigned blocked_count, reported_count;
	double blocked_secs; /* in all, over the blocked_count times */
	bool blocked_warned;
	struct timespec warned_at;
	bool reader_away;		 /* spool ahead until it is empty again */
	struct loop_timer *away_timer; /* the destination is full since */
	bool drop_logged;
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

static void log_spool_dropped(struct copier *c)
{
	size_t left = c->spool ? spool_len(c->spool) : 0;
	if (!left || c->drop_logged)
		return;
	c->drop_logged = true;
	log_warn("%s: %zu spooled bytes were never read, dropped (the full spool held the "
		 "process %u time%s)",
		 c->label, left, c->blocked_count, c->blocked_count == 1 ? "" : "s");
}

static void complete(struct copier *c)
{
	if (c->done)
		return;
	c->done = true;
	loop_timer_cancel(c->away_timer);
	c->away_timer = NULL;
	log_spool_dropped(c);
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

static double secs_since(const struct timespec *t)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	return (double)(now.tv_sec - t->tv_sec) + (double)(now.tv_nsec - t->tv_nsec) / 1e9;
}

/* The spool cannot take more (full, or its file failed: err): the source is
 * left alone, so its writer blocks once the pipe between fills up. Said once
 * a minute at most: a slow reader can fill and free the spool many times. */
static void spool_block(struct copier *c, int err)
{
	if (c->spool_blocked)
		return;
	c->spool_blocked = true;
	c->blocked_count++;
	clock_gettime(CLOCK_MONOTONIC, &c->blocked_at);
	if (c->blocked_warned && secs_since(&c->warned_at) < BLOCKED_WARN_SECS)
		return;
	c->blocked_warned = true;
	c->warned_at = c->blocked_at;
	if (err == -ENOSPC)
		log_warn("%s: output spool full (%zu bytes) and its reader is away or slow: the "
			 "process waits for it (time %u)",
			 c->label, spool_len(c->spool), c->blocked_count);
	else
		log_warn("%s: output spool cannot grow past %zu bytes: %s; the process waits for "
			 "the reader (time %u)",
			 c->label, spool_len(c->spool), strerror(-err), c->blocked_count);
}

static void spool_unblock(struct copier *c)
{
	if (!c->spool_blocked)
		return;
	c->spool_blocked = false;
	c->blocked_secs += secs_since(&c->blocked_at);
}

/* The reader has caught up: what the cap cost since the last report. */
static void spool_caught_up(struct copier *c)
{
	if (c->blocked_count == c->reported_count)
		return;
	log_info("%s: spooled output delivered; the full spool held the process %u time%s, "
		 "%.1f s in all",
		 c->label, c->blocked_count, c->blocked_count == 1 ? "" : "s", c->blocked_secs);
	c->reported_count = c->blocked_count;
}

static void pumped(struct copier *c, bool complete_now);
static bool pump_spooled(struct copier *c);

static void on_reader_away(void *ud)
{
	struct copier *c = ud;
	c->away_timer = NULL;
	c->reader_away = true;
	pumped(c, pump_spooled(c));
}

/* The destination is full: wait for room, and spool ahead if it stays full. */
static void wait_for_reader(struct copier *c)
{
	if (!c->away_timer)
		c->away_timer = loop_add_timer_ms(c->loop, READER_AWAY_MS, on_reader_away, c);
	wait_for(c, false, true);
}

static void reader_present(struct copier *c)
{
	loop_timer_cancel(c->away_timer);
	c->away_timer = NULL;
}

/* pump() for output with a spool: bytes spooled go out first; while the
 * destination stays full (READER_AWAY_MS), the source goes into the spool;
 * the source is left unread only when the spool is full. Returns true when
 * the copier is complete. */
static bool pump_spooled(struct copier *c)
{
	struct spool *s = c->spool;
	for (int rounds = 0; rounds < 64; rounds++) {
		ssize_t r;
		if (spool_len(s)) {
			ssize_t w = spool_drain(s, c->dst);
			if (w > 0) {
				reader_present(c);
				if (spool_room(s))
					spool_unblock(c);
				if (!spool_len(s)) {
					c->reader_away = false; /* caught up: live again */
					spool_caught_up(c);
				}
				continue;
			}
			if (w != -EAGAIN)
				return true; /* the destination is gone: nobody can read the rest */
			if (c->src_eof) {
				wait_for(c, false, true);
				return false;
			}
			if (!c->reader_away) {
				wait_for_reader(c);
				return false;
			}
			r = spool_fill(s, c->src);
			if (r > 0)
				continue;
			if (r == -EAGAIN) {
				wait_for(c, true, true);
				return false;
			}
			if (r != 0 && r != -EIO) {
				spool_block(c, (int)r);
				wait_for(c, false, true);
				return false;
			}
			c->src_eof = true; /* EOF, or EIO from a pty whose slave closed */
			continue;
		}
		if (c->src_eof)
			return true;
		if (c->splice) {
			ssize_t n = splice(c->src, NULL, c->dst, NULL, SPLICE_CHUNK,
					   SPLICE_F_NONBLOCK | SPLICE_F_MOVE);
			if (n > 0) {
				reader_present(c);
				/* less than asked: the source is empty or the
				 * destination full; a full one shows on the next
				 * wake-up, as EAGAIN */
				if ((size_t)n < SPLICE_CHUNK) {
					wait_for(c, true, false);
					return false;
				}
				continue;
			}
			if (n == 0) { /* our pipe: no writer left */
				c->src_eof = true;
				continue;
			}
			if (errno == EINTR)
				continue;
			if (errno == EINVAL) { /* this pair cannot splice after all */
				c->splice = false;
				continue;
			}
			if (errno != EAGAIN)
				return true; /* EPIPE, EIO...: nothing more can move */
			/* an empty source or a full destination; a full one is
			 * waited for, and spooled ahead of once it stays full */
			if (!c->reader_away && !dst_writable(c->dst)) {
				wait_for_reader(c);
				return false;
			}
		}
		/* a copy through the spool's memory: the buffered path, or the
		 * first bytes ahead of an absent reader */
		r = spool_fill(s, c->src);
		if (r > 0)
			continue;
		if (r == -EAGAIN) {
			wait_for(c, true, false);
			return false;
		}
		if (r == 0 || r == -EIO) {
			c->src_eof = true;
			continue;
		}
		spool_block(c, (int)r); /* no memory for even the first bytes */
		wait_for(c, false, true);
		return false;
	}
	/* more to do: come back when either side is ready. What was waited for
	 * last may not be (a full destination, while the source filled the
	 * spool in small reads from a pty). */
	wait_for(c, !c->src_eof && spool_room(s), spool_len(s) > 0);
	return false;
}

/* After a pump: complete, or tell that the source ended with bytes still
 * spooled. The callbacks come last: they may free the copier. */
static void pumped(struct copier *c, bool complete_now)
{
	if (complete_now) {
		complete(c);
		return;
	}
	if (c->spool && c->src_eof && !c->drained_told) {
		c->drained_told = true;
		wait_for(c, false, true);
		if (c->on_drained)
			c->on_drained(c, c->userdata);
	}
}

static bool pump_any(struct copier *c, uint32_t src_events)
{
	return c->spool ? pump_spooled(c) : pump(c, src_events);
}

static void on_src(struct loop_source *s, int fd, uint32_t events, void *ud)
{
	struct copier *c = ud;
	pumped(c, pump_any(c, events));
}

static void on_dst(struct loop_source *s, int fd, uint32_t events, void *ud)
{
	struct copier *c = ud;
	if (events & (EPOLLERR | EPOLLHUP)) {
		complete(c); /* nobody can read what is left */
		return;
	}
	pumped(c, pump_any(c, 0));
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

void copier_set_spool(struct copier *c, struct spool *s, const char *label,
		      copier_done_fn drained)
{
	spool_free(c->spool);
	c->spool = s;
	snprintf(c->label, sizeof(c->label), "%s", label ? label : "output");
	c->on_drained = drained;
}

bool copier_done(const struct copier *c)
{
	return c->done;
}

bool copier_drained(const struct copier *c)
{
	return c->done || (c->spool && c->src_eof);
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
	loop_timer_cancel(c->away_timer);
	log_spool_dropped(c);
	spool_free(c->spool);
	free(c->buf);
	free(c);
}

void copier_export(const struct copier *c, struct copier_export *out)
{
	out->src = c->done ? -1 : c->src;
	out->dst = c->done ? -1 : c->dst;
	out->buffered = c->splice || !c->buf ? 0 : c->len - c->off;
	out->spooled = c->spool ? spool_len(c->spool) : 0;
	out->finishing = c->finish_when_idle;
}

ssize_t copier_spool_take(struct copier *c, int fd)
{
	size_t moved = 0;
	while (c->spool && spool_len(c->spool)) {
		ssize_t w = spool_drain(c->spool, fd);
		if (w <= 0)
			return w < 0 ? w : -EIO;
		moved += (size_t)w;
	}
	return (ssize_t)moved;
}

int copier_spool_give(struct copier *c, int fd)
{
	if (!c->spool)
		return -EINVAL;
	for (;;) {
		ssize_t r = spool_fill(c->spool, fd);
		if (r == 0)
			break;
		if (r < 0 && r != -EINTR)
			return (int)r;
	}
	/* as when the destination stayed full: spool ahead until the reader
	 * takes the backlog (on_reader_away pumps, and finds out) */
	if (spool_len(c->spool) && !c->done) {
		loop_timer_cancel(c->away_timer);
		c->away_timer = loop_add_timer_ms(c->loop, 0, on_reader_away, c);
	}
	return 0;
}
