/* OCI runtime invocations (see runc.h). */
#include "runc.h"
#include "log.h"
#include "reaper.h"
#include "child.h"

#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/wait.h>
#include <unistd.h>
#include <yajl/yajl_tree.h>

extern char **environ;

#define MAX_ARGS 64

struct capture {
	struct loop_source *src;
	int fd;
	char *buf;
	size_t len, cap;
};

struct runc_call {
	struct loop *loop;
	pid_t pid;
	int status;
	bool exited;
	struct capture out, err;
	char log_path[4096];
	runc_done_fn done;
	void *userdata;
};

static unsigned long call_seq;

static int build_argv(const struct runc_config *cfg, const char *log_path, const char *const *args,
		      const char **argv)
{
	int n = 0;
	argv[n++] = cfg->binary && cfg->binary[0] ? cfg->binary : "runc";
	if (cfg->root && cfg->root[0]) {
		argv[n++] = "--root";
		argv[n++] = cfg->root;
	}
	argv[n++] = "--log";
	argv[n++] = log_path;
	argv[n++] = "--log-format";
	argv[n++] = "json";
	if (cfg->systemd_cgroup)
		argv[n++] = "--systemd-cgroup";
	if (cfg->criu && cfg->criu[0]) {
		argv[n++] = "--criu";
		argv[n++] = cfg->criu;
	}
	for (int i = 0; args[i]; i++) {
		if (n >= MAX_ARGS - 1)
			return -E2BIG;
		argv[n++] = args[i];
	}
	argv[n] = NULL;
	return n;
}

/* The last "error"-level msg in runc's JSON log, else NULL. */
static char *last_log_error(const char *path)
{
	FILE *f = fopen(path, "re");
	if (!f)
		return NULL;
	char *line = NULL, *last = NULL;
	size_t cap = 0;
	while (getline(&line, &cap, f) > 0) {
		yajl_val v = yajl_tree_parse(line, NULL, 0);
		if (!v)
			continue;
		const char *lp[] = {"level", NULL}, *mp[] = {"msg", NULL};
		yajl_val lvl = yajl_tree_get(v, lp, yajl_t_string);
		yajl_val msg = yajl_tree_get(v, mp, yajl_t_string);
		const char *ls = lvl ? YAJL_GET_STRING(lvl) : NULL;
		const char *ms = msg ? YAJL_GET_STRING(msg) : NULL;
		if (ms && (!ls || strcmp(ls, "error") == 0 || strcmp(ls, "fatal") == 0)) {
			free(last);
			last = strdup(ms);
		}
		yajl_tree_free(v);
	}
	free(line);
	fclose(f);
	return last;
}

static void trim(char *s)
{
	size_t n = strlen(s);
	while (n && (s[n - 1] == '\n' || s[n - 1] == ' ' || s[n - 1] == '\r'))
		s[--n] = '\0';
}

static void finish_if_done(struct runc_call *c)
{
	if (!c->exited || c->out.src || c->err.src)
		return;
	char *err = NULL;
	char fallback[64];
	if (c->status != 0) {
		err = last_log_error(c->log_path);
		if (!err && c->err.len) {
			c->err.buf[c->err.len] = '\0';
			trim(c->err.buf);
			if (c->err.buf[0])
				err = strdup(c->err.buf);
		}
		if (!err) {
			snprintf(fallback, sizeof(fallback), "exit status %d", c->status);
			err = strdup(fallback);
		}
	}
	unlink(c->log_path);
	if (c->out.buf)
		c->out.buf[c->out.len] = '\0';
	c->done(c->status, err, c->out.buf ? c->out.buf : "", c->out.len, c->userdata);
	free(err);
	free(c->out.buf);
	free(c->err.buf);
	free(c);
}

static void on_capture(struct loop_source *src, int fd, uint32_t events, void *ud)
{
	struct runc_call *c = ud;
	struct capture *cap = src == c->out.src ? &c->out : &c->err;
	for (;;) {
		if (cap->cap - cap->len < 4096 + 1) {
			size_t ncap = cap->cap ? cap->cap * 2 : 8192;
			if (ncap > RUNC_OUTPUT_MAX + 1)
				ncap = RUNC_OUTPUT_MAX + 1;
			if (ncap <= cap->cap) { /* full: drain and drop the rest */
				char sink[4096];
				ssize_t r = read(fd, sink, sizeof(sink));
				if (r > 0)
					continue;
				if (r < 0 && errno == EAGAIN)
					return;
				break;
			}
			char *nb = realloc(cap->buf, ncap);
			if (!nb)
				break;
			cap->buf = nb;
			cap->cap = ncap;
		}
		ssize_t r = read(fd, cap->buf + cap->len, cap->cap - cap->len - 1);
		if (r > 0) {
			cap->len += (size_t)r;
			continue;
		}
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0 && errno == EAGAIN)
			return;
		break; /* EOF or error */
	}
	loop_io_remove(cap->src);
	cap->src = NULL;
	close(cap->fd);
	cap->fd = -1;
	finish_if_done(c);
}

static void on_exit_cb(pid_t pid, int status, const struct timespec *when, void *ud)
{
	struct runc_call *c = ud;
	c->status = status;
	c->exited = true;
	finish_if_done(c);
}

static int start_capture(struct runc_call *c, struct capture *cap, int *child_end)
{
	int p[2];
	if (pipe2(p, O_CLOEXEC) < 0)
		return -errno;
	fcntl(p[0], F_SETFL, O_NONBLOCK);
	cap->fd = p[0];
	cap->src = loop_add_io(c->loop, p[0], EPOLLIN, on_capture, c);
	if (!cap->src) {
		close(p[0]);
		close(p[1]);
		return -ENOMEM;
	}
	*child_end = p[1];
	return 0;
}

pid_t runc_run(struct loop *l, struct reaper *r, const struct runc_config *cfg, const char *const *args,
	       const int fds[3], unsigned flags, runc_done_fn done, void *userdata)
{
	struct runc_call *c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->loop = l;
	c->done = done;
	c->userdata = userdata;
	c->out.fd = c->err.fd = -1;
	snprintf(c->log_path, sizeof(c->log_path), "%s/.runc-%d-%lu.json",
		 cfg->log_dir ? cfg->log_dir : "/tmp", getpid(), ++call_seq);
	const char *argv[MAX_ARGS];
	int rc = build_argv(cfg, c->log_path, args, argv);
	int child[3] = {fds[0], fds[1], fds[2]};
	int out_w = -1, err_w = -1, devnull = -1;
	if (rc < 0)
		goto fail;
	if ((flags & RUNC_CAPTURE_STDOUT) && (rc = start_capture(c, &c->out, &out_w)) < 0)
		goto fail;
	if (fds[2] < 0 && !(flags & RUNC_STDIO_TO_CONTAINER) &&
	    (rc = start_capture(c, &c->err, &err_w)) < 0)
		goto fail;
	if (out_w >= 0)
		child[1] = out_w;
	if (err_w >= 0)
		child[2] = err_w;
	devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
	for (int i = 0; i < 3; i++)
		if (child[i] < 0)
			child[i] = devnull;
	posix_spawn_file_actions_t fa;
	posix_spawn_file_actions_init(&fa);
	for (int i = 0; i < 3; i++)
		posix_spawn_file_actions_adddup2(&fa, child[i], i);
	pid_t pid;
	posix_spawnattr_t at;
	spawn_attr_init(&at, 0);
	rc = posix_spawnp(&pid, argv[0], &fa, &at, (char *const *)argv, environ);
	posix_spawnattr_destroy(&at);
	posix_spawn_file_actions_destroy(&fa);
	if (out_w >= 0)
		close(out_w);
	if (err_w >= 0)
		close(err_w);
	if (devnull >= 0)
		close(devnull);
	out_w = err_w = devnull = -1;
	if (rc != 0) {
		rc = -rc;
		goto fail;
	}
	c->pid = pid;
	if ((rc = reaper_watch(r, pid, on_exit_cb, c)) < 0) {
		/* cannot happen short of ENOMEM; the pid would be reaped as unclaimed */
		goto fail;
	}
	log_debug("%s %s (pid %d)", argv[0], args[0], pid);
	return pid;
fail:
	if (out_w >= 0)
		close(out_w);
	if (err_w >= 0)
		close(err_w);
	if (devnull >= 0)
		close(devnull);
	for (struct capture *cap = &c->out; cap; cap = cap == &c->out ? &c->err : NULL) {
		loop_io_remove(cap->src);
		if (cap->fd >= 0)
			close(cap->fd);
		free(cap->buf);
	}
	free(c);
	return rc;
}

int runc_run_sync(const struct runc_config *cfg, const char *const *args, char *err, size_t errlen)
{
	char log_path[4096];
	snprintf(log_path, sizeof(log_path), "%s/.runc-%d-sync.json",
		 cfg->log_dir ? cfg->log_dir : "/tmp", getpid());
	const char *argv[MAX_ARGS];
	if (build_argv(cfg, log_path, args, argv) < 0)
		return -E2BIG;
	int devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
	posix_spawn_file_actions_t fa;
	posix_spawn_file_actions_init(&fa);
	for (int i = 0; i < 3; i++)
		posix_spawn_file_actions_adddup2(&fa, devnull, i);
	pid_t pid;
	posix_spawnattr_t at;
	spawn_attr_init(&at, 0);
	int rc = posix_spawnp(&pid, argv[0], &fa, &at, (char *const *)argv, environ);
	posix_spawnattr_destroy(&at);
	posix_spawn_file_actions_destroy(&fa);
	close(devnull);
	if (rc != 0) {
		snprintf(err, errlen, "exec %s: %s", argv[0], strerror(rc));
		return -rc;
	}
	int ws;
	while (waitpid(pid, &ws, 0) < 0 && errno == EINTR)
		;
	int status = reaper_exit_code(ws);
	if (status != 0) {
		char *m = last_log_error(log_path);
		snprintf(err, errlen, "%s", m ? m : "runtime failed");
		free(m);
	}
	unlink(log_path);
	return status;
}
