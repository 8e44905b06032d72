/* nanoctl's command table: a command group is one file with one handler (and
 * its own table of subcommands, run with nanoctl_run_group), plus one line in
 * main.c's table. Errors reach the user as one line, "nanoctl: <what>: <cause>". */
#pragma once

#include <stddef.h>

#define NANOCTL_DEFAULT_ADDRESS "/run/nanoshim/nanoshimd.sock"

/* Options given before the command, for every group. */
struct nanoctl_global {
	const char *address; /* nanoshimd's socket (--address) */
	const char *argv0;   /* how nanoctl was invoked, for messages */
	const char *namespace_; /* containers' namespace (--namespace, default "default") */
};

/* Exit statuses every command uses. */
enum {
	NANOCTL_EXIT_OK = 0,
	NANOCTL_EXIT_FAIL = 1,    /* the operation failed, or bad arguments */
	NANOCTL_EXIT_CONNECT = 2, /* the peer could not be reached */
};

/* A command or subcommand. fn gets argv[0] = its own name and the arguments
 * after it, and returns the process's exit status. */
struct nanoctl_command {
	const char *name;
	int (*fn)(int argc, char **argv, const struct nanoctl_global *g);
	const char *help;  /* one line, for the list */
	const char *usage; /* the full text of `nanoctl ... NAME --help` */
};

/* Runs the subcommand argv[1] of group argv[0] from cmds (n entries), or lists
 * them for --help/-h (exit 0) or a missing/unknown name (exit 1). */
int nanoctl_run_group(const char *group, const struct nanoctl_command *cmds, size_t n, int argc,
                      char **argv, const struct nanoctl_global *g);

/* "nanoctl: " + the formatted text + "\n" on stderr; returns NANOCTL_EXIT_FAIL
 * (or rc for nanoctl_errc), so a handler can `return nanoctl_err(...)`. */
int nanoctl_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
int nanoctl_errc(int rc, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Prints a usage text on stdout (for --help) and returns 0. */
int nanoctl_usage(const char *usage);
/* The usage error of cmd: "nanoctl: <cmd>: <what>" and a pointer to --help; 1. */
int nanoctl_usage_err(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Command groups, one file each, listed in main.c's table. */
extern const struct nanoctl_command nanoctl_shim_command; /* shim.c */
/* ctr.c: the container commands, each a call to nanoshimd */
extern const struct nanoctl_command nanoctl_run_command, nanoctl_create_command,
	nanoctl_start_command, nanoctl_exec_command, nanoctl_ls_command, nanoctl_ps_command,
	nanoctl_kill_command, nanoctl_pause_command, nanoctl_resume_command, nanoctl_update_command,
	nanoctl_stats_command, nanoctl_wait_command, nanoctl_rm_command, nanoctl_logs_command,
	nanoctl_events_command, nanoctl_info_command, nanoctl_get_command;
