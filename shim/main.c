/* containerd-shim-nano-v2: the shim v2 command line. `start` creates the
 * socket and the serving shim and prints its address; `delete` cleans up
 * after a shim that is gone; no action serves containerd.task.v2.Task.
 *
 * `start` puts the socket in /run/containerd/s, as containerd's own shims do,
 * unless the environment has NANOSHIM_SOCKET_DIR: an absolute directory
 * (created 0700 if missing) that then holds the socket instead, named the same
 * way (<dir>/<sha256 of address/namespace/group>). nanoshimd sets it so the
 * shims it owns never share containerd's socket directory. */
#include "events.h"
#include "log.h"
#include "pio.h"
#include "reaper.h"
#include "runc.h"
#include "shim.h"

#include "bundle/address.h"
#include "bundle/atomic.h"
#include "bundle/exitfile.h"
#include "bundle/files.h"
#include "bundle/id.h"
#include "bundle/mount.h"
#include "bundle/options.h"
#include "bundle/pidfile.h"
#include "bundle/runcopts.h"
#include "bundle/spec.h"
#include "containerd/runc/v1/oci.pb-c.h"
#include "containerd/task/v2/shim.pb-c.h"
#include "google/protobuf/any.pb-c.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <malloc.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <linux/magic.h>
#include <sys/vfs.h>
#include <sys/un.h>
#include <time.h>
#include <linux/close_range.h>
#include <unistd.h>

#define SHIM_NAME "containerd-shim-nano-v2"
#define SHIM_VERSION "0.1.0"
#define STDIN_MAX (1u << 20)
#define SHUTDOWN_EVENTS_WAIT_MS 5000
/* Go's os.MkdirAll(filepath.Dir(socket), 0600) in containerd's shim.NewSocket */
#define SOCKET_DIR_MODE 0600
/* where `start` puts the socket instead, when set (see the top of this file) */
#define SOCKET_DIR_ENV "NANOSHIM_SOCKET_DIR"
#define OWN_SOCKET_DIR_MODE 0700
#define SOCKET_LOCK_WAIT_MS 2000

extern char **environ;

struct flags {
	const char *argv0;
	const char *ns, *id, *address, *publish_binary, *bundle, *socket;
	bool debug, version;
	const char *action;
};

static int usage(void)
{
	fprintf(stderr, "usage: %s -namespace NS -id ID -address ADDR [-bundle DIR] [-debug] "
			"[-socket PATH] [start|delete]\n       %s -v\n",
		SHIM_NAME, SHIM_NAME);
	return 2;
}

/* Go's flag package: -name or --name, value after '=' or as the next arg. */
static int parse_flags(int argc, char **argv, struct flags *f)
{
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (a[0] != '-') {
			if (f->action)
				return -EINVAL;
			f->action = a;
			continue;
		}
		a += a[1] == '-' ? 2 : 1;
		char name[32];
		const char *eq = strchr(a, '='), *val = NULL;
		size_t n = eq ? (size_t)(eq - a) : strlen(a);
		if (n >= sizeof(name))
			return -EINVAL;
		memcpy(name, a, n);
		name[n] = '\0';
		if (strcmp(name, "debug") == 0 || strcmp(name, "v") == 0 ||
		    strcmp(name, "version") == 0) {
			bool on = !eq || strcmp(eq + 1, "true") == 0 || strcmp(eq + 1, "1") == 0;
			if (name[0] == 'd')
				f->debug = on;
			else
				f->version = on;
			continue;
		}
		if (eq)
			val = eq + 1;
		else if (i + 1 < argc)
			val = argv[++i];
		else
			return -EINVAL;
		if (strcmp(name, "namespace") == 0)
			f->ns = val;
		else if (strcmp(name, "id") == 0)
			f->id = val;
		else if (strcmp(name, "address") == 0)
			f->address = val;
		else if (strcmp(name, "publish-binary") == 0)
			f->publish_binary = val;
		else if (strcmp(name, "bundle") == 0)
			f->bundle = val;
		else if (strcmp(name, "socket") == 0)
			f->socket = val;
		else
			return -EINVAL;
	}
	return 0;
}

/* ---- start ------------------------------------------------------------- */

static int read_all(int fd, uint8_t **out, size_t *len)
{
	size_t cap = 4096, n = 0;
	uint8_t *b = malloc(cap);
	if (!b)
		return -ENOMEM;
	for (;;) {
		if (n == cap) {
			if (cap >= STDIN_MAX) {
				free(b);
				return -EFBIG;
			}
			cap *= 2;
			uint8_t *nb = realloc(b, cap);
			if (!nb) {
				free(b);
				return -ENOMEM;
			}
			b = nb;
		}
		ssize_t r = read(fd, b + n, cap - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		n += (size_t)r;
	}
	*out = b;
	*len = n;
	return 0;
}

/* The runc options containerd 1.6 sends on stdin: only shim_cgroup matters
 * here. Anything that is not an Any of a known options type is ignored. */
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

static void apply_shim_cgroup(pid_t daemon)
{
	uint8_t *in = NULL;
	size_t len = 0;
	if (isatty(STDIN_FILENO) || read_all(STDIN_FILENO, &in, &len) < 0 || len == 0) {
		free(in);
		return;
	}
	Google__Protobuf__Any *any = google__protobuf__any__unpack(NULL, len, in);
	free(in);
	if (!any)
		return;
	const char *cg = NULL;
	Containerd__Runc__V1__Options *o = NULL;
	struct ttrpc_status st;
	if (bundle_options_decode(any->type_url, any->value.data, any->value.len, &o, &st) == 0 &&
	    o->shim_cgroup && o->shim_cgroup[0])
		cg = o->shim_cgroup;
	if (cg)
		join_shim_cgroup(cg, daemon);
	bundle_options_free(o);
	google__protobuf__any__free_unpacked(any, NULL);
}

/* Whether a shim listens on path. Never waits: a full backlog (EAGAIN) is
 * a live listener too busy to accept right now, not a stale socket. */
static bool connectable(const char *path)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return false;
	bool ok = connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 || errno == EAGAIN;
	close(fd);
	return ok;
}

/* Takes an exclusive flock on the directory of a shim socket and returns the
 * locked fd (close() releases it), or -errno (-ETIMEDOUT after
 * SOCKET_LOCK_WAIT_MS: a holder stopped mid-start must not wedge every other
 * start and shim exit; callers then go on without the lock). Every step that decides who owns
 * a socket path — bind to listen in `start`, unlinking a stale socket in
 * `start` and `delete`, a serving shim removing its own at exit — runs under
 * it, so a second `start` for the same group can never find a socket bound but
 * not yet listening, take it for stale, unlink it and orphan the first shim.
 * A lock on the directory leaves no file behind and dies with its holder. */
static int lock_socket_dir(const char *socket_path)
{
	char dir[PATH_MAX];
	snprintf(dir, sizeof(dir), "%s", socket_path);
	char *slash = strrchr(dir, '/');
	if (!slash || slash == dir)
		return -EINVAL;
	*slash = '\0';
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	/* held only while a start binds and listens: microseconds */
	for (int waited_ms = 0; flock(fd, LOCK_EX | LOCK_NB) < 0;) {
		int err = errno;
		if (err == EINTR)
			continue;
		if (err != EWOULDBLOCK || waited_ms >= SOCKET_LOCK_WAIT_MS) {
			close(fd);
			return err == EWOULDBLOCK ? -ETIMEDOUT : -err;
		}
		nanosleep(&(struct timespec){.tv_nsec = 1000000}, NULL);
		waited_ms++;
	}
	return fd;
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

/* The socket directory `start` uses, in dir (PATH_MAX): SOCKET_DIR_ENV's,
 * cleaned, or containerd's. *mode: what a missing one is created with. */
static int socket_dir(char *dir, mode_t *mode)
{
	const char *env = getenv(SOCKET_DIR_ENV);
	if (!env || !env[0]) {
		snprintf(dir, PATH_MAX, "%s", BUNDLE_SOCKET_DIR);
		*mode = SOCKET_DIR_MODE;
		return 0;
	}
	if (env[0] != '/') {
		fprintf(stderr, "%s %s: not an absolute path\n", SOCKET_DIR_ENV, env);
		return -EINVAL;
	}
	if (strlen(env) + 2 > PATH_MAX) {
		fprintf(stderr, "%s: %s\n", SOCKET_DIR_ENV, strerror(ENAMETOOLONG));
		return -ENAMETOOLONG;
	}
	bundle_path_clean(env, dir);
	*mode = OWN_SOCKET_DIR_MODE;
	return 0;
}

static int write_address(int dirfd, const char *address)
{
	return bundle_write_file_atomic(dirfd, BUNDLE_ADDRESS_FILE, address, strlen(address), 0644);
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

static int do_start(const struct flags *f)
{
	close_range(3, ~0U, CLOSE_RANGE_CLOEXEC); /* the serving shim gets 0-3 only */
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
	if (socket_dir(sdir, &sdir_mode) < 0)
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
	int lock = lock_socket_dir(path); /* < 0: on without it, as before it existed */
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
		if (connectable(path)) {
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
	rc = posix_spawn(&pid, "/proc/self/exe", &fa, &at, (char *const *)argv, environ);
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
	bundle_write_file_atomic(dirfd, BUNDLE_SHIM_PID_FILE, pidbuf, (size_t)plen, 0644);
	apply_shim_cgroup(pid);
	adjust_oom_score(pid);
	close(dirfd);
	printf("%s", address);
	return 0;
}

/* ---- delete ------------------------------------------------------------ */

static int do_delete(const struct flags *f)
{
	const char *bundle = f->bundle && f->bundle[0] ? f->bundle : ".";
	int dirfd = open(bundle, O_DIRECTORY | O_RDONLY | O_CLOEXEC);
	if (dirfd < 0) {
		fprintf(stderr, "open bundle %s: %s\n", bundle, strerror(errno));
		return 1;
	}
	char cwd[PATH_MAX];
	if (!realpath(bundle, cwd))
		snprintf(cwd, sizeof(cwd), "%s", bundle);
	struct ttrpc_status st;
	Containerd__Runc__V1__Options *o = NULL;
	if (bundle_options_read(dirfd, &o, &st) < 0) {
		fprintf(stderr, "%s\n", st.message); /* logged by containerd as a warning */
		o = NULL;
	}
	char root[PATH_MAX];
	snprintf(root, sizeof(root), "%s/%s", o ? bundle_options_root(o) : BUNDLE_DEFAULT_RUNC_ROOT,
		 f->ns);
	struct runc_config rc_cfg = {.binary = o ? bundle_options_binary(o) : BUNDLE_DEFAULT_RUNTIME,
				     .root = root,
				     .systemd_cgroup = o && o->systemd_cgroup,
				     .log_dir = cwd};
	/* containerd 1.6 runs this after every task delete: when the runtime
	 * holds no state for the container any more, there is nothing to delete
	 * and no reason to pay for starting it. */
	char state_dir[PATH_MAX];
	snprintf(state_dir, sizeof(state_dir), "%s/%s", root, f->id);
	if (access(state_dir, F_OK) == 0) {
		const char *args[] = {"delete", "--force", f->id, NULL};
		char err[512] = "";
		int status = runc_run_sync(&rc_cfg, args, err, sizeof(err));
		if (status != 0 && !strstr(err, "does not exist"))
			fprintf(stderr, "runc delete %s: %s\n", f->id, err);
	}
	int rc = bundle_unmount_rootfs(cwd);
	if (rc < 0)
		fprintf(stderr, "unmount rootfs: %s\n", strerror(-rc));
	/* The real exit, if the shim wrote it before dying; else SIGKILL's. */
	struct bundle_exit ex;
	Containerd__Task__V2__DeleteResponse r = CONTAINERD__TASK__V2__DELETE_RESPONSE__INIT;
	Google__Protobuf__Timestamp ts = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
	pid_t pid = 0;
	if (bundle_exit_read(dirfd, NULL, &ex) == 0) {
		r.pid = (uint32_t)ex.pid;
		r.exit_status = (uint32_t)ex.status;
		ts.seconds = ex.exited_sec;
		ts.nanos = ex.exited_nsec;
	} else {
		if (bundle_read_pid(dirfd, BUNDLE_INIT_PID_FILE, &pid) == 0)
			r.pid = (uint32_t)pid;
		r.exit_status = 128 + SIGKILL;
		struct timespec now;
		clock_gettime(CLOCK_REALTIME, &now);
		ts.seconds = now.tv_sec;
		ts.nanos = (int32_t)now.tv_nsec;
	}
	r.exited_at = &ts;
	/* a dead shim leaves its socket behind; a live one removes its own */
	char *addr = NULL;
	size_t alen = 0;
	char spath[128];
	if (bundle_read_file(dirfd, BUNDLE_ADDRESS_FILE, &addr, &alen, 4096) == 0 &&
	    bundle_socket_path(addr, spath, sizeof(spath)) == 0) {
		int lock = lock_socket_dir(spath);
		if (!connectable(spath))
			unlink(spath);
		if (lock >= 0)
			close(lock);
	}
	free(addr);
	bundle_options_free(o);
	close(dirfd);
	size_t len = containerd__task__v2__delete_response__get_packed_size(&r);
	uint8_t *buf = malloc(len + 1);
	containerd__task__v2__delete_response__pack(&r, buf);
	fwrite(buf, 1, len, stdout);
	free(buf);
	return 0;
}

/* ---- serve ------------------------------------------------------------- */

static char socket_path[128];
static struct stat socket_st; /* the socket file as we found it at start */

/* Removes our socket file, under the directory lock and while still
 * listening: a `start` for our group that comes now either shares us (and
 * finds us gone at its first call, as with Go's shim) or binds anew after the
 * unlink — never has its fresh socket removed by us. A path that is no longer
 * the file we served on is left alone. */
static void remove_socket(void)
{
	if (!socket_path[0])
		return;
	int lock = lock_socket_dir(socket_path);
	if (lock < 0)
		log_warn("lock %s's directory: %s", socket_path, strerror(-lock));
	struct stat st;
	if (stat(socket_path, &st) == 0 && st.st_dev == socket_st.st_dev &&
	    st.st_ino == socket_st.st_ino)
		unlink(socket_path);
	if (lock >= 0)
		close(lock);
}

static void on_server(struct loop_source *s, int fd, uint32_t events, void *ud)
{
	ttrpc_server_dispatch(shim.server);
}

static struct loop_timer *exit_timer;

static void maybe_exit(void *ud);

static void poll_exit(void *ud)
{
	exit_timer = NULL;
	maybe_exit(ud);
}

/* After Shutdown (or SIGTERM): wait for queued events and for loggers told
 * to stop, bounded, then quit. */
static void maybe_exit(void *ud)
{
	static int64_t deadline;
	if (!deadline)
		deadline = loop_now_ns() + (int64_t)SHUTDOWN_EVENTS_WAIT_MS * 1000000;
	bool waiting = !events_idle() || pio_loggers_ending();
	if (!waiting || loop_now_ns() >= deadline) {
		pio_kill_loggers();
		loop_quit(shim.loop, 0);
		return;
	}
	if (!exit_timer)
		exit_timer = loop_add_timer_ms(shim.loop, 20, poll_exit, NULL);
}

static void on_signal(struct loop_source *s, int fd, uint32_t events, void *ud)
{
	struct signalfd_siginfo si;
	while (read(fd, &si, sizeof(si)) == sizeof(si)) {
		switch (si.ssi_signo) {
		case SIGTERM:
		case SIGINT:
			log_info("signal %u: shutting down", si.ssi_signo);
			shim.shutdown_requested = true;
			break;
		default:
			break;
		}
	}
}

static void after_iteration(void *ud);

static int serve(const struct flags *f)
{
	/* Only 0-2 and the listener (3) are ours; anything else came from
	 * whoever started containerd and must not leak into containers. */
	close_range(4, ~0U, 0);
	shim.ns = f->ns;
	shim.id = f->id;
	shim.address = f->address;
	shim.debug = f->debug;
	shim.ttrpc_address = getenv("TTRPC_ADDRESS");
	/* containerd reads this FIFO: our log goes there, never blocking */
	int logfd = open(BUNDLE_LOG_FILE, O_WRONLY | O_NONBLOCK | O_CLOEXEC);
	if (logfd >= 0) {
		dup2(logfd, STDERR_FILENO);
		close(logfd);
	}
	const struct log_field fields[] = {{"namespace", f->ns}, {"id", f->id}};
	if (log_init(f->debug ? LOG_LEVEL_DEBUG : LOG_LEVEL_INFO, fields, 2) < 0)
		log_warn("log fields too long: lines go without them");
	prctl(PR_SET_CHILD_SUBREAPER, 1);
	/* SIGCHLD is blocked with the rest, but read by the reaper's own signalfd */
	sigset_t mask;
	sigemptyset(&mask);
	sigaddset(&mask, SIGCHLD);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGPIPE);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	sigdelset(&mask, SIGCHLD);
	int sfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
	shim.loop = loop_new();
	shim.server = ttrpc_server_new();
	if (sfd < 0 || !shim.loop || !shim.server) {
		log_error("init: %s", strerror(errno));
		return 1;
	}
	/* Go's UnixSocketRequireSameUser: the peer's uid and gid are ours */
	ttrpc_server_set_peer_check(shim.server, TTRPC_PEER_SAME_UID_GID);
	ttrpc_server_register(shim.server, &containerd__task__v2__task__descriptor,
			      shim_task_handlers, NULL);
	int rc;
	if (f->socket && f->socket[0]) {
		mode_t old_umask = umask(077); /* no window before its chmod 0600 */
		rc = ttrpc_server_listen(shim.server, f->socket);
		umask(old_umask);
		snprintf(socket_path, sizeof(socket_path), "%s",
			 strncmp(f->socket, "unix://", 7) == 0 ? f->socket + 7 : f->socket);
	} else {
		struct sockaddr_un sa;
		socklen_t sl = sizeof(sa);
		if (getsockname(3, (struct sockaddr *)&sa, &sl) == 0 && sa.sun_path[0])
			snprintf(socket_path, sizeof(socket_path), "%s", sa.sun_path);
		rc = ttrpc_server_add_listener(shim.server, 3);
	}
	if (rc < 0) {
		log_error("serve: %s", strerror(-rc));
		return 1;
	}
	if (socket_path[0] && stat(socket_path, &socket_st) < 0)
		socket_path[0] = '\0'; /* not a file we could remove safely */
	events_init(shim.loop, shim.ttrpc_address, f->ns);
	struct loop_source *sig_src = loop_add_io(shim.loop, sfd, EPOLLIN, on_signal, NULL);
	struct loop_source *srv_src =
		loop_add_io(shim.loop, ttrpc_server_fd(shim.server), EPOLLIN, on_server, NULL);
	/* its signalfd on the loop, and anything that exited before it existed reaped */
	shim.reaper = reaper_new(shim.loop);
	if (!shim.reaper) {
		log_error("init: reaper: %s", strerror(errno));
		return 1;
	}
	while (!loop_quitting(shim.loop)) {
		if (loop_iterate(shim.loop, -1) < 0 && errno != EINTR)
			break;
		after_iteration(NULL);
	}
	loop_io_remove(srv_src);
	loop_io_remove(sig_src);
	remove_socket();
	ttrpc_server_free(shim.server);
	shim_task_shutdown();
	events_shutdown();
	reaper_free(shim.reaper);
	loop_free(shim.loop);
	close(sfd);
	return 0;
}

/* An idle shim gives the heap pages it no longer uses back to the kernel:
 * most of a shim's life is waiting, and its footprint is what users count. */
#define IDLE_TRIM_MS 1000
static struct loop_timer *trim_timer;
static bool just_trimmed;

static int64_t last_activity;

static void trim_heap(void *ud)
{
	trim_timer = NULL;
	just_trimmed = true; /* this wake-up is not activity either way */
	int64_t idle_until = last_activity + (int64_t)IDLE_TRIM_MS * 1000000;
	if (loop_now_ns() < idle_until) { /* busy since: look again later */
		trim_timer = loop_add_timer(shim.loop, idle_until, trim_heap, NULL);
		return;
	}
	malloc_trim(0);
}

static void after_iteration(void *ud)
{
	if (shim.shutdown_requested)
		maybe_exit(NULL);
	if (just_trimmed) { /* the trim's own wake-up is not activity */
		just_trimmed = false;
		return;
	}
	last_activity = loop_now_ns();
	if (!trim_timer)
		trim_timer = loop_add_timer_ms(shim.loop, IDLE_TRIM_MS, trim_heap, NULL);
}

int main(int argc, char **argv)
{
	struct flags f = {.argv0 = argv[0]};
	/* The soft RLIMIT_NOFILE up to the hard one, as every Go binary since
	 * Go 1.19 does (os package init, go.dev/issue/46279), Debian's
	 * containerd-shim-runc-v2 (go1.19.8) included: a shim serving many
	 * containers and execs must not run out of fds at containerd's soft
	 * limit. Children inherit the raised limit, as from that Go shim;
	 * restoring the original soft limit in exec'd children came only with
	 * Go 1.21 (syscall.origRlimitNofile). A container's own limit comes from
	 * its spec's rlimits either way. */
	ttrpc_raise_nofile_limit();
	if (parse_flags(argc, argv, &f) < 0)
		return usage();
	if (f.version) {
		printf("%s:\n  Version:  %s\n", SHIM_NAME, SHIM_VERSION);
		return 0;
	}
	if (!f.ns) {
		const char *env = getenv("NAMESPACE");
		f.ns = env && env[0] ? env : NULL;
	}
	if (!f.ns || !f.id) {
		fprintf(stderr, "%s: -namespace and -id are required\n", SHIM_NAME);
		return usage();
	}
	struct ttrpc_status st;
	if (bundle_validate_id("namespace", f.ns, &st) < 0 ||
	    bundle_validate_id("container id", f.id, &st) < 0) {
		fprintf(stderr, "%s: %s\n", SHIM_NAME, st.message);
		return 1;
	}
	if (!f.address)
		f.address = "/run/containerd/containerd.sock";
	if (!f.action)
		return serve(&f);
	if (strcmp(f.action, "start") == 0)
		return do_start(&f);
	if (strcmp(f.action, "delete") == 0)
		return do_delete(&f);
	fprintf(stderr, "%s: unknown action %s\n", SHIM_NAME, f.action);
	return usage();
}
