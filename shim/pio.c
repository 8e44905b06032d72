/* Process stdio (see stdio.h). */
#include "pio.h"
#include "log.h"
#include "reaper.h"
#include "child.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <termios.h>
#include <unistd.h>

extern char **environ;

#define LOGGER_TERM_TIMEOUT_MS 12000 /* as containerd's binaryIOProcTermTimeout */

struct pio {
	struct loop *loop;
	bool terminal;
	int child[3];	     /* handed to runc, closed after it ran */
	int in_src, out_dst, err_dst; /* FIFO/file ends, until copiers take them */
	int out_src, err_src;	       /* our ends of the process pipes */
	int console;		       /* pty master */
	int console_listen;
	char console_dir[64];
	char console_path[128];
	struct copier *in, *out, *err;
	pid_t logger;
	pio_drained_fn drained_fn;
	void *drained_ud;
	struct loop_timer *drain_timer;
};

static void close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

static bool empty(const char *s)
{
	return !s || !s[0];
}

/* Bigger pipes mean fewer wake-ups per byte for the shim and the process.
 * Pages are only taken as data waits in them, so an idle pipe costs nothing;
 * failure (a non-root limit) just keeps the default. */
#define PIPE_SIZE (256u << 10)

static void grow_pipe(int fd)
{
	(void)fcntl(fd, F_SETPIPE_SZ, PIPE_SIZE);
}

static int open_output(const char *path, struct ttrpc_status *st)
{
	/* Read+write so the open never blocks and writes never fail with EPIPE
	 * while no reader is attached, as containerd's shim does. */
	int fd = open(path, O_RDWR | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		ttrpc_status_set(st, ttrpc_code_from_errno(errno), "open stdio %s: %s", path,
				 strerror(errno));
	else
		grow_pipe(fd);
	return fd;
}

static int mkdir_p(const char *dir)
{
	char buf[PATH_MAX];
	snprintf(buf, sizeof(buf), "%s", dir);
	for (char *p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(buf, 0755) < 0 && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(buf, 0755) < 0 && errno != EEXIST)
		return -errno;
	return 0;
}

static int open_log_file(const char *path, struct ttrpc_status *st)
{
	char dir[PATH_MAX];
	snprintf(dir, sizeof(dir), "%s", path);
	char *slash = strrchr(dir, '/');
	if (slash && slash != dir) {
		*slash = '\0';
		mkdir_p(dir);
	}
	int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0)
		ttrpc_status_set(st, ttrpc_code_from_errno(errno), "open log file %s: %s", path,
				 strerror(errno));
	return fd;
}

static int make_pipe(int p[2], const struct pio_config *cfg)
{
	if (pipe2(p, O_CLOEXEC) < 0)
		return -errno;
	grow_pipe(p[1]);
	if (cfg->io_uid || cfg->io_gid) {
		if (fchown(p[0], cfg->io_uid, cfg->io_gid) < 0 ||
		    fchown(p[1], cfg->io_uid, cfg->io_gid) < 0) {
			int err = -errno;
			close(p[0]);
			close(p[1]);
			return err;
		}
	}
	return 0;
}

/* binary:///path?k=v: the logger reads fd 3 (stdout) and fd 4 (stderr). */
static int start_logger(struct pio *p, const struct pio_config *cfg, const char *uri,
			struct ttrpc_status *st)
{
	char path[PATH_MAX], query[1024] = "";
	const char *rest = uri + strlen("binary://");
	const char *q = strchr(rest, '?');
	size_t plen = q ? (size_t)(q - rest) : strlen(rest);
	if (plen >= sizeof(path)) {
		ttrpc_status_set(st, TTRPC_INVALID_ARGUMENT, "logger path too long in %s", uri);
		return -ENAMETOOLONG;
	}
	memcpy(path, rest, plen);
	path[plen] = '\0';
	if (q)
		snprintf(query, sizeof(query), "%s", q + 1);
	const char *argv[34];
	int argc = 0;
	argv[argc++] = path;
	for (char *save = NULL, *kv = strtok_r(query, "&", &save); kv && argc < 32;
	     kv = strtok_r(NULL, "&", &save)) {
		char *eq = strchr(kv, '=');
		if (eq)
			*eq = '\0';
		argv[argc++] = kv;
		if (eq && eq[1])
			argv[argc++] = eq + 1;
	}
	argv[argc] = NULL;
	int ready[2];
	if (pipe2(ready, O_CLOEXEC) < 0)
		return -errno;
	char env_id[512], env_ns[512];
	snprintf(env_id, sizeof(env_id), "CONTAINER_ID=%s", cfg->id ? cfg->id : "");
	snprintf(env_ns, sizeof(env_ns), "CONTAINER_NAMESPACE=%s", cfg->ns ? cfg->ns : "");
	size_t n_env = 0;
	while (environ[n_env])
		n_env++;
	char **env = calloc(n_env + 3, sizeof(*env));
	if (!env) {
		close(ready[0]);
		close(ready[1]);
		return -ENOMEM;
	}
	memcpy(env, environ, n_env * sizeof(*env));
	env[n_env] = env_id;
	env[n_env + 1] = env_ns;
	int devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
	posix_spawn_file_actions_t fa;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, devnull, 0);
	posix_spawn_file_actions_adddup2(&fa, devnull, 1);
	posix_spawn_file_actions_adddup2(&fa, devnull, 2);
	posix_spawn_file_actions_adddup2(&fa, p->out_src, 3);
	posix_spawn_file_actions_adddup2(&fa, p->err_src, 4);
	posix_spawn_file_actions_adddup2(&fa, ready[1], 5);
	posix_spawnattr_t at;
	spawn_attr_init(&at, 0);
	int rc = posix_spawn(&p->logger, path, &fa, &at, (char *const *)argv, env);
	posix_spawnattr_destroy(&at);
	posix_spawn_file_actions_destroy(&fa);
	free(env);
	close(devnull);
	close(ready[1]);
	close(ready[0]); /* the logger's readiness is not waited for: the pipes buffer */
	if (rc != 0) {
		p->logger = 0;
		ttrpc_status_set(st, ttrpc_code_from_errno(rc), "start logger %s: %s", path,
				 strerror(rc));
		return -rc;
	}
	/* the logger owns the read ends now */
	close_fd(&p->out_src);
	close_fd(&p->err_src);
	return 0;
}

static int console_socket(struct pio *p, struct ttrpc_status *st)
{
	snprintf(p->console_dir, sizeof(p->console_dir), "/tmp/nanoshim-pty-XXXXXX");
	if (!mkdtemp(p->console_dir)) {
		ttrpc_status_set(st, ttrpc_code_from_errno(errno), "create console socket dir: %s",
				 strerror(errno));
		p->console_dir[0] = '\0';
		return -errno;
	}
	snprintf(p->console_path, sizeof(p->console_path), "%s/pty.sock", p->console_dir);
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", p->console_path);
	p->console_listen = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (p->console_listen < 0 || bind(p->console_listen, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    listen(p->console_listen, 4) < 0) {
		ttrpc_status_set(st, ttrpc_code_from_errno(errno), "console socket %s: %s",
				 p->console_path, strerror(errno));
		return -errno;
	}
	return 0;
}

int pio_create(struct loop *l, const struct pio_config *cfg, struct pio **out,
	       struct ttrpc_status *st)
{
	struct pio *p = calloc(1, sizeof(*p));
	if (!p) {
		ttrpc_status_set(st, TTRPC_RESOURCE_EXHAUSTED, "out of memory");
		return -ENOMEM;
	}
	p->loop = l;
	p->terminal = cfg->terminal;
	p->child[0] = p->child[1] = p->child[2] = -1;
	p->in_src = p->out_dst = p->err_dst = p->out_src = p->err_src = -1;
	p->console = p->console_listen = -1;
	int rc = 0, fds[2];

	if (!empty(cfg->stdin_path)) {
		p->in_src = open(cfg->stdin_path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
		if (p->in_src < 0) {
			rc = -errno;
			ttrpc_status_set(st, ttrpc_code_from_errno(errno), "open stdin %s: %s",
					 cfg->stdin_path, strerror(errno));
			goto fail;
		}
	}
	if (cfg->terminal) {
		if (!empty(cfg->stdout_path) && (p->out_dst = open_output(cfg->stdout_path, st)) < 0) {
			rc = -EIO;
			goto fail;
		}
		if ((rc = console_socket(p, st)) < 0)
			goto fail;
		*out = p;
		return 0;
	}
	if (p->in_src >= 0) {
		if ((rc = make_pipe(fds, cfg)) < 0)
			goto fail_pipe;
		p->child[0] = fds[0];
		p->in = copier_new(l, p->in_src, fds[1], true, NULL, NULL);
		if (!p->in) {
			close(fds[1]);
			rc = -ENOMEM;
			goto fail_pipe;
		}
		p->in_src = -1;
	}
	bool binary = !empty(cfg->stdout_path) && strncmp(cfg->stdout_path, "binary://", 9) == 0;
	bool file = !empty(cfg->stdout_path) && strncmp(cfg->stdout_path, "file://", 7) == 0;
	if (!empty(cfg->stdout_path)) {
		if ((rc = make_pipe(fds, cfg)) < 0)
			goto fail_pipe;
		p->out_src = fds[0];
		p->child[1] = fds[1];
	}
	if (!empty(cfg->stderr_path) || binary || file) {
		if ((rc = make_pipe(fds, cfg)) < 0)
			goto fail_pipe;
		p->err_src = fds[0];
		p->child[2] = fds[1];
	}
	if (binary) {
		if ((rc = start_logger(p, cfg, cfg->stdout_path, st)) < 0)
			goto fail;
	} else if (file) {
		const char *path = cfg->stdout_path + strlen("file://");
		if ((p->out_dst = open_log_file(path, st)) < 0 ||
		    (p->err_dst = open_log_file(path, st)) < 0) {
			rc = -EIO;
			goto fail;
		}
	} else {
		if (p->out_src >= 0 && (p->out_dst = open_output(cfg->stdout_path, st)) < 0) {
			rc = -EIO;
			goto fail;
		}
		if (p->err_src >= 0 && (p->err_dst = open_output(cfg->stderr_path, st)) < 0) {
			rc = -EIO;
			goto fail;
		}
	}
	*out = p;
	return 0;
fail_pipe:
	ttrpc_status_set(st, ttrpc_code_from_errno(rc), "create stdio pipes: %s", strerror(-rc));
fail:
	pio_free(p);
	return rc;
}

void pio_child_fds(const struct pio *p, int fds[3])
{
	memcpy(fds, p->child, sizeof(p->child));
}

const char *pio_console_socket(const struct pio *p)
{
	return p->console_path[0] ? p->console_path : NULL;
}

static void on_out_done(struct copier *c, void *ud);

static int start_output_copiers(struct pio *p)
{
	if (p->out_src >= 0 && p->out_dst >= 0) {
		p->out = copier_new(p->loop, p->out_src, p->out_dst, true, on_out_done, p);
		if (!p->out)
			return -ENOMEM;
		p->out_src = p->out_dst = -1;
	}
	if (p->err_src >= 0 && p->err_dst >= 0) {
		p->err = copier_new(p->loop, p->err_src, p->err_dst, true, on_out_done, p);
		if (!p->err)
			return -ENOMEM;
		p->err_src = p->err_dst = -1;
	}
	/* a stream nobody reads: keep draining the pipe so the process never blocks */
	return 0;
}

static int recv_console(struct pio *p, struct ttrpc_status *st)
{
	int conn = accept4(p->console_listen, NULL, NULL, SOCK_CLOEXEC);
	if (conn < 0) {
		ttrpc_status_set(st, TTRPC_INTERNAL, "console socket: runtime sent no terminal: %s",
				 strerror(errno));
		return -errno;
	}
	char name[256];
	char cbuf[CMSG_SPACE(sizeof(int))];
	struct iovec iov = {.iov_base = name, .iov_len = sizeof(name)};
	struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf,
			    .msg_controllen = sizeof(cbuf)};
	ssize_t n = recvmsg(conn, &mh, MSG_CMSG_CLOEXEC);
	close(conn);
	struct cmsghdr *cm = n >= 0 ? CMSG_FIRSTHDR(&mh) : NULL;
	if (!cm || cm->cmsg_type != SCM_RIGHTS) {
		ttrpc_status_set(st, TTRPC_INTERNAL, "console socket: no pty master received");
		return -EBADMSG;
	}
	memcpy(&p->console, CMSG_DATA(cm), sizeof(int));
	return 0;
}

int pio_after_start(struct pio *p, struct ttrpc_status *st)
{
	for (int i = 0; i < 3; i++)
		close_fd(&p->child[i]);
	if (!p->terminal)
		return start_output_copiers(p) < 0 ? -ENOMEM : 0;
	int rc = recv_console(p, st);
	close_fd(&p->console_listen);
	unlink(p->console_path);
	rmdir(p->console_dir);
	p->console_path[0] = p->console_dir[0] = '\0';
	if (rc < 0)
		return rc;
	if (p->out_dst >= 0) {
		int m = dup(p->console);
		fcntl(m, F_SETFD, FD_CLOEXEC);
		p->out = copier_new(p->loop, m, p->out_dst, true, on_out_done, p);
		p->out_dst = -1;
	}
	if (p->in_src >= 0) {
		int m = dup(p->console);
		fcntl(m, F_SETFD, FD_CLOEXEC);
		p->in = copier_new(p->loop, p->in_src, m, true, NULL, NULL);
		p->in_src = -1;
	}
	return 0;
}

void pio_close_stdin(struct pio *p)
{
	if (p->in)
		copier_finish_when_idle(p->in);
	close_fd(&p->in_src);
}

int pio_resize(struct pio *p, uint32_t width, uint32_t height)
{
	if (p->console < 0)
		return 0;
	struct winsize ws = {.ws_row = (unsigned short)height, .ws_col = (unsigned short)width};
	return ioctl(p->console, TIOCSWINSZ, &ws) < 0 ? -errno : 0;
}

bool pio_drained(const struct pio *p)
{
	return (!p->out || copier_done(p->out)) && (!p->err || copier_done(p->err));
}

static void fire_drained(struct pio *p)
{
	pio_drained_fn fn = p->drained_fn;
	if (!fn)
		return;
	p->drained_fn = NULL;
	loop_timer_cancel(p->drain_timer);
	p->drain_timer = NULL;
	fn(p->drained_ud);
}

static void on_out_done(struct copier *c, void *ud)
{
	struct pio *p = ud;
	if (pio_drained(p))
		fire_drained(p);
}

static void on_drain_timeout(void *ud)
{
	struct pio *p = ud;
	p->drain_timer = NULL;
	log_warn("stdio not drained in time; a process outside the container may hold it");
	fire_drained(p);
}

void pio_when_drained(struct pio *p, int timeout_ms, pio_drained_fn fn, void *userdata)
{
	p->drained_fn = fn;
	p->drained_ud = userdata;
	if (pio_drained(p)) {
		fire_drained(p);
		return;
	}
	p->drain_timer = loop_add_timer_ms(p->loop, timeout_ms, on_drain_timeout, p);
}

/* A logger outlives its pio: SIGTERM now, SIGKILL after the grace period,
 * unless the reaper saw it exit first (then the pid may be someone else's). */
struct logger_end {
	pid_t pid;
	struct loop_timer *timer;
	struct logger_end *next;
};

static struct logger_end *ending_loggers;

static void logger_forget(struct logger_end *e)
{
	for (struct logger_end **pp = &ending_loggers; *pp; pp = &(*pp)->next) {
		if (*pp == e) {
			*pp = e->next;
			break;
		}
	}
	loop_timer_cancel(e->timer);
	free(e);
}

static void on_logger_exit(pid_t pid, int status, const struct timespec *when, void *ud)
{
	logger_forget(ud);
}

static void logger_kill(void *ud)
{
	struct logger_end *e = ud;
	e->timer = NULL;
	kill(e->pid, SIGKILL); /* not reaped yet: the pid is still the logger's */
}

bool pio_loggers_ending(void)
{
	return ending_loggers != NULL;
}

void pio_kill_loggers(void)
{
	while (ending_loggers) {
		struct logger_end *e = ending_loggers;
		kill(e->pid, SIGKILL);
		reaper_unwatch(e->pid);
		logger_forget(e);
	}
}

void pio_free(struct pio *p)
{
	if (!p)
		return;
	loop_timer_cancel(p->drain_timer);
	copier_free(p->in);
	copier_free(p->out);
	copier_free(p->err);
	for (int i = 0; i < 3; i++)
		close_fd(&p->child[i]);
	close_fd(&p->in_src);
	close_fd(&p->out_dst);
	close_fd(&p->err_dst);
	close_fd(&p->out_src);
	close_fd(&p->err_src);
	close_fd(&p->console);
	close_fd(&p->console_listen);
	if (p->console_path[0])
		unlink(p->console_path);
	if (p->console_dir[0])
		rmdir(p->console_dir);
	if (p->logger > 0) {
		struct logger_end *e = calloc(1, sizeof(*e));
		int status;
		struct timespec when;
		if (reaper_take_unclaimed(p->logger, &status, &when)) {
			free(e); /* already gone */
		} else if (e) {
			e->pid = p->logger;
			kill(e->pid, SIGTERM);
			e->timer = loop_add_timer_ms(p->loop, LOGGER_TERM_TIMEOUT_MS, logger_kill, e);
			e->next = ending_loggers;
			ending_loggers = e;
			reaper_watch(e->pid, on_logger_exit, e);
		}
	}
	free(p);
}
