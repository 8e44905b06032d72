/* Connection layer: corked writes go out together, spent buffers are reused,
 * and a sweep frees what an idle connection holds. A socketpair stands in
 * for the peer. */
#include "conn.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

static int no_frames(struct ttrpc_conn *c, struct ttrpc_frame *f)
{
	(void)c;
	(void)f;
	return 0;
}
static const struct ttrpc_conn_ops ops = {.on_frame = no_frames};

static struct ttrpc_conn conn;
static int epfd = -1, peer = -1;

static void setup(void)
{
	int sv[2];
	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, sv), 0);
	epfd = epoll_create1(EPOLL_CLOEXEC);
	cr_assert_eq(ttrpc_conn_init(&conn, 0, sv[0], epfd, &ops, NULL), 0);
	peer = sv[1];
}

static void teardown(void)
{
	ttrpc_conn_release(&conn);
	close(peer);
	close(epfd);
}

TestSuite(conn, .init = setup, .fini = teardown, .timeout = 10);

static struct ttrpc_obuf *frame(uint32_t id, size_t len)
{
	struct ttrpc_obuf *b = ttrpc_obuf_new(&conn, TTRPC_TYPE_RESPONSE, 0, id, len);
	cr_assert_not_null(b);
	memset(b->data + TTRPC_HEADER_LEN, 'x', len);
	return b;
}

static ssize_t readable(void)
{
	static uint8_t sink[1 << 20];
	ssize_t n = read(peer, sink, sizeof(sink));
	return n < 0 && errno == EAGAIN ? 0 : n;
}

Test(conn, corked_frames_go_out_together)
{
	ttrpc_conn_cork(&conn);
	for (uint32_t id = 1; id <= 5; id += 2)
		cr_assert_eq(ttrpc_conn_queue(&conn, frame(id, 4)), 0);
	cr_assert_eq(readable(), 0, "nothing written while corked");
	cr_assert_eq(ttrpc_conn_uncork(&conn), 0);
	cr_assert_eq(readable(), 3 * (TTRPC_HEADER_LEN + 4));
	cr_assert(ttrpc_conn_flushed(&conn));
	/* uncorked: written at once */
	cr_assert_eq(ttrpc_conn_queue(&conn, frame(7, 4)), 0);
	cr_assert_eq(readable(), TTRPC_HEADER_LEN + 4);
}

Test(conn, cork_is_bounded)
{
	ttrpc_conn_cork(&conn);
	size_t len = 64 << 10, queued = 0;
	for (uint32_t id = 1; queued < TTRPC_CONN_CORK_MAX + len; id += 2) {
		cr_assert_eq(ttrpc_conn_queue(&conn, frame(id, len)), 0);
		queued += TTRPC_HEADER_LEN + len;
	}
	cr_assert_gt(readable(), 0, "written once TTRPC_CONN_CORK_MAX bytes wait");
	ttrpc_conn_uncork(&conn);
}

Test(conn, spent_buffer_reused_then_swept_when_idle)
{
	cr_assert_eq(ttrpc_conn_queue(&conn, frame(1, 100000)), 0);
	cr_assert_eq(readable(), TTRPC_HEADER_LEN + 100000);
	cr_assert_not_null(conn.spare, "a written buffer is kept");
	struct ttrpc_obuf *spare = conn.spare;
	struct ttrpc_obuf *b = frame(3, 10);
	cr_assert_eq(b, spare, "and reused for the next frame that fits");
	cr_assert_eq(ttrpc_conn_queue(&conn, b), 0);
	cr_assert_eq(readable(), TTRPC_HEADER_LEN + 10);
	cr_assert(ttrpc_conn_cached(&conn));
	/* the first sweep after I/O keeps it; a sweep with no I/O since frees it */
	cr_assert(ttrpc_conn_sweep(&conn));
	cr_assert_not_null(conn.spare);
	cr_assert(!ttrpc_conn_sweep(&conn));
	cr_assert_null(conn.spare);
	cr_assert(!ttrpc_conn_cached(&conn));
}
