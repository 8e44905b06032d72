/* OOM watch (see oom.h). */
#include "oom.h"
#include "events.h"
#include "log.h"
#include "process.h"
#include "shim.h"

#include "cgroup/cgroup_oom.h"
#include "containerd/events/task.pb-c.h"

#include <stdlib.h>
#include <sys/epoll.h>

static void check(struct container *c)
{
	struct cgroup_oom *w = c->oom;
	if (!w)
		return;
	bool oom = false;
	int rc = cgroup_oom_read(w, &oom);
	if (oom) {
		log_info("container %s: out of memory", c->id);
		Containerd__Events__TaskOOM ev = CONTAINERD__EVENTS__TASK_OOM__INIT;
		ev.container_id = c->id;
		events_publish("/tasks/oom", &ev.base);
	}
	if (rc != 0)
		oom_watch_free(c);
}

static void on_oom(struct loop_source *s, int fd, uint32_t events, void *ud)
{
	check(ud);
}

void oom_watch_start(struct container *c)
{
	struct cgroup_ref ref = {0};
	struct cgroup_err err = {0};
	if (c->oom || !c->init.pid || cgroup_ref_from_pid(c->init.pid, &ref, &err) < 0)
		return;
	struct cgroup_oom *w = calloc(1, sizeof(*w));
	if (w && cgroup_oom_watch(&ref, w, &err) == 0) {
		c->oom = w;
		c->oom_src = loop_add_io(shim.loop, w->fd, EPOLLIN, on_oom, c);
	} else {
		log_debug("no OOM watch for %s: %s", c->id, err.msg);
		free(w);
	}
	cgroup_ref_release(&ref);
}

void oom_check_now(struct container *c)
{
	check(c);
}

void oom_watch_free(struct container *c)
{
	loop_io_remove(c->oom_src);
	c->oom_src = NULL;
	if (c->oom) {
		cgroup_oom_release(c->oom);
		free(c->oom);
		c->oom = NULL;
	}
}
