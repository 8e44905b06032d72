/* `start`: the shim's socket (under the directory lock), the serving shim
 * spawned on it in a session of its own, its address printed for containerd
 * (see cli.h; NANOSHIM_SOCKET_DIR at the top of main.c). */
#include "bootstrap.h"
#include "cli.h"
#include "sockdir.h"
#include "timing.h"

#include "bundle/address.h"
#include "bundle/atomic.h"
#include "bundle/files.h"
#include "bundle/runcopts.h"
#include "bundle/spec.h"
#include "containerd/runc/v1/oci.pb-c.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/close_range.h>
#include <linux/magic.h>
#include <spawn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/vfs.h>
#include <unistd.h>

/* Go's os.MkdirAll(filepath.Dir(socket), 0600) in containerd's shim.NewSocket */
#define SOCKET_DIR_MODE 0600
/* where `start` puts the socket instead, when set (see the top of main.c) */
#define SOCKET_DIR_ENV "NANOSHIM_SOCKET_DIR"
#define OWN_SOCKET_DIR_MODE 0700

extern char **environ;

static int start(const struct shim_flags *f, const struct shim_stdin *in);
static int64_t entered_ns; /* timing.h */

/* The serving shim's environment: ours, with SHIM_SERVE_TUNABLE added to
 * GLIBC_TUNABLES (after any the caller set). NULL without memory; free the
 * array and its last-but-one entry (the GLIBC_TUNABLES one) with shim_serve_env_free(). */
#define TUNABLES_ENV "GLIBC_TUNABLES"
char **shim_serve_env(void)
{
	size_t n = 0;
	while (environ[n])
		n++;
	char **env = calloc(n + 2, sizeof(*env));
	if (!env)
		return NULL;
	const char *old = getenv(TUNABLES_ENV);
	char *t = NULL;
	if (asprintf(&t, "%s=%s%s%s", TUNABLES_ENV, old ? old : "", old && old[0] ? ":" : "",
		     SHIM_SERVE_TUNABLE) < 0) {
		free(env);
		return NULL;
	}
	size_t k = 0;
	for (size_t i = 0; i < n; i++)
		if (strncmp(environ[i], TUNABLES_ENV "=", sizeof(TUNABLES_ENV)) != 0)
			env[k++] = environ[i];
	env[k++] = t;
	env[k] = NULL;
	return env;
}

void shim_serve_env_free(char **env)
{
	if (!env)
		return;
	size_t n = 0;
	while (env[n])
		n++;
	if (n > 0)
		free(env[n - 1]);
	free(env);
}

/* Moves pid into cgroup path cg as the Go shim does (cgroups.Load + Add): on a
 * cgroup2-only host the unified hierarchy; otherwise every mounted v1 hierarchy
 * in which cg exists (cpu, memory, devices, freezer, ... and name=systemd). */
static void join_shim_cgroup(const char *cg, pid_t pid)
{
	struct statfs sfs;
	bool unified = statfs("/sys/fs/cgroup", &sfs) == 0 && sfs.f_type == CGROUP2_SUPER_MAGIC;
	FILE *mi = fopen("/proc/self/mountinfo", "re");
	if (!mi)
		return;
	char line[4096], pidstr[32];
	snprintf(pidstr, sizeof(pidstr), "%d", (int)pid);
	while (fgets(line, sizeof(line), mi)) {
		/* id parent major:minor root MOUNTPOINT options... - FSTYPE source super */
		char mnt[PATH_MAX], fstype[64];
		const char *sep = strstr(line, " - ");
		if (!sep || sscanf(line, "%*s %*s %*s %*s %4095s", mnt) != 1 ||
		    sscanf(sep + 3, "%63s", fstype) != 1)
			continue;
		if (strcmp(fstype, unified ? "cgroup2" : "cgroup") != 0)
			continue;
		char path[PATH_MAX * 2];
		snprintf(path, sizeof(path), "%s%s", mnt, cg);
		struct stat st;
		if (stat(path, &st) < 0 || !S_ISDIR(st.st_mode))
			continue; /* not in this hierarchy: Go's Load skips it too */
		snprintf(path, sizeof(path), "%s%s/cgroup.procs", mnt, cg);
		int fd = open(path, O_WRONLY | O_CLOEXEC);
		if (fd < 0 || write(fd, pidstr, strlen(pidstr)) < 0)
			fprintf(stderr, "move shim to cgroup %s (%s): %s\n", cg, mnt, strerror(errno));
		if (fd >= 0)
			close(fd);
	}
	fclose(mi);
}

/* mkdir -p with Go's MkdirAll semantics: missing parents get the same mode. */
static int mkdir_p(const char *path, mode_t mode)
{
	char p[PATH_MAX];
	snprintf(p, sizeof(p), "%s", path);
	for (char *s = p + 1; *s; s++) {
		if (*s != '/')
			continue;
		*s = '\0';
		if (mkdir(p, mode) < 0 && errno != EEXIST)
			return -errno;
		*s = '/';
	}
	if (mkdir(p, mode) < 0 && errno != EEXIST)
		return -errno;
	return 0;
}

/* The socket directory `start` uses, in dir (PATH_MAX): SOCKET_DIR_ENV's
 * (nanoshimd's), else BootstrapParams' socket_dir (containerd 2.3+), each
 * cleaned, else containerd's default. *mode: what a missing one is created
 * with. */
static int socket_dir(const char *from_bootstrap, char *dir, mode_t *mode)
{
	const char *env = getenv(SOCKET_DIR_ENV), *what = SOCKET_DIR_ENV;
	*mode = OWN_SOCKET_DIR_MODE;
	if (!env || !env[0]) {
		env = from_bootstrap;
		what = "BootstrapParams socket_dir";
		*mode = SOCKET_DIR_MODE; /* containerd's directory, made as Go makes it */
	}
	if (!env || !env[0]) {
		snprintf(dir, PATH_MAX, "%s", BUNDLE_SOCKET_DIR);
		return 0;
	}
	if (env[0] != '/') {
		fprintf(stderr, "%s %s: not an absolute path\n", what, env);
		return -EINVAL;
	}
	if (strlen(env) + 2 > PATH_MAX) {
		fprintf(stderr, "%s: %s\n", what, strerror(ENAMETOOLONG));
		return -ENAMETOOLONG;
	}
	bundle_path_clean(env, dir);
	return 0;
}

static int write_address(int dirfd, const char *address)
{
	return bundle_write_file_volatile(dirfd, BUNDLE_ADDRESS_FILE, address, strlen(address), 0644);
}

static void adjust_oom_score(pid_t daemon)
{
	char path[64], buf[32];
	snprintf(path, sizeof(path), "/proc/%d/oom_score_adj", getppid());
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return;
	buf[n] = '\0';
	int score = atoi(buf) + 1;
	if (score > 1000)
		score = 1000;
	snprintf(path, sizeof(path), "/proc/%d/oom_score_adj", daemon);
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	n = snprintf(buf, sizeof(buf), "%d", score);
	if (write(fd, buf, (size_t)n) < 0) {
		/* not fatal: the shim just keeps containerd's score */
	}
	close(fd);
}

/* What containerd wrote on stdin (bootstrap.h), decided before anything is
 * created: what cannot be read is refused, on one line, with exit code 1. */
/* -debug: the start action's own time, one line into the log FIFO containerd
 * reads (not stdout or stderr: containerd takes the address from them). */
static void start_timing(const struct shim_flags *f, int64_t listening, int64_t spawned)
{
	int fd = open(BUNDLE_LOG_FILE, O_WRONLY | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		return;
	const struct log_field fields[] = {{"namespace", f->ns}, {"id", f->id}};
	log_init(LOG_LEVEL_DEBUG, fields, 2);
	log_set_fd(fd);
	log_debug("timing start-action %s: shim %.3f ms (listening after %.3f, serving shim "
		  "spawned after %.3f)",
		  f->id, timing_ms(entered_ns, reaper_now_ns()), timing_ms(entered_ns, listening),
		  timing_ms(entered_ns, spawned));
	log_set_fd(STDERR_FILENO);
	close(fd);
}

static int read_stdin(const struct shim_flags *f, struct shim_stdin *in)
{
	uint8_t *buf;
	size_t len;
	char err[SHIM_STDIN_ERR_MAX];
	int rc = shim_stdin_read(STDIN_FILENO, &buf, &len);
	if (rc < 0) {
		fprintf(stderr, "start %s: read stdin: %s\n", f->id, strerror(-rc));
		return rc;
	}
	rc = shim_stdin_parse(buf, len, f->id, f->ns, in, err, sizeof(err));
	free(buf);
	if (rc < 0)
		fprintf(stderr, "start %s: %s\n", f->id, err);
	return rc;
}

int shim_start(const struct shim_flags *f)
{
	entered_ns = reaper_now_ns();
	close_range(3, ~0U, CLOSE_RANGE_CLOEXEC); /* the serving shim gets 0-3 only */
	struct shim_stdin in;
	if (read_stdin(f, &in) < 0) {
		shim_stdin_free(&in);
		return 1;
	}
	int rc = start(f, &in);
	shim_stdin_free(&in);
	return rc;
}

static int start(const struct shim_flags *f, const struct shim_stdin *in)
{
	int dirfd = open(".", O_DIRECTORY | O_RDONLY | O_CLOEXEC);
	struct ttrpc_status st;
	char group[256], address[BUNDLE_ADDRESS_MAX + 8], path[128];
	if (dirfd < 0) {
		fprintf(stderr, "open bundle: %s\n", strerror(errno));
		return 1;
	}
	if (bundle_group_id(dirfd, f->id, group, sizeof(group), &st) < 0) {
		fprintf(stderr, "%s\n", st.message);
		return 1;
	}
	char sdir[PATH_MAX];
	mode_t sdir_mode;
	if (socket_dir(in->socket_dir, sdir, &sdir_mode) < 0)
		return 1;
	int rc = bundle_socket_address_in(sdir, f->address, f->ns, group, address, sizeof(address));
	if (rc < 0 || (rc = bundle_socket_path(address, path, sizeof(path))) < 0) {
		fprintf(stderr, "socket address for %s in %s: %s\n", f->id, sdir, strerror(-rc));
		return 1;
	}
	/* Nothing of ours is ever reachable by other users, not even between
	 * bind and chmod: the directory as Go makes it, the socket born 0700. */
	mode_t old_umask = umask(077);
	rc = mkdir_p(sdir, sdir_mode);
	struct stat sdir_st;
	if (rc == 0 && stat(sdir, &sdir_st) < 0)
		rc = -errno;
	if (rc == 0 && !S_ISDIR(sdir_st.st_mode))
		rc = -ENOTDIR;
	if (rc < 0) {
		fprintf(stderr, "socket dir %s: %s\n", sdir, strerror(-rc));
		return 1;
	}
	int lock = shim_socket_lock(path); /* < 0: on without it, as before it existed */
	int lfd = -1, err = 0;
	for (int attempt = 0; attempt < 2; attempt++) {
		lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		struct sockaddr_un sa = {.sun_family = AF_UNIX};
		snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
		if (lfd >= 0 && bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) == 0)
			break;
		err = errno;
		if (lfd >= 0)
			close(lfd);
		lfd = -1;
		if (err != EADDRINUSE)
			break;
		if (shim_socket_connectable(path)) {
			/* a shim for this group already serves: share it */
			if (lock >= 0)
				close(lock);
			umask(old_umask);
			if ((rc = write_address(dirfd, address)) < 0) {
				fprintf(stderr, "write address: %s\n", strerror(-rc));
				return 1;
			}
			printf("%s", address);
			return 0;
		}
		/* a stale socket of a dead shim: under the lock, no live shim can be
		 * between its bind and its listen */
		unlink(path);
	}
	if (lfd >= 0 && (chmod(path, 0600) < 0 || listen(lfd, SOMAXCONN) < 0)) {
		err = errno;
		close(lfd);
		unlink(path);
		lfd = -1;
	}
	if (lock >= 0)
		close(lock);
	umask(old_umask);
	if (lfd < 0) {
		fprintf(stderr, "listen on %s: %s\n", path, strerror(err));
		return 1;
	}
	if ((rc = write_address(dirfd, address)) < 0) {
		fprintf(stderr, "write address: %s\n", strerror(-rc));
		unlink(path);
		return 1;
	}
	int64_t listening_ns = reaper_now_ns();
	/* The serving shim: this binary again, the socket as fd 3, its own
	 * session, stdio on /dev/null so containerd's read of our output ends. */
	const char *argv[12];
	int n = 0;
	argv[n++] = f->argv0; /* how ps shows it; the binary is /proc/self/exe */
	argv[n++] = "-namespace";
	argv[n++] = f->ns;
	argv[n++] = "-id";
	argv[n++] = f->id;
	argv[n++] = "-address";
	argv[n++] = f->address;
	if (f->debug)
		argv[n++] = "-debug";
	argv[n] = NULL;
	int devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t at;
	posix_spawn_file_actions_init(&fa);
	posix_spawnattr_init(&at);
	posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSID);
	posix_spawn_file_actions_adddup2(&fa, devnull, 0);
	posix_spawn_file_actions_adddup2(&fa, devnull, 1);
	posix_spawn_file_actions_adddup2(&fa, devnull, 2);
	posix_spawn_file_actions_adddup2(&fa, lfd, 3);
	pid_t pid;
	char **env = shim_serve_env();
	rc = posix_spawn(&pid, "/proc/self/exe", &fa, &at, (char *const *)argv, env ? env : environ);
	shim_serve_env_free(env);
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&at);
	close(devnull);
	close(lfd);
	if (rc != 0) {
		fprintf(stderr, "start shim: %s\n", strerror(rc));
		unlink(path);
		return 1;
	}
	char pidbuf[32];
	int plen = snprintf(pidbuf, sizeof(pidbuf), "%d", pid);
	bundle_write_file_volatile(dirfd, BUNDLE_SHIM_PID_FILE, pidbuf, (size_t)plen, 0644);
	if (in->options->shim_cgroup && in->options->shim_cgroup[0])
		join_shim_cgroup(in->options->shim_cgroup, pid);
	adjust_oom_score(pid);
	close(dirfd);
	if (f->debug)
		start_timing(f, listening_ns, reaper_now_ns());
	printf("%s", address);
	return 0;
}
