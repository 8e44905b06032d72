/* The event publisher (shim/events.c) against a receiver on the same loop:
 * publishing never does I/O inside the caller and never blocks on a receiver
 * whose listen backlog is full; lifecycle events (TaskExit, TaskDelete) and
 * OOM events (coalesced per container) are never dropped, whatever the outage;
 * only informational ones give way, oldest first. */
#include "events.h"
#include "loop.h"
#include "ttrpc.h"

#include "containerd/events/task.pb-c.h"
#include "containerd/services/events/ttrpc/v1/events.pb-c.h"
#include "google/protobuf/empty.pb-c.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define MAX_SEEN 8192

/* ---- a receiver: containerd's Events/Forward, recording "topic container" */

static struct {
	struct loop *loop;
	struct ttrpc_server *srv;
	struct loop_source *src;
	char dir[64], path[108];
	char *seen[MAX_SEEN];
	unsigned n_seen;
} rx;

static void on_forward(struct ttrpc_call *call, const ProtobufCMessage *req, void *ud)
{
	const Containerd__Services__Events__Ttrpc__V1__ForwardRequest *r = (const void *)req;
	const char *topic = r->envelope ? r->envelope->topic : "?";
	const char *cid = "?";
	char *line = NULL;
	Google__Protobuf__Any *any = r->envelope ? r->envelope->event : NULL;
	/* every task event has container_id as field 1: TaskExit will do */
	Containerd__Events__TaskExit *e =
	    any ? containerd__events__task_exit__unpack(NULL, any->value.len, any->value.data)
	        : NULL;
	if (e && e->container_id)
		cid = e->container_id;
	cr_assert(asprintf(&line, "%s %s", topic, cid) > 0);
	if (e)
		containerd__events__task_exit__free_unpacked(e, NULL);
	cr_assert(rx.n_seen < MAX_SEEN);
	rx.seen[rx.n_seen++] = line;
	Google__Protobuf__Empty out = GOOGLE__PROTOBUF__EMPTY__INIT;
	ttrpc_call_reply(call, &out.base);
}

static const ttrpc_handler_fn handlers[] = {on_forward};

static void on_server(struct loop_source *s, int fd, uint32_t events, void *ud)
{
	ttrpc_server_dispatch(rx.srv);
}

static void setup(void)
{
	memset(&rx, 0, sizeof(rx));
	snprintf(rx.dir, sizeof(rx.dir), "/tmp/nanoshim-events-XXXXXX");
	cr_assert_not_null(mkdtemp(rx.dir));
	snprintf(rx.path, sizeof(rx.path), "%s/ttrpc.sock", rx.dir);
	rx.loop = loop_new();
	cr_assert_not_null(rx.loop);
}

static void teardown(void)
{
	events_shutdown();
	loop_io_remove(rx.src);
	ttrpc_server_free(rx.srv);
	for (unsigned i = 0; i < rx.n_seen; i++)
		free(rx.seen[i]);
	unlink(rx.path);
	rmdir(rx.dir);
	loop_free(rx.loop);
}

/* Starts serving Forward on lfd (taken), or on rx.path when lfd < 0. */
static void serve(int lfd)
{
	rx.srv = ttrpc_server_new();
	cr_assert_not_null(rx.srv);
	cr_assert_eq(ttrpc_server_register(
	                 rx.srv, &containerd__services__events__ttrpc__v1__events__descriptor,
	                 handlers, NULL),
	             0);
	cr_assert_eq(lfd >= 0 ? ttrpc_server_add_listener(rx.srv, lfd)
	                      : ttrpc_server_listen(rx.srv, rx.path),
	             0);
	rx.src = loop_add_io(rx.loop, ttrpc_server_fd(rx.srv), EPOLLIN, on_server, NULL);
	cr_assert_not_null(rx.src);
}

static int64_t now_ms(void)
{
	return loop_now_ns() / 1000000;
}

/* Iterates the loop until n events were received and acknowledged, or ms pass. */
static void run_until_seen(unsigned n, int ms)
{
	int64_t end = now_ms() + ms;
	while ((rx.n_seen < n || !events_idle()) && now_ms() < end)
		loop_iterate(rx.loop, 20);
}

/* A bound, listening socket at rx.path with the given backlog, not served. */
static int bare_listener(int backlog)
{
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	cr_assert_geq(fd, 0);
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", rx.path);
	cr_assert_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	cr_assert_eq(listen(fd, backlog), 0);
	return fd;
}

/* Connects to rx.path until the listener's backlog refuses more (EAGAIN);
 * returns how many connections it holds in fds. */
static int fill_backlog(int *fds, int max)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", rx.path);
	int n = 0;
	while (n < max) {
		int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		cr_assert_geq(fd, 0);
		if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
			cr_assert_eq(errno, EAGAIN, "connect: %s", strerror(errno));
			close(fd);
			return n;
		}
		fds[n++] = fd;
	}
	cr_assert_fail("backlog never filled");
	return n;
}

static int publish_exit(const char *cid)
{
	Containerd__Events__TaskExit e = CONTAINERD__EVENTS__TASK_EXIT__INIT;
	e.container_id = (char *)cid;
	e.id = (char *)cid;
	e.pid = 42;
	e.exit_status = 7;
	return events_publish("/tasks/exit", &e.base);
}

static int publish_oom(const char *cid)
{
	Containerd__Events__TaskOOM e = CONTAINERD__EVENTS__TASK_OOM__INIT;
	e.container_id = (char *)cid;
	return events_publish("/tasks/oom", &e.base);
}

static int publish_create(const char *cid)
{
	Containerd__Events__TaskCreate e = CONTAINERD__EVENTS__TASK_CREATE__INIT;
	e.container_id = (char *)cid;
	e.bundle = "/b";
	e.pid = 42;
	return events_publish("/tasks/create", &e.base);
}

static int publish_exec_added(const char *cid)
{
	Containerd__Events__TaskExecAdded e = CONTAINERD__EVENTS__TASK_EXEC_ADDED__INIT;
	e.container_id = (char *)cid;
	e.exec_id = "e";
	return events_publish("/tasks/exec-added", &e.base);
}

TestSuite(events, .init = setup, .fini = teardown, .timeout = 30);

/* §4a: containerd alive but not accepting (its listen backlog full). A blocking
 * connect would sleep in the kernel until containerd accepts: Create would
 * never be answered. Publishing must return at once and the loop keep turning;
 * the events go out, in order, once the receiver accepts. */
Test(events, receiver_with_full_backlog_blocks_nothing)
{
	int lfd = bare_listener(0);
	int fillers[64];
	int nf = fill_backlog(fillers, 64);
	cr_assert_gt(nf, 0);
	events_init(rx.loop, rx.path, "ns1");

	int64_t t0 = now_ms();
	cr_assert_eq(publish_create("c1"), 0);
	cr_assert_eq(publish_exit("c1"), 0);
	int64_t took = now_ms() - t0;
	cr_assert_lt(took, 100, "events_publish took %lld ms", (long long)took);

	/* the loop keeps turning: 500 ms of iterations, none stuck in connect */
	int64_t worst = 0, end = now_ms() + 500;
	while (now_ms() < end) {
		int64_t a = now_ms();
		loop_iterate(rx.loop, 20);
		if (now_ms() - a > worst)
			worst = now_ms() - a;
	}
	cr_assert_lt(worst, 200, "one loop iteration took %lld ms", (long long)worst);
	cr_assert_eq(events_queued(), 2);
	cr_assert_eq(rx.n_seen, 0);

	/* containerd comes back: accepts its backlog and serves */
	serve(lfd);
	for (int i = 0; i < nf; i++)
		close(fillers[i]);
	run_until_seen(2, 10000);
	cr_assert_eq(rx.n_seen, 2, "delivered %u of 2", rx.n_seen);
	cr_assert_str_eq(rx.seen[0], "/tasks/create c1");
	cr_assert_str_eq(rx.seen[1], "/tasks/exit c1");
	cr_assert(events_idle());
}

/* Handlers publish before they reply: publishing itself must not connect
 * or send, only queue; the I/O happens once the loop runs again. */
Test(events, publish_does_no_io_in_the_caller)
{
	int lfd = bare_listener(16);
	events_init(rx.loop, rx.path, "ns1");
	cr_assert_eq(publish_create("c1"), 0);
	struct pollfd p = {.fd = lfd, .events = POLLIN};
	cr_assert_eq(poll(&p, 1, 0), 0, "events_publish connected before returning");
	serve(lfd);
	run_until_seen(1, 5000);
	cr_assert_eq(rx.n_seen, 1);
	cr_assert_str_eq(rx.seen[0], "/tasks/create c1");
}

/* §8: while containerd is unreachable an OOM loop floods the queue with the
 * OOMs of many containers; none is dropped (one per container at most), and
 * the exit that follows is kept and delivered, last, once a receiver appears. */
Test(events, oom_flood_never_costs_the_exit)
{
	events_init(rx.loop, rx.path, "ns1"); /* nothing listens there yet */
	const unsigned flood = 3000;
	char id[32];
	for (unsigned i = 0; i < flood; i++) {
		snprintf(id, sizeof(id), "c%u", i);
		cr_assert_eq(publish_oom(id), 0);
		cr_assert_eq(publish_oom(id), 0); /* a repeat coalesces */
		if (i % 256 == 0)
			loop_iterate(rx.loop, 0);
	}
	cr_assert_eq(publish_exit("c1"), 0, "the exit was refused");
	cr_assert_eq(events_queued(), flood + 1);
	cr_assert_eq(events_dropped(), 0, "dropped count");

	serve(-1);
	run_until_seen(flood + 1, 20000);
	cr_assert_eq(rx.n_seen, flood + 1, "delivered %u of %u", rx.n_seen, flood + 1);
	cr_assert_str_eq(rx.seen[rx.n_seen - 1], "/tasks/exit c1", "the exit comes last");
	for (unsigned i = 0; i < flood; i++) {
		snprintf(id, sizeof(id), "/tasks/oom c%u", i);
		cr_assert_str_eq(rx.seen[i], id, "order");
	}
	cr_assert(events_idle());
}

/* One container's repeated OOMs while undelivered are one event: they
 * cannot crowd out anything, whatever their number. */
Test(events, ooms_of_one_container_coalesce)
{
	events_init(rx.loop, rx.path, "ns1");
	for (int i = 0; i < 10000; i++)
		publish_oom("c1");
	publish_oom("c2");
	publish_oom("c1");
	cr_assert_eq(events_queued(), 2);
	cr_assert_eq(publish_exit("c1"), 0);
	serve(-1);
	run_until_seen(3, 10000);
	cr_assert_eq(rx.n_seen, 3);
	cr_assert_str_eq(rx.seen[0], "/tasks/oom c1");
	cr_assert_str_eq(rx.seen[1], "/tasks/oom c2");
	cr_assert_str_eq(rx.seen[2], "/tasks/exit c1");
}

/* Lifecycle events are never refused nor dropped, however many wait: far
 * more than the informational limit of exits and creates queue while
 * nothing listens, and all arrive, in order. Informational events stop at
 * EVENTS_INFO_MAX undelivered, the oldest giving way to the newest. */
Test(events, lifecycle_events_are_never_dropped)
{
	events_init(rx.loop, rx.path, "ns1");
	const unsigned n = 3 * EVENTS_INFO_MAX;
	const unsigned extra = 100;
	char id[32];
	for (unsigned i = 0; i < EVENTS_INFO_MAX + extra; i++) {
		snprintf(id, sizeof(id), "i%u", i);
		cr_assert_eq(publish_exec_added(id), 0);
	}
	cr_assert_eq(events_dropped(), extra);
	for (unsigned i = 0; i < n; i++) {
		snprintf(id, sizeof(id), "l%u", i);
		cr_assert_eq(i % 2 ? publish_exit(id) : publish_create(id), 0, "%u refused", i);
	}
	cr_assert_eq(publish_oom("c1"), 0);
	cr_assert_eq(events_queued(), EVENTS_INFO_MAX + n + 1);
	cr_assert_eq(events_dropped(), extra, "no lifecycle or OOM event dropped");

	serve(-1);
	unsigned total = EVENTS_INFO_MAX + n + 1;
	run_until_seen(total, 25000);
	cr_assert_eq(rx.n_seen, total, "delivered %u of %u", rx.n_seen, total);
	char want[64];
	for (unsigned i = 0; i < EVENTS_INFO_MAX; i++) {
		snprintf(want, sizeof(want), "/tasks/exec-added i%u", extra + i);
		cr_assert_str_eq(rx.seen[i], want, "the newest informational events kept");
	}
	for (unsigned i = 0; i < n; i++) {
		snprintf(want, sizeof(want), "%s l%u", i % 2 ? "/tasks/exit" : "/tasks/create", i);
		cr_assert_str_eq(rx.seen[EVENTS_INFO_MAX + i], want, "order at %u: %s", i,
		                 rx.seen[EVENTS_INFO_MAX + i]);
	}
	cr_assert_str_eq(rx.seen[total - 1], "/tasks/oom c1");
	cr_assert(events_idle());
}

/* containerd away for longer than the Go shim tries (it gives an event up
 * after 5 retries, 1+2+3+4+5 s apart): ours goes on retrying, 8 tries in
 * 5.5 s here (back-off 50 ms doubling to 2 s), and delivers once it is back. */
Test(events, an_outage_of_more_than_five_retries_loses_nothing)
{
	events_init(rx.loop, rx.path, "ns1");
	cr_assert_eq(publish_exit("c1"), 0);
	cr_assert_eq(publish_create("c2"), 0);
	int64_t end = now_ms() + 5500;
	while (now_ms() < end)
		loop_iterate(rx.loop, 50);
	cr_assert_eq(events_queued(), 2);
	serve(-1);
	run_until_seen(2, 5000);
	cr_assert_eq(rx.n_seen, 2);
	cr_assert_str_eq(rx.seen[0], "/tasks/exit c1");
	cr_assert_str_eq(rx.seen[1], "/tasks/create c2");
}

static double cpu_seconds(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* containerd goes away while the publisher is idle and connected: the dead
 * connection must not keep the loop busy until the next event. */
Test(events, receiver_gone_while_idle_costs_no_cpu)
{
	events_init(rx.loop, rx.path, "ns1");
	serve(-1);
	cr_assert_eq(publish_create("c1"), 0);
	run_until_seen(1, 5000);
	cr_assert_eq(rx.n_seen, 1);
	loop_io_remove(rx.src);
	rx.src = NULL;
	ttrpc_server_free(rx.srv); /* closes the publisher's connection */
	rx.srv = NULL;
	double c0 = cpu_seconds();
	int64_t end = now_ms() + 500;
	unsigned iterations = 0;
	while (now_ms() < end) {
		loop_iterate(rx.loop, 50);
		iterations++;
	}
	double used = cpu_seconds() - c0;
	cr_assert_lt(used, 0.1, "%.3f s of CPU, %u iterations in 0.5 s", used, iterations);
	cr_assert_lt(iterations, 100, "%u iterations in 0.5 s", iterations);

	/* and the next event reconnects and goes out */
	serve(-1);
	cr_assert_eq(publish_exit("c1"), 0);
	run_until_seen(2, 5000);
	cr_assert_eq(rx.n_seen, 2);
	cr_assert_str_eq(rx.seen[1], "/tasks/exit c1");
}
