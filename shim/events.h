/* Task events to containerd: Events/Forward calls on TTRPC_ADDRESS, one at a
 * time and in order, each retried (reconnecting, with back-off) until
 * containerd takes it — never dropped after a fixed number of tries as the Go
 * shim does. The queue is bounded; the loop never waits on it. */
#pragma once

#include "loop.h"

#include <protobuf-c/protobuf-c.h>
#include <stdbool.h>

#define EVENTS_QUEUE_MAX 4096

/* address: containerd's ttrpc socket; NULL/"" disables publishing. */
int events_init(struct loop *l, const char *address, const char *ns);
/* Queues topic + event (packed now; the caller keeps ownership of msg). */
int events_publish(const char *topic, const ProtobufCMessage *msg);
/* True when nothing is queued or in flight. */
bool events_idle(void);
unsigned events_queued(void);
void events_shutdown(void);
