/* Task events to containerd: Events/Forward calls on TTRPC_ADDRESS, one at a
 * time and in order, each retried (reconnecting, with back-off) until
 * containerd takes it — never dropped after a fixed number of tries as the Go
 * shim does. Publishing only queues: connecting (non-blocking) and sending
 * happen later, from the loop, so a handler that publishes and then replies
 * never waits on containerd. The queue is bounded; when it is full, what gives
 * way is, in order: the oldest OOM event, the oldest informational event
 * (exec-added, paused, resumed, checkpointed); lifecycle events (create,
 * start, exec-started, exit, delete) are refused only when nothing else is
 * left to drop. Drops are counted and logged. */
#pragma once

#include "loop.h"

#include <protobuf-c/protobuf-c.h>
#include <stdbool.h>

#define EVENTS_QUEUE_MAX 4096
/* Slots only lifecycle events may use: informational ones stop short of them. */
#define EVENTS_QUEUE_RESERVED 1024
/* Undelivered OOM events at most (one per container: repeats coalesce). */
#define EVENTS_OOM_MAX 256

/* address: containerd's ttrpc socket; NULL/"" disables publishing. */
int events_init(struct loop *l, const char *address, const char *ns);
/* Queues topic + event (packed now; the caller keeps ownership of msg) and
 * returns: no I/O happens before the loop runs again. 0 when queued (or
 * coalesced with an undelivered OOM event of the same container), -ENOBUFS
 * when refused, -ENOMEM. */
int events_publish(const char *topic, const ProtobufCMessage *msg);
/* True when nothing is queued or in flight. */
bool events_idle(void);
unsigned events_queued(void);
/* Events dropped or refused since start (coalesced OOMs not counted). */
unsigned long events_dropped(void);
void events_shutdown(void);
