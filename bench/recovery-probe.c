/* recovery-probe ADDRESS NAMESPACE EXPECT_FILE [TIMEOUT_S]
 *
 * The nanoshimd side of bench/recovery-bench.sh: how soon after a (re)start
 * nanoshimd lists every expected container RUNNING with the pid it had. It is
 * started together with nanoshimd and, unlike a polled `nanoctl ls` (a process
 * per poll, 1.5-2.5 ms each, 5 ms apart), costs almost nothing while it waits,
 * so it neither quantises the figure nor takes the CPU nanoshimd needs:
 *   - it connects as soon as the socket answers (a refused or missing socket
 *     is tried again after 200 us: a socket(), a connect(), a close());
 *   - then calls List on that one connection every 500 us until every
 *     container of EXPECT_FILE ("ID PID" lines) is RUNNING with its pid.
 * Prints "done_us=<CLOCK_REALTIME us> connects=<tries> lists=<calls>" and
 * exits 0; exits 1 (with what the last List showed) after TIMEOUT_S (120). */
#include "nanoshim/v1/manager.pb-c.h"
#include "ttrpc.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_EXPECT 4096
#define CONNECT_RETRY_NS 200000
#define LIST_EVERY_NS 500000

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

int main(int argc, char **argv)
{
	if (argc < 4 || argc > 5) {
		fprintf(stderr, "usage: recovery-probe ADDRESS NAMESPACE EXPECT_FILE [TIMEOUT_S]\n");
		return 2;
	}
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
	Nanoshim__V1__ListRequest req = NANOSHIM__V1__LIST_REQUEST__INIT;
	req.namespace_ = argv[2];
	for (;;) {
		ProtobufCMessage *reply = NULL;
		struct ttrpc_status st;
		lists++;
		if (ttrpc_client_call(c, "nanoshim.v1.Manager", "List", &req.base,
				      &nanoshim__v1__list_response__descriptor, NULL, &reply, &st) != 0) {
			fprintf(stderr, "recovery-probe: List: %s\n", st.message);
			ttrpc_client_free(c);
			return 1;
		}
		ok = count_ok((const Nanoshim__V1__ListResponse *)reply, want, n);
		protobuf_c_message_free_unpacked(reply, NULL);
		if (ok == n)
			break;
		if (now_ns(CLOCK_MONOTONIC) > deadline) {
			fprintf(stderr, "recovery-probe: %d of %d RUNNING with their pids after %u Lists\n",
				ok, n, lists);
			ttrpc_client_free(c);
			return 1;
		}
		nap(LIST_EVERY_NS);
	}
	printf("done_us=%" PRId64 " connects=%u lists=%u\n", now_ns(CLOCK_REALTIME) / 1000, connects,
	       lists);
	ttrpc_client_free(c);
	return 0;
}
