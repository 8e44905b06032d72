/* containerd's task events (containerd/events/task.proto) by type: what a
 * shim forwards in an Envelope's Any, for whoever decodes one. */
#pragma once

#include <protobuf-c/protobuf-c.h>

/* The message name a type URL ends in ("types.containerd.io/x.Y" -> "x.Y"). */
const char *containerd_type_name(const char *type_url);
/* "containerd.events.TaskExit" or a type URL ending in it; NULL if no task event. */
const ProtobufCMessageDescriptor *containerd_task_event(const char *type_url);
