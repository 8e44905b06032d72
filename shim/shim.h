/* The serving shim's global context: one loop, one ttrpc server, the
 * containers it owns (one, or several when containerd groups a pod's
 * containers into one shim). */
#pragma once

#include "loop.h"
#include "reaper.h"
#include "ttrpc.h"

#include <stdbool.h>
#include <sys/types.h>

struct container;

struct shim {
	struct loop *loop;
	struct reaper *reaper; /* every child of the shim */
	struct ttrpc_server *server;
	const char *ns;
	const char *id;
	const char *address;	   /* containerd's gRPC address (-address) */
	const char *ttrpc_address; /* where events go */
	const char *bundle;	   /* cwd at start: the bundle of the first container */
	bool debug;
	struct container *containers;
	bool shutdown_requested;
};

extern struct shim shim;

/* Task service handlers, indexed as containerd.task.v2.Task's methods. */
extern const ttrpc_handler_fn shim_task_handlers[];
/* Registers shim_task_handlers as containerd.task.v2.Task and as
 * containerd.task.v3.Task (serve.c). */
int shim_register_task_services(struct ttrpc_server *s);
/* Called once the loop runs: nothing; and at SIGTERM / Shutdown. */
void shim_task_shutdown(void);
bool shim_task_empty(void);
