/* nanoshimd: one thread, one loop. A container is a bundle directory under
 * <state>/<namespace>/<id>, a record file in it, and one shim serving it over
 * ttrpc; the daemon keeps nothing else, so a restarted daemon rebuilds
 * everything from the state dir and the shims that kept running. */
#pragma once

#include "nanoshim/v1/manager.pb-c.h"
#include "id.h"
#include "loop.h"
#include "ttrpc.h"

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#define NANOSHIMD_VERSION "0.1.0"
#define NANOSHIMD_RECORD_FILE "nanoshimd.record"
#define NANOSHIMD_SHIM_BINARY_FILE "shim-binary-path" /* as containerd writes it */
#define NANOSHIMD_SOCKET_SUBDIR ".s"		      /* shim sockets: <state>/.s */
#define NANOSHIMD_MAX_EXECS 1024		      /* per container */
#define NANOSHIMD_CALL_TIMEOUT_NS (10 * 1000000000LL) /* a shim call, runc included */
#define NANOSHIMD_RECOVER_TIMEOUT_NS (2 * 1000000000LL) /* connect + State at recovery */
#define NANOSHIMD_RECORD_MAX (1u << 20)
#define NANOSHIMD_NAME_BUCKETS 4096 /* ctr_find's index (a power of two) */

struct reaper;
struct daemon;
struct ctr;

struct config {
	const char *state;	 /* --state */
	const char *root;	 /* --root */
	const char *address;	 /* --address: our socket */
	const char *shim_binary; /* --shim-binary */
	const char *runtime;	 /* --runtime */
	int64_t start_timeout_ns;
	unsigned event_retain;
	bool debug;
	const char *crash_at;
};

/* A waiter parked on a process's exit: a Wait or a Delete call. */
struct waiter {
	struct waiter *next;
	struct ttrpc_call *call;
};

struct proc {
	struct proc *next;
	struct ctr *ctr;
	char exec_id[BUNDLE_ID_MAX + 1]; /* "" for init */
	bool terminal, stdin;
	uint32_t pid;
	Nanoshim__V1__Status status;
	bool exited;
	uint32_t exit_status;
	struct timespec exited_at;
	bool waiting; /* a Task.Wait is out to the shim */
	bool wait_after_recovery; /* adopted running: its Wait goes out once all are back */
	bool exit_published; /* its /tasks/exit is in the event log */
	void (*on_exit)(struct proc *p); /* once, after the waiters (a forced delete) */
	struct waiter *waiters;
	bool tty_relay;        /* its terminal comes through io-<proc>.tty (relay.c) */
	struct copier *relay;  /* that FIFO into io-<proc>.log, while open */
	int relay_log;         /* the log, for a drain beside the copier; -1 */
};

enum ctr_shim_state {
	SHIM_STARTING,	  /* `<shim> start` runs */
	SHIM_CONNECTED,	  /* a client, calls go through */
	SHIM_UNREACHABLE, /* recovery could not reach it in time; retried */
	SHIM_GONE,	  /* the shim exited or was cleaned up with its delete action */
};

struct ctr {
	struct ctr *next, *prev; /* daemon.ctrs, in creation order */
	struct ctr *hnext;	 /* daemon.by_name's bucket */
	struct daemon *d;
	char ns[BUNDLE_ID_MAX + 1];
	char id[BUNDLE_ID_MAX + 1];
	char bundle[4096];
	Nanoshim__V1__Record *record; /* as on disk (owned) */
	enum ctr_shim_state shim_state;
	char shim_address[256];
	pid_t shim_pid;
	struct ttrpc_client *client; /* in daemon.shims */
	struct proc init;
	struct proc *execs;
	unsigned refs;	   /* callbacks in flight hold one each */
	bool removed;	   /* deleted: gone from the list, freed at refs 0 */
	bool shutting_down; /* its shim was asked to go: a close is expected */
	bool cleaning;	   /* `<shim> delete` runs */
	struct ttrpc_call *delete_call; /* a forced Delete waiting for the exit */
	bool delete_sent;		/* Task.Delete is out: the delete goes on */
	bool recovering;		/* counted in daemon.recovering */
	unsigned recover_pending;	/* State calls out at recovery */
	struct loop_timer *retry;	/* reconnecting to an unreachable shim */
};

enum shim_tty { SHIM_TTY_UNKNOWN, SHIM_TTY_LOG, SHIM_TTY_FIFO };

struct daemon {
	struct config cfg;
	enum shim_tty shim_tty_log; /* relay.c: how the shim copies a terminal */
	struct loop *loop;
	struct reaper *reaper;
	struct ttrpc_server *server;
	struct loop_source *server_src;
	struct ttrpc_client_group *shims; /* every shim's client: one epoll set, one timer */
	struct ctr *ctrs, *ctrs_last;
	struct ctr *by_name[NANOSHIMD_NAME_BUCKETS]; /* ctr_find's index: namespace and id */
	struct timespec started_at;
	char self[4096]; /* our executable, for -publish-binary */
	char socket_dir[4096];
	unsigned recovering; /* containers whose recovery has not finished */
	int64_t recover_start_ns;
	struct loop_timer *waits_timer; /* the adopted processes' Waits, after recovery */
	struct evlog *evlog;
};

/* crash.c: --crash-at POINT */
void crash_point(const struct daemon *d, const char *point);
void crash_list(void);
bool crash_point_known(const char *point);

/* relay.c: a terminal's output for shims that copy a console only into a
 * FIFO (containerd-shim-runc-v2): nanoshimd copies it into io-<proc>.log. */
bool relay_needed(struct daemon *d); /* the shim is not ours (asks `<shim> -v` once) */
int relay_open(struct proc *p);       /* makes io-<proc>.tty if needed and relays it */
void relay_drain(struct proc *p);     /* what the FIFO holds, into the log, now */
void relay_close(struct proc *p);     /* drains and stops (the FIFO stays) */

/* registry.c */
struct ctr *ctr_find(struct daemon *d, const char *ns, const char *id);
struct ctr *ctr_new(struct daemon *d, const char *ns, const char *id);
void ctr_ref(struct ctr *c);
void ctr_unref(struct ctr *c);
void ctr_remove(struct ctr *c); /* from the list; freed when unreferenced */
struct proc *ctr_proc(struct ctr *c, const char *exec_id);
struct proc *ctr_add_exec(struct ctr *c, const char *exec_id, bool terminal, bool stdin);
void ctr_drop_exec(struct ctr *c, struct proc *p);
int ctr_record_write(struct ctr *c);
int ctr_record_read(int dirfd, Nanoshim__V1__Record **out);
/* The exit is known: every waiter answered, an event published. */
void proc_exited(struct proc *p, uint32_t status, const struct timespec *at, bool publish);
void proc_fail_waiters(struct proc *p, int code, const char *msg);
void proc_path(const struct proc *p, const char *what, char *out, size_t outlen);
/* Removes what the container left on disk (bundle, network namespace) and
 * takes it off the list. */
int ctr_destroy(struct ctr *c);
const char *ns_or_default(const char *ns);
void timespec_to_pb(const struct timespec *ts, Google__Protobuf__Timestamp *out);

/* shims.c: one shim per container */
typedef void (*shim_reply_fn)(struct ctr *c, const struct ttrpc_status *st,
			      ProtobufCMessage *reply, void *userdata);
typedef void (*shim_started_fn)(struct ctr *c, int err, const char *msg, void *userdata);
int shim_start(struct ctr *c, shim_started_fn done, void *userdata);
int shim_connect(struct ctr *c, int64_t timeout_ns);
/* A Task call on c's shim; done runs once, never from inside this function. */
int shim_call(struct ctr *c, const char *method, const ProtobufCMessage *req,
	      const ProtobufCMessageDescriptor *reply_desc, int64_t timeout_ns, shim_reply_fn done,
	      void *userdata);
/* Watches p's exit with a Task.Wait without deadline. */
void shim_wait(struct proc *p);
/* The shim is gone: runs `<shim> delete`, marks every process exited with its
 * status, then done (may be NULL). */
typedef void (*shim_cleaned_fn)(struct ctr *c, void *userdata);
void shim_cleanup_dead(struct ctr *c, shim_cleaned_fn done, void *userdata);
/* SIGKILL of c's shim (its shim.pid, Connect's answer, or found by its command
 * line), then, once it is gone, shim_cleanup_dead. */
void shim_kill_and_cleanup(struct ctr *c, shim_cleaned_fn done, void *userdata);
/* At exit: a last look at the sockets of dead shims something still held. */
void shim_sockets_release(void);
void shim_disconnect(struct ctr *c);

/* api.c */
int api_register(struct daemon *d);

/* recover.c */
#define NANOSHIMD_DELETING_FILE "nanoshimd.deleting" /* a Delete began: finish it at recovery */
#define NANOSHIMD_RETRY_MS 5000
#define NANOSHIMD_WAITS_AFTER_MS 50 /* adopted processes' Waits, after the recovery */
int recover_all(struct daemon *d);
/* c's recovery has finished (adopted, cleaned up, or found unreachable). */
void recover_done_one(struct ctr *c);
/* Reconnects to an unreachable shim after NANOSHIMD_RETRY_MS. */
void recover_retry(struct ctr *c);

/* events.c: the Forward endpoint, the retained log and subscribers */
int events_init(struct daemon *d);
void events_free(struct daemon *d);
int events_register(struct daemon *d);
/* Records and fans out one event; any of the strings may be NULL. */
void events_publish(struct daemon *d, const char *ns, const char *topic,
		    const Google__Protobuf__Any *event, const char *id, const char *exec_id,
		    uint32_t pid, uint32_t exit_status, const char *message);
void events_subscribe(struct daemon *d, struct ttrpc_call *call,
		      const Nanoshim__V1__EventsRequest *req);
