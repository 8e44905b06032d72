/* Client groups: many clients behind one epoll set and one timer (what
 * nanoshimd keeps its shims' clients in). Replies reach the right member,
 * deadlines and connect timeouts fire per member on the shared timer, a
 * member freed from another member's callback in the same batch is neither
 * touched nor leaked, on_close runs per member, and what a group costs in
 * fds. Against the in-process Bench server of testsrv.h. */
#include "testsrv.h"

#include <criterion/criterion.h>
#include <signal.h>
#include <sys/un.h>

static const char *SVC = "ttrpc.bench.v1.Bench";

static void init(void)
{
	signal(SIGPIPE, SIG_IGN);
}

TestSuite(client_group, .init = init, .timeout = 60);

#define N 40

struct result {
	int n;
	int code;
	char msg[TTRPC_STATUS_MSG_MAX];
	char echoed[16];
	struct ttrpc_client **free_me; /* a member to free from this callback */
	int closes, close_err, n_at_close;
};

static void on_reply(const struct ttrpc_status *st, ProtobufCMessage *reply, void *ud)
{
	struct result *r = ud;
	r->n++;
	r->code = st->code;
	snprintf(r->msg, sizeof(r->msg), "%s", st->message);
	if (reply) {
		const Ttrpc__Bench__V1__EchoPayload *e = (const void *)reply;
		if (reply->descriptor == &ttrpc__bench__v1__echo_payload__descriptor &&
		    e->value.len < sizeof(r->echoed))
			memcpy(r->echoed, e->value.data, e->value.len);
		protobuf_c_message_free_unpacked(reply, NULL);
	}
	if (st->code == TTRPC_OK && r->free_me && *r->free_me) {
		ttrpc_client_free(*r->free_me);
		*r->free_me = NULL;
	}
}

static void on_close(struct ttrpc_client *c, int err, void *ud)
{
	struct result *r = ud;
	r->closes++;
	r->close_err = err;
	r->n_at_close = r->n;
}

static void echo(struct ttrpc_client *c, const char *what, int64_t timeout_ns, struct result *r)
{
	Ttrpc__Bench__V1__EchoPayload in = TTRPC__BENCH__V1__ECHO_PAYLOAD__INIT;
	in.value.data = (uint8_t *)what;
	in.value.len = strlen(what);
	struct ttrpc_call_opts o = {.timeout_ns = timeout_ns};
	cr_assert(ttrpc_client_call_async(c, SVC, "Echo", &in.base,
					  &ttrpc__bench__v1__echo_payload__descriptor, &o, on_reply,
					  r) > 0);
}

static void sleep_call(struct ttrpc_client *c, int ms, int64_t timeout_ns, struct result *r)
{
	Ttrpc__Bench__V1__SleepRequest s = TTRPC__BENCH__V1__SLEEP_REQUEST__INIT;
	s.millis = ms;
	struct ttrpc_call_opts o = {.timeout_ns = timeout_ns};
	cr_assert(ttrpc_client_call_async(c, SVC, "Sleep", &s.base,
					  &google__protobuf__empty__descriptor, &o, on_reply, r) > 0);
}

/* The group as its owner runs it: poll its one fd, dispatch when readable,
 * until done() or a generous bound that only keeps a broken build from
 * hanging. */
static void pump(struct ttrpc_client_group *g, bool (*done)(void *), void *arg)
{
	int64_t end = ttrpc_now_ns() + 20 * 1000000000LL;
	while (!done(arg)) {
		cr_assert(ttrpc_now_ns() < end, "gave up waiting");
		struct pollfd p = {.fd = ttrpc_client_group_fd(g), .events = POLLIN};
		if (poll(&p, 1, 100) > 0)
			cr_assert(ttrpc_client_group_dispatch(g) >= 0);
	}
}

struct all {
	struct result *r;
	int n, want;
};

static bool all_answered(void *arg)
{
	struct all *a = arg;
	for (int i = 0; i < a->n; i++)
		if (a->r[i].n < a->want)
			return false;
	return true;
}

Test(client_group, replies_reach_their_member_and_fds_are_one_per_member)
{
	struct testsrv ts;
	ts_start(&ts);
	struct ttrpc_client_group *g = NULL;
	cr_assert_eq(ttrpc_client_group_new(&g), 0);
	struct ttrpc_client *c[N];
	static struct result r[N];
	memset(r, 0, sizeof(r));
	for (int i = 0; i < N; i++) {
		cr_assert_eq(ttrpc_client_group_connect_nb(g, ts.path, 1000000000LL, &c[i]), 0);
		cr_assert_eq(ttrpc_client_fd(c[i]), ttrpc_client_group_fd(g));
	}
	cr_assert_eq(ttrpc_client_group_size(g), N);
	char what[N][8];
	for (int i = 0; i < N; i++) {
		snprintf(what[i], sizeof(what[i]), "m%d", i);
		echo(c[i], what[i], 5 * 1000000000LL, &r[i]);
	}
	struct all a = {r, N, 1};
	pump(g, all_answered, &a);
	for (int i = 0; i < N; i++) {
		cr_assert_eq(r[i].code, TTRPC_OK, "member %d: %s", i, r[i].msg);
		cr_assert_str_eq(r[i].echoed, what[i], "member %d got another's reply", i);
		cr_assert_eq(r[i].n, 1);
	}
	/* a second round on the same members, and a sync call through a member */
	for (int i = 0; i < N; i++)
		echo(c[i], what[i], 0, &r[i]);
	a.want = 2;
	pump(g, all_answered, &a);
	Ttrpc__Bench__V1__EchoPayload in = TTRPC__BENCH__V1__ECHO_PAYLOAD__INIT;
	in.value.data = (uint8_t *)"sync";
	in.value.len = 4;
	ProtobufCMessage *out = NULL;
	struct ttrpc_status st;
	cr_assert_eq(ttrpc_client_call(c[3], SVC, "Echo", &in.base,
				       &ttrpc__bench__v1__echo_payload__descriptor, NULL, &out, &st),
		     0, "%s", st.message);
	protobuf_c_message_free_unpacked(out, NULL);
	for (int i = 0; i < N; i++)
		ttrpc_client_free(c[i]);
	cr_assert_eq(ttrpc_client_group_size(g), 0);
	ttrpc_client_group_free(g);
	ts_stop(&ts);
}

Test(client_group, a_member_holds_its_socket_only)
{
	/* a listener nobody accepts from: the connections wait in its backlog,
	 * so the fds counted are the client side's alone */
	char dir[32], path[108];
	int lfd = ts_backlog_listener(dir, path, 4 * N);
	int n0 = ts_count_fds();
	struct ttrpc_client_group *g = NULL;
	cr_assert_eq(ttrpc_client_group_new(&g), 0);
	cr_assert_eq(ts_count_fds() - n0, 2, "the group: one epoll set, one timerfd");
	struct ttrpc_client *c[N];
	for (int i = 0; i < N; i++)
		cr_assert_eq(ttrpc_client_group_connect_nb(g, path, 0, &c[i]), 0);
	cr_assert_eq(ts_count_fds() - n0, 2 + N, "one socket per member (alone, a client holds 3)");
	for (int i = 0; i < N; i += 2)
		ttrpc_client_free(c[i]);
	cr_assert_eq(ts_count_fds() - n0, 2 + N / 2);
	cr_assert_eq(ttrpc_client_group_size(g), N / 2);
	ttrpc_client_group_free(g); /* and the members left */
	cr_assert_eq(ts_count_fds(), n0);
	ts_backlog_close(lfd, dir, path);
}

static bool first_done(void *arg)
{
	struct result *r = arg;
	return r->n > 0;
}

Test(client_group, each_member_keeps_its_own_deadlines_on_the_shared_timer)
{
	struct testsrv ts;
	ts_start(&ts);
	struct ttrpc_client_group *g = NULL;
	cr_assert_eq(ttrpc_client_group_new(&g), 0);
	struct ttrpc_client *slow, *slower, *quick;
	cr_assert_eq(ttrpc_client_group_connect_nb(g, ts.path, 0, &slow), 0);
	cr_assert_eq(ttrpc_client_group_connect_nb(g, ts.path, 0, &slower), 0);
	cr_assert_eq(ttrpc_client_group_connect_nb(g, ts.path, 0, &quick), 0);
	struct result rs = {0}, rl = {0}, rn = {0}, rq = {0};
	/* the later deadline is set first: the earlier one must still fire first */
	sleep_call(slower, 10000, 600 * 1000000LL, &rl);
	sleep_call(slow, 10000, 150 * 1000000LL, &rs);
	sleep_call(slow, 10000, 0, &rn); /* no deadline: stays pending */
	int64_t t0 = ttrpc_now_ns();
	pump(g, first_done, &rs);
	int64_t t1 = ttrpc_now_ns();
	cr_assert_eq(rs.code, TTRPC_DEADLINE_EXCEEDED, "%s", rs.msg);
	cr_assert(t1 - t0 >= 140 * 1000000LL, "fired after %lld ms", (long long)(t1 - t0) / 1000000);
	cr_assert_eq(rl.n, 0, "the other member's later deadline has not passed");
	echo(quick, "q", 0, &rq);
	pump(g, first_done, &rq);
	cr_assert_eq(rq.code, TTRPC_OK);
	pump(g, first_done, &rl);
	cr_assert_eq(rl.code, TTRPC_DEADLINE_EXCEEDED, "%s", rl.msg);
	cr_assert(ttrpc_now_ns() - t0 >= 590 * 1000000LL);
	cr_assert_eq(rn.n, 0, "a call with no deadline is still out");
	ttrpc_client_group_free(g); /* frees the members: the last call is Canceled */
	cr_assert_eq(rn.n, 1);
	cr_assert_eq(rn.code, TTRPC_CANCELLED, "%s", rn.msg);
	ts_stop(&ts);
}

struct pair {
	struct result *a, *b;
};

static bool both_done(void *arg)
{
	struct pair *p = arg;
	return p->a->n > 0 && p->b->n > 0;
}

Test(client_group, a_member_freed_from_another_members_callback_in_the_same_batch)
{
	struct testsrv ts;
	ts_start(&ts);
	struct ttrpc_client_group *g = NULL;
	cr_assert_eq(ttrpc_client_group_new(&g), 0);
	struct ttrpc_client *a, *b;
	cr_assert_eq(ttrpc_client_group_connect_nb(g, ts.path, 0, &a), 0);
	cr_assert_eq(ttrpc_client_group_connect_nb(g, ts.path, 0, &b), 0);
	struct result ra = {0}, rb = {0};
	/* both replies wait in their sockets before the one dispatch that reads
	 * them: whichever comes first frees the other, whose event that dispatch
	 * already holds */
	ra.free_me = &b;
	rb.free_me = &a;
	echo(a, "a", 0, &ra);
	echo(b, "b", 0, &rb);
	int64_t end = ttrpc_now_ns() + 5 * 1000000000LL;
	while (ts.calls_seen < 2 && ttrpc_now_ns() < end)
		usleep(1000);
	usleep(50000); /* and their replies are written */
	struct pair p = {&ra, &rb};
	pump(g, both_done, &p);
	/* one answered OK and freed the other, whose call was then Canceled */
	cr_assert_eq(ra.n + rb.n, 2);
	cr_assert((ra.code == TTRPC_OK && rb.code == TTRPC_CANCELLED) ||
		  (rb.code == TTRPC_OK && ra.code == TTRPC_CANCELLED),
		  "a: %d %s, b: %d %s", ra.code, ra.msg, rb.code, rb.msg);
	cr_assert_eq(ttrpc_client_group_size(g), 1);
	/* the one left still serves */
	struct ttrpc_client *left = a ? a : b;
	cr_assert_not_null(left);
	struct result rl = {0};
	echo(left, "again", 0, &rl);
	pump(g, first_done, &rl);
	cr_assert_eq(rl.code, TTRPC_OK);
	ttrpc_client_free(left);
	ttrpc_client_group_free(g);
	ts_stop(&ts);
}

static bool all_closed(void *arg)
{
	struct all *a = arg;
	for (int i = 0; i < a->n; i++)
		if (!a->r[i].closes)
			return false;
	return true;
}

Test(client_group, server_gone_fails_each_members_calls_then_its_on_close)
{
	struct testsrv ts;
	ts_start(&ts);
	struct ttrpc_client_group *g = NULL;
	cr_assert_eq(ttrpc_client_group_new(&g), 0);
	struct ttrpc_client *c[4];
	struct result r[4] = {0};
	for (int i = 0; i < 4; i++) {
		cr_assert_eq(ttrpc_client_group_connect_nb(g, ts.path, 0, &c[i]), 0);
		ttrpc_client_on_close(c[i], on_close, &r[i]);
		sleep_call(c[i], 10000, 0, &r[i]);
	}
	/* the server has every call before it goes */
	int64_t end = ttrpc_now_ns() + 5 * 1000000000LL;
	while (ts.calls_seen < 4 && ttrpc_now_ns() < end)
		usleep(1000);
	ts_stop(&ts);
	struct all a = {r, 4, 1};
	pump(g, all_closed, &a);
	for (int i = 0; i < 4; i++) {
		cr_assert_eq(r[i].closes, 1);
		cr_assert_eq(r[i].n_at_close, 1, "member %d: its call fails before on_close", i);
		cr_assert_eq(r[i].code, TTRPC_UNAVAILABLE, "%s", r[i].msg);
		cr_assert(ttrpc_client_closed(c[i]));
	}
	ttrpc_client_group_free(g);
}

static bool closed_once(void *arg)
{
	struct result *r = arg;
	return r->closes > 0;
}

Test(client_group, refused_at_once_or_timed_out_connecting)
{
	struct ttrpc_client_group *g = NULL;
	cr_assert_eq(ttrpc_client_group_new(&g), 0);
	struct ttrpc_client *c = NULL;
	cr_assert_eq(ttrpc_client_group_connect_nb(g, "/nonexistent/nanoshim-test.sock", 0, &c),
		     -ENOENT);
	cr_assert_null(c);
	cr_assert_eq(ttrpc_client_group_size(g), 0, "a refused member is not kept");

	/* a listener whose backlog is full: held, then timed out on the group's timer */
	char dir[32], path[108];
	int lfd = ts_backlog_listener(dir, path, 0);
	struct sockaddr_un sa;
	int len = ttrpc_sockaddr(path, &sa);
	int filler = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	cr_assert_eq(connect(filler, (struct sockaddr *)&sa, (socklen_t)len), 0);
	cr_assert_eq(ttrpc_client_group_connect_nb(g, path, 200 * 1000000LL, &c), 0);
	cr_assert(ttrpc_client_connecting(c));
	struct result r = {0};
	ttrpc_client_on_close(c, on_close, &r);
	echo(c, "held", 0, &r);
	pump(g, closed_once, &r);
	cr_assert_eq(r.close_err, ETIMEDOUT);
	cr_assert_eq(r.n, 1);
	cr_assert_eq(r.code, TTRPC_UNAVAILABLE);
	cr_assert_str_eq(r.msg, "ttrpc: connect: timed out");
	ttrpc_client_free(c);
	ttrpc_client_group_free(g);
	close(filler);
	ts_backlog_close(lfd, dir, path);
}
