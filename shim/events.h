/* Task events to containerd: Events/Forward calls on TTRPC_ADDRESS, one at a
 * time and in order, the head retried (reconnecting, with back-off from 50 ms
 * to 2 s) until containerd takes it, for as long as containerd is away —
 * never dropped after a fixed number of tries as the Go shim does (5 retries,
 * 15 s). Publishing only queues: connecting (non-blocking) and sending happen
 * later, from the loop, so a handler that publishes and then replies never
 * waits on containerd.
 *
 * What is kept, by class:
 * - lifecycle (create, start, exec-started, exit, delete): always, never
 *   dropped or refused. Each happens once per process (an exit, a delete) or
 *   per call containerd made (create, start, exec-started), so what piles up
 *   while containerd is away is at most one exit per process alive when it
 *   left: the process count bounds them, not a queue limit that would have
 *   to give up an exit.
 * - OOM: one undelivered event per container; repeats coalesce into it, so
 *   containerd hears of every OOM-killed container at least once and the
 *   container count bounds them. Never dropped.
 * - informational (exec-added, paused, resumed, checkpointed): at most
 *   EVENTS_INFO_MAX undelivered; beyond that the oldest undelivered one gives
 *   way to the newest. The only drops; counted and logged.
 * Only an allocation failure (logged) or the bounded wait at shutdown
 * (serve.c, after containerd's Shutdown) can lose a lifecycle event. */
#pragma once

#include "loop.h"

#include <protobuf-c/protobuf-c.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

/* Undelivered informational events at most. */
#define EVENTS_INFO_MAX 1024

/* address: containerd's ttrpc socket; NULL/"" disables publishing. */
int events_init(struct loop *l, const char *address, const char *ns);
/* Queues topic + event (packed now; the caller keeps ownership of msg) and
 * returns: no I/O happens before the loop runs again. 0 when queued (or
 * coalesced with an undelivered OOM event of the same container), -ENOMEM. */
int events_publish(const char *topic, const ProtobufCMessage *msg);
/* True when nothing is queued or in flight. */
bool events_idle(void);
unsigned events_queued(void);
/* Informational events dropped since start (coalesced OOMs not counted). */
unsigned long events_dropped(void);
void events_shutdown(void);

/* Live upgrade (upgrade.c): the queue handed to the next process. An event
 * as queued: its topic, packed payload and publication time. */
struct events_item {
	const char *topic, *type_url;
	const uint8_t *value;
	size_t len;
	const char *oom_id; /* /tasks/oom: the container it coalesces on, else NULL */
	struct timespec ts;
};
/* A Forward is out and its answer not in: handing over now could send the
 * event twice or not at all, so the upgrade waits for the answer (or its
 * timeout). */
bool events_in_flight(void);
/* Calls fn on each queued event, oldest first, until fn returns non-zero
 * (returned). The items are valid until the queue changes. */
int events_each(int (*fn)(const struct events_item *it, void *ud), void *ud);
/* Appends an event another process queued (same order, same time): 0 or
 * -ENOMEM. */
int events_requeue(const struct events_item *it);
