/* Process stdio (see stdio.h). */
#include "pio.h"
#include "log.h"
#include "reaper.h"
#include "spawn.h"
#include "spool.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <dirent.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

extern char **environ;

#define LOGGER_TERM_TIMEOUT_MS 12000 /* as containerd's binaryIOProcTermTimeout */
/* containerd's shim waits for a logger's readiness with no bound at all; a
 * logger that neither signals nor exits fails the create after this instead. */
#define LOGGER_READY_TIMEOUT_MS 30000
/* The console socket lives in a directory of its own under /tmp, named for
 * the shim's pid so that what a killed shim left behind can be told apart. */
#define CONSOLE_DIR_PREFIX "nanoshim-pty-"

struct pio {
	struct loop *loop;
	struct reaper *reaper; /* the logger's watcher */
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
	int ready_fd; /* the logger's readiness pipe, until it signals */
	struct loop_source *ready_s;
	struct loop_timer *ready_timer;
	int ready_err; /* 0, or why the logger never became ready */
	pio_ready_fn ready_fn;
	void *ready_ud;
	pio_drained_fn drained_fn;
	void *drained_ud;
	struct loop_timer *drain_timer;
	size_t spool_max; /* 0: no spool */
	char *spool_dir;  /* NULL: memory only */
	char label[64];	  /* "<id>" or "<id> exec <exec id>", for the log */
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

/* The types a stdio path may name. Anything else (a directory, a block
 * device, a socket) is refused before it is read or written. */
static const char *stdio_type_error(mode_t m)
{
	if (S_ISFIFO(m) || S_ISREG(m) || S_ISCHR(m))
		return NULL;
	if (S_ISDIR(m))
		return "is a directory";
	if (S_ISBLK(m))
		return "is a block device";
	return "is not a FIFO, a regular file or a character device";
}

/* Every stdio path is user input: never follow a symlink in its last
 * component (a writable log directory must not let anyone point root-written
 * output at another file), never become the controlling terminal, and never
 * block the loop in open(). */
#define STDIO_OPEN_FLAGS (O_NONBLOCK | O_NOFOLLOW | O_NOCTTY | O_CLOEXEC)

static void stdio_open_error(struct ttrpc_status *st, const char *what, const char *path, int err)
{
	if (err == ELOOP)
		ttrpc_status_set(st, TTRPC_INVALID_ARGUMENT, "open %s %s: is a symbolic link", what,
				 path);
	else
		ttrpc_status_set(st, ttrpc_code_from_errno(err), "open %s %s: %s", what, path,
				 strerror(err));
}

/* Checks the type of what fd names; regular files get O_APPEND, FIFOs a
 * bigger buffer. Closes fd and returns -errno on refusal. */
static int stdio_check(int fd, const char *what, const char *path, struct ttrpc_status *st)
{
	struct stat sb;
	if (fstat(fd, &sb) < 0) {
		int err = errno;
		close(fd);
		stdio_open_error(st, what, path, err);
		return -err;
	}
	const char *bad = stdio_type_error(sb.st_mode);
	if (bad) {
		close(fd);
		ttrpc_status_set(st, TTRPC_INVALID_ARGUMENT, "open %s %s: %s", what, path, bad);
		return -EINVAL;
	}
	if (S_ISFIFO(sb.st_mode))
		grow_pipe(fd);
	else if (S_ISREG(sb.st_mode))
		/* output appends, as containerd's shim opens a non-FIFO path
		 * O_WRONLY|O_APPEND: never overwrite from offset 0 */
		(void)fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_APPEND);
	return fd;
}

static int open_output(const char *what, const char *path, struct ttrpc_status *st)
{
	/* Read+write so opening a FIFO never blocks and writes never fail with
	 * EPIPE while no reader is attached, as containerd's shim does. */
	int fd = open(path, O_RDWR | STDIO_OPEN_FLAGS);
	if (fd < 0) {
		int err = errno;
		stdio_open_error(st, what, path, err);
		return -err;
	}
	return stdio_check(fd, what, path, st);
}

static int open_input(const char *path, struct ttrpc_status *st)
{
	int fd = open(path, O_RDONLY | STDIO_OPEN_FLAGS);
	if (fd < 0) {
		int err = errno;
		stdio_open_error(st, "stdin", path, err);
		return -err;
	}
	return stdio_check(fd, "stdin", path, st);
}

static int mkdir_p(const char *dir)
{
	char buf[PATH_MAX];
	if (snprintf(buf, sizeof(buf), "%s", dir) >= (int)sizeof(buf))
		return -ENAMETOOLONG;
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

/* file:///path: created 0644 and appended to, its directory made as
 * containerd's shim does (MkdirAll 0755). A FIFO there is opened read+write
 * like a stdout FIFO (a write-only open of a FIFO without a reader fails
 * with ENXIO when non-blocking, and blocks forever otherwise). */
static int open_log_file(const char *path, struct ttrpc_status *st)
{
	char dir[PATH_MAX];
	snprintf(dir, sizeof(dir), "%s", path);
	char *slash = strrchr(dir, '/');
	if (slash && slash != dir) {
		*slash = '\0';
		int rc = mkdir_p(dir);
		if (rc < 0) {
			ttrpc_status_set(st, ttrpc_code_from_errno(-rc), "create log directory %s: %s",
					 dir, strerror(-rc));
			return rc;
		}
	}
	int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | STDIO_OPEN_FLAGS, 0644);
	if (fd < 0 && errno == ENXIO)
		fd = open(path, O_RDWR | STDIO_OPEN_FLAGS);
	if (fd < 0) {
		int err = errno;
		stdio_open_error(st, "log file", path, err);
		return -err;
	}
	return stdio_check(fd, "log file", path, st);
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

/* A stdio URI (file:// or binary://) as Go's url.Parse reads it: the
 * authority is ignored, the path and the query are percent-decoded (in the
 * query '+' is a space too), and a control character or a bad escape is an
 * error. The query becomes the logger's arguments as containerd's shim builds
 * them: each key once, followed by its first value (even an empty one). */
#define URI_ARGS_MAX 64

struct stdio_uri {
	char path[PATH_MAX];
	const char *argv[URI_ARGS_MAX + 2]; /* path, args..., NULL; into buf */
	int argc;
	char buf[4096];
	size_t used;
};

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Decodes s[0..n) into out (NUL-terminated); -EINVAL on a bad escape,
 * -ENAMETOOLONG when it does not fit. */
static int uri_unescape(const char *s, size_t n, bool query, char *out, size_t outlen)
{
	size_t o = 0;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (c == '%') {
			if (i + 2 >= n || hexval(s[i + 1]) < 0 || hexval(s[i + 2]) < 0)
				return -EINVAL;
			c = (char)(hexval(s[i + 1]) << 4 | hexval(s[i + 2]));
			i += 2;
		} else if (c == '+' && query) {
			c = ' ';
		}
		if (o + 1 >= outlen)
			return -ENAMETOOLONG;
		out[o++] = c;
	}
	out[o] = '\0';
	return (int)o;
}

/* Appends a decoded query component to u->buf; returns it or NULL. */
static const char *uri_add(struct stdio_uri *u, const char *s, size_t n, int *err)
{
	char *dst = u->buf + u->used;
	int len = uri_unescape(s, n, true, dst, sizeof(u->buf) - u->used);
	if (len < 0) {
		*err = len;
		return NULL;
	}
	u->used += (size_t)len + 1;
	return dst;
}

static int parse_uri(const char *uri, size_t scheme_len, struct stdio_uri *u,
		     struct ttrpc_status *st)
{
	for (const char *c = uri; *c; c++) {
		if ((unsigned char)*c < 0x20 || *c == 0x7f) {
			ttrpc_status_set(st, TTRPC_INVALID_ARGUMENT,
					 "unable to parse stdout uri: invalid control character");
			return -EINVAL;
		}
	}
	const char *rest = uri + scheme_len;
	size_t len = strcspn(rest, "#"); /* a fragment is no part of the path */
	const char *q = memchr(rest, '?', len);
	size_t plen = q ? (size_t)(q - rest) : len;
	const char *path = rest;
	if (plen >= 2 && path[0] == '/' && path[1] == '/') { /* //authority */
		const char *slash = memchr(path + 2, '/', plen - 2);
		size_t skip = slash ? (size_t)(slash - path) : plen;
		path += skip;
		plen -= skip;
	}
	int rc = uri_unescape(path, plen, false, u->path, sizeof(u->path));
	if (rc < 0) {
		ttrpc_status_set(st, TTRPC_INVALID_ARGUMENT, "unable to parse stdout uri %s: %s", uri,
				 rc == -EINVAL ? "invalid URL escape" : "path too long");
		return rc;
	}
	if (!u->path[0]) {
		ttrpc_status_set(st, TTRPC_INVALID_ARGUMENT, "stdout uri %s has no path", uri);
		return -EINVAL;
	}
	u->argc = 0;
	u->used = 0;
	u->argv[u->argc++] = u->path;
	const char *end = rest + len;
	for (const char *kv = q ? q + 1 : end; kv < end;) {
		const char *amp = memchr(kv, '&', (size_t)(end - kv));
		size_t n = amp ? (size_t)(amp - kv) : (size_t)(end - kv);
		const char *next = amp ? amp + 1 : end;
		/* as Go's ParseQuery: skip empty pairs, pairs with ';', bad escapes */
		if (n == 0 || memchr(kv, ';', n)) {
			kv = next;
			continue;
		}
		const char *eq = memchr(kv, '=', n);
		size_t kn = eq ? (size_t)(eq - kv) : n;
		size_t used = u->used;
		int err = 0;
		const char *key = uri_add(u, kv, kn, &err);
		const char *val = key ? uri_add(u, eq ? eq + 1 : kv + n, eq ? n - kn - 1 : 0, &err)
				      : NULL;
		if (err == -ENAMETOOLONG) {
			ttrpc_status_set(st, TTRPC_INVALID_ARGUMENT, "stdout uri %s: query too long",
					 uri);
			return -ENAMETOOLONG;
		}
		bool dup = false;
		for (int i = 1; key && i < u->argc; i += 2)
			dup = dup || strcmp(u->argv[i], key) == 0;
		if (!key || !val || dup) {
			u->used = used; /* dropped: give the space back */
		} else {
			if (u->argc + 2 > URI_ARGS_MAX + 1) {
				ttrpc_status_set(st, TTRPC_INVALID_ARGUMENT,
						 "stdout uri %s: more than %d query parameters", uri,
						 URI_ARGS_MAX / 2);
				return -E2BIG;
			}
			u->argv[u->argc++] = key;
			u->argv[u->argc++] = val;
		}
		kv = next;
	}
	u->argv[u->argc] = NULL;
	return 0;
}

static void ready_done(struct pio *p, int err)
{
	loop_io_remove(p->ready_s);
	p->ready_s = NULL;
	close_fd(&p->ready_fd);
	loop_timer_cancel(p->ready_timer);
	p->ready_timer = NULL;
	p->ready_err = err;
	pio_ready_fn fn = p->ready_fn;
	p->ready_fn = NULL;
	if (fn)
		fn(p->ready_ud, err);
}

/* A byte or EOF (the logger closed fd 5, or exited) means ready, as for
 * containerd's shim; only a read error fails. */
static void on_logger_ready(struct loop_source *s, int fd, uint32_t events, void *ud)
{
	struct pio *p = ud;
	char b;
	ssize_t n = read(fd, &b, 1);
	int err = n < 0 ? errno : 0;
	if (err == EAGAIN || err == EINTR)
		return;
	if (err)
		log_warn("logger %d: read its readiness pipe: %s", (int)p->logger, strerror(err));
	ready_done(p, -err);
}

static void on_logger_ready_timeout(void *ud)
{
	struct pio *p = ud;
	p->ready_timer = NULL;
	ready_done(p, -ETIMEDOUT);
}

/* binary:///path?k=v: the logger reads fd 3 (stdout) and fd 4 (stderr), and
 * signals readiness on fd 5 by writing a byte or closing it. */
static void on_logger_gone(pid_t pid, int status, const struct timespec *when, void *ud)
{
	struct pio *p = ud;
	log_debug("logger %d exited with %d", (int)pid, status);
	p->logger = 0; /* reaped: nothing left to stop */
}

static int start_logger(struct pio *p, const struct pio_config *cfg, const char *uri,
			struct ttrpc_status *st)
{
	struct stdio_uri *u = malloc(sizeof(*u));
	if (!u) {
		ttrpc_status_set(st, TTRPC_RESOURCE_EXHAUSTED, "out of memory");
		return -ENOMEM;
	}
	int prc = parse_uri(uri, strlen("binary:"), u, st);
	if (prc < 0) {
		free(u);
		return prc;
	}
	const char *path = u->path;
	const char *const *argv = u->argv;
	if (!p->reaper) {
		ttrpc_status_set(st, TTRPC_INTERNAL, "start logger %s: no reaper to watch it", path);
		free(u);
		return -EINVAL;
	}
	int rc = 0, ready[2] = {-1, -1}, devnull = -1;
	char **env = NULL;
	char env_id[512], env_ns[512];
	snprintf(env_id, sizeof(env_id), "CONTAINER_ID=%s", cfg->id ? cfg->id : "");
	snprintf(env_ns, sizeof(env_ns), "CONTAINER_NAMESPACE=%s", cfg->ns ? cfg->ns : "");
	size_t n_env = 0;
	while (environ[n_env])
		n_env++;
	errno = 0;
	if (pipe2(ready, O_CLOEXEC | O_NONBLOCK) < 0 ||
	    (devnull = open("/dev/null", O_RDWR | O_CLOEXEC)) < 0 ||
	    !(env = calloc(n_env + 3, sizeof(*env)))) {
		rc = errno ? -errno : -ENOMEM;
		ttrpc_status_set(st, ttrpc_code_from_errno(-rc), "start logger %s: %s", path,
				 strerror(-rc));
		goto out;
	}
	memcpy(env, environ, n_env * sizeof(*env));
	env[n_env] = env_id;
	env[n_env + 1] = env_ns;
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
	int erc = posix_spawn(&p->logger, path, &fa, &at, (char *const *)argv, env);
	posix_spawnattr_destroy(&at);
	posix_spawn_file_actions_destroy(&fa);
	if (erc != 0) {
		p->logger = 0;
		rc = -erc;
		ttrpc_status_set(st, ttrpc_code_from_errno(erc), "start logger %s: %s", path,
				 strerror(erc));
		goto out;
	}
	/* watched from its spawn: its exit is known for what it is, never taken
	 * from another process that got the pid after it */
	reaper_watch(p->reaper, p->logger, on_logger_gone, p);
	/* the logger owns the read ends now; its readiness is watched on the loop */
	close_fd(&p->out_src);
	close_fd(&p->err_src);
	p->ready_fd = ready[0];
	ready[0] = -1;
	p->ready_s = loop_add_io(p->loop, p->ready_fd, EPOLLIN, on_logger_ready, p);
	if (!p->ready_s) {
		rc = -errno;
		ttrpc_status_set(st, ttrpc_code_from_errno(-rc), "watch logger %s: %s", path,
				 strerror(-rc));
		goto out;
	}
	p->ready_timer = loop_add_timer_ms(p->loop, LOGGER_READY_TIMEOUT_MS, on_logger_ready_timeout, p);
out:
	free(env);
	free(u);
	if (devnull >= 0)
		close(devnull);
	if (ready[0] >= 0)
		close(ready[0]);
	if (ready[1] >= 0)
		close(ready[1]);
	return rc;
}

/* Removes what shims that no longer run left in /tmp (a SIGKILLed shim never
 * gets to remove its console socket). Only directories named for a dead pid
 * and owned by us are touched, through their fd: /tmp is anyone's. */
static void sweep_console_dirs(void)
{
	DIR *d = opendir("/tmp");
	if (!d)
		return;
	struct dirent *e;
	while ((e = readdir(d))) {
		const char *name = e->d_name;
		if (strncmp(name, CONSOLE_DIR_PREFIX, strlen(CONSOLE_DIR_PREFIX)) != 0)
			continue;
		char *end;
		long pid = strtol(name + strlen(CONSOLE_DIR_PREFIX), &end, 10);
		if (end == name + strlen(CONSOLE_DIR_PREFIX) || *end != '-' || pid <= 0 ||
		    pid > INT_MAX || pid == getpid())
			continue;
		if (kill((pid_t)pid, 0) == 0 || errno != ESRCH)
			continue; /* alive (or not ours to ask about) */
		int dfd = openat(dirfd(d), name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (dfd < 0)
			continue;
		struct stat sb;
		if (fstat(dfd, &sb) == 0 && sb.st_uid == geteuid()) {
			unlinkat(dfd, "pty.sock", 0);
			unlinkat(dirfd(d), name, AT_REMOVEDIR);
		}
		close(dfd);
	}
	closedir(d);
}

static int console_socket(struct pio *p, struct ttrpc_status *st)
{
	sweep_console_dirs();
	snprintf(p->console_dir, sizeof(p->console_dir), "/tmp/" CONSOLE_DIR_PREFIX "%d-XXXXXX",
		 (int)getpid());
	if (!mkdtemp(p->console_dir)) {
		int err = errno;
		ttrpc_status_set(st, ttrpc_code_from_errno(err), "create console socket dir: %s",
				 strerror(err));
		p->console_dir[0] = '\0';
		return -err;
	}
	snprintf(p->console_path, sizeof(p->console_path), "%s/pty.sock", p->console_dir);
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", p->console_path);
	p->console_listen = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (p->console_listen < 0 || bind(p->console_listen, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    listen(p->console_listen, 4) < 0) {
		int err = errno;
		ttrpc_status_set(st, ttrpc_code_from_errno(err), "console socket %s: %s",
				 p->console_path, strerror(err));
		return -err;
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
	p->reaper = cfg->reaper;
	p->terminal = cfg->terminal;
	p->child[0] = p->child[1] = p->child[2] = -1;
	p->in_src = p->out_dst = p->err_dst = p->out_src = p->err_src = -1;
	p->console = p->console_listen = -1;
	p->ready_fd = -1;
	p->spool_max = cfg->spool_max;
	if (cfg->exec_id)
		snprintf(p->label, sizeof(p->label), "%s exec %s", cfg->id ? cfg->id : "",
			 cfg->exec_id);
	else
		snprintf(p->label, sizeof(p->label), "%s", cfg->id ? cfg->id : "");
	int rc = 0, fds[2];
	if (cfg->spool_max && cfg->spool_dir && !(p->spool_dir = strdup(cfg->spool_dir))) {
		ttrpc_status_set(st, TTRPC_RESOURCE_EXHAUSTED, "out of memory");
		rc = -ENOMEM;
		goto fail;
	}
	bool in_is_file = false;

	if (!empty(cfg->stdin_path)) {
		if ((rc = p->in_src = open_input(cfg->stdin_path, st)) < 0)
			goto fail;
		struct stat sb;
		in_is_file = fstat(p->in_src, &sb) == 0 && S_ISREG(sb.st_mode);
		if (in_is_file && cfg->terminal) {
			/* epoll cannot watch a regular file, and a terminal needs a copy */
			ttrpc_status_set(st, TTRPC_INVALID_ARGUMENT,
					 "stdin %s: a regular file cannot feed a terminal",
					 cfg->stdin_path);
			rc = -EINVAL;
			goto fail;
		}
	}
	if (cfg->terminal) {
		if (!empty(cfg->stdout_path) && strncmp(cfg->stdout_path, "file://", 7) == 0) {
			/* the terminal's output into a log file, created as without one */
			struct stdio_uri *u = malloc(sizeof(*u));
			rc = u ? parse_uri(cfg->stdout_path, strlen("file:"), u, st) : -ENOMEM;
			if (rc == -ENOMEM)
				ttrpc_status_set(st, TTRPC_RESOURCE_EXHAUSTED, "out of memory");
			if (rc == 0)
				rc = p->out_dst = open_log_file(u->path, st);
			free(u);
			if (rc < 0)
				goto fail;
		} else if (!empty(cfg->stdout_path) &&
			   (rc = p->out_dst = open_output("stdout", cfg->stdout_path, st)) < 0) {
			goto fail;
		}
		if ((rc = console_socket(p, st)) < 0)
			goto fail;
		*out = p;
		return 0;
	}
	if (in_is_file) {
		/* the process reads a regular file itself: nothing to copy, and its
		 * end of file is the file's */
		p->child[0] = p->in_src;
		p->in_src = -1;
	} else if (p->in_src >= 0) {
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
		struct stdio_uri *u = malloc(sizeof(*u));
		rc = u ? parse_uri(cfg->stdout_path, strlen("file:"), u, st) : -ENOMEM;
		if (rc == -ENOMEM)
			ttrpc_status_set(st, TTRPC_RESOURCE_EXHAUSTED, "out of memory");
		if (rc == 0 && (rc = p->out_dst = open_log_file(u->path, st)) >= 0)
			rc = p->err_dst = open_log_file(u->path, st);
		free(u);
		if (rc < 0)
			goto fail;
	} else {
		if (p->out_src >= 0 &&
		    (rc = p->out_dst = open_output("stdout", cfg->stdout_path, st)) < 0)
			goto fail;
		if (p->err_src >= 0 &&
		    (rc = p->err_dst = open_output("stderr", cfg->stderr_path, st)) < 0)
			goto fail;
	}
	*out = p;
	return 0;
fail_pipe:
	ttrpc_status_set(st, ttrpc_code_from_errno(-rc), "create stdio pipes: %s", strerror(-rc));
fail:
	pio_free(p);
	return rc;
}

void pio_when_ready(struct pio *p, pio_ready_fn fn, void *userdata)
{
	if (!p->ready_s) {
		fn(userdata, p->ready_err);
		return;
	}
	p->ready_fn = fn;
	p->ready_ud = userdata;
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

/* An output copier with its spool (see pio_config); takes src and dst. */
static struct copier *output_copier(struct pio *p, int src, int dst, const char *stream)
{
	struct spool *s = NULL;
	if (p->spool_max && !(s = spool_new(p->spool_dir, SPOOL_MEM_MAX, p->spool_max)))
		return NULL;
	struct copier *c = copier_new(p->loop, src, dst, true, on_out_done, p);
	if (!c) {
		spool_free(s);
		return NULL;
	}
	if (s) {
		char label[96];
		snprintf(label, sizeof(label), "%s %s", p->label, stream);
		copier_set_spool(c, s, label, on_out_done);
	}
	return c;
}

static int start_output_copiers(struct pio *p)
{
	if (p->out_src >= 0 && p->out_dst >= 0) {
		p->out = output_copier(p, p->out_src, p->out_dst, "stdout");
		if (!p->out)
			return -ENOMEM;
		p->out_src = p->out_dst = -1;
	}
	if (p->err_src >= 0 && p->err_dst >= 0) {
		p->err = output_copier(p, p->err_src, p->err_dst, "stderr");
		if (!p->err)
			return -ENOMEM;
		p->err_src = p->err_dst = -1;
	}
	/* a stream nobody reads: keep draining the pipe so the process never blocks */
	return 0;
}

/* Takes the pty master the runtime sent. By now the runtime has exited: runc
 * and crun send the master before `create`/`exec --detach` returns, so it is
 * already queued on the socket or it will never come. Nothing here may wait:
 * a runtime that connected and sent nothing (or never connected) fails the
 * create or exec at once instead of freezing the loop. */
static int recv_console(struct pio *p, struct ttrpc_status *st)
{
	int conn = accept4(p->console_listen, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
	if (conn < 0) {
		int err = errno;
		ttrpc_status_set(st, TTRPC_INTERNAL, "console socket: runtime sent no terminal: %s",
				 err == EAGAIN ? "it never connected" : strerror(err));
		return -err;
	}
	char name[256];
	char cbuf[CMSG_SPACE(sizeof(int))];
	struct iovec iov = {.iov_base = name, .iov_len = sizeof(name)};
	struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf,
			    .msg_controllen = sizeof(cbuf)};
	ssize_t n;
	do
		n = recvmsg(conn, &mh, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
	while (n < 0 && errno == EINTR);
	int err = errno;
	close(conn);
	struct cmsghdr *cm = n > 0 ? CMSG_FIRSTHDR(&mh) : NULL;
	if (!cm || cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS ||
	    cm->cmsg_len != CMSG_LEN(sizeof(int))) {
		if (cm && cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS) {
			/* more than one fd: close them all, take none */
			int nfd = (int)((cm->cmsg_len - CMSG_LEN(0)) / sizeof(int));
			for (int i = 0; i < nfd; i++) {
				int fd;
				memcpy(&fd, CMSG_DATA(cm) + i * sizeof(int), sizeof(int));
				close(fd);
			}
		}
		ttrpc_status_set(st, TTRPC_INTERNAL, "console socket: no pty master received%s%s",
				 n < 0 ? ": " : "",
				 n < 0 ? (err == EAGAIN ? "the runtime connected but sent nothing"
						       : strerror(err))
				       : "");
		return n < 0 && err != EAGAIN ? -err : -EBADMSG;
	}
	memcpy(&p->console, CMSG_DATA(cm), sizeof(int));
	return 0;
}

/* A copier between the pty master (a dup of it: each copier owns its fds)
 * and *other, which it takes; on failure *other is closed, and -errno. */
static int console_copier(struct pio *p, int *other, bool to_console, struct copier **out)
{
	int m = dup(p->console);
	int err = m < 0 ? errno : 0;
	if (m >= 0) {
		(void)fcntl(m, F_SETFD, FD_CLOEXEC);
		*out = to_console ? copier_new(p->loop, *other, m, true, NULL, NULL)
				  : output_copier(p, m, *other, "terminal");
		err = *out ? 0 : (errno ? errno : ENOMEM);
	}
	if (err) {
		if (m >= 0)
			close(m);
		close_fd(other);
	}
	*other = -1;
	return -err;
}

int pio_after_start(struct pio *p, struct ttrpc_status *st)
{
	for (int i = 0; i < 3; i++)
		close_fd(&p->child[i]);
	if (!p->terminal) {
		if (start_output_copiers(p) < 0) {
			ttrpc_status_set(st, TTRPC_RESOURCE_EXHAUSTED, "start copying output: %s",
					 strerror(ENOMEM));
			return -ENOMEM;
		}
		return 0;
	}
	int rc = recv_console(p, st);
	close_fd(&p->console_listen);
	unlink(p->console_path);
	rmdir(p->console_dir);
	p->console_path[0] = p->console_dir[0] = '\0';
	if (rc < 0)
		return rc;
	if (p->out_dst >= 0)
		rc = console_copier(p, &p->out_dst, false, &p->out);
	if (rc == 0 && p->in_src >= 0)
		rc = console_copier(p, &p->in_src, true, &p->in);
	if (rc < 0)
		ttrpc_status_set(st, ttrpc_code_from_errno(-rc), "copy terminal: %s", strerror(-rc));
	return rc;
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
	return (!p->out || copier_drained(p->out)) && (!p->err || copier_drained(p->err));
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
	struct reaper *reaper;
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
		reaper_unwatch(e->reaper, e->pid);
		logger_forget(e);
	}
}

void pio_free(struct pio *p)
{
	if (!p)
		return;
	loop_timer_cancel(p->drain_timer);
	loop_timer_cancel(p->ready_timer);
	loop_io_remove(p->ready_s);
	close_fd(&p->ready_fd);
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
	free(p->spool_dir);
	if (p->logger > 0) { /* still running: its watch moves to the ending list */
		reaper_unwatch(p->reaper, p->logger);
		struct logger_end *e = calloc(1, sizeof(*e));
		if (!e) {
			reaper_discard(p->reaper, p->logger);
			kill(p->logger, SIGKILL); /* not reaped: the pid is still the logger's */
		} else {
			e->pid = p->logger;
			e->reaper = p->reaper;
			kill(e->pid, SIGTERM);
			e->timer = loop_add_timer_ms(p->loop, LOGGER_TERM_TIMEOUT_MS, logger_kill, e);
			e->next = ending_loggers;
			ending_loggers = e;
			reaper_watch(e->reaper, e->pid, on_logger_exit, e);
		}
	}
	free(p);
}

/* ---- live upgrade: the fds of a started process's stdio ---- */

static int copier_fds(const struct copier *c, int *src, int *dst, bool *finishing,
		      const char **why)
{
	*src = *dst = -1;
	if (!c)
		return 0;
	struct copier_export e;
	copier_export(c, &e);
	if (e.buffered) {
		*why = "bytes held in a copy buffer (a terminal's input the process does not read)";
		return -EBUSY;
	}
	*src = e.src;
	*dst = e.dst;
	if (finishing)
		*finishing = e.finishing;
	return 0;
}

int pio_export(const struct pio *p, struct pio_export *out, const char **why)
{
	memset(out, 0, sizeof(*out));
	if (p->ready_s) {
		*why = "its binary:// logger is not ready yet";
		return -EBUSY;
	}
	if (p->child[0] >= 0 || p->child[1] >= 0 || p->child[2] >= 0 || p->console_listen >= 0 ||
	    p->out_src >= 0 || p->err_src >= 0 || p->in_src >= 0 || p->out_dst >= 0 ||
	    p->err_dst >= 0) {
		*why = "a process not started yet";
		return -EBUSY;
	}
	if (p->drained_fn) {
		*why = "output being drained";
		return -EBUSY;
	}
	out->terminal = p->terminal;
	out->console = p->console;
	out->logger = p->logger;
	out->out_spool = out->err_spool = -1;
	if (copier_fds(p->in, &out->in_src, &out->in_dst, &out->in_finishing, why) < 0 ||
	    copier_fds(p->out, &out->out_src, &out->out_dst, NULL, why) < 0 ||
	    copier_fds(p->err, &out->err_src, &out->err_dst, NULL, why) < 0)
		return -EBUSY;
	return 0;
}

/* One copier's spool into a new memfd: *fd, or -1 when it holds nothing. */
static int spool_take(struct copier *c, int *fd)
{
	*fd = -1;
	struct copier_export e;
	if (!c)
		return 0;
	copier_export(c, &e);
	if (!e.spooled)
		return 0;
	int m = memfd_create("nanoshim-spool", MFD_CLOEXEC);
	if (m < 0)
		return -errno;
	ssize_t n = copier_spool_take(c, m);
	if (n < 0 || lseek(m, 0, SEEK_SET) < 0) {
		int err = n < 0 ? (int)-n : errno;
		lseek(m, 0, SEEK_SET);
		copier_spool_give(c, m); /* what was moved goes back */
		close(m);
		return -err;
	}
	*fd = m;
	return 0;
}

static void spool_give(struct copier *c, int fd)
{
	if (fd < 0)
		return;
	lseek(fd, 0, SEEK_SET);
	int rc = c ? copier_spool_give(c, fd) : -EINVAL;
	if (rc < 0)
		log_error("%s: spooled output: %s", c ? "copier" : "stdio", strerror(-rc));
	close(fd);
}

int pio_spools_take(struct pio *p, int *out_fd, int *err_fd)
{
	int rc = spool_take(p->out, out_fd);
	if (rc == 0 && (rc = spool_take(p->err, err_fd)) < 0) {
		spool_give(p->out, *out_fd);
		*out_fd = -1;
	}
	return rc;
}

void pio_spools_give(struct pio *p, int out_fd, int err_fd)
{
	spool_give(p->out, out_fd);
	spool_give(p->err, err_fd);
}

/* stream: "stdout", "stderr", "terminal" for output (spooled as pio_create
 * does), NULL for stdin. */
static struct copier *import_copier(struct pio *p, int src, int dst, const char *stream)
{
	if (src < 0 || dst < 0) {
		if (src >= 0)
			close(src);
		if (dst >= 0)
			close(dst);
		return NULL;
	}
	struct copier *c = stream ? output_copier(p, src, dst, stream)
				  : copier_new(p->loop, src, dst, true, NULL, NULL);
	if (!c) {
		log_error("stdio after upgrade: %s", strerror(errno ? errno : ENOMEM));
		close(src);
		close(dst);
	}
	return c;
}

struct pio *pio_import(struct loop *l, const struct pio_config *cfg, const struct pio_export *in)
{
	struct reaper *r = cfg->reaper;
	struct pio *p = calloc(1, sizeof(*p));
	if (!p) {
		const int fds[] = {in->in_src, in->in_dst, in->out_src, in->out_dst,
				   in->err_src, in->err_dst, in->console};
		for (size_t i = 0; i < sizeof(fds) / sizeof(fds[0]); i++)
			if (fds[i] >= 0)
				close(fds[i]);
		return NULL;
	}
	p->loop = l;
	p->reaper = r;
	p->terminal = in->terminal;
	p->child[0] = p->child[1] = p->child[2] = -1;
	p->in_src = p->out_dst = p->err_dst = p->out_src = p->err_src = -1;
	p->console_listen = p->ready_fd = -1;
	p->console = in->console;
	p->spool_max = cfg->spool_max;
	if (cfg->spool_max && cfg->spool_dir)
		p->spool_dir = strdup(cfg->spool_dir); /* NULL: the spool stays in memory */
	if (cfg->exec_id)
		snprintf(p->label, sizeof(p->label), "%s exec %s", cfg->id ? cfg->id : "",
			 cfg->exec_id);
	else
		snprintf(p->label, sizeof(p->label), "%s", cfg->id ? cfg->id : "");
	p->in = import_copier(p, in->in_src, in->in_dst, NULL);
	if (p->in && in->in_finishing)
		copier_finish_when_idle(p->in);
	p->out = import_copier(p, in->out_src, in->out_dst, in->terminal ? "terminal" : "stdout");
	p->err = import_copier(p, in->err_src, in->err_dst, "stderr");
	/* what the old process had spooled goes out before anything newer */
	spool_give(p->out, in->out_spool);
	spool_give(p->err, in->err_spool);
	if (in->logger > 0) {
		/* our child, unreaped until now: the pid is still the logger's; if it
		 * exited meanwhile the new reaper has its exit */
		bool exited;
		int status;
		struct timespec when;
		int fd = reaper_claim(r, in->logger, 0, &exited, &status, &when);
		if (fd >= 0 || fd == -ENOSYS) {
			if (fd >= 0)
				close(fd);
			p->logger = in->logger;
			reaper_watch(r, p->logger, on_logger_gone, p);
		}
	}
	return p;
}
