/* The shim's containers: the list, lookup, references and freeing. The
 * structures themselves are in process.h. */
#pragma once

#include "process.h"

/* Adds a new container to the shim's list. */
void container_add(struct container *c);
/* A container by id, not deleted; NULL if none. */
struct container *container_find(const char *id);
/* An exec of c by id; NULL if none. */
struct process *container_find_exec(struct container *c, const char *exec_id);
/* Takes a reference for a runtime call in flight. */
void container_ref(struct container *c);
/* Drops one; the last of a deleted container frees it. */
void container_unref(struct container *c);
/* Unlinks c from the list and frees it with its processes; waiters and a
 * waiting Delete are failed. */
void container_free(struct container *c);
/* Releases what a process holds (pid watch, pidfd, waiters, stdio, strings),
 * not the process itself. */
void process_free_fields(struct process *p);
