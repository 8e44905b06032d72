/* One reaper for every child of a process: SIGCHLD -> waitpid(-1, WNOHANG)
 * until empty, each exit routed by pid to the watcher that registered it. An
 * exit for a pid nobody watches yet (a container process that died before
 * runc reported its pid) is kept, for a minute, until someone asks for it;
 * it is handed only to a process started before it was reaped, so a reused
 * pid never inherits an old exit. A process has at most one reaper: it takes
 * every child's exit, whoever started the child. */
#pragma once

#include "loop.h"

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

struct reaper;

/* status: the waitpid status, already converted: exit code, or 128 + signal. */
typedef void (*reaper_fn)(pid_t pid, int status, const struct timespec *when, void *userdata);

#define REAPER_MAX_UNCLAIMED 1024
#define REAPER_UNCLAIMED_TTL_NS (60 * 1000000000LL)

/* With l non-NULL: reaps on SIGCHLD through its own signalfd on l (the caller has
 * blocked SIGCHLD first; reaper_new blocks it in the calling thread if it was not),
 * and reaps at once whatever exited before that signalfd existed. With l NULL: the
 * owner calls reaper_reap() itself. NULL with errno on failure. */
struct reaper *reaper_new(struct loop *l);
/* Forgets every watch and unclaimed exit; the children are not touched. NULL ok.
 * Not from inside one of r's callbacks. */
void reaper_free(struct reaper *r);

/* CLOCK_BOOTTIME in ns: the clock of /proc/<pid>/stat start times. */
int64_t reaper_now_ns(void);
/* When pid started (CLOCK_BOOTTIME ns, to the kernel's clock tick), or -errno. */
int64_t reaper_start_ns(pid_t pid);

/* fn runs once, when pid is reaped (the watch is gone by then). 0 or -ENOMEM. */
int reaper_watch(struct reaper *r, pid_t pid, reaper_fn fn, void *userdata);
void reaper_unwatch(struct reaper *r, pid_t pid);
/* The exit of pid is of no interest (a process nobody waits for any more):
 * reap it quietly, so it never becomes an unclaimed exit. */
void reaper_discard(struct reaper *r, pid_t pid);

/* The process a runtime reported as pid, started by a call that began at
 * since_ns (reaper_now_ns()): opens a pidfd for it if that pid is alive (or
 * not yet reaped) and started at or after since_ns, and forgets any older
 * unclaimed exit of the pid: >= 0, the pidfd. If it is gone: -ESRCH, with its
 * exit in *status / *when when it was reaped after since_ns (true in
 * *exited), else *exited false (its exit is unknown). Either way no unclaimed
 * exit of pid is left behind. */
int reaper_claim(struct reaper *r, pid_t pid, int64_t since_ns, bool *exited, int *status,
		 struct timespec *when);
/* Reap everything that has exited. Called on SIGCHLD by a reaper with a loop. */
void reaper_reap(struct reaper *r);
/* A waitpid status as an exit code: the code, or 128 + signal. */
int reaper_exit_code(int wstatus);
