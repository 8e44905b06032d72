/* One reaper for every child of the shim: SIGCHLD -> waitpid(-1, WNOHANG)
 * until empty, each exit routed by pid to the watcher that registered it. An
 * exit for a pid nobody watches yet (a container process that died before
 * runc reported its pid) is kept until someone asks for it. */
#pragma once

#include <stdbool.h>
#include <sys/types.h>
#include <time.h>

/* status: the waitpid status, already converted: exit code, or 128 + signal. */
typedef void (*reaper_fn)(pid_t pid, int status, const struct timespec *when, void *userdata);

#define REAPER_MAX_UNCLAIMED 1024

int reaper_watch(pid_t pid, reaper_fn fn, void *userdata);
void reaper_unwatch(pid_t pid);
/* Takes an exit that happened before reaper_watch(); true if there was one. */
bool reaper_take_unclaimed(pid_t pid, int *status, struct timespec *when);
/* Reap everything that has exited. Call on SIGCHLD. */
void reaper_reap(void);
int reaper_exit_code(int wstatus);
