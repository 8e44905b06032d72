/* Event publisher (see events.h): a FIFO of packed events, sent one at a time
 * from the loop over a client connected without ever blocking — a containerd
 * whose listen backlog is full answers a non-blocking connect with EAGAIN,
 * which is one more retry with back-off, not a shim asleep in the kernel. */
#include "events.h"
#include "crash.h"
#include "log.h"
#include "ttrpc.h"

#include "containerd/events/task.pb-c.h"
#include "containerd/services/events/ttrpc/v1/events.pb-c.h"
#include "google/protobuf/empty.pb-c.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define FORWARD_TIMEOUT_NS (5 * 1000000000LL)
#define CONNECT_TIMEOUT_MS 5000
#define BACKOFF_MIN_MS 50
#define BACKOFF_MAX_MS 2000

/* How an event is kept (see events.h). */
enum event_class {
	EV_OOM,       /* one undelivered per container (repeats coalesce), never dropped */
	EV_INFO,      /* exec-added, paused, resumed, checkpointed: the only ones that give way */
	EV_LIFECYCLE, /* create, start, exec-started, exit, delete: never dropped */
	EV_CLASSES,
};

struct event {
	char *topic;
	char *type_url;
	uint8_t *value;
	size_t len;
	enum event_class cls;
	char *oom_id; /* EV_OOM: the container, to coalesce repeats */
	struct timespec ts;
	struct event *prev, *next;
};

static struct {
	struct loop *loop;
	char *address;
	char *ns;
	struct ttrpc_client *client;
	struct loop_source *client_src;
	/* a connect in progress (EINPROGRESS): its fd, EPOLLOUT watch, deadline */
	int conn_fd;
	struct loop_source *conn_src;
	struct loop_timer *conn_timer;
	struct event *head, *tail;
	unsigned n, n_class[EV_CLASSES];
	bool in_flight;   /* head is being sent */
	bool kick_queued; /* a deferred kick is pending */
	bool unreachable; /* warned about the current outage */
	bool stopping;    /* events_shutdown() is freeing the client */
	struct loop_timer *retry;
	int backoff_ms;
	unsigned long dropped;
	unsigned long tries; /* failed connects and Forward calls since the last delivery */
} ev = {.conn_fd = -1};

static void kick(void);

static void disconnect(void)
{
	loop_io_remove(ev.client_src);
	ev.client_src = NULL;
	ttrpc_client_free(ev.client);
	ev.client = NULL;
}

static void connect_abort(void)
{
	loop_io_remove(ev.conn_src);
	ev.conn_src = NULL;
	loop_timer_cancel(ev.conn_timer);
	ev.conn_timer = NULL;
	if (ev.conn_fd >= 0)
		close(ev.conn_fd);
	ev.conn_fd = -1;
}

static void on_client(struct loop_source *s, int fd, uint32_t events, void *ud)
{
	if (ev.client)
		ttrpc_client_dispatch(ev.client);
}

static void unlink_event(struct event *e)
{
	if (e->prev)
		e->prev->next = e->next;
	else
		ev.head = e->next;
	if (e->next)
		e->next->prev = e->prev;
	else
		ev.tail = e->prev;
	ev.n--;
	ev.n_class[e->cls]--;
}

static void event_free(struct event *e)
{
	free(e->topic);
	free(e->type_url);
	free(e->value);
	free(e->oom_id);
	free(e);
}

static void pop(void)
{
	struct event *e = ev.head;
	unlink_event(e);
	event_free(e);
}

static void on_retry(void *ud)
{
	ev.retry = NULL;
	kick();
}

static void deferred_kick(void *ud)
{
	ev.kick_queued = false;
	kick();
}

/* Kicks from the loop, never from inside the caller: events_publish() runs
 * in handlers before they reply, on_forwarded() inside the client's dispatch. */
static void schedule_kick(void)
{
	if (ev.kick_queued)
		return;
	if (loop_defer(ev.loop, deferred_kick, NULL) == 0)
		ev.kick_queued = true;
	else if (!ev.retry) /* no memory for the deferral: try again soon */
		ev.retry = loop_add_timer_ms(ev.loop, BACKOFF_MIN_MS, on_retry, NULL);
}

/* At the tail, counted, sent from the loop. */
static void enqueue(struct event *e, enum event_class cls)
{
	e->prev = ev.tail;
	if (ev.tail)
		ev.tail->next = e;
	else
		ev.head = e;
	ev.tail = e;
	ev.n++;
	ev.n_class[cls]++;
	schedule_kick();
}

static void deferred_disconnect(void *ud)
{
	disconnect();
}

static void retry_later(void)
{
	ev.tries++;
	ev.backoff_ms = ev.backoff_ms ? ev.backoff_ms * 2 : BACKOFF_MIN_MS;
	if (ev.backoff_ms > BACKOFF_MAX_MS)
		ev.backoff_ms = BACKOFF_MAX_MS;
	ev.retry = loop_add_timer_ms(ev.loop, ev.backoff_ms, on_retry, NULL);
}

/* containerd cannot be reached: warn once per outage, then retry. */
static void connect_failed(int err)
{
	if (!ev.unreachable)
		log_warn("publish events: connect to %s: %s (retrying)", ev.address, strerror(err));
	else
		log_debug("publish events: connect to %s: %s", ev.address, strerror(err));
	ev.unreachable = true;
	retry_later();
}

static void connected(int fd)
{
	ev.client = ttrpc_client_new(fd); /* takes fd */
	if (ev.client)
		ev.client_src =
		    loop_add_io(ev.loop, ttrpc_client_fd(ev.client), EPOLLIN, on_client, NULL);
	if (!ev.client || !ev.client_src) {
		disconnect();
		connect_failed(ENOMEM);
		return;
	}
	if (ev.unreachable)
		log_info("publish events: connected to %s again after %lu tries", ev.address,
		         ev.tries);
	ev.unreachable = false;
}

static void on_connect_ready(struct loop_source *s, int fd, uint32_t events, void *ud)
{
	int err = 0;
	socklen_t len = sizeof(err);
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
		err = errno;
	ev.conn_fd = -1; /* ours again: connected() or close() below */
	connect_abort();
	if (err) {
		close(fd);
		connect_failed(err);
		return;
	}
	connected(fd);
	kick();
}

static void on_connect_timeout(void *ud)
{
	ev.conn_timer = NULL;
	connect_abort();
	connect_failed(ETIMEDOUT);
}

/* Starts a non-blocking connect: done at once (unix sockets connect or fail
 * immediately, EAGAIN when the listener's backlog is full), or in progress
 * and watched for EPOLLOUT. */
static void start_connect(void)
{
	struct sockaddr_un sa;
	int len = ttrpc_sockaddr(ev.address, &sa);
	if (len < 0) {
		connect_failed(-len);
		return;
	}
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		connect_failed(errno);
		return;
	}
	if (connect(fd, (struct sockaddr *)&sa, (socklen_t)len) == 0) {
		connected(fd);
		return;
	}
	int err = errno;
	if (err == EINPROGRESS) {
		ev.conn_fd = fd;
		ev.conn_src = loop_add_io(ev.loop, fd, EPOLLOUT, on_connect_ready, NULL);
		ev.conn_timer =
		    loop_add_timer_ms(ev.loop, CONNECT_TIMEOUT_MS, on_connect_timeout, NULL);
		if (ev.conn_src && ev.conn_timer)
			return;
		connect_abort();
		connect_failed(ENOMEM);
		return;
	}
	close(fd);
	connect_failed(err);
}

static void on_forwarded(const struct ttrpc_status *st, ProtobufCMessage *reply, void *ud)
{
	ev.in_flight = false;
	if (reply)
		protobuf_c_message_free_unpacked(reply, NULL);
	if (ev.stopping)
		return;
	if (st->code == TTRPC_OK) {
		ev.backoff_ms = 0;
		ev.tries = 0;
		if (strcmp(ev.head->topic, "/tasks/exit") == 0)
			shim_crash_point("exit-event-sent");
		pop();
		schedule_kick();
		return;
	}
	log_warn("publish %s: %s (retrying)", ev.head ? ev.head->topic : "?", st->message);
	if (st->code == TTRPC_UNAVAILABLE || ttrpc_client_closed(ev.client))
		loop_defer(ev.loop, deferred_disconnect, NULL);
	retry_later();
}

static void send_head(void)
{
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
	struct ttrpc_call_opts o = {
	    .timeout_ns = FORWARD_TIMEOUT_NS, .metadata = md, .n_metadata = 1};
	ev.in_flight = true;
	int64_t rc = ttrpc_client_call_async(
	    ev.client, "containerd.services.events.ttrpc.v1.Events", "Forward", &req.base,
	    &google__protobuf__empty__descriptor, &o, on_forwarded, NULL);
	if (rc < 0) {
		struct ttrpc_status st;
		ttrpc_status_set(&st, TTRPC_UNAVAILABLE, "send: %s", strerror((int)-rc));
		on_forwarded(&st, NULL, NULL);
	}
}

static void kick(void)
{
	if (ev.in_flight || ev.retry || ev.conn_src || !ev.head)
		return;
	if (ev.client && ttrpc_client_closed(ev.client))
		disconnect(); /* containerd went away while we were idle */
	if (!ev.client) {
		start_connect();
		if (!ev.client)
			return;
	}
	send_head();
}

int events_init(struct loop *l, const char *address, const char *ns)
{
	ev.loop = l;
	ev.conn_fd = -1;
	if (address && address[0])
		ev.address = strdup(address);
	ev.ns = strdup(ns ? ns : "default");
	return 0;
}

static enum event_class classify(const char *topic)
{
	if (strcmp(topic, "/tasks/oom") == 0)
		return EV_OOM;
	static const char *const info[] = {"/tasks/exec-added", "/tasks/paused", "/tasks/resumed",
	                                   "/tasks/checkpointed"};
	for (size_t i = 0; i < sizeof(info) / sizeof(info[0]); i++)
		if (strcmp(topic, info[i]) == 0)
			return EV_INFO;
	return EV_LIFECYCLE; /* and anything unknown: never the first to go */
}

/* The oldest queued event of class cls not already being sent. */
static struct event *oldest_unsent(enum event_class cls)
{
	if (!ev.n_class[cls])
		return NULL;
	for (struct event *e = ev.in_flight ? ev.head->next : ev.head; e; e = e->next)
		if (e->cls == cls)
			return e;
	return NULL;
}

static struct event *unsent_oom_of(const char *id)
{
	if (!ev.n_class[EV_OOM])
		return NULL;
	for (struct event *e = ev.in_flight ? ev.head->next : ev.head; e; e = e->next)
		if (e->cls == EV_OOM && strcmp(e->oom_id, id) == 0)
			return e;
	return NULL;
}

/* Logs the first drop and then every power of two, so a flood of
 * informational events cannot flood the log as well. */
static void count_drop(const char *what, const char *topic, const char *why)
{
	ev.dropped++;
	if ((ev.dropped & (ev.dropped - 1)) == 0)
		log_error("event queue: %u informational events undelivered: %s %s %s (%lu "
		          "dropped so far)",
		          ev.n_class[EV_INFO], what, topic, why, ev.dropped);
}

/* Admits one event of class cls: lifecycle and OOM events always (see
 * events.h for what bounds them); an informational one takes the place of the
 * oldest undelivered informational event once EVENTS_INFO_MAX are queued. */
static void make_room(enum event_class cls)
{
	if (cls != EV_INFO || ev.n_class[EV_INFO] < EVENTS_INFO_MAX)
		return;
	struct event *victim = oldest_unsent(EV_INFO);
	if (!victim)
		return; /* only the one in flight: it leaves the queue soon */
	unlink_event(victim);
	count_drop("dropping the oldest", victim->topic, "to keep the newest");
	event_free(victim);
}

int events_publish(const char *topic, const ProtobufCMessage *msg)
{
	if (!ev.address)
		return 0;
	enum event_class cls = classify(topic);
	const char *oom_id = NULL;
	if (cls == EV_OOM) {
		if (msg->descriptor == &containerd__events__task_oom__descriptor)
			oom_id = ((const Containerd__Events__TaskOOM *)msg)->container_id;
		if (!oom_id)
			oom_id = "";
		if (unsent_oom_of(oom_id))
			return 0; /* containerd will hear of this container's OOM */
	}
	make_room(cls);
	struct event *e = calloc(1, sizeof(*e));
	if (!e) {
		log_error("publish %s: out of memory: the event is lost", topic);
		return -ENOMEM;
	}
	e->cls = cls;
	e->len = protobuf_c_message_get_packed_size(msg);
	e->value = malloc(e->len ? e->len : 1);
	e->topic = strdup(topic);
	e->type_url = strdup(msg->descriptor->name); /* bare names, as containerd's typeurl */
	if (oom_id)
		e->oom_id = strdup(oom_id);
	if (!e->value || !e->topic || !e->type_url || (oom_id && !e->oom_id)) {
		event_free(e);
		log_error("publish %s: out of memory: the event is lost", topic);
		return -ENOMEM;
	}
	protobuf_c_message_pack(msg, e->value);
	clock_gettime(CLOCK_REALTIME, &e->ts);
	enqueue(e, cls);
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

unsigned long events_dropped(void)
{
	return ev.dropped;
}

void events_shutdown(void)
{
	loop_timer_cancel(ev.retry);
	ev.retry = NULL;
	connect_abort();
	ev.stopping = true;
	disconnect();
	ev.stopping = false;
	if (ev.n)
		log_warn("publish events: %u events undelivered at exit (%u lifecycle)", ev.n,
		         ev.n_class[EV_LIFECYCLE]);
	while (ev.head)
		pop();
	if (ev.dropped)
		log_warn("publish events: %lu informational events dropped", ev.dropped);
	free(ev.address);
	free(ev.ns);
	ev.address = ev.ns = NULL;
	ev.in_flight = false;
	ev.tries = 0;
	ev.backoff_ms = 0;
}

/* ---- live upgrade: the queue handed over ---- */

bool events_in_flight(void)
{
	return ev.in_flight;
}

int events_each(int (*fn)(const struct events_item *it, void *ud), void *ud)
{
	for (struct event *e = ev.head; e; e = e->next) {
		struct events_item it = {.topic = e->topic, .type_url = e->type_url,
		                         .value = e->value, .len = e->len, .oom_id = e->oom_id,
		                         .ts = e->ts};
		int rc = fn(&it, ud);
		if (rc)
			return rc;
	}
	return 0;
}

int events_requeue(const struct events_item *it)
{
	if (!ev.address)
		return 0;
	enum event_class cls = classify(it->topic);
	make_room(cls);
	struct event *e = calloc(1, sizeof(*e));
	if (!e)
		return -ENOMEM;
	e->cls = cls;
	e->len = it->len;
	e->value = malloc(it->len ? it->len : 1);
	e->topic = strdup(it->topic);
	e->type_url = strdup(it->type_url);
	if (cls == EV_OOM)
		e->oom_id = strdup(it->oom_id ? it->oom_id : "");
	if (!e->value || !e->topic || !e->type_url || (cls == EV_OOM && !e->oom_id)) {
		event_free(e);
		return -ENOMEM;
	}
	if (it->len)
		memcpy(e->value, it->value, it->len);
	e->ts = it->ts;
	enqueue(e, cls);
	return 0;
}
