/* NANOSHIM_CRASH_AT=POINT in the shim's environment: the serving shim SIGKILLs
 * itself at that point, so a test (or a person debugging) can crash it exactly
 * there and see what the manager, containerd or the `delete` action recover.
 * `containerd-shim-nano-v2 -crash-points` lists the points. */
#pragma once

#define SHIM_CRASH_ENV "NANOSHIM_CRASH_AT"

/* Reads the variable once; an unknown point is logged and ignored. */
void shim_crash_init(void);
void shim_crash_point(const char *point);
void shim_crash_list(void);
