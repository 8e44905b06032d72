/* Children of the shim start with a clean signal state: the shim blocks
 * SIGCHLD, SIGTERM, SIGINT and SIGPIPE for its signalfd, and a blocked mask is
 * inherited across exec — a logger or runtime started with it would ignore
 * SIGTERM and never see its own children exit. */
#pragma once

#include <spawn.h>

/* posix_spawnattr_init + empty mask + default dispositions; destroy after use. */
void spawn_attr_init(posix_spawnattr_t *at, short extra_flags);
