/* Non-blocking frame connection (see conn.h). */
#include "conn.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#define READS_PER_EVENT 32 /* fairness between connections */
#define IOV_MAX_BATCH 64

int ttrpc_conn_init(struct ttrpc_conn *c, int kind, int fd, int epfd,
		    const struct ttrpc_conn_ops *ops, void *owner)
{
	memset(c, 0, sizeof(*c));
	c->kind = kind;
	c->fd = fd;
	c->epfd = epfd;
	c->ops = ops;
	c->owner = owner;
	ttrpc_reader_init(&c->rd);
	c->ev = EPOLLIN;
	struct epoll_event e = {.events = c->ev, .data.ptr = c};
	if (epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &e) < 0)
		return -errno;
	return 0;
}

void ttrpc_conn_release(struct ttrpc_conn *c)
{
	if (c->fd >= 0) {
		epoll_ctl(c->epfd, EPOLL_CTL_DEL, c->fd, NULL);
		close(c->fd);
		c->fd = -1;
	}
	struct ttrpc_obuf *b = c->wq_head;
	while (b) {
		struct ttrpc_obuf *n = b->next;
		free(b);
		b = n;
	}
	c->wq_head = c->wq_tail = NULL;
	c->wq_bytes = 0;
	free(c->spare);
	c->spare = NULL;
	ttrpc_reader_release(&c->rd);
}

struct ttrpc_obuf *ttrpc_obuf_new(struct ttrpc_conn *c, uint8_t type, uint8_t flags,
				  uint32_t stream_id, size_t len)
{
	if (len > TTRPC_MAX_DATA)
		return NULL;
	struct ttrpc_obuf *b;
	if (c && c->spare && c->spare->cap >= TTRPC_HEADER_LEN + len) {
		b = c->spare;
		c->spare = NULL;
	} else {
		b = malloc(sizeof(*b) + TTRPC_HEADER_LEN + len);
		if (!b)
			return NULL;
		b->cap = TTRPC_HEADER_LEN + len;
	}
	b->next = NULL;
	b->len = TTRPC_HEADER_LEN + len;
	b->off = 0;
	struct ttrpc_frame_hdr h = {
		.length = (uint32_t)len, .stream_id = stream_id, .type = type, .flags = flags};
	ttrpc_frame_hdr_encode(b->data, &h);
	return b;
}

int ttrpc_conn_update(struct ttrpc_conn *c)
{
	if (c->fd < 0)
		return -EBADF;
	uint32_t want = 0;
	if (!c->eof && !c->read_paused && !c->held)
		want |= EPOLLIN;
	if (c->wq_head)
		want |= EPOLLOUT;
	if (want == c->ev)
		return 0;
	struct epoll_event e = {.events = want, .data.ptr = c};
	if (epoll_ctl(c->epfd, EPOLL_CTL_MOD, c->fd, &e) < 0)
		return -errno;
	c->ev = want;
	return 0;
}

/* A written buffer: kept as the spare when larger than the one held. */
static void obuf_done(struct ttrpc_conn *c, struct ttrpc_obuf *b)
{
	if (c->spare && c->spare->cap >= b->cap) {
		free(b);
		return;
	}
	free(c->spare);
	c->spare = b;
}

bool ttrpc_conn_cached(const struct ttrpc_conn *c)
{
	return c->spare || c->rd.scratch || c->rd.body;
}

bool ttrpc_conn_sweep(struct ttrpc_conn *c)
{
	if (c->io_seq == c->swept_seq) {
		free(c->spare);
		c->spare = NULL;
		ttrpc_reader_trim(&c->rd);
	}
	c->swept_seq = c->io_seq;
	return ttrpc_conn_cached(c);
}

static int flush(struct ttrpc_conn *c)
{
	while (c->wq_head) {
		struct iovec iov[IOV_MAX_BATCH];
		int n = 0;
		for (struct ttrpc_obuf *b = c->wq_head; b && n < IOV_MAX_BATCH; b = b->next, n++) {
			iov[n].iov_base = b->data + b->off;
			iov[n].iov_len = b->len - b->off;
		}
		struct msghdr mh = {.msg_iov = iov, .msg_iovlen = n};
		ssize_t w = sendmsg(c->fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN)
				break;
			return -errno;
		}
		c->wq_bytes -= (size_t)w;
		while (w > 0) {
			struct ttrpc_obuf *b = c->wq_head;
			size_t left = b->len - b->off;
			if ((size_t)w < left) {
				b->off += (size_t)w;
				break;
			}
			w -= (ssize_t)left;
			c->wq_head = b->next;
			if (!c->wq_head)
				c->wq_tail = NULL;
			obuf_done(c, b);
		}
	}
	c->read_paused = c->wq_bytes > TTRPC_CONN_WQ_HIGH;
	return ttrpc_conn_update(c);
}

int ttrpc_conn_queue(struct ttrpc_conn *c, struct ttrpc_obuf *b)
{
	if (c->fd < 0) {
		free(b);
		return -EPIPE;
	}
	c->io_seq++;
	if (c->wq_tail)
		c->wq_tail->next = b;
	else
		c->wq_head = b;
	c->wq_tail = b;
	c->wq_bytes += b->len;
	/* Try at once when nothing was waiting: most replies go out in this call. */
	if (c->corked ? c->wq_bytes >= TTRPC_CONN_CORK_MAX : c->wq_head == b)
		return flush(c);
	return 0;
}

void ttrpc_conn_cork(struct ttrpc_conn *c)
{
	c->corked = true;
}

int ttrpc_conn_uncork(struct ttrpc_conn *c)
{
	c->corked = false;
	return c->wq_head && c->fd >= 0 ? flush(c) : 0;
}

static int fill(struct ttrpc_conn *c)
{
	for (int i = 0; i < READS_PER_EVENT && !c->read_paused && !c->held; i++) {
		uint8_t *p;
		size_t room;
		int rc = ttrpc_reader_space(&c->rd, &p, &room);
		if (rc < 0)
			return rc;
		ssize_t n = read(c->fd, p, room);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN)
				return 0;
			return -errno;
		}
		if (n == 0) {
			if (!ttrpc_reader_idle(&c->rd))
				return -ECONNRESET; /* peer died inside a frame */
			c->eof = true;
			return 0;
		}
		ttrpc_reader_commit(&c->rd, (size_t)n);
		struct ttrpc_frame f;
		while ((rc = ttrpc_reader_next(&c->rd, &f)) == 1) {
			rc = c->ops->on_frame(c, &f);
			if (rc < 0)
				return rc;
			if (c->fd < 0)
				return -EPIPE;
		}
		if (rc < 0)
			return rc;
		if ((size_t)n < room)
			return 0; /* drained the socket */
	}
	return 0;
}

int ttrpc_conn_handle(struct ttrpc_conn *c, uint32_t events)
{
	int rc;
	c->io_seq++;
	if (events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
		/* replies to what one read brings go out together, below */
		bool was = c->corked;
		c->corked = true;
		rc = fill(c);
		c->corked = was;
		if (rc < 0)
			return rc;
	}
	/* HUP: both directions are gone, nothing we write can arrive. */
	if ((events & (EPOLLHUP | EPOLLERR)) && (c->eof || !(events & EPOLLIN)))
		return -ECONNRESET;
	if (c->wq_head) {
		rc = flush(c);
		if (rc < 0)
			return rc;
	} else {
		c->read_paused = false;
	}
	return ttrpc_conn_update(c);
}
