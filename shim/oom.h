/* OOM watching of a container's init cgroup: a loop source on the cgroup
 * library's eventfd/inotify fd, publishing /tasks/oom. */
#pragma once

struct container;

void oom_watch_start(struct container *c);
/* Reads a pending notification now (an OOM kill is announced before the
 * exit it causes). */
void oom_check_now(struct container *c);
void oom_watch_free(struct container *c);
