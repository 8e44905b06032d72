/* recovery-probe ADDRESS NAMESPACE EXPECT_FILE [TIMEOUT_S]
 *
 * The nanoshimd side of bench/recovery-bench.sh: how soon after a (re)start
 * nanoshimd lists every expected container RUNNING with the pid it had. It is
 * started together with nanoshimd and, unlike a polled `nanoctl ls` (a process
 * per poll, 1.5-2.5 ms each, 5 ms apart), costs almost nothing while it waits,
 * so it neither quantises the figure nor takes the CPU nanoshimd needs:
 *   - it connects as soon as the socket answers (a refused or missing socket
 *     is tried again after 200 us: a socket(), a connect(), a close());
 *   - subscribes to nanoshimd's events since its own start, and calls List
 *     when "/nanoshim/recovered" arrives (replayed, if it came first), and
 *     every 2 ms besides, until every container of EXPECT_FILE ("ID PID"
 *     lines) is listed RUNNING with its pid. The time is that List's answer.
 * Prints "done_us=<CLOCK_REALTIME us> connects=<tries> lists=<calls>" and
 * exits 0; exits 1 (with what the last List showed) after TIMEOUT_S (120). */
#include "nanoshim/v1/manager.pb-c.h"
#include "ttrpc.h"

#include <errno.h>
#include <poll.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_EXPECT 4096
#define CONNECT_RETRY_NS 200000
#define LIST_EVERY_MS 2

struct expect {
	char id[256];
	uint32_t pid;
};

static int64_t now_ns(clockid_t clk)
{
	struct timespec ts;
	clock_gettime(clk, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void nap(int64_t ns)
{
	struct timespec ts = {ns / 1000000000, ns % 1000000000};
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

static int read_expect(const char *path, struct expect *e, int max)
{
	FILE *f = fopen(path, "r");
	if (!f)
		return -1;
	int n = 0;
	while (n < max && fscanf(f, "%255s %" SCNu32, e[n].id, &e[n].pid) == 2)
		n++;
	fclose(f);
	return n;
}

/* How many of the expected containers the reply lists RUNNING with their pid. */
static int count_ok(const Nanoshim__V1__ListResponse *l, const struct expect *e, int n)
{
	int ok = 0;
	for (int i = 0; i < n; i++)
		for (size_t j = 0; j < l->n_containers; j++) {
			const Nanoshim__V1__Container *c = l->containers[j];
			if (strcmp(c->id, e[i].id))
				continue;
			ok += c->init && c->init->status == NANOSHIM__V1__STATUS__STATUS_RUNNING &&
			      c->init->pid == e[i].pid;
			break;
		}
	return ok;
}

struct watch {
	bool recovered;
	bool ended;
};

static void on_event(ProtobufCMessage *msg, void *ud)
{
	struct watch *w = ud;
	const Nanoshim__V1__Event *e = (const void *)msg;
	if (strcmp(e->topic, "/nanoshim/recovered") == 0)
		w->recovered = true;
	protobuf_c_message_free_unpacked(msg, NULL);
}

static void on_events_end(const struct ttrpc_status *st, ProtobufCMessage *reply, void *ud)
{
	struct watch *w = ud;
	w->ended = true;
	if (reply)
		protobuf_c_message_free_unpacked(reply, NULL);
}

/* One List: how many of want are RUNNING with their pid, or -1. */
static int list_ok(struct ttrpc_client *c, const char *ns, const struct expect *want, int n)
{
	Nanoshim__V1__ListRequest req = NANOSHIM__V1__LIST_REQUEST__INIT;
	req.namespace_ = (char *)ns;
	ProtobufCMessage *reply = NULL;
	struct ttrpc_status st;
	if (ttrpc_client_call(c, "nanoshim.v1.Manager", "List", &req.base,
			      &nanoshim__v1__list_response__descriptor, NULL, &reply, &st) != 0) {
		fprintf(stderr, "recovery-probe: List: %s\n", st.message);
		return -1;
	}
	int ok = count_ok((const Nanoshim__V1__ListResponse *)reply, want, n);
	protobuf_c_message_free_unpacked(reply, NULL);
	return ok;
}

int main(int argc, char **argv)
{
	if (argc < 4 || argc > 5) {
		fprintf(stderr, "usage: recovery-probe ADDRESS NAMESPACE EXPECT_FILE [TIMEOUT_S]\n");
		return 2;
	}
	int64_t started = now_ns(CLOCK_REALTIME);
	static struct expect want[MAX_EXPECT];
	int n = read_expect(argv[3], want, MAX_EXPECT);
	if (n <= 0) {
		fprintf(stderr, "recovery-probe: %s: no \"ID PID\" lines\n", argv[3]);
		return 2;
	}
	int64_t deadline = now_ns(CLOCK_MONOTONIC) + (argc == 5 ? atoll(argv[4]) : 120) * 1000000000LL;
	struct ttrpc_client *c = NULL;
	unsigned connects = 0, lists = 0;
	int ok = 0, rc;
	while (!c) {
		connects++;
		if ((rc = ttrpc_client_connect(argv[1], &c)) == 0)
			break;
		if (now_ns(CLOCK_MONOTONIC) > deadline) {
			fprintf(stderr, "recovery-probe: cannot reach %s: %s\n", argv[1], strerror(-rc));
			return 1;
		}
		nap(CONNECT_RETRY_NS);
	}
	struct watch w = {0};
	Google__Protobuf__Timestamp since = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
	since.seconds = started / 1000000000;
	since.nanos = (int32_t)(started % 1000000000);
	Nanoshim__V1__EventsRequest er = NANOSHIM__V1__EVENTS_REQUEST__INIT;
	er.since = &since;
	if (ttrpc_client_stream(c, "nanoshim.v1.Manager", "Events", &er.base,
				&nanoshim__v1__event__descriptor, 0, NULL, on_event, on_events_end, &w,
				NULL) < 0)
		w.ended = true; /* then List alone, every 2 ms */
	for (;;) {
		struct pollfd p = {ttrpc_client_fd(c), POLLIN, 0};
		if (!w.recovered) {
			poll(&p, 1, LIST_EVERY_MS);
			if (p.revents)
				ttrpc_client_dispatch(c);
		}
		lists++;
		bool asked_after = w.recovered;
		if ((ok = list_ok(c, argv[2], want, n)) < 0)
			break;
		if (ok == n)
			break;
		if (now_ns(CLOCK_MONOTONIC) > deadline) {
			fprintf(stderr, "recovery-probe: %d of %d RUNNING with their pids after %u Lists\n",
				ok, n, lists);
			ok = -1;
			break;
		}
		/* "recovered" came in while that List was out (a timed one, asked
		 * before the recovery ended): ask again at once. Asked after it and
		 * still not all of them: List as they come, every 2 ms. */
		if (w.recovered && asked_after)
			nap(LIST_EVERY_MS * 1000000LL);
	}
	int64_t done = now_ns(CLOCK_REALTIME);
	ttrpc_client_free(c);
	if (ok != n)
		return 1;
	printf("done_us=%" PRId64 " connects=%u lists=%u\n", done / 1000, connects, lists);
	return 0;
}
