/* The directory of shim sockets, shared by every shim of a host (or of a
 * manager): who owns a socket path is decided under a lock on it, and a socket
 * is stale only when nothing listens on it. */
#pragma once

#include <stdbool.h>

#define SOCKET_LOCK_WAIT_MS 2000

/* Whether a shim listens on path. Never waits: a full backlog (EAGAIN) is
 * a live listener too busy to accept right now, not a stale socket. */
bool shim_socket_connectable(const char *path);

/* Takes an exclusive flock on the directory of a shim socket and returns the
 * locked fd (close() releases it), or -errno (-ETIMEDOUT after
 * SOCKET_LOCK_WAIT_MS: a holder stopped mid-start must not wedge every other
 * start and shim exit; callers then go on without the lock). Every step that decides who owns
 * a socket path — bind to listen in `start`, unlinking a stale socket in
 * `start` and `delete`, a serving shim removing its own at exit — runs under
 * it, so a second `start` for the same group can never find a socket bound but
 * not yet listening, take it for stale, unlink it and orphan the first shim.
 * A lock on the directory leaves no file behind and dies with its holder. */
int shim_socket_lock(const char *socket_path);
