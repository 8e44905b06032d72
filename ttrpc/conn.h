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
	size_t cap; /* bytes at data */
	size_t len; /* header + body */
	size_t off; /* bytes already written */
	uint8_t data[];
};

/* Writes beyond this many queued bytes stop the connection from reading
 * (server side: a slow reader cannot make us buffer without bound). */
#define TTRPC_CONN_WQ_HIGH (16u << 20)
/* Buffers (read scratch, large-frame body, one spent write buffer) are kept
 * for reuse while a connection is busy, and freed once it has seen no I/O for
 * between one and two of these periods (the owner calls ttrpc_conn_sweep()). */
#define TTRPC_CONN_SWEEP_NS (1000 * 1000000LL)

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
	struct ttrpc_obuf *spare; /* a written buffer kept for the next frame */
	unsigned io_seq, swept_seq; /* events handled; value at the last sweep */
	bool eof; /* peer closed its write side */
	bool corked; /* queue without writing: one sendmsg for a burst of frames */
	bool read_paused;
	bool held; /* the owner reads no more requests for now (ttrpc_server_hold) */
	const struct ttrpc_conn_ops *ops;
	void *owner;
};

int ttrpc_conn_init(struct ttrpc_conn *c, int kind, int fd, int epfd,
		    const struct ttrpc_conn_ops *ops, void *owner);
/* Unregisters and closes the fd, frees queues. */
void ttrpc_conn_release(struct ttrpc_conn *c);

/* Allocates a frame of body length len; the caller fills data + TTRPC_HEADER_LEN.
 * With a connection, its spare buffer is reused when big enough. */
struct ttrpc_obuf *ttrpc_obuf_new(struct ttrpc_conn *c, uint8_t type, uint8_t flags,
				  uint32_t stream_id, size_t len);
/* True while the connection holds buffers a sweep may free. */
bool ttrpc_conn_cached(const struct ttrpc_conn *c);
/* Frees the cached buffers if there was no I/O since the last sweep; returns
 * ttrpc_conn_cached() after. */
bool ttrpc_conn_sweep(struct ttrpc_conn *c);
/* Queues (takes ownership) and tries to write at once. <0: connection broken. */
int ttrpc_conn_queue(struct ttrpc_conn *c, struct ttrpc_obuf *b);
/* While corked, queued frames are written together at ttrpc_conn_uncork()
 * (or once TTRPC_CONN_CORK_MAX bytes wait): replies to a batch of requests
 * read at once, or calls issued together, go out in one sendmsg. */
#define TTRPC_CONN_CORK_MAX (256u << 10)
void ttrpc_conn_cork(struct ttrpc_conn *c);
int ttrpc_conn_uncork(struct ttrpc_conn *c);
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
