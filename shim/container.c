/* The shim's containers: the list in `shim`, lookup by id, the references
 * runtime calls in flight hold, and freeing a container with its processes. */
#include "container.h"
#include "oom.h"
#include "shim.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Adds a new container (one reference, the caller's) to the list. */
void container_add(struct container *c)
{
	c->next = shim.containers;
	shim.containers = c;
}

struct container *container_find(const char *id)
{
	for (struct container *c = shim.containers; c; c = c->next)
		if (!c->deleted && strcmp(c->id, id) == 0)
			return c;
	return NULL;
}

struct process *container_find_exec(struct container *c, const char *exec_id)
{
	for (struct process *p = c->execs; p; p = p->next)
		if (strcmp(p->exec_id, exec_id) == 0)
			return p;
	return NULL;
}

void process_free_fields(struct process *p)
{
	/* nothing may call back into a freed process: a pid still running
	 * (a create that failed late, a shim shutting down) is reaped quietly */
	if (p->pid > 0 && !p->reaped)
		reaper_discard(shim.reaper, p->pid);
	if (p->pidfd >= 0)
		close(p->pidfd);
	p->pidfd = -1;
	while (p->waiters) { /* first: the message names the process */
		struct waiter *w = p->waiters;
		p->waiters = w->next;
		ttrpc_call_fail(w->call, TTRPC_NOT_FOUND, "process %s: deleted", process_name(p));
		free(w);
	}
	pio_free(p->io);
	p->io = NULL;
	free(p->stdin_path);
	free(p->stdout_path);
	free(p->stderr_path);
	free(p->spec);
	free(p->exec_id);
}

void container_free(struct container *c)
{
	for (struct container **pp = &shim.containers; *pp; pp = &(*pp)->next) {
		if (*pp == c) {
			*pp = c->next;
			break;
		}
	}
	while (c->execs) {
		struct process *p = c->execs;
		c->execs = p->next;
		process_free_fields(p);
		free(p);
	}
	process_free_fields(&c->init);
	oom_watch_free(c);
	loop_timer_cancel(c->delete_timer);
	if (c->delete_call)
		ttrpc_call_fail(c->delete_call, TTRPC_UNAVAILABLE, "delete %s: shim shutting down",
				c->id);
	if (c->bundle_fd >= 0)
		close(c->bundle_fd);
	free(c->criu_image_path);
	free(c->criu_work_path);
	free(c->bundle);
	free(c->id);
	free(c);
}

void container_ref(struct container *c)
{
	c->refs++;
}

void container_unref(struct container *c)
{
	if (--c->refs == 0 && c->deleted)
		container_free(c);
}
