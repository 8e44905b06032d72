/* One non-blocking ttrpc connection: a frame reader, an ordered write queue
 * and the epoll registration of its fd. Shared by server and client; it knows
 * nothing of requests or calls, only frames. */
#pragma once

#include "frame.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A frame waiting to be written: header and body in one allocation. */
struct ttrpc_obuf {
	struct ttrpc_obuf *next;
	size_t len; /* header + body */
	size_t off; /* bytes already written */
	uint8_t data[];
};

/* Writes beyond this many queued bytes stop the connection from reading
 * (server side: a slow reader cannot make us buffer without bound). */
#define TTRPC_CONN_WQ_HIGH (16u << 20)

struct ttrpc_conn;

struct ttrpc_conn_ops {
	/* A frame arrived; f->data belongs to the callee. Return <0 to close. */
	int (*on_frame)(struct ttrpc_conn *c, struct ttrpc_frame *f);
};

struct ttrpc_conn {
	int kind; /* first: epoll data.ptr tag of the owner */
	int fd;
	int epfd;
	uint32_t ev; /* events registered */
	struct ttrpc_reader rd;
	struct ttrpc_obuf *wq_head, *wq_tail;
	size_t wq_bytes;
	bool eof; /* peer closed its write side */
	bool read_paused;
	const struct ttrpc_conn_ops *ops;
	void *owner;
};

int ttrpc_conn_init(struct ttrpc_conn *c, int kind, int fd, int epfd,
		    const struct ttrpc_conn_ops *ops, void *owner);
/* Unregisters and closes the fd, frees queues. */
void ttrpc_conn_release(struct ttrpc_conn *c);

/* Allocates a frame of body length len; the caller fills data + TTRPC_HEADER_LEN. */
struct ttrpc_obuf *ttrpc_obuf_new(uint8_t type, uint8_t flags, uint32_t stream_id, size_t len);
/* Queues (takes ownership) and tries to write at once. <0: connection broken. */
int ttrpc_conn_queue(struct ttrpc_conn *c, struct ttrpc_obuf *b);
/* Handles epoll events. Returns <0 (-errno, -ECONNRESET on EOF mid-frame) when
 * the connection is finished and must be released; 0 otherwise. EOF at a frame
 * boundary sets c->eof and returns 0: the owner decides when to close. */
int ttrpc_conn_handle(struct ttrpc_conn *c, uint32_t events);
/* Re-evaluate which events to wait for (after the write queue drained etc). */
int ttrpc_conn_update(struct ttrpc_conn *c);
static inline bool ttrpc_conn_flushed(const struct ttrpc_conn *c)
{
	return c->wq_head == NULL;
}
