/* OCI runtime invocations (see runc.h). */
#include "runc.h"
#include "log.h"
#include "spawn.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <yajl/yajl_tree.h>

#define MAX_ARGS 64

struct runc_call {
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

/* runc's message for a failed call: its last logged error, else its stderr,
 * else the bare status. */
static char *call_error(int status, const char *log_path, const char *err, size_t errlen)
{
	char *msg = last_log_error(log_path);
	if (!msg && errlen) {
		msg = strdup(err);
		if (msg) {
			trim(msg);
			if (!msg[0]) {
				free(msg);
				msg = NULL;
			}
		}
	}
	if (!msg) {
		char fallback[64];
		snprintf(fallback, sizeof(fallback), "exit status %d", status);
		msg = strdup(fallback);
	}
	return msg;
}

static void on_done(pid_t pid, int status, const char *out, size_t outlen, const char *err,
		    size_t errlen, void *ud)
{
	struct runc_call *c = ud;
	char *msg = status != 0 ? call_error(status, c->log_path, err, errlen) : NULL;
	unlink(c->log_path);
	c->done(status, msg, out, outlen, c->userdata);
	free(msg);
	free(c);
}

pid_t runc_run(struct loop *l, struct reaper *r, const struct runc_config *cfg,
	       const char *const *args, const int fds[3], unsigned flags, runc_done_fn done,
	       void *userdata)
{
	struct runc_call *c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->done = done;
	c->userdata = userdata;
	snprintf(c->log_path, sizeof(c->log_path), "%s/.runc-%d-%lu.json",
		 cfg->log_dir ? cfg->log_dir : "/tmp", getpid(), ++call_seq);
	const char *argv[MAX_ARGS];
	int rc = build_argv(cfg, c->log_path, args, argv);
	if (rc < 0) {
		free(c);
		return rc;
	}
	struct spawn_req req = {.argv = argv, .fds = {fds[0], fds[1], fds[2]}};
	if (flags & RUNC_CAPTURE_STDOUT)
		req.flags |= SPAWN_CAPTURE_STDOUT;
	/* stderr, when nobody else wants it, is the error of last resort; a
	 * container inheriting runc's stdio must never get a capture pipe */
	if (fds[2] < 0 && !(flags & RUNC_STDIO_TO_CONTAINER))
		req.flags |= SPAWN_CAPTURE_STDERR;
	pid_t pid = spawn_async(l, r, &req, on_done, c);
	if (pid < 0) {
		free(c);
		return pid;
	}
	log_debug("%s %s (pid %d)", argv[0], args[0], pid);
	return pid;
}

int runc_run_sync(const struct runc_config *cfg, const char *const *args, char *err, size_t errlen)
{
	char log_path[4096];
	snprintf(log_path, sizeof(log_path), "%s/.runc-%d-sync.json",
		 cfg->log_dir ? cfg->log_dir : "/tmp", getpid());
	const char *argv[MAX_ARGS];
	if (build_argv(cfg, log_path, args, argv) < 0)
		return -E2BIG;
	struct spawn_req req = {.argv = argv, .fds = {-1, -1, -1}};
	int status = spawn_sync(&req, NULL, NULL, NULL, NULL);
	if (status < 0) {
		snprintf(err, errlen, "exec %s: %s", argv[0], strerror(-status));
		return status;
	}
	if (status != 0) {
		char *m = last_log_error(log_path);
		snprintf(err, errlen, "%s", m ? m : "runtime failed");
		free(m);
	}
	unlink(log_path);
	return status;
}

void runc_create_argv(const struct runc_create_args *a, const char **args)
{
	int n = 0;
	if (a->image_path) {
		args[n++] = "restore";
		args[n++] = "--detach";
		args[n++] = "--image-path";
		args[n++] = a->image_path;
		args[n++] = "--work-path";
		args[n++] = a->work_path;
	} else {
		args[n++] = "create";
	}
	args[n++] = "--bundle";
	args[n++] = a->bundle;
	args[n++] = "--pid-file";
	args[n++] = a->pid_file;
	if (a->console_socket) {
		args[n++] = "--console-socket";
		args[n++] = a->console_socket;
	}
	if (a->no_pivot)
		args[n++] = "--no-pivot";
	if (a->no_new_keyring)
		args[n++] = "--no-new-keyring";
	args[n++] = a->id;
	args[n] = NULL;
}

void runc_exec_argv(const char *pid_file, const char *process_path, const char *console_socket,
		    const char *id, const char **args)
{
	int n = 0;
	args[n++] = "exec";
	args[n++] = "--detach";
	args[n++] = "--pid-file";
	args[n++] = pid_file;
	args[n++] = "--process";
	args[n++] = process_path;
	if (console_socket) {
		args[n++] = "--console-socket";
		args[n++] = console_socket;
	}
	args[n++] = id;
	args[n] = NULL;
}

void runc_checkpoint_argv(const struct runc_checkpoint_args *a, const char **args)
{
	int k = 0;
	args[k++] = "checkpoint";
	args[k++] = "--image-path";
	args[k++] = a->image_path;
	args[k++] = "--work-path";
	args[k++] = a->work_path;
	if (a->leave_running)
		args[k++] = "--leave-running";
	if (a->tcp_established)
		args[k++] = "--tcp-established";
	if (a->ext_unix_sk)
		args[k++] = "--ext-unix-sk";
	if (a->shell_job)
		args[k++] = "--shell-job";
	if (a->file_locks)
		args[k++] = "--file-locks";
	args[k++] = a->id;
	args[k] = NULL;
}

bool runc_error_process_gone(const char *err)
{
	return err && (strstr(err, "not running") || strstr(err, "no such process") ||
		       strstr(err, "process already finished") || strstr(err, "does not exist") ||
		       strstr(err, "container not running"));
}

bool runc_error_not_exist(const char *err)
{
	return strstr(err, "does not exist") || strstr(err, "not exist");
}

/* the last error criu wrote in its log says what actually went wrong */
void runc_criu_error(const char *err, char *out, size_t outlen)
{
	out[0] = '\0';
	const char *lf = err ? strstr(err, "log file: ") : NULL;
	if (!lf)
		return;
	char path[PATH_MAX];
	snprintf(path, sizeof(path), "%s", lf + strlen("log file: "));
	path[strcspn(path, " \n")] = '\0';
	FILE *f = fopen(path, "re");
	if (!f)
		return;
	char line[512];
	while (fgets(line, sizeof(line), f)) {
		if (strstr(line, "Error (")) {
			line[strcspn(line, "\n")] = '\0';
			snprintf(out, outlen, "%s", line);
		}
	}
	fclose(f);
}

int runc_ps_parse(const char *out, struct runc_ps **ret, char *err, size_t errlen)
{
	yajl_val v = yajl_tree_parse(out, err, errlen);
	if (!v || (!YAJL_IS_NULL(v) && !YAJL_IS_ARRAY(v))) {
		if (v)
			snprintf(err, errlen, "%s", "not a list");
		yajl_tree_free(v);
		return -EINVAL;
	}
	size_t n = YAJL_IS_ARRAY(v) ? v->u.array.len : 0;
	struct runc_ps *ps = calloc(1, sizeof(*ps) + n * sizeof(ps->pids[0]));
	if (!ps) {
		yajl_tree_free(v);
		return -ENOMEM;
	}
	ps->null = YAJL_IS_NULL(v);
	ps->n = n;
	for (size_t i = 0; i < n; i++)
		ps->pids[i] = (uint32_t)YAJL_GET_INTEGER(v->u.array.values[i]);
	yajl_tree_free(v);
	*ret = ps;
	return 0;
}
