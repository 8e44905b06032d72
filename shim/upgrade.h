/* Live upgrade: the serving shim re-execs itself as another binary (the
 * nanoshim.shim.v1.Upgrade call, or SIGHUP for the binary at its own path)
 * without restarting a container or dropping a connection. The old process
 * checks that the new binary takes its state version (`BINARY
 * -upgrade-version`), holds new requests back until nothing is in motion (no
 * runtime call, no call in flight but this one and parked Waits, which the new
 * process runs again; no exit being announced, no event being delivered, no
 * reply half written), writes its state into a memfd (UpgradeState,
 * proto/nanoshim/shim/v1/upgrade.proto) and execs BINARY -upgrade-resume FD,
 * same pid: the listener, the connections (with any frame read in part), the
 * containers' stdio pipes, files, FIFOs and pty masters stay open across the
 * exec, and output spooled for readers that are away goes along in memfds. The new process rebuilds its loop from the state, re-claims every
 * process (an exit during the exec is reaped then and announced as usual),
 * requeues the undelivered events, runs the carried Waits and answers the
 * Upgrade call itself. Anything
 * refused leaves the old process serving as before. */
#pragma once

#include "ttrpc.h"

#include "nanoshim/shim/v1/upgrade.pb-c.h"

#include <stdbool.h>

/* The state this binary writes and reads; another number is refused. */
#define UPGRADE_STATE_VERSION 1u

/* `-upgrade-version`: prints UPGRADE_STATE_VERSION. */
int upgrade_print_version(void);
/* Registers nanoshim.shim.v1.Upgrade on the shim's server. */
int upgrade_register(struct ttrpc_server *s);
/* SIGHUP: upgrade to the binary at the path this one was started from (a
 * package upgrade replaced it); the outcome goes to the log. */
void upgrade_on_sighup(void);

/* Validates and encodes what the shim holds now into a state message; 0, or
 * -EBUSY/-ENOMEM with st saying why. except: the Upgrade call itself. The
 * message's strings point into the shim's structures: free with
 * upgrade_state_release. Exposed for tests. */
int upgrade_state_collect(const struct ttrpc_call *except, Nanoshim__Shim__V1__UpgradeState *out,
                          struct ttrpc_status *st);
void upgrade_state_release(Nanoshim__Shim__V1__UpgradeState *s);
/* Packs / unpacks (checking the version: -EPROTO) a state; for tests. */
int upgrade_state_write(int fd, const Nanoshim__Shim__V1__UpgradeState *s);
int upgrade_state_read(int fd, Nanoshim__Shim__V1__UpgradeState **out, uint32_t *version);
/* Puts an event the old process had not delivered back on the queue
 * (events_requeue): 0 or -ENOMEM. */
int upgrade_event_requeue(const Nanoshim__Shim__V1__UpgradeEvent *m);

/* The new process, in shim_serve: reads the state from fd (closed), adopts
 * the connections on s; returns the listening fd to serve, or -errno. A
 * state of another version (the binary said it took ours, and cannot) goes
 * back to the binary that wrote it (execve, -upgrade-fallback), which serves
 * on and answers the Upgrade call with the refusal: fallback says this is
 * that binary. */
int upgrade_resume_begin(int fd, struct ttrpc_server *s, bool fallback);
/* Once the loop and reaper exist: rebuilds containers and processes,
 * re-claims their pids, restarts the copiers and answers the Upgrade call. */
int upgrade_resume_finish(void);
