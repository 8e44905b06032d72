/* A process's stdio as containerd describes it: FIFO paths (the default),
 * `file:///path` or `binary:///path?args` log URIs, or a terminal received
 * through runc's --console-socket. The shim gives runc pipes (or the console
 * socket), then moves bytes with copiers; "drained" means every byte the
 * process wrote has been handed to the reader. */
#pragma once

#include "copier.h"
#include "loop.h"
#include "reaper.h"
#include "ttrpc.h"

#include <stdbool.h>
#include <sys/types.h>

struct pio_config {
	const char *stdin_path, *stdout_path, *stderr_path; /* "" or NULL: none */
	bool terminal;
	uid_t io_uid;
	gid_t io_gid;
	const char *ns, *id; /* for binary:// loggers */
	struct reaper *reaper; /* watches binary:// loggers; needed only for them */
	/* Output the reader leaves unread is spooled, up to spool_max bytes (0:
	 * none, the process blocks once the pipes are full): in memory, then in
	 * an unnamed file in spool_dir (the bundle; NULL: memory only). */
	size_t spool_max;
	const char *spool_dir;
	const char *exec_id; /* names the spool in the log; NULL: the init */
};

struct pio;

/* Sets up pipes, opens the FIFOs / files, starts loggers. */
int pio_create(struct loop *l, const struct pio_config *cfg, struct pio **out,
	       struct ttrpc_status *st);
/* Calls fn once the process may be started: at once, except for a binary://
 * logger, which first signals readiness on its fd 5 (a byte, or closing it)
 * as containerd's shim waits for. err is 0, or -errno (-ETIMEDOUT: the logger
 * neither signalled nor exited in time). Never called after pio_free. */
typedef void (*pio_ready_fn)(void *userdata, int err);
void pio_when_ready(struct pio *p, pio_ready_fn fn, void *userdata);
/* fds runc should get as its stdio (-1: /dev/null). */
void pio_child_fds(const struct pio *p, int fds[3]);
/* --console-socket path for a terminal process, else NULL. */
const char *pio_console_socket(const struct pio *p);
/* After runc ran: close the ends the child got, and for a terminal receive the
 * pty master from the console socket and start copying. */
int pio_after_start(struct pio *p, struct ttrpc_status *st);
/* CloseIO: deliver what is buffered, then close the process's stdin. */
void pio_close_stdin(struct pio *p);
int pio_resize(struct pio *p, uint32_t width, uint32_t height);
/* Calls fn once output is drained (at once if it already is), or after
 * timeout_ms with the copiers still running. Drained: every byte the process
 * wrote is delivered, or spooled for a reader yet to come (pio_free drops
 * what no reader took). */
typedef void (*pio_drained_fn)(void *userdata);
void pio_when_drained(struct pio *p, int timeout_ms, pio_drained_fn fn, void *userdata);
bool pio_drained(const struct pio *p);
/* Frees p; a binary:// logger gets SIGTERM, and SIGKILL after 12 s. */
void pio_free(struct pio *p);
/* Loggers told to stop that have not exited yet; the shim waits for them
 * before it exits, and kills what is left when it cannot wait longer. */
bool pio_loggers_ending(void);
void pio_kill_loggers(void);

/* Live upgrade (upgrade.c): the fds behind a started process's stdio, each
 * copier's source and destination (-1 when it has none or is done) and the
 * pty master. The fds stay p's; the new process takes them with
 * pio_import. */
struct pio_export {
	int in_src, in_dst, out_src, out_dst, err_src, err_dst, console;
	bool in_finishing; /* CloseIO seen: stdin ends once idle */
	bool terminal;
	pid_t logger; /* a binary:// logger still running (it reads the pipes itself), or 0 */
	int out_spool, err_spool; /* pio_import: memfds of spooled output (pio_spools_take), or -1 */
};
/* 0, or -EBUSY with *why set when p cannot move now: a process not yet
 * started, a logger not ready yet, output being drained, bytes held in a
 * copier's buffer (stdin to a terminal the process does not read). The
 * spools are not exported here: out_spool and err_spool are -1. */
int pio_export(const struct pio *p, struct pio_export *out, const char **why);
/* Moves what p's stdout and stderr spools hold into memfds (*out_fd,
 * *err_fd; -1 for none): 0, or -errno with nothing moved. */
int pio_spools_take(struct pio *p, int *out_fd, int *err_fd);
/* Puts them back (the exec failed) and closes them. */
void pio_spools_give(struct pio *p, int out_fd, int err_fd);
/* Stdio rebuilt from exported fds, which it takes (closed on failure); cfg
 * gives the reaper and what pio_create takes for the spool and the log
 * (spool_max, spool_dir, id, exec_id), its paths are not used. */
struct pio *pio_import(struct loop *l, const struct pio_config *cfg, const struct pio_export *in);
