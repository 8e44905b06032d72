/* Terminal output relayed by nanoshimd (see nanoshimd.h).
 *
 * Our shim writes a terminal's output into a file:// log like any other
 * output. containerd-shim-runc-v2 copies a console only into a FIFO ("failed
 * to start console copy" for a file:// URI), so for it, and for any shim that
 * is not ours, the terminal's stdout is a FIFO in the bundle, io-<proc>.tty,
 * that nanoshimd holds open (read and write: it never sees EOF, never HUP)
 * and copies into the same io-<proc>.log a follower reads. What the process
 * writes while nanoshimd is down waits in the FIFO (64 KiB), then the shim's
 * console copy blocks until a restarted nanoshimd relays again. */
#include "nanoshimd.h"
#include "copier.h"
#include "log.h"
#include "spawn.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define NANO_SHIM_NAME "containerd-shim-nano-v2:"

bool relay_needed(struct daemon *d)
{
	if (d->shim_tty_log == SHIM_TTY_UNKNOWN) {
		/* `-v` prints the shim's name first; ours is the one that writes a
		 * terminal into a log file itself (a renamed copy still says so) */
		const char *argv[] = {d->cfg.shim_binary, "-v", NULL};
		struct spawn_req req = {.argv = argv, .fds = {-1, -1, -1}, .flags = SPAWN_CAPTURE_STDOUT};
		char *out = NULL;
		int rc = spawn_sync(&req, &out, NULL, NULL, NULL);
		bool ours = rc == 0 && out && strncmp(out, NANO_SHIM_NAME, strlen(NANO_SHIM_NAME)) == 0;
		d->shim_tty_log = ours ? SHIM_TTY_LOG : SHIM_TTY_FIFO;
		log_info("shim %s: %s", d->cfg.shim_binary,
			 ours ? "writes terminal output into the log itself"
			      : "copies a terminal only into a FIFO: nanoshimd relays it into the log");
		free(out);
	}
	return d->shim_tty_log == SHIM_TTY_FIFO;
}

static void on_relay_done(struct copier *cp, void *ud)
{
	/* the FIFO is held open for writing too: it ends only when asked */
}

int relay_open(struct proc *p)
{
	if (p->relay)
		return 0;
	char fifo[4200], logp[4200];
	proc_path(p, "tty", fifo, sizeof(fifo));
	proc_path(p, "log", logp, sizeof(logp));
	if (mkfifo(fifo, 0600) < 0 && errno != EEXIST)
		return -errno;
	int src = open(fifo, O_RDWR | O_NONBLOCK | O_CLOEXEC);
	if (src < 0)
		return -errno;
	/* not O_APPEND: splice refuses an append-mode file; nothing else writes
	 * this log (a terminal has no stderr), and the dup shares the offset */
	int dst = open(logp, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
	if (dst < 0 || lseek(dst, 0, SEEK_END) < 0) {
		int rc = -errno;
		if (dst >= 0)
			close(dst);
		close(src);
		return rc;
	}
	p->relay_log = dup(dst); /* for relay_drain: the copier owns dst */
	p->relay = copier_new(p->ctr->d->loop, src, dst, true, on_relay_done, p);
	if (!p->relay) {
		if (p->relay_log >= 0)
			close(p->relay_log);
		p->relay_log = -1;
		return -ENOMEM;
	}
	return 0;
}

void relay_drain(struct proc *p)
{
	if (!p->relay || p->relay_log < 0)
		return;
	int src = copier_src(p->relay);
	char buf[65536];
	ssize_t n;
	/* the copier splices pipe to file with no buffer of its own: bytes read
	 * here cannot overtake bytes it has read, and land at the shared offset */
	while ((n = read(src, buf, sizeof(buf))) > 0 || (n < 0 && errno == EINTR))
		if (n > 0 && write(p->relay_log, buf, (size_t)n) != n) {
			log_warn("%s/%s: relay of %s's terminal: %s", p->ctr->ns, p->ctr->id,
				 p->exec_id[0] ? p->exec_id : "init", strerror(errno));
			break;
		}
}

void relay_close(struct proc *p)
{
	if (!p->relay)
		return;
	relay_drain(p);
	copier_free(p->relay);
	p->relay = NULL;
	if (p->relay_log >= 0)
		close(p->relay_log);
	p->relay_log = -1;
	/* the FIFO stays: a nanoshimd that stops (SIGTERM) relays it again
	 * after its restart; a delete removes it with the bundle or the exec */
}
