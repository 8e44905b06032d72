/* The shim's command line: the flags main.c parses (Go's flag syntax, as
 * containerd passes them) and the three actions, one file each: start.c
 * (socket + serving shim, prints the address), delete.c (cleanup after a shim
 * that is gone), serve.c (the serving shim's loop). */
#pragma once

#include <stdbool.h>

#define SHIM_NAME "containerd-shim-nano-v2"
#define SHIM_VERSION "0.1.0"

struct shim_flags {
	const char *argv0;
	const char *ns, *id, *address, *publish_binary, *bundle, *socket;
	bool debug, version, crash_points, info;
	bool upgrade_version; /* -upgrade-version: print the state version taken */
	int resume_fd;	      /* -upgrade-resume FD: the new process of a live upgrade */
	bool upgrade_fallback; /* -upgrade-fallback: the state came back from the new binary */
	const char *action;
};

/* Appended by `start` to the serving shim's GLIBC_TUNABLES, and taken off
 * again by the serving shim before it starts anything, so its children see
 * containerd's environment: glibc's per-thread cache of freed chunks (tcache,
 * up to 7 chunks of each size up to 1 KiB) holds heap pages malloc_trim
 * cannot give back; an idle shim's heap is what its last calls left there.
 * bench/MEMORY.md has the measurements. */
#define SHIM_SERVE_TUNABLE "glibc.malloc.tcache_count=0"
/* The serving shim's environment: ours with SHIM_SERVE_TUNABLE added (start.c;
 * the live upgrade's exec too). NULL without memory. */
char **shim_serve_env(void);
void shim_serve_env_free(char **env);

/* Each returns the process's exit code. */
int shim_start(const struct shim_flags *f);
int shim_delete(const struct shim_flags *f);
int shim_serve(const struct shim_flags *f);
/* -info: RuntimeInfo on stdout (info.c); needs neither -id nor -namespace. */
int shim_info(const struct shim_flags *f);
