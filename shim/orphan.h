/* When a shim with no task may leave on its own. containerd shuts a shim down
 * after the delete of its last task; killed in between (after `start`, before
 * Create reached us; after our Delete reply, before Shutdown), it never will,
 * and a restarted containerd either reloads the taskless shim and keeps it for
 * good or forgets it. So a taskless shim that hears nothing that would give
 * it a task goes, as Shutdown would make it go. A shim with a task (running,
 * created or stopped, until its Delete) never goes on its own.
 *
 * In containerd 1.6's runtime/v2: TaskManager.Create (manager.go) runs
 * `start`, connects, then sends Create; shimTask.delete (shim.go) sends Delete,
 * then Shutdown; loadShims (shim_load.go) keeps every shim whose Connect
 * answers, task or not, and removes, without a word to the shim, a bundle it
 * cannot load; services/tasks lists only tasks whose State answers and
 * refuses a new task under an id it still holds. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

/* How long a taskless shim waits for a Create or Shutdown before it goes.
 * containerd sends Shutdown right after Delete and Create right after `start`
 * (milliseconds); the wait past that is only for a daemon that is slow, and a
 * connection that has not sent a request yet holds the shim longer (below). */
#define SHIM_ORPHAN_GRACE_MS 5000
/* How long a connection with no request yet keeps a taskless shim: containerd
 * connects as soon as `start` has printed the address and sends Create next,
 * however loaded it is; a reloading containerd sends Connect first. */
#define SHIM_ORPHAN_FRESH_CONN_MS 30000
/* While waiting, how often the bundle is looked at: a bundle removed (a
 * restarted containerd cleaning up a shim it could not load) ends the wait. */
#define SHIM_ORPHAN_POLL_MS 500

enum shim_orphan_verdict {
	SHIM_ORPHAN_KEEP, /* it has a task: never goes on its own */
	SHIM_ORPHAN_WAIT, /* taskless: look again at *recheck_ns */
	SHIM_ORPHAN_EXIT, /* taskless and nobody will give it a task: go */
};

struct shim_orphan_facts {
	unsigned tasks;		 /* containers not deleted (a Create in flight counts) */
	int64_t now_ns;		 /* monotonic */
	int64_t idle_since_ns;	 /* since when it has had no task (serving began, or its last delete) */
	unsigned conns;		 /* ttrpc connections open */
	bool request_since_idle; /* a request came since idle_since_ns */
	bool events_pending;	 /* events not delivered yet: it waits for them as
				  * long as containerd is away (events.h), e.g. the
				  * TaskDelete of a Delete whose containerd died */
	bool bundle_gone;	 /* the bundle it was started in was removed */
};

/* The rule, a pure function. With SHIM_ORPHAN_WAIT, *recheck_ns (optional) is
 * when the answer changes unless something happens first. */
enum shim_orphan_verdict shim_orphan_decide(const struct shim_orphan_facts *f, int64_t *recheck_ns);

struct loop;
struct ttrpc_server;

/* Starts watching: the bundle is the current directory (the serving shim runs
 * in it). */
void shim_orphan_init(struct loop *loop, struct ttrpc_server *server);
/* A request arrived (any method). */
void shim_orphan_note_request(void);
/* After each loop iteration: arms or cancels the wait; true when the shim
 * should shut down now. */
bool shim_orphan_check(void);
void shim_orphan_free(void);
