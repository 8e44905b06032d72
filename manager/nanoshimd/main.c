/* nanoshimd: flags, the state dir and its lock, signals, the server, then
 * recovery and the loop. SIGTERM and SIGINT stop the daemon and leave every
 * shim running, as containerd leaves its shims: the next start adopts them. */
#include "nanoshimd.h"
#include "atomic.h"
#include "log.h"
#include "reaper.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/file.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <unistd.h>

#define DEFAULT_STATE "/run/nanoshim"
#define DEFAULT_ROOT "/var/lib/nanoshim"
#define DEFAULT_SHIM "containerd-shim-nano-v2"
#define DEFAULT_START_TIMEOUT_NS (30 * 1000000000LL)
#define MAX_RUNTIME_ARGS 32

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: nanoshimd [OPTIONS]\n"
		"\n"
		"Runs containers through shim v2 shims, one per container, and adopts them\n"
		"again after a restart or a crash.\n"
		"\n"
		"  --state DIR            bundles, shim sockets and the event log (default %s)\n"
		"  --root DIR             network namespaces (default %s)\n"
		"  --address SOCK         the API socket (default <state>/nanoshimd.sock)\n"
		"  --shim-binary PATH     any shim v2 binary (default %s beside nanoshimd,\n"
		"                         else on PATH)\n"
		"  --runtime PATH         the OCI runtime the shims run (default runc)\n"
		"  --runtime-arg ARG      an argument for every runtime call, before the\n"
		"                         subcommand (repeatable; e.g. --runtime-arg=--debug)\n"
		"  --start-timeout DUR    a shim that has not started by then is killed (default 30s)\n"
		"  --event-retain N       events kept across restarts (default 1000)\n"
		"  --log-level LEVEL      error, warn, info (default) or debug\n"
		"  --crash-at POINT       SIGKILL itself at POINT (`--crash-at list`)\n"
		"  --version, --help\n",
		DEFAULT_STATE, DEFAULT_ROOT, DEFAULT_SHIM);
}

/* Go-style durations: 500ms, 2s, 1m, 1.5s. */
static int parse_duration(const char *s, int64_t *ns)
{
	char *end;
	errno = 0;
	double v = strtod(s, &end);
	if (errno || end == s || v < 0)
		return -EINVAL;
	double mult;
	if (strcmp(end, "ms") == 0)
		mult = 1e6;
	else if (strcmp(end, "s") == 0)
		mult = 1e9;
	else if (strcmp(end, "m") == 0)
		mult = 60e9;
	else if (strcmp(end, "h") == 0)
		mult = 3600e9;
	else
		return -EINVAL;
	*ns = (int64_t)(v * mult);
	return 0;
}

static int mkdir_p(const char *path, mode_t mode)
{
	char buf[PATH_MAX];
	snprintf(buf, sizeof(buf), "%s", path);
	for (char *p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(buf, 0755) < 0 && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(buf, mode) < 0 && errno != EEXIST)
		return -errno;
	return 0;
}

/* The default shim: the one installed (or built) beside us, else PATH's. */
static const char *default_shim(const char *self, char *buf, size_t len)
{
	const char *slash = strrchr(self, '/');
	if (slash) {
		int n = (int)(slash - self);
		const char *cands[] = {"/", "/../../shim/"};
		for (size_t i = 0; i < 2; i++) {
			snprintf(buf, len, "%.*s%s%s", n, self, cands[i], DEFAULT_SHIM);
			if (access(buf, X_OK) == 0)
				return buf;
		}
	}
	return DEFAULT_SHIM;
}

/* Runtime options carry a binary, not arguments: the runtime and its
 * --runtime-arg arguments become <state>/runtime, a script every shim runs as
 * its runtime binary, which puts them before the shim's own arguments. */
static int runtime_wrapper(const char *state, const char *runtime, const char *const *args,
			   size_t n, char *path, size_t pathlen)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	if (!f)
		return -ENOMEM;
	fputs("#!/bin/sh\n# nanoshimd --runtime and --runtime-arg\nexec", f);
	for (size_t i = 0; i <= n; i++) {
		const char *a = i == 0 ? runtime : args[i - 1];
		fputs(" '", f);
		for (const char *p = a; *p; p++) /* single quotes: only ' needs care */
			fputs(*p == '\'' ? "'\\''" : (char[2]){*p, 0}, f);
		fputc('\'', f);
	}
	fputs(" \"$@\"\n", f);
	if (fclose(f) != 0) {
		free(buf);
		return -ENOMEM;
	}
	int dfd = open(state, O_PATH | O_DIRECTORY | O_CLOEXEC);
	int rc = dfd < 0 ? -errno : bundle_write_file_atomic(dfd, "runtime", buf, len, 0755);
	if (dfd >= 0)
		close(dfd);
	free(buf);
	snprintf(path, pathlen, "%s/runtime", state);
	return rc;
}

static void on_signal(struct loop_source *src, int fd, uint32_t events, void *ud)
{
	struct daemon *d = ud;
	struct signalfd_siginfo si;
	while (read(fd, &si, sizeof(si)) == sizeof(si)) {
		if (si.ssi_signo == SIGTERM || si.ssi_signo == SIGINT) {
			log_info("signal %d: stopping; shims keep running", si.ssi_signo);
			loop_quit(d->loop, 0);
		}
	}
}

static void on_server(struct loop_source *src, int fd, uint32_t events, void *ud)
{
	struct daemon *d = ud;
	ttrpc_server_dispatch(d->server);
}

static void on_shims(struct loop_source *src, int fd, uint32_t events, void *ud)
{
	struct daemon *d = ud;
	ttrpc_client_group_dispatch(d->shims);
}

int main(int argc, char **argv)
{
	static struct daemon daemon;
	struct daemon *d = &daemon;
	char addr_buf[PATH_MAX], shim_buf[PATH_MAX];
	d->cfg = (struct config){
		.state = DEFAULT_STATE,
		.root = DEFAULT_ROOT,
		.runtime = "runc",
		.start_timeout_ns = DEFAULT_START_TIMEOUT_NS,
		.event_retain = 1000,
	};
	const char *level = "info";
	const char *runtime_args[MAX_RUNTIME_ARGS];
	size_t n_runtime_args = 0;
	char runtime_buf[PATH_MAX];
	enum { O_STATE = 256, O_ROOT, O_ADDRESS, O_SHIM, O_RUNTIME, O_RUNTIME_ARG, O_START_TIMEOUT, O_RETAIN,
	       O_LEVEL, O_CRASH, O_VERSION };
	static const struct option opts[] = {
		{"state", required_argument, NULL, O_STATE},
		{"root", required_argument, NULL, O_ROOT},
		{"address", required_argument, NULL, O_ADDRESS},
		{"shim-binary", required_argument, NULL, O_SHIM},
		{"runtime", required_argument, NULL, O_RUNTIME},
		{"runtime-arg", required_argument, NULL, O_RUNTIME_ARG},
		{"start-timeout", required_argument, NULL, O_START_TIMEOUT},
		{"event-retain", required_argument, NULL, O_RETAIN},
		{"log-level", required_argument, NULL, O_LEVEL},
		{"crash-at", required_argument, NULL, O_CRASH},
		{"version", no_argument, NULL, O_VERSION},
		{"help", no_argument, NULL, 'h'},
		{0},
	};
	int o;
	while ((o = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		char *end;
		switch (o) {
		case O_STATE: d->cfg.state = optarg; break;
		case O_ROOT: d->cfg.root = optarg; break;
		case O_ADDRESS: d->cfg.address = optarg; break;
		case O_SHIM: d->cfg.shim_binary = optarg; break;
		case O_RUNTIME: d->cfg.runtime = optarg; break;
		case O_RUNTIME_ARG:
			if (n_runtime_args == MAX_RUNTIME_ARGS) {
				fprintf(stderr, "nanoshimd: at most %d --runtime-arg\n", MAX_RUNTIME_ARGS);
				return 2;
			}
			runtime_args[n_runtime_args++] = optarg;
			break;
		case O_START_TIMEOUT:
			if (parse_duration(optarg, &d->cfg.start_timeout_ns) < 0) {
				fprintf(stderr, "nanoshimd: --start-timeout %s: not a duration (500ms, 30s, 1m)\n", optarg);
				return 2;
			}
			break;
		case O_RETAIN: {
			errno = 0;
			unsigned long v = strtoul(optarg, &end, 10);
			if (errno || *end || v == 0 || v > 1000000) {
				fprintf(stderr, "nanoshimd: --event-retain %s: give 1 to 1000000\n", optarg);
				return 2;
			}
			d->cfg.event_retain = (unsigned)v;
			break;
		}
		case O_LEVEL:
			level = optarg;
			if (strcmp(level, "error") && strcmp(level, "warn") && strcmp(level, "info") &&
			    strcmp(level, "debug")) {
				fprintf(stderr, "nanoshimd: --log-level %s: give error, warn, info or debug\n", level);
				return 2;
			}
			break;
		case O_CRASH:
			if (strcmp(optarg, "list") == 0) {
				crash_list();
				return 0;
			}
			if (!crash_point_known(optarg)) {
				fprintf(stderr, "nanoshimd: --crash-at %s: no such point (see --crash-at list)\n", optarg);
				return 2;
			}
			d->cfg.crash_at = optarg;
			break;
		case O_VERSION: printf("nanoshimd %s\n", NANOSHIMD_VERSION); return 0;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "nanoshimd: unexpected argument %s\n", argv[optind]);
		return 2;
	}
	if (d->cfg.state[0] != '/' || d->cfg.root[0] != '/') {
		fprintf(stderr, "nanoshimd: --state and --root must be absolute paths\n");
		return 2;
	}
	ssize_t n = readlink("/proc/self/exe", d->self, sizeof(d->self) - 1);
	if (n <= 0)
		snprintf(d->self, sizeof(d->self), "%s", argv[0]);
	if (!d->cfg.shim_binary)
		d->cfg.shim_binary = default_shim(d->self, shim_buf, sizeof(shim_buf));
	if (!d->cfg.address) {
		snprintf(addr_buf, sizeof(addr_buf), "%s/nanoshimd.sock", d->cfg.state);
		d->cfg.address = addr_buf;
	}
	d->cfg.debug = strcmp(level, "debug") == 0;
	log_init(strcmp(level, "error") == 0	 ? LOG_LEVEL_ERROR
		 : strcmp(level, "warn") == 0	 ? LOG_LEVEL_WARN
		 : strcmp(level, "debug") == 0 ? LOG_LEVEL_DEBUG
					       : LOG_LEVEL_INFO,
		 NULL, 0);

	umask(022);
	int rc;
	snprintf(d->socket_dir, sizeof(d->socket_dir), "%s/%s", d->cfg.state, NANOSHIMD_SOCKET_SUBDIR);
	if ((rc = mkdir_p(d->cfg.state, 0711)) < 0 || (rc = mkdir_p(d->cfg.root, 0700)) < 0 ||
	    (rc = mkdir_p(d->socket_dir, 0700)) < 0) {
		fprintf(stderr, "nanoshimd: state dirs under %s, %s: %s\n", d->cfg.state, d->cfg.root,
			strerror(-rc));
		return 1;
	}
	char lock[PATH_MAX];
	snprintf(lock, sizeof(lock), "%s/nanoshimd.lock", d->cfg.state);
	int lfd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (lfd < 0 || flock(lfd, LOCK_EX | LOCK_NB) < 0) {
		fprintf(stderr, "nanoshimd: %s: %s\n", lock,
			errno == EWOULDBLOCK ? "another nanoshimd serves this state dir" : strerror(errno));
		return 1;
	}
	ttrpc_raise_nofile_limit();
	signal(SIGPIPE, SIG_IGN);
	sigset_t mask;
	sigemptyset(&mask);
	sigaddset(&mask, SIGCHLD);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	sigdelset(&mask, SIGCHLD); /* the reaper has its own signalfd */
	int sfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
	clock_gettime(CLOCK_REALTIME, &d->started_at);

	d->loop = loop_new();
	d->reaper = d->loop ? reaper_new(d->loop) : NULL;
	d->server = ttrpc_server_new();
	struct loop_source *sig_src = NULL, *shims_src = NULL;
	if (!d->loop || !d->reaper || !d->server || sfd < 0 ||
	    ttrpc_client_group_new(&d->shims) < 0 ||
	    !(shims_src = loop_add_io(d->loop, ttrpc_client_group_fd(d->shims), EPOLLIN, on_shims,
				      d)) ||
	    !(sig_src = loop_add_io(d->loop, sfd, EPOLLIN, on_signal, d))) {
		fprintf(stderr, "nanoshimd: setup: %s\n", strerror(errno ? errno : ENOMEM));
		return 1;
	}
	if ((rc = events_init(d)) < 0 || (rc = api_register(d)) < 0 || (rc = events_register(d)) < 0) {
		fprintf(stderr, "nanoshimd: setup: %s\n", strerror(-rc));
		return 1;
	}
	if ((rc = ttrpc_server_listen(d->server, d->cfg.address)) < 0) {
		fprintf(stderr, "nanoshimd: listen on %s: %s\n", d->cfg.address, strerror(-rc));
		return 1;
	}
	d->server_src = loop_add_io(d->loop, ttrpc_server_fd(d->server), EPOLLIN, on_server, d);
	if (!d->server_src) {
		fprintf(stderr, "nanoshimd: setup: %s\n", strerror(errno));
		return 1;
	}
	if (n_runtime_args) {
		rc = runtime_wrapper(d->cfg.state, d->cfg.runtime, runtime_args, n_runtime_args,
				     runtime_buf, sizeof(runtime_buf));
		if (rc < 0) {
			fprintf(stderr, "nanoshimd: runtime wrapper in %s: %s\n", d->cfg.state,
				strerror(-rc));
			return 1;
		}
		d->cfg.runtime = runtime_buf;
	}
	log_info("nanoshimd %s serving %s (state %s, shim %s, runtime %s)", NANOSHIMD_VERSION,
		 d->cfg.address, d->cfg.state, d->cfg.shim_binary, d->cfg.runtime);
	recover_all(d);
	rc = loop_run(d->loop);
	/* shims keep running; their clients simply close */
	ttrpc_server_shutdown(d->server);
	for (int i = 0; i < 100 && !ttrpc_server_drained(d->server); i++)
		loop_iterate(d->loop, 10);
	events_free(d);
	while (d->ctrs) {
		struct ctr *c = d->ctrs;
		c->shutting_down = true;
		shim_disconnect(c);
		ctr_remove(c);
	}
	loop_io_remove(d->server_src);
	loop_io_remove(sig_src);
	loop_io_remove(shims_src);
	ttrpc_client_group_free(d->shims);
	ttrpc_server_free(d->server);
	unlink(d->cfg.address);
	reaper_free(d->reaper);
	loop_free(d->loop);
	shim_sockets_release();
	close(sfd);
	return rc;
}
