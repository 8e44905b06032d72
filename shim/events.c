/* Event publisher (see events.h). */
#include "events.h"
#include "log.h"
#include "ttrpc.h"

#include "containerd/services/events/ttrpc/v1/events.pb-c.h"
#include "google/protobuf/empty.pb-c.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>

#define FORWARD_TIMEOUT_NS (5 * 1000000000LL)
#define BACKOFF_MIN_MS 50
#define BACKOFF_MAX_MS 2000

struct event {
	char *topic;
	char *type_url;
	uint8_t *value;
	size_t len;
	struct timespec ts;
	struct event *next;
};

static struct {
	struct loop *loop;
	char *address;
	char *ns;
	struct ttrpc_client *client;
	struct loop_source *client_src;
	struct event *head, *tail;
	unsigned n;
	bool in_flight;
	struct loop_timer *retry;
	int backoff_ms;
	unsigned long dropped;
} ev;

static void kick(void);

static void disconnect(void)
{
	loop_io_remove(ev.client_src);
	ev.client_src = NULL;
	ttrpc_client_free(ev.client);
	ev.client = NULL;
}

static void on_client(struct loop_source *s, int fd, uint32_t events, void *ud)
{
	if (ev.client)
		ttrpc_client_dispatch(ev.client);
}

static void pop(void)
{
	struct event *e = ev.head;
	ev.head = e->next;
	if (!ev.head)
		ev.tail = NULL;
	ev.n--;
	free(e->topic);
	free(e->type_url);
	free(e->value);
	free(e);
}

static void on_retry(void *ud)
{
	ev.retry = NULL;
	kick();
}

static void deferred_kick(void *ud)
{
	kick();
}

static void deferred_disconnect(void *ud)
{
	disconnect();
}

static void on_forwarded(const struct ttrpc_status *st, ProtobufCMessage *reply, void *ud)
{
	ev.in_flight = false;
	if (reply)
		protobuf_c_message_free_unpacked(reply, NULL);
	if (st->code == TTRPC_OK) {
		ev.backoff_ms = 0;
		pop();
		/* continue from the loop, not from inside the client's dispatch */
		loop_defer(ev.loop, deferred_kick, NULL);
		return;
	}
	log_warn("publish %s: %s (retrying)", ev.head ? ev.head->topic : "?", st->message);
	if (st->code == TTRPC_UNAVAILABLE || ttrpc_client_closed(ev.client))
		loop_defer(ev.loop, deferred_disconnect, NULL);
	ev.backoff_ms = ev.backoff_ms ? ev.backoff_ms * 2 : BACKOFF_MIN_MS;
	if (ev.backoff_ms > BACKOFF_MAX_MS)
		ev.backoff_ms = BACKOFF_MAX_MS;
	ev.retry = loop_add_timer_ms(ev.loop, ev.backoff_ms, on_retry, NULL);
}

static void kick(void)
{
	if (ev.in_flight || ev.retry || !ev.head)
		return;
	if (!ev.client) {
		int rc = ttrpc_client_connect(ev.address, &ev.client);
		if (rc < 0) {
			ev.client = NULL;
			ev.backoff_ms = ev.backoff_ms ? ev.backoff_ms * 2 : BACKOFF_MIN_MS;
			if (ev.backoff_ms > BACKOFF_MAX_MS)
				ev.backoff_ms = BACKOFF_MAX_MS;
			ev.retry = loop_add_timer_ms(ev.loop, ev.backoff_ms, on_retry, NULL);
			return;
		}
		ev.client_src = loop_add_io(ev.loop, ttrpc_client_fd(ev.client), EPOLLIN, on_client,
					    NULL);
	}
	struct event *e = ev.head;
	Google__Protobuf__Timestamp ts = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
	ts.seconds = e->ts.tv_sec;
	ts.nanos = (int32_t)e->ts.tv_nsec;
	Google__Protobuf__Any any = GOOGLE__PROTOBUF__ANY__INIT;
	any.type_url = e->type_url;
	any.value.data = e->value;
	any.value.len = e->len;
	Containerd__Services__Events__Ttrpc__V1__Envelope env =
		CONTAINERD__SERVICES__EVENTS__TTRPC__V1__ENVELOPE__INIT;
	env.timestamp = &ts;
	env.namespace_ = ev.ns;
	env.topic = e->topic;
	env.event = &any;
	Containerd__Services__Events__Ttrpc__V1__ForwardRequest req =
		CONTAINERD__SERVICES__EVENTS__TTRPC__V1__FORWARD_REQUEST__INIT;
	req.envelope = &env;
	struct ttrpc_kv md[] = {{"containerd-namespace-ttrpc", ev.ns}};
	struct ttrpc_call_opts o = {.timeout_ns = FORWARD_TIMEOUT_NS, .metadata = md, .n_metadata = 1};
	int64_t rc = ttrpc_client_call_async(ev.client, "containerd.services.events.ttrpc.v1.Events",
					     "Forward", &req.base,
					     &google__protobuf__empty__descriptor, &o, on_forwarded,
					     NULL);
	if (rc < 0) {
		struct ttrpc_status st;
		ttrpc_status_set(&st, TTRPC_UNAVAILABLE, "send: %s", strerror((int)-rc));
		ev.in_flight = true;
		on_forwarded(&st, NULL, NULL);
		return;
	}
	ev.in_flight = true;
}

int events_init(struct loop *l, const char *address, const char *ns)
{
	ev.loop = l;
	if (address && address[0])
		ev.address = strdup(address);
	ev.ns = strdup(ns ? ns : "default");
	return 0;
}

int events_publish(const char *topic, const ProtobufCMessage *msg)
{
	if (!ev.address)
		return 0;
	if (ev.n >= EVENTS_QUEUE_MAX) {
		ev.dropped++;
		log_error("event queue full (%u): dropping %s", ev.n, topic);
		return -ENOBUFS;
	}
	struct event *e = calloc(1, sizeof(*e));
	if (!e)
		return -ENOMEM;
	e->len = protobuf_c_message_get_packed_size(msg);
	e->value = malloc(e->len ? e->len : 1);
	e->topic = strdup(topic);
	e->type_url = strdup(msg->descriptor->name); /* bare names, as containerd's typeurl */
	if (!e->value || !e->topic || !e->type_url) {
		free(e->value);
		free(e->topic);
		free(e->type_url);
		free(e);
		return -ENOMEM;
	}
	protobuf_c_message_pack(msg, e->value);
	clock_gettime(CLOCK_REALTIME, &e->ts);
	if (ev.tail)
		ev.tail->next = e;
	else
		ev.head = e;
	ev.tail = e;
	ev.n++;
	kick();
	return 0;
}

bool events_idle(void)
{
	return ev.head == NULL;
}

unsigned events_queued(void)
{
	return ev.n;
}

void events_shutdown(void)
{
	loop_timer_cancel(ev.retry);
	ev.retry = NULL;
	disconnect();
	while (ev.head)
		pop();
	free(ev.address);
	free(ev.ns);
	ev.address = ev.ns = NULL;
}
