/* The shim's crash points (see crash.h). */
#include "crash.h"
#include "log.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const struct {
	const char *name, *what;
} points[] = {
	{"create-rootfs-mounted", "Create: rootfs mounted, stdio ready, before runc create"},
	{"create-runc-done", "Create: runc create succeeded, TaskCreate queued, before the reply"},
	{"start-runc-done", "Start: runc start succeeded, TaskStart queued, before the reply"},
	{"exec-start-runc-done", "Start of an exec: runc exec succeeded, before the reply"},
	{"exit-recorded", "an exit reaped and on disk (<id>.exit), not yet announced"},
	{"exit-event-queued", "an exit announced: TaskExit queued, not yet sent"},
	{"exit-event-sent", "a TaskExit acknowledged by containerd, nothing sent after it"},
	{"kill-runc-done", "Kill: runc kill succeeded, before the reply"},
	{"delete-runc-done", "Delete: runc delete succeeded; stdio, rootfs mount, exit record "
	                     "still there"},
	{"delete-event-queued", "Delete: rootfs unmounted, TaskDelete queued, before the reply"},
};

static const char *armed;

void shim_crash_init(void)
{
	const char *p = getenv(SHIM_CRASH_ENV);
	if (!p || !p[0])
		return;
	for (size_t i = 0; i < sizeof(points) / sizeof(points[0]); i++)
		if (strcmp(points[i].name, p) == 0) {
			armed = points[i].name;
			log_warn("%s=%s: this shim kills itself there", SHIM_CRASH_ENV, p);
			return;
		}
	log_warn("%s=%s: no such crash point (containerd-shim-nano-v2 -crash-points lists them)",
		 SHIM_CRASH_ENV, p);
}

void shim_crash_point(const char *point)
{
	if (armed && strcmp(armed, point) == 0) {
		log_warn("crash point %s reached: killing myself (%s)", point, SHIM_CRASH_ENV);
		kill(getpid(), SIGKILL);
	}
}

void shim_crash_list(void)
{
	for (size_t i = 0; i < sizeof(points) / sizeof(points[0]); i++)
		printf("%-22s %s\n", points[i].name, points[i].what);
}
