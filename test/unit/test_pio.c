/* Process stdio (shim/pio.c) against hostile and unusual paths: nothing may
 * block the loop thread (a file:// log that is a FIFO without a reader, a
 * runtime that connects to the console socket and sends nothing), paths are
 * not followed through symlinks and must be of a usable type, a regular file
 * as stdout is appended to, URIs are percent-decoded as Go's url.Parse does,
 * a binary:// logger is waited for, and error paths leak no fd. */
#include "pio.h"
#include "loop.h"
#include "reaper.h"

#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pty.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static char dir[] = "/tmp/nanoshim-pio-XXXXXX";
static struct loop *l;
static struct reaper *rp; /* watches binary:// loggers; reaps only when told */

static void setup(void)
{
	signal(SIGPIPE, SIG_IGN);
	cr_assert_not_null(mkdtemp(dir));
	l = loop_new();
	cr_assert_not_null(l);
	rp = reaper_new(NULL);
	cr_assert_not_null(rp);
}

static void teardown(void)
{
	reaper_free(rp);
	loop_free(l);
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	(void)system(cmd);
}

TestSuite(pio, .init = setup, .fini = teardown, .timeout = 20);

static char *path_in(const char *name)
{
	static char buf[4][PATH_MAX];
	static int i;
	char *p = buf[i++ % 4];
	snprintf(p, PATH_MAX, "%s/%s", dir, name);
	return p;
}

static int count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	cr_assert_not_null(d);
	int n = 0;
	while (readdir(d))
		n++;
	closedir(d);
	return n;
}

static char *slurp(const char *path)
{
	static char buf[4096];
	int fd = open(path, O_RDONLY);
	cr_assert_geq(fd, 0, "open %s: %s", path, strerror(errno));
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	cr_assert_geq(n, 0);
	buf[n] = '\0';
	close(fd);
	return buf;
}

static void write_file(const char *path, const char *s)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	cr_assert_geq(fd, 0);
	cr_assert_eq(write(fd, s, strlen(s)), (ssize_t)strlen(s));
	close(fd);
}

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Writes s as the process would, then lets pio take over and drains. */
static void process_writes(struct pio *p, const char *s)
{
	int fds[3];
	pio_child_fds(p, fds);
	cr_assert_geq(fds[1], 0);
	cr_assert_eq(write(fds[1], s, strlen(s)), (ssize_t)strlen(s));
	struct ttrpc_status st;
	cr_assert_eq(pio_after_start(p, &st), 0, "%s", st.message);
	int64_t end = now_ms() + 5000;
	while (!pio_drained(p) && now_ms() < end)
		loop_iterate(l, 100);
	cr_assert(pio_drained(p), "output not drained");
}

Test(pio, file_log_that_is_a_fifo_without_reader_does_not_block)
{
	char *fifo = path_in("log");
	cr_assert_eq(mkfifo(fifo, 0600), 0);
	char uri[PATH_MAX + 16];
	snprintf(uri, sizeof(uri), "file://%s", fifo);
	struct pio_config cfg = {.stdout_path = uri};
	struct pio *p = NULL;
	struct ttrpc_status st;
	int64_t t0 = now_ms();
	int rc = pio_create(l, &cfg, &p, &st);
	cr_assert_eq(rc, 0, "pio_create: %s", st.message);
	cr_assert_lt(now_ms() - t0, 1000);
	/* and what the process writes is in the FIFO for a reader that comes later */
	int r = open(fifo, O_RDONLY | O_NONBLOCK);
	cr_assert_geq(r, 0);
	process_writes(p, "to-the-fifo\n");
	char buf[64] = "";
	cr_assert_eq(read(r, buf, sizeof(buf) - 1), 12);
	cr_assert_str_eq(buf, "to-the-fifo\n");
	close(r);
	pio_free(p);
}

Test(pio, file_log_uri_is_percent_decoded_and_its_directory_made)
{
	char uri[PATH_MAX + 16];
	snprintf(uri, sizeof(uri), "file://%s/sub%%20dir/a%%2Bb.log", dir);
	struct pio_config cfg = {.stdout_path = uri};
	struct pio *p = NULL;
	struct ttrpc_status st;
	cr_assert_eq(pio_create(l, &cfg, &p, &st), 0, "%s", st.message);
	process_writes(p, "logged\n");
	pio_free(p);
	cr_assert_str_eq(slurp(path_in("sub dir/a+b.log")), "logged\n");
}

Test(pio, file_log_symlink_is_refused)
{
	char *target = path_in("target");
	write_file(target, "");
	char *link = path_in("link.log");
	cr_assert_eq(symlink(target, link), 0);
	char uri[PATH_MAX + 16];
	snprintf(uri, sizeof(uri), "file://%s", link);
	struct pio_config cfg = {.stdout_path = uri};
	struct pio *p = NULL;
	struct ttrpc_status st;
	int fds = count_fds();
	cr_assert_lt(pio_create(l, &cfg, &p, &st), 0);
	cr_assert(strstr(st.message, "symbolic link"), "message: %s", st.message);
	cr_assert_eq(count_fds(), fds, "fds leaked on a refused create");
}

Test(pio, stdout_regular_file_is_appended_not_overwritten)
{
	char *out = path_in("out");
	write_file(out, "old line\n");
	struct pio_config cfg = {.stdout_path = out};
	struct pio *p = NULL;
	struct ttrpc_status st;
	cr_assert_eq(pio_create(l, &cfg, &p, &st), 0, "%s", st.message);
	process_writes(p, "new\n");
	pio_free(p);
	cr_assert_str_eq(slurp(out), "old line\nnew\n");
}

Test(pio, stdout_and_stdin_symlinks_are_refused)
{
	char *fifo = path_in("fifo");
	cr_assert_eq(mkfifo(fifo, 0600), 0);
	char *link = path_in("link");
	cr_assert_eq(symlink(fifo, link), 0);
	struct pio *p = NULL;
	struct ttrpc_status st;
	struct pio_config out = {.stdout_path = link};
	cr_assert_lt(pio_create(l, &out, &p, &st), 0);
	cr_assert(strstr(st.message, "stdout") && strstr(st.message, "symbolic link"), "%s",
		  st.message);
	struct pio_config in = {.stdin_path = link};
	cr_assert_lt(pio_create(l, &in, &p, &st), 0);
	cr_assert(strstr(st.message, "stdin") && strstr(st.message, "symbolic link"), "%s",
		  st.message);
}

Test(pio, stdin_directory_is_refused_by_name)
{
	struct pio_config cfg = {.stdin_path = dir};
	struct pio *p = NULL;
	struct ttrpc_status st;
	cr_assert_lt(pio_create(l, &cfg, &p, &st), 0);
	cr_assert(strstr(st.message, "is a directory"), "message: %s", st.message);
}

Test(pio, stdin_regular_file_is_read_by_the_process)
{
	char *in = path_in("in");
	write_file(in, "input\n");
	struct pio_config cfg = {.stdin_path = in};
	struct pio *p = NULL;
	struct ttrpc_status st;
	cr_assert_eq(pio_create(l, &cfg, &p, &st), 0, "%s", st.message);
	int fds[3];
	pio_child_fds(p, fds);
	char buf[16] = "";
	cr_assert_eq(read(fds[0], buf, sizeof(buf) - 1), 6);
	cr_assert_str_eq(buf, "input\n");
	pio_free(p);
}

/* --- terminals ---------------------------------------------------------- */

static int connect_console(struct pio *p)
{
	const char *path = pio_console_socket(p);
	cr_assert_not_null(path);
	int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	cr_assert_eq(connect(s, (struct sockaddr *)&sa, sizeof(sa)), 0, "%s", strerror(errno));
	return s;
}

static void send_fd(int s, int fd)
{
	char name[] = "/dev/pts/x";
	char cbuf[CMSG_SPACE(sizeof(int))];
	memset(cbuf, 0, sizeof(cbuf));
	struct iovec iov = {.iov_base = name, .iov_len = sizeof(name)};
	struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf,
			    .msg_controllen = sizeof(cbuf)};
	struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(cm), &fd, sizeof(int));
	cr_assert_gt(sendmsg(s, &mh, 0), 0);
}

Test(pio, console_runtime_that_sends_nothing_fails_at_once)
{
	struct pio_config cfg = {.terminal = true};
	struct pio *p = NULL;
	struct ttrpc_status st;
	cr_assert_eq(pio_create(l, &cfg, &p, &st), 0, "%s", st.message);
	int s = connect_console(p); /* connected, and silent, and still there */
	int64_t t0 = now_ms();
	cr_assert_lt(pio_after_start(p, &st), 0);
	cr_assert_lt(now_ms() - t0, 1000);
	cr_assert(strstr(st.message, "no pty master"), "message: %s", st.message);
	close(s);
	pio_free(p);
}

Test(pio, console_runtime_that_never_connects_fails_at_once)
{
	struct pio_config cfg = {.terminal = true};
	struct pio *p = NULL;
	struct ttrpc_status st;
	cr_assert_eq(pio_create(l, &cfg, &p, &st), 0, "%s", st.message);
	cr_assert_lt(pio_after_start(p, &st), 0);
	cr_assert(strstr(st.message, "runtime sent no terminal"), "message: %s", st.message);
	pio_free(p);
}

Test(pio, console_pty_master_is_received_and_copied)
{
	char *out = path_in("tty-out");
	cr_assert_eq(mkfifo(out, 0600), 0);
	int r = open(out, O_RDONLY | O_NONBLOCK);
	struct pio_config cfg = {.terminal = true, .stdout_path = out};
	struct pio *p = NULL;
	struct ttrpc_status st;
	cr_assert_eq(pio_create(l, &cfg, &p, &st), 0, "%s", st.message);
	char dirname[PATH_MAX];
	snprintf(dirname, sizeof(dirname), "%s", pio_console_socket(p));
	*strrchr(dirname, '/') = '\0';
	char want[64];
	snprintf(want, sizeof(want), "/tmp/nanoshim-pty-%d-", (int)getpid());
	cr_assert(strncmp(dirname, want, strlen(want)) == 0, "console dir %s", dirname);
	int master, slave;
	cr_assert_eq(openpty(&master, &slave, NULL, NULL, NULL), 0);
	int s = connect_console(p);
	send_fd(s, master);
	close(master);
	close(s);
	cr_assert_eq(pio_after_start(p, &st), 0, "%s", st.message);
	cr_assert_eq(access(dirname, F_OK), -1, "console dir left behind");
	cr_assert_eq(pio_resize(p, 100, 40), 0);
	cr_assert_eq(write(slave, "hi\n", 3), 3);
	char buf[32] = "";
	ssize_t n = 0;
	for (int64_t end = now_ms() + 3000; n <= 0 && now_ms() < end;) {
		loop_iterate(l, 50);
		n = read(r, buf, sizeof(buf) - 1);
	}
	cr_assert_gt(n, 0);
	cr_assert(strstr(buf, "hi"), "got %s", buf);
	close(slave);
	close(r);
	pio_free(p);
}

Test(pio, console_dirs_of_dead_shims_are_removed)
{
	pid_t child = fork();
	if (child == 0)
		_exit(0);
	cr_assert_eq(waitpid(child, NULL, 0), child);
	char stale[128], sock[160], old[128];
	snprintf(stale, sizeof(stale), "/tmp/nanoshim-pty-%d-abc123", (int)child);
	snprintf(sock, sizeof(sock), "%s/pty.sock", stale);
	cr_assert_eq(mkdir(stale, 0700), 0);
	write_file(sock, "");
	/* one of a live process (ours) stays */
	snprintf(old, sizeof(old), "/tmp/nanoshim-pty-%d-def456", (int)getppid());
	cr_assert_eq(mkdir(old, 0700), 0);
	struct pio_config cfg = {.terminal = true};
	struct pio *p = NULL;
	struct ttrpc_status st;
	cr_assert_eq(pio_create(l, &cfg, &p, &st), 0, "%s", st.message);
	pio_free(p);
	int stale_left = access(stale, F_OK);
	int live_left = access(old, F_OK);
	rmdir(old);
	unlink(sock);
	rmdir(stale);
	cr_assert_eq(stale_left, -1, "%s of dead pid %d left behind", stale, (int)child);
	cr_assert_eq(live_left, 0, "the dir of a live pid was removed");
}

/* dup() that fails on demand, to reach pio_after_start's error path */
static int fail_dup;
int dup(int fd)
{
	if (fail_dup) {
		errno = EMFILE;
		return -1;
	}
	return (int)syscall(SYS_dup, fd);
}

Test(pio, console_copier_failure_leaks_no_fd)
{
	char *out = path_in("tty-out");
	cr_assert_eq(mkfifo(out, 0600), 0);
	int fds = count_fds();
	struct pio_config cfg = {.terminal = true, .stdout_path = out};
	struct pio *p = NULL;
	struct ttrpc_status st;
	cr_assert_eq(pio_create(l, &cfg, &p, &st), 0, "%s", st.message);
	int master, slave;
	cr_assert_eq(openpty(&master, &slave, NULL, NULL, NULL), 0);
	int s = connect_console(p);
	send_fd(s, master);
	close(master);
	close(s);
	fail_dup = 1;
	int rc = pio_after_start(p, &st);
	fail_dup = 0;
	cr_assert_lt(rc, 0, "pio_after_start succeeded without its dup");
	pio_free(p);
	close(slave);
	cr_assert_eq(count_fds(), fds, "fds leaked");
}

/* --- binary:// loggers -------------------------------------------------- */

static bool ready_called;
static int ready_err;
static void on_ready(void *ud, int err)
{
	ready_called = true;
	ready_err = err;
}

static void wait_for_file(const char *path)
{
	for (int64_t end = now_ms() + 5000; access(path, F_OK) != 0 && now_ms() < end;)
		loop_iterate(l, 20);
	cr_assert_eq(access(path, F_OK), 0, "%s never appeared", path);
}

Test(pio, binary_logger_uri_is_decoded_and_its_readiness_waited_for)
{
	char *logdir = path_in("log dir");
	cr_assert_eq(mkdir(logdir, 0755), 0);
	char logger[PATH_MAX];
	snprintf(logger, sizeof(logger), "%s/logger+1.sh", logdir);
	char script[PATH_MAX * 2];
	/* writes its argv, waits for the go file, then signals ready */
	snprintf(script, sizeof(script),
		 "#!/bin/sh\nfor a in \"$@\"; do printf '[%%s]\\n' \"$a\"; done >'%s/args'\n"
		 "while [ ! -e '%s/go' ]; do sleep 0.02; done\nprintf x >&5\nexec 5>&-\n"
		 "cat <&3 >'%s/out'\n",
		 dir, dir, dir);
	write_file(logger, script);
	cr_assert_eq(chmod(logger, 0755), 0);
	char uri[PATH_MAX * 2];
	snprintf(uri, sizeof(uri),
		 "binary://%s/log%%20dir/logger%%2B1.sh?tag=a%%20b+c&empty=&flag&tag=second&bad=%%zz&",
		 dir);
	struct pio_config cfg = {
		.stdout_path = uri, .stderr_path = uri, .ns = "ns", .id = "id", .reaper = rp};
	struct pio *p = NULL;
	struct ttrpc_status st;
	cr_assert_eq(pio_create(l, &cfg, &p, &st), 0, "%s", st.message);
	ready_called = false;
	pio_when_ready(p, on_ready, NULL);
	wait_for_file(path_in("args"));
	for (int64_t end = now_ms() + 300; now_ms() < end;)
		loop_iterate(l, 20);
	cr_assert(!ready_called, "ready before the logger signalled");
	cr_assert_str_eq(slurp(path_in("args")), "[tag]\n[a b c]\n[empty]\n[]\n[flag]\n[]\n");
	write_file(path_in("go"), "");
	for (int64_t end = now_ms() + 5000; !ready_called && now_ms() < end;)
		loop_iterate(l, 20);
	cr_assert(ready_called, "logger's readiness never seen");
	cr_assert_eq(ready_err, 0);
	int fds[3];
	pio_child_fds(p, fds);
	cr_assert_eq(write(fds[1], "logged\n", 7), 7);
	cr_assert_eq(pio_after_start(p, &st), 0, "%s", st.message);
	wait_for_file(path_in("out"));
	for (int64_t end = now_ms() + 3000; strcmp(slurp(path_in("out")), "logged\n") && now_ms() < end;)
		loop_iterate(l, 20);
	cr_assert_str_eq(slurp(path_in("out")), "logged\n");
	pio_free(p);
	pio_kill_loggers();
}

Test(pio, binary_logger_that_exits_without_signalling_is_ready)
{
	char *logger = path_in("quiet.sh");
	write_file(logger, "#!/bin/sh\nexit 0\n");
	cr_assert_eq(chmod(logger, 0755), 0);
	char uri[PATH_MAX + 16];
	snprintf(uri, sizeof(uri), "binary://%s", logger);
	struct pio_config cfg = {.stdout_path = uri, .reaper = rp};
	struct pio *p = NULL;
	struct ttrpc_status st;
	cr_assert_eq(pio_create(l, &cfg, &p, &st), 0, "%s", st.message);
	ready_called = false;
	pio_when_ready(p, on_ready, NULL);
	for (int64_t end = now_ms() + 5000; !ready_called && now_ms() < end;)
		loop_iterate(l, 20);
	cr_assert(ready_called);
	cr_assert_eq(ready_err, 0);
	pio_free(p);
	pio_kill_loggers();
}

Test(pio, binary_uri_with_a_bad_escape_is_refused)
{
	struct pio_config cfg = {.stdout_path = "binary:///bin/logger%zz", .reaper = rp};
	struct pio *p = NULL;
	struct ttrpc_status st;
	cr_assert_lt(pio_create(l, &cfg, &p, &st), 0);
	cr_assert(strstr(st.message, "invalid URL escape"), "message: %s", st.message);
}
