/* A taskless shim's wait for a Create or a Shutdown (orphan.h says why): the
 * rule, and its watch on the loop — a timer armed only while the shim has no
 * task, so a shim with tasks pays nothing. */
#include "orphan.h"
#include "events.h"
#include "log.h"
#include "loop.h"
#include "shim.h"
#include "ttrpc.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MS 1000000LL

enum shim_orphan_verdict shim_orphan_decide(const struct shim_orphan_facts *f, int64_t *recheck_ns)
{
	int64_t recheck = 0;
	enum shim_orphan_verdict v = SHIM_ORPHAN_WAIT;
	if (f->tasks > 0)
		return SHIM_ORPHAN_KEEP;
	/* a connection that has asked nothing yet: containerd between `start`
	 * and Create (a reload asks Connect first) */
	int64_t fresh_end = f->idle_since_ns + SHIM_ORPHAN_FRESH_CONN_MS * MS;
	int64_t grace_end = f->idle_since_ns + SHIM_ORPHAN_GRACE_MS * MS;
	if (f->conns > 0 && !f->request_since_idle && f->now_ns < fresh_end)
		recheck = fresh_end;
	else if (f->events_pending)
		recheck = f->now_ns + SHIM_ORPHAN_POLL_MS * MS; /* they may go any time */
	else if (f->bundle_gone || f->now_ns >= grace_end)
		v = SHIM_ORPHAN_EXIT;
	else
		recheck = grace_end;
	if (v == SHIM_ORPHAN_WAIT && recheck_ns)
		*recheck_ns = recheck;
	return v;
}

static struct {
	struct loop *loop;
	struct ttrpc_server *server;
	struct loop_timer *timer;
	int bundle_fd;
	bool taskless;
	int64_t idle_since_ns;
	int64_t last_request_ns;
} w = {.bundle_fd = -1};

void shim_orphan_init(struct loop *loop, struct ttrpc_server *server)
{
	w.loop = loop;
	w.server = server;
	w.bundle_fd = open(".", O_DIRECTORY | O_RDONLY | O_CLOEXEC);
	if (w.bundle_fd < 0)
		log_warn("open bundle directory: %s", strerror(errno));
	w.taskless = true;
	w.idle_since_ns = loop_now_ns();
	w.last_request_ns = 0;
}

void shim_orphan_note_request(void)
{
	w.last_request_ns = loop_now_ns();
}

static void on_timer(void *ud)
{
	w.timer = NULL; /* the iteration it ends looks again (shim_orphan_check) */
}

/* A removed directory has no links left; one we cannot look at is not gone. */
static bool bundle_gone(void)
{
	struct stat st;
	return w.bundle_fd >= 0 && fstat(w.bundle_fd, &st) == 0 && st.st_nlink == 0;
}

bool shim_orphan_check(void)
{
	if (!w.loop)
		return false;
	int64_t now = loop_now_ns();
	if (!shim_task_empty()) {
		w.taskless = false;
		loop_timer_cancel(w.timer);
		w.timer = NULL;
		return false;
	}
	if (!w.taskless) {
		w.taskless = true;
		w.idle_since_ns = now;
	}
	struct shim_orphan_facts f = {
		.tasks = 0,
		.now_ns = now,
		.idle_since_ns = w.idle_since_ns,
		.conns = ttrpc_server_conn_count(w.server),
		.request_since_idle = w.last_request_ns >= w.idle_since_ns,
		.events_pending = !events_idle(),
		.bundle_gone = bundle_gone(),
	};
	int64_t recheck = 0;
	switch (shim_orphan_decide(&f, &recheck)) {
	case SHIM_ORPHAN_KEEP:
		return false;
	case SHIM_ORPHAN_EXIT:
		log_info("no task for %lld ms, %s, no Create or Shutdown: shutting down",
			 (long long)((now - w.idle_since_ns) / MS),
			 f.bundle_gone ? "bundle removed" : f.conns ? "connected" : "nobody connected");
		loop_timer_cancel(w.timer);
		w.timer = NULL;
		return true;
	case SHIM_ORPHAN_WAIT:
		break;
	}
	if (!w.timer) {
		int64_t poll = now + SHIM_ORPHAN_POLL_MS * MS;
		w.timer = loop_add_timer(w.loop, recheck < poll ? recheck : poll, on_timer, NULL);
	}
	return false;
}

void shim_orphan_free(void)
{
	loop_timer_cancel(w.timer);
	w.timer = NULL;
	if (w.bundle_fd >= 0)
		close(w.bundle_fd);
	w.bundle_fd = -1;
	w.loop = NULL;
}
