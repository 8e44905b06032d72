/* containerd's task events by type (see task_events.h). */
#include "task_events.h"

#include "containerd/events/task.pb-c.h"

#include <string.h>

static const ProtobufCMessageDescriptor *const events[] = {
	&containerd__events__task_create__descriptor,
	&containerd__events__task_start__descriptor,
	&containerd__events__task_delete__descriptor,
	&containerd__events__task_io__descriptor,
	&containerd__events__task_exit__descriptor,
	&containerd__events__task_oom__descriptor,
	&containerd__events__task_exec_added__descriptor,
	&containerd__events__task_exec_started__descriptor,
	&containerd__events__task_paused__descriptor,
	&containerd__events__task_resumed__descriptor,
	&containerd__events__task_checkpointed__descriptor,
};

const char *containerd_type_name(const char *type_url)
{
	const char *slash = strrchr(type_url, '/');
	return slash ? slash + 1 : type_url;
}

const ProtobufCMessageDescriptor *containerd_task_event(const char *type_url)
{
	if (!type_url)
		return NULL;
	const char *name = containerd_type_name(type_url);
	for (size_t i = 0; i < sizeof(events) / sizeof(events[0]); i++)
		if (strcmp(events[i]->name, name) == 0)
			return events[i];
	return NULL;
}
