/* Containers and processes as the task service sees them. Init and execs
 * share one state machine: created -> running <-> paused -> stopped ->
 * (deleted). An exit moves a process to stopped only once its output is
 * drained and its exit record is on disk; then TaskExit goes out and Wait
 * returns. */
#pragma once

#include "runc.h"
#include "pio.h"
#include "ttrpc.h"

#include "google/protobuf/timestamp.pb-c.h"

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

enum proc_state {
	PROC_CREATED,
	PROC_RUNNING,
	PROC_PAUSED,
	PROC_STOPPED,
};

struct waiter {
	struct ttrpc_call *call;
	struct waiter *next;
};

struct container;
struct proc_op;

struct process {
	struct container *c;
	struct process *next; /* execs of a container */
	char *exec_id;	      /* NULL for init */
	enum proc_state state;
	pid_t pid;
	int pidfd;	      /* -1 until the runtime reports the pid; closed at reap */
	bool reaped;	      /* exit known, not yet announced */
	bool announcing;      /* Create / Start in flight: its event goes before the exit */
	bool start_announced; /* TaskStart / TaskExecStarted is queued */
	bool finalizing;      /* waiting for output drain */
	int exit_status;
	struct timespec exited_at;
	struct pio *io;
	char *stdin_path, *stdout_path, *stderr_path;
	bool terminal;
	char *spec; /* exec: JSON of the OCI Process */
	size_t spec_len;
	struct waiter *waiters;
	int busy;	     /* runc calls on this process in flight */
	struct proc_op *ops; /* those calls, to kill when they must not outlive a request */
};

struct container {
	struct container *next;
	char *id;
	char *bundle;
	int bundle_fd;
	char runc_root[4096];
	char runc_binary[256];
	char criu_path[256];
	struct runc_config runc;
	bool no_pivot_root, no_new_keyring;
	uid_t io_uid;
	gid_t io_gid;
	uint64_t spool_max; /* output spool cap (runtime config's spool_max_bytes) */
	char *criu_image_path, *criu_work_path;
	bool rootfs_mounted;
	bool private_pidns;
	struct process init;
	struct process *execs;
	int refs; /* runc calls in flight */
	bool deleted;
	struct ttrpc_call *delete_call; /* a Delete waiting for runc calls to end */
	struct loop_timer *delete_timer; /* its grace period */
	/* OOM watch */
	void *oom;
	struct loop_source *oom_src;
};

/* The id events and messages use: the exec id, or the container's. */
static inline const char *process_name(const struct process *p)
{
	return p->exec_id ? p->exec_id : p->c->id;
}

/* process.c: the exit protocol. */

/* t as a Timestamp; NULL or zero gives Go's zero time ("not exited"). */
void process_timestamp(Google__Protobuf__Timestamp *ts, const struct timespec *t);
/* Answers every Wait on p with its exit. */
void process_answer_waiters(struct process *p);
/* Announces p's recorded exit once its output is drained, unless a Create or
 * Start in flight will (it calls this when done). */
void process_finalize_exit(struct process *p);
/* Registers the pid the runtime reported for p, in a call begun at since_ns;
 * an exit already reaped since then is p's own. */
void process_track_pid(struct process *p, pid_t pid, int64_t since_ns);
/* Signals the process behind pidfd: 0 or -errno (-ESRCH once it is reaped). */
int shim_pidfd_signal(int pidfd, int sig);
/* Signals a process the shim tracks; -ESRCH once it is gone. */
int process_signal(struct process *p, int sig);
/* Kills the process named in pidfile, started since since_ns for a request
 * that failed. */
void process_kill_ghost(int bundle_fd, const char *pidfile, int64_t since_ns);
