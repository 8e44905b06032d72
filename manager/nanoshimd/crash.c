/* --crash-at POINT: nanoshimd SIGKILLs itself at a named point of create,
 * start, delete or recovery, so a test (or a person) can crash it exactly
 * there and see what a restart recovers. */
#include "nanoshimd.h"
#include "log.h"

#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static const struct {
	const char *name, *what;
} points[] = {
	{"create-record-written", "create: bundle and record on disk, shim not started"},
	{"create-shim-started", "create: the shim printed its address, no task yet"},
	{"create-task-created", "create: the task exists (CREATED), before the reply"},
	{"start-before", "start: before Task.Start is sent"},
	{"start-started", "start: the process runs, before the reply"},
	{"delete-before", "delete: before Task.Delete is sent"},
	{"delete-task-deleted", "delete: the task is deleted, the shim still serves"},
	{"delete-shim-shutdown", "delete: the shim shut down, the bundle still on disk"},
	{"recover-scanned", "recovery: the state dir is scanned and every shim asked, no answer taken in"},
	{"recover-done", "recovery: every container reconnected or cleaned up"},
};

bool crash_point_known(const char *point)
{
	for (size_t i = 0; i < sizeof(points) / sizeof(points[0]); i++)
		if (strcmp(points[i].name, point) == 0)
			return true;
	return false;
}

void crash_list(void)
{
	for (size_t i = 0; i < sizeof(points) / sizeof(points[0]); i++)
		printf("%-24s %s\n", points[i].name, points[i].what);
}

void crash_point(const struct daemon *d, const char *point)
{
	if (!d->cfg.crash_at || strcmp(d->cfg.crash_at, point) != 0)
		return;
	log_warn("crash point %s reached: killing myself (--crash-at)", point);
	kill(getpid(), SIGKILL);
}
