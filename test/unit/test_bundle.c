/* Bundle library contract: identifiers, quoting, atomic files, exit records,
 * pid files, runc options, config.json helpers and the shim socket address.
 * Every test works in its own temp directory, removed in the suite's fini. */
#include "bundle.h"

#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char tmpdir[PATH_MAX];
static int dfd = -1;

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	remove(path);
	return 0;
}

static void setup(void)
{
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/nanoshim-bundle-XXXXXX");
	cr_assert(mkdtemp(tmpdir));
	dfd = open(tmpdir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	cr_assert(dfd >= 0);
}

static void teardown(void)
{
	if (dfd >= 0)
		close(dfd);
	dfd = -1;
	if (tmpdir[0])
		nftw(tmpdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS | FTW_MOUNT);
	tmpdir[0] = '\0';
}

/* Writes raw bytes, bypassing the library, for files other programs wrote. */
static void put(const char *name, const void *data, size_t len)
{
	int fd = openat(dfd, name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	cr_assert(fd >= 0, "create %s: %s", name, strerror(errno));
	cr_assert_eq(write(fd, data, len), (ssize_t)len);
	close(fd);
}

static void puts_file(const char *name, const char *s)
{
	put(name, s, strlen(s));
}

static char *slurp(const char *name)
{
	char *buf;
	cr_assert_eq(bundle_read_file(dfd, name, &buf, NULL, 1 << 20), 0, "read %s", name);
	return buf;
}

static mode_t mode_of(const char *name)
{
	struct stat st;
	cr_assert_eq(fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW), 0);
	return st.st_mode & 07777;
}

/* Names in the temp dir, sorted, joined by ' '. */
static void listing(char *out, size_t outlen)
{
	struct dirent **ents;
	int n = scandir(tmpdir, &ents, NULL, alphasort);
	cr_assert(n >= 0);
	out[0] = '\0';
	for (int i = 0; i < n; i++) {
		if (strcmp(ents[i]->d_name, ".") && strcmp(ents[i]->d_name, "..")) {
			if (out[0])
				strncat(out, " ", outlen - strlen(out) - 1);
			strncat(out, ents[i]->d_name, outlen - strlen(out) - 1);
		}
		free(ents[i]);
	}
	free(ents);
}

TestSuite(id);
TestSuite(quote);
TestSuite(atomic, .init = setup, .fini = teardown);
TestSuite(exitfile, .init = setup, .fini = teardown);
TestSuite(pidfile, .init = setup, .fini = teardown);
TestSuite(runcopts, .init = setup, .fini = teardown);
TestSuite(spec, .init = setup, .fini = teardown);
TestSuite(address);

/* ---- identifiers ---- */

Test(id, valid_identifiers)
{
	static const char *ok[] = {
		"a", "0", "web", "A1", "a.b_c-d", "my-container.1", "k8s.io", "a1.2_3-4b",
		"0123456789012345678901234567890123456789012345678901234567890123456789012345",
	};
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
		cr_assert_eq(bundle_validate_id("container id", ok[i], NULL), 0, "%s", ok[i]);
}

Test(id, invalid_identifiers_and_escapes)
{
	static const char *bad[] = {
		"", "..", ".", "../x", "x/..", "a/b", "/abs", "a..b", "a.", ".a", "-a", "a-",
		"_a", "a__b", "a b", "a\nb", "a\tb", "\xc3\xa4", "a:b", "a\\b", "a@b", "a*",
		"01234567890123456789012345678901234567890123456789012345678901234567890123456",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct ttrpc_status st = {0};
		cr_assert_eq(bundle_validate_id("exec id", bad[i], &st), -EINVAL, "%s", bad[i]);
		cr_assert_eq(st.code, TTRPC_INVALID_ARGUMENT);
		cr_assert(strstr(st.message, "exec id") == st.message, "%s", st.message);
		cr_assert(!strchr(st.message, '\n') && !strchr(st.message, '\t'), "%s",
			  st.message);
	}
	cr_assert_eq(bundle_validate_id("namespace", NULL, NULL), -EINVAL);
}

Test(id, messages_quote_the_id)
{
	struct ttrpc_status st = {0};
	bundle_validate_id("container id", "../x", &st);
	cr_assert_str_eq(st.message, "container id \"../x\" must match " BUNDLE_ID_PATTERN);
	bundle_validate_id("namespace", "", &st);
	cr_assert_str_eq(st.message, "namespace must not be empty");
	bundle_validate_id("exec id", "a\n\"b", &st);
	cr_assert_str_eq(st.message, "exec id \"a\\n\\\"b\" must match " BUNDLE_ID_PATTERN);

	char longid[200];
	memset(longid, 'a', sizeof(longid) - 1);
	longid[sizeof(longid) - 1] = '\0';
	bundle_validate_id("container id", longid, &st);
	cr_assert(strstr(st.message, "is longer than 76 characters"), "%s", st.message);
	cr_assert(strstr(st.message, "...\""), "%s", st.message);
}

/* ---- quoting ---- */

Test(quote, escapes_and_bounds)
{
	char b[BUNDLE_QUOTE_MAX];
	cr_assert_str_eq(bundle_quote(b, sizeof(b), "plain"), "\"plain\"");
	cr_assert_str_eq(bundle_quote(b, sizeof(b), NULL), "\"\"");
	cr_assert_str_eq(bundle_quote(b, sizeof(b), "a\"b\\c\r\x01\x7f"),
			 "\"a\\\"b\\\\c\\r\\x01\\x7f\"");
	/* valid UTF-8 is kept, invalid bytes are escaped */
	cr_assert_str_eq(bundle_quote(b, sizeof(b), "\xc3\xa4\xff\xc3"),
			 "\"\xc3\xa4\\xff\\xc3\"");

	char small[12];
	cr_assert_str_eq(bundle_quote(small, sizeof(small), "abcdef"), "\"abcdef\"");
	cr_assert_str_eq(bundle_quote(small, sizeof(small), "abcdefghi"), "\"abcdefghi\"");
	cr_assert_str_eq(bundle_quote(small, sizeof(small), "abcdefghij"), "\"abcdef...\"");
	/* a cut never splits a character or an escape */
	cr_assert_str_eq(bundle_quote(small, sizeof(small), "abcde\xc3\xa4xyz"),
			 "\"abcde...\"");
	cr_assert_str_eq(bundle_quote(small, sizeof(small), "abcde\nxyz"), "\"abcde...\"");
	cr_assert_str_eq(bundle_quote(small, 4, "abc"), "");
}

/* ---- atomic files ---- */

Test(atomic, write_read_replace_mode_and_no_temp_left)
{
	char names[256];
	mode_t old = umask(077);
	cr_assert_eq(bundle_write_file_atomic(dfd, "address", "first", 5, 0644), 0);
	umask(old);
	cr_assert_eq(mode_of("address"), 0644, "mode is exact despite the umask");
	char *s = slurp("address");
	cr_assert_str_eq(s, "first");
	free(s);

	cr_assert_eq(bundle_write_file_atomic(dfd, "address", "second, longer", 14, 0600), 0);
	cr_assert_eq(mode_of("address"), 0600);
	size_t len;
	cr_assert_eq(bundle_read_file(dfd, "address", &s, &len, 100), 0);
	cr_assert_eq(len, 14);
	cr_assert_str_eq(s, "second, longer");
	free(s);

	cr_assert_eq(bundle_write_file_atomic(dfd, "empty", NULL, 0, 0600), 0);
	s = slurp("empty");
	cr_assert_str_eq(s, "");
	free(s);

	listing(names, sizeof(names));
	cr_assert_str_eq(names, "address empty");
}

Test(atomic, dirfd_kinds)
{
	int p = open(tmpdir, O_PATH | O_DIRECTORY | O_CLOEXEC);
	cr_assert(p >= 0);
	cr_assert_eq(bundle_write_file_atomic(p, "via-opath", "x", 1, 0600), 0);
	close(p);

	char cwd[PATH_MAX];
	cr_assert(getcwd(cwd, sizeof(cwd)));
	cr_assert_eq(chdir(tmpdir), 0);
	cr_assert_eq(bundle_write_file_atomic(AT_FDCWD, "via-cwd", "y", 1, 0600), 0);
	cr_assert_eq(chdir(cwd), 0);

	char names[256];
	listing(names, sizeof(names));
	cr_assert_str_eq(names, "via-cwd via-opath");
}

Test(atomic, bad_names_and_failures_leave_nothing)
{
	cr_assert_eq(bundle_write_file_atomic(dfd, "a/b", "x", 1, 0600), -EINVAL);
	cr_assert_eq(bundle_write_file_atomic(dfd, "..", "x", 1, 0600), -EINVAL);
	cr_assert_eq(bundle_write_file_atomic(dfd, ".", "x", 1, 0600), -EINVAL);
	cr_assert_eq(bundle_write_file_atomic(dfd, "", "x", 1, 0600), -EINVAL);
	cr_assert_eq(bundle_write_file_atomic(dfd, NULL, "x", 1, 0600), -EINVAL);

	/* renaming over a non-empty directory fails; the temp file goes away */
	cr_assert_eq(mkdirat(dfd, "dir", 0700), 0);
	put("dir/inside", "z", 1);
	int r = bundle_write_file_atomic(dfd, "dir", "x", 1, 0600);
	cr_assert(r == -EISDIR || r == -ENOTEMPTY || r == -EEXIST, "%d", r);
	char names[256];
	listing(names, sizeof(names));
	cr_assert_str_eq(names, "dir");
}

Test(atomic, bounded_read)
{
	char data[100], *s = (char *)1;
	memset(data, 'q', sizeof(data));
	put("hundred", data, sizeof(data));
	cr_assert_eq(bundle_read_file(dfd, "hundred", &s, NULL, 99), -EFBIG);
	cr_assert_null(s);
	size_t len;
	cr_assert_eq(bundle_read_file(dfd, "hundred", &s, &len, 100), 0);
	cr_assert_eq(len, 100);
	cr_assert_eq(s[100], '\0');
	free(s);

	cr_assert_eq(bundle_read_file(dfd, "missing", &s, NULL, 10), -ENOENT);

	/* a FIFO or a directory is refused at once, not read */
	cr_assert_eq(mkfifoat(dfd, "fifo", 0600), 0);
	cr_assert_eq(bundle_read_file(dfd, "fifo", &s, NULL, 10), -EINVAL);
	cr_assert_eq(mkdirat(dfd, "d", 0700), 0);
	cr_assert_eq(bundle_read_file(dfd, "d", &s, NULL, 10), -EINVAL);

	/* /proc files report size 0 */
	cr_assert_eq(bundle_read_file(AT_FDCWD, "/proc/self/status", &s, &len, 1 << 20), 0);
	cr_assert(len > 0 && strstr(s, "Pid:"));
	free(s);
	cr_assert_eq(bundle_read_file(AT_FDCWD, "/proc/self/status", &s, &len, 10), -EFBIG);
}

/* ---- exit records ---- */

Test(exitfile, round_trip_and_format)
{
	struct bundle_exit in = {.pid = 42, .status = 137, .exited_sec = 1700000000,
				 .exited_nsec = 5},
			   out = {0};
	cr_assert_eq(bundle_exit_write(dfd, NULL, &in), 0);
	char *s = slurp("init.exit");
	cr_assert_str_eq(s, "pid=42 status=137 exited_at=1700000000.000000005\n");
	free(s);
	cr_assert_eq(mode_of("init.exit"), 0600);
	cr_assert_eq(bundle_exit_read(dfd, NULL, &out), 0);
	cr_assert(out.pid == 42 && out.status == 137 && out.exited_sec == 1700000000 &&
		  out.exited_nsec == 5);

	struct bundle_exit ex = {.pid = INT32_MAX, .status = -1, .exited_sec = -62135596800LL,
				 .exited_nsec = 999999999};
	cr_assert_eq(bundle_exit_write(dfd, "exec-1", &ex), 0);
	cr_assert_eq(bundle_exit_read(dfd, "exec-1", &out), 0);
	cr_assert_eq(out.pid, INT32_MAX);
	cr_assert_eq(out.status, -1);
	cr_assert_eq(out.exited_sec, -62135596800LL);
	cr_assert_eq(out.exited_nsec, 999999999);

	/* overwritten, never appended */
	in.status = 0;
	cr_assert_eq(bundle_exit_write(dfd, NULL, &in), 0);
	cr_assert_eq(bundle_exit_read(dfd, NULL, &out), 0);
	cr_assert_eq(out.status, 0);

	char names[256];
	listing(names, sizeof(names));
	cr_assert_str_eq(names, "exec-1.exit init.exit");
}

Test(exitfile, missing_invalid_ids_and_remove)
{
	struct bundle_exit e = {.pid = 1}, out;
	cr_assert_eq(bundle_exit_read(dfd, NULL, &out), -ENOENT);
	cr_assert_eq(bundle_exit_read(dfd, "x", &out), -ENOENT);
	cr_assert_eq(bundle_exit_write(dfd, "../x", &e), -EINVAL);
	cr_assert_eq(bundle_exit_write(dfd, "init", &e), -EINVAL);
	cr_assert_eq(bundle_exit_read(dfd, "a/b", &out), -EINVAL);
	e.exited_nsec = 1000000000;
	cr_assert_eq(bundle_exit_write(dfd, NULL, &e), -ERANGE);
	e.exited_nsec = 0;

	cr_assert_eq(bundle_exit_write(dfd, "e1", &e), 0);
	cr_assert_eq(bundle_exit_remove(dfd, "e1"), 0);
	cr_assert_eq(bundle_exit_read(dfd, "e1", &out), -ENOENT);
	cr_assert_eq(bundle_exit_remove(dfd, "e1"), 0);
	cr_assert_eq(bundle_exit_remove(dfd, NULL), 0);
}

Test(exitfile, every_truncation_is_detected)
{
	const char *full = "pid=42 status=137 exited_at=1700000000.000000005\n";
	struct bundle_exit out;
	for (size_t n = 0; n < strlen(full); n++) {
		put("init.exit", full, n);
		cr_assert_eq(bundle_exit_read(dfd, NULL, &out), -EBADMSG, "first %zu bytes", n);
	}
	put("init.exit", full, strlen(full));
	cr_assert_eq(bundle_exit_read(dfd, NULL, &out), 0);
}

Test(exitfile, corrupt_records)
{
	static const char *bad[] = {
		"pid=x status=1 exited_at=1.000000000\n",
		"pid=1 status=1 exited_at=1.000000000\ngarbage",
		"pid=1  status=1 exited_at=1.000000000\n",
		"pid=+1 status=1 exited_at=1.000000000\n",
		"pid=01 status=1 exited_at=1.000000000\n",
		"pid=1 status=1 exited_at=1.00000000\n",
		"pid=1 status=1 exited_at=1.0000000000\n",
		"pid=1 status=1 exited_at=1\n",
		"pid=2147483648 status=1 exited_at=1.000000000\n",
		"status=1 pid=1 exited_at=1.000000000\n",
		"pid=1 status=1 exited_at=1.000000000 \n",
		"PID=1 status=1 exited_at=1.000000000\n",
		"\n",
	};
	struct bundle_exit out;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		puts_file("init.exit", bad[i]);
		cr_assert_eq(bundle_exit_read(dfd, NULL, &out), -EBADMSG, "%s", bad[i]);
	}
	put("init.exit", "pid=1\0status=1 exited_at=1.000000000\n", 38);
	cr_assert_eq(bundle_exit_read(dfd, NULL, &out), -EBADMSG);

	char big[4096];
	memset(big, '1', sizeof(big));
	put("init.exit", big, sizeof(big));
	cr_assert_eq(bundle_exit_read(dfd, NULL, &out), -EBADMSG);

	cr_assert_eq(unlinkat(dfd, "init.exit", 0), 0);
	cr_assert_eq(mkdirat(dfd, "init.exit", 0700), 0);
	cr_assert_eq(bundle_exit_read(dfd, NULL, &out), -EBADMSG);
}

/* ---- pid files ---- */

Test(pidfile, runc_pid_files)
{
	pid_t pid = 0;
	puts_file("init.pid", "1234");
	cr_assert_eq(bundle_read_pid(dfd, BUNDLE_INIT_PID_FILE, &pid), 0);
	cr_assert_eq(pid, 1234);
	puts_file("e1.pid", "99\n");
	cr_assert_eq(bundle_read_pid(dfd, "e1.pid", &pid), 0);
	cr_assert_eq(pid, 99);
	cr_assert_eq(bundle_read_pid(dfd, "none.pid", &pid), -ENOENT);

	static const char *bad[] = {"",	 "\n",	 "0",	    "-1",	   "12a", "1234\n\n",
				    " 12", "012", "99999999999", "2147483648", "1 2"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		puts_file("bad.pid", bad[i]);
		pid = 7;
		cr_assert_eq(bundle_read_pid(dfd, "bad.pid", &pid), -EBADMSG, "\"%s\"", bad[i]);
		cr_assert_eq(pid, 7);
	}
	char big[100];
	memset(big, '1', sizeof(big));
	put("bad.pid", big, sizeof(big));
	cr_assert_eq(bundle_read_pid(dfd, "bad.pid", &pid), -EBADMSG);
	put("bad.pid", big, 32); /* 32 digits: not a pid, but read whole */
	cr_assert_eq(bundle_read_pid(dfd, "bad.pid", &pid), -EBADMSG);

	/* a FIFO or a directory under a pid file's name: refused, never waited on */
	cr_assert_eq(mkfifoat(dfd, "fifo.pid", 0600), 0);
	cr_assert_eq(bundle_read_pid(dfd, "fifo.pid", &pid), -EBADMSG);
	cr_assert_eq(mkdirat(dfd, "dir.pid", 0700), 0);
	cr_assert_eq(bundle_read_pid(dfd, "dir.pid", &pid), -EBADMSG);
	cr_assert_eq(pid, 7);
}

Test(atomic, read_small)
{
	char buf[8];
	size_t len = 99;
	puts_file("s", "1234");
	cr_assert_eq(bundle_read_small(dfd, "s", buf, sizeof(buf), &len), 0);
	cr_assert_eq(len, 4);
	cr_assert_str_eq(buf, "1234");
	puts_file("s", "");
	cr_assert_eq(bundle_read_small(dfd, "s", buf, sizeof(buf), &len), 0);
	cr_assert_eq(len, 0);
	cr_assert_str_eq(buf, "");
	puts_file("s", "1234567"); /* cap - 1 bytes: it may go on */
	cr_assert_eq(bundle_read_small(dfd, "s", buf, sizeof(buf), &len), -EFBIG);
	puts_file("s", "123456");
	cr_assert_eq(bundle_read_small(dfd, "s", buf, sizeof(buf), &len), 0);
	cr_assert_str_eq(buf, "123456");
	cr_assert_eq(bundle_read_small(dfd, "missing", buf, sizeof(buf), &len), -ENOENT);
	/* a FIFO is read without waiting: with no writer, it is empty */
	cr_assert_eq(mkfifoat(dfd, "fifo", 0600), 0);
	cr_assert_eq(bundle_read_small(dfd, "fifo", buf, sizeof(buf), &len), 0);
	cr_assert_eq(len, 0);
	/* with a writer that wrote nothing, -EINVAL */
	char path[4200];
	snprintf(path, sizeof(path), "%s/fifo", tmpdir);
	int w = open(path, O_RDWR | O_NONBLOCK);
	cr_assert(w >= 0);
	cr_assert_eq(bundle_read_small(dfd, "fifo", buf, sizeof(buf), &len), -EINVAL);
	close(w);
	cr_assert_eq(mkdirat(dfd, "d", 0700), 0);
	cr_assert_eq(bundle_read_small(dfd, "d", buf, sizeof(buf), &len), -EINVAL);
}

/* ---- runc options ---- */

/* What the Go shim's json.Marshal writes for these options (computed with
 * containerd 1.6's options.Options and encoding/json). */
#define GO_OPTIONS_JSON                                                                        \
	"{\"no_pivot_root\":true,\"shim_cgroup\":\"/x\",\"io_uid\":1000,\"io_gid\":4294967295," \
	"\"binary_name\":\"crun\",\"root\":\"/run/r\",\"systemd_cgroup\":true,"                   \
	"\"criu_work_path\":\"w\\\"\\\\\\n/\"}"

Test(runcopts, write_matches_go_and_round_trips)
{
	Containerd__Runc__V1__Options o = CONTAINERD__RUNC__V1__OPTIONS__INIT, *r = NULL;
	o.no_pivot_root = 1;
	o.shim_cgroup = "/x";
	o.io_uid = 1000;
	o.io_gid = 4294967295u;
	o.binary_name = "crun";
	o.root = "/run/r";
	o.systemd_cgroup = 1;
	o.criu_work_path = "w\"\\\n/";
	struct ttrpc_status st = {0};
	cr_assert_eq(bundle_options_write(dfd, &o, &st), 0, "%s", st.message);

	char *s = slurp(BUNDLE_OPTIONS_FILE);
	cr_assert_str_eq(s, GO_OPTIONS_JSON);
	free(s);
	s = slurp(BUNDLE_RUNTIME_FILE);
	cr_assert_str_eq(s, "crun");
	free(s);
	cr_assert_eq(mode_of(BUNDLE_OPTIONS_FILE), 0600);
	cr_assert_eq(mode_of(BUNDLE_RUNTIME_FILE), 0600);

	cr_assert_eq(bundle_options_read(dfd, &r, &st), 0, "%s", st.message);
	cr_assert(r->no_pivot_root && !r->no_new_keyring && r->systemd_cgroup);
	cr_assert_str_eq(r->shim_cgroup, "/x");
	cr_assert_eq(r->io_uid, 1000);
	cr_assert_eq(r->io_gid, 4294967295u);
	cr_assert_str_eq(r->binary_name, "crun");
	cr_assert_str_eq(r->root, "/run/r");
	cr_assert_str_eq(r->criu_path, "");
	cr_assert_str_eq(r->criu_image_path, "");
	cr_assert_str_eq(r->criu_work_path, "w\"\\\n/");
	cr_assert_str_eq(bundle_options_binary(r), "crun");
	cr_assert_str_eq(bundle_options_root(r), "/run/r");
	bundle_options_free(r);
	bundle_options_free(NULL);
}

Test(runcopts, defaults)
{
	Containerd__Runc__V1__Options o = CONTAINERD__RUNC__V1__OPTIONS__INIT, *r = NULL;

	/* nothing written yet: all defaults, as the Go shim reads a bundle without them */
	cr_assert_eq(bundle_options_read(dfd, &r, NULL), 0);
	cr_assert(!r->no_pivot_root && r->io_uid == 0);
	cr_assert_str_eq(r->binary_name, "");
	cr_assert_str_eq(bundle_options_binary(r), "runc");
	cr_assert_str_eq(bundle_options_root(r), "/run/containerd/runc");
	bundle_options_free(r);

	cr_assert_eq(bundle_options_write(dfd, &o, NULL), 0);
	char *s = slurp(BUNDLE_OPTIONS_FILE);
	cr_assert_str_eq(s, "{}");
	free(s);
	s = slurp(BUNDLE_RUNTIME_FILE);
	cr_assert_str_eq(s, "runc");
	free(s);
	cr_assert_eq(bundle_options_read(dfd, &r, NULL), 0);
	cr_assert_str_eq(bundle_options_binary(r), "runc");
	cr_assert_str_eq(bundle_options_root(r), "/run/containerd/runc");
	bundle_options_free(r);
}

Test(runcopts, reads_what_go_accepts)
{
	Containerd__Runc__V1__Options *r = NULL;
	struct ttrpc_status st = {0};

	/* json tags match case-insensitively; unknown keys and nulls are skipped;
	 * a repeated key's last value wins */
	puts_file(BUNDLE_OPTIONS_FILE, "{\"BINARY_NAME\":\"x\",\"Root\":\"/r\",\"unknown\":[1,{}],"
				       "\"io_uid\":null,\"io_gid\":7,\"io_gid\":8,"
				       "\"no_new_keyring\":false,\"systemd_cgroup\":true}");
	cr_assert_eq(bundle_options_read(dfd, &r, &st), 0, "%s", st.message);
	cr_assert_str_eq(r->binary_name, "x");
	cr_assert_str_eq(r->root, "/r");
	cr_assert_eq(r->io_uid, 0);
	cr_assert_eq(r->io_gid, 8);
	cr_assert(r->systemd_cgroup && !r->no_new_keyring);
	bundle_options_free(r);

	puts_file(BUNDLE_OPTIONS_FILE, "null");
	cr_assert_eq(bundle_options_read(dfd, &r, &st), 0);
	bundle_options_free(r);

	/* the Go shim's bundles: options.json without binary_name, runtime with it */
	puts_file(BUNDLE_OPTIONS_FILE, "{\"root\":\"/r\"}");
	puts_file(BUNDLE_RUNTIME_FILE, "crun");
	cr_assert_eq(bundle_options_read(dfd, &r, &st), 0);
	cr_assert_str_eq(bundle_options_binary(r), "crun");
	bundle_options_free(r);
	puts_file(BUNDLE_RUNTIME_FILE, "");
	cr_assert_eq(bundle_options_read(dfd, &r, &st), 0);
	cr_assert_str_eq(bundle_options_binary(r), "runc");
	bundle_options_free(r);
}

Test(runcopts, corrupt_files_are_refused_with_a_message)
{
	static const struct {
		const char *json, *says;
	} bad[] = {
		{"", "not JSON"},
		{"{", "not JSON"},
		{"{\"root\":\"/r\"} x", "not JSON"},
		{"[]", "not a JSON object"},
		{"\"str\"", "not a JSON object"},
		{"{\"io_uid\":1.0}", "\"io_uid\" must be a number"},
		{"{\"io_uid\":-1}", "\"io_uid\" must be a number"},
		{"{\"io_gid\":4294967296}", "\"io_gid\" must be a number"},
		{"{\"io_gid\":1e3}", "\"io_gid\" must be a number"},
		{"{\"no_pivot_root\":\"yes\"}", "\"no_pivot_root\" must be a boolean"},
		{"{\"root\":5}", "\"root\" must be a string"},
		{"{\"binary_name\":[\"runc\"]}", "\"binary_name\" must be a string"},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		Containerd__Runc__V1__Options *r = (void *)1;
		struct ttrpc_status st = {0};
		puts_file(BUNDLE_OPTIONS_FILE, bad[i].json);
		cr_assert_eq(bundle_options_read(dfd, &r, &st), -EBADMSG, "%s", bad[i].json);
		cr_assert_null(r);
		cr_assert_eq(st.code, TTRPC_DATA_LOSS);
		cr_assert(strstr(st.message, "read options.json: ") == st.message, "%s",
			  st.message);
		cr_assert(strstr(st.message, bad[i].says), "%s: %s", bad[i].json, st.message);
		cr_assert(!strchr(st.message, '\n'), "%s", st.message);
	}
	put(BUNDLE_OPTIONS_FILE, "{}\0", 3);
	Containerd__Runc__V1__Options *r;
	cr_assert_eq(bundle_options_read(dfd, &r, NULL), -EBADMSG);
}

Test(runcopts, invalid_utf8_is_not_written)
{
	Containerd__Runc__V1__Options o = CONTAINERD__RUNC__V1__OPTIONS__INIT;
	o.root = "/r\xff";
	struct ttrpc_status st = {0};
	cr_assert_eq(bundle_options_write(dfd, &o, &st), -EINVAL);
	cr_assert_eq(st.code, TTRPC_INVALID_ARGUMENT);
	cr_assert_str_eq(st.message, "write options.json: runc option root is not valid UTF-8");
	char names[64];
	listing(names, sizeof(names));
	cr_assert_str_eq(names, "");
}

/* ---- config.json ---- */

static const char sample_spec[] =
	"{\n"
	"  \"ociVersion\": \"1.0.2-dev\",\n"
	"  \"process\": {\"terminal\": false, \"args\": [\"sh\"], \"cwd\": \"/\"},\n"
	"  \"root\": {\"path\": \"rootfs\"},\n"
	"  \"annotations\": {\n"
	"    \"io.kubernetes.cri.sandbox-id\": \"sandbox1\",\n"
	"    \"io.kubernetes.cri.container-type\": \"container\",\n"
	"    \"x\": \"first\", \"x\": \"second\"\n"
	"  },\n"
	"  \"linux\": {\n"
	"    \"cgroupsPath\": \"/default/web\",\n"
	"    \"namespaces\": [\n"
	"      {\"type\": \"pid\"}, {\"type\": \"ipc\"}, {\"type\": \"uts\"},\n"
	"      {\"type\": \"mount\"},\n"
	"      {\"type\": \"network\", \"path\": \"/var/run/netns/cni-1\"}\n"
	"    ]\n"
	"  }\n"
	"}\n";

Test(spec, annotations)
{
	char v[64];
	struct ttrpc_status st = {0};
	cr_assert_eq(bundle_spec_annotation(dfd, "x", v, sizeof(v), &st), -ENOENT);
	cr_assert(strstr(st.message, "read config.json: "), "%s", st.message);

	puts_file(BUNDLE_SPEC_FILE, sample_spec);
	cr_assert_eq(bundle_spec_annotation(dfd, BUNDLE_SANDBOX_ANNOTATION, v, sizeof(v), NULL), 1);
	cr_assert_str_eq(v, "sandbox1");
	cr_assert_eq(bundle_spec_annotation(dfd, "x", v, sizeof(v), NULL), 1);
	cr_assert_str_eq(v, "second");
	cr_assert_eq(bundle_spec_annotation(dfd, "absent", v, sizeof(v), NULL), 0);
	cr_assert_eq(bundle_spec_annotation(dfd, "X", v, sizeof(v), NULL), 0,
		     "annotation keys are exact");
	cr_assert_eq(bundle_spec_annotation(dfd, BUNDLE_SANDBOX_ANNOTATION, v, 8, &st),
		     -ENAMETOOLONG);

	puts_file(BUNDLE_SPEC_FILE, "{\"ociVersion\":\"1.0.2\"}");
	cr_assert_eq(bundle_spec_annotation(dfd, "x", v, sizeof(v), NULL), 0);
	puts_file(BUNDLE_SPEC_FILE, "{\"annotations\":null}");
	cr_assert_eq(bundle_spec_annotation(dfd, "x", v, sizeof(v), NULL), 0);
}

Test(spec, corrupt_specs)
{
	static const char *bad[] = {
		"", "{", "[]", "{\"annotations\":[]}", "{\"annotations\":{\"x\":1}}",
	};
	char v[64];
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct ttrpc_status st = {0};
		puts_file(BUNDLE_SPEC_FILE, bad[i]);
		cr_assert_eq(bundle_spec_annotation(dfd, "x", v, sizeof(v), &st), -EBADMSG, "%s",
			     bad[i]);
		cr_assert_eq(st.code, TTRPC_INVALID_ARGUMENT);
		cr_assert(strstr(st.message, "read config.json: ") == st.message, "%s",
			  st.message);
	}
}

Test(spec, group_id)
{
	char g[128];
	cr_assert_eq(bundle_group_id(dfd, "web", g, sizeof(g), NULL), -ENOENT,
		     "config.json is required, as in Go");

	puts_file(BUNDLE_SPEC_FILE, "{}");
	cr_assert_eq(bundle_group_id(dfd, "web", g, sizeof(g), NULL), 0);
	cr_assert_str_eq(g, "web");

	puts_file(BUNDLE_SPEC_FILE, sample_spec);
	cr_assert_eq(bundle_group_id(dfd, "web", g, sizeof(g), NULL), 0);
	cr_assert_str_eq(g, "sandbox1");

	puts_file(BUNDLE_SPEC_FILE, "{\"annotations\":{\"io.kubernetes.cri.sandbox-id\":\"s\","
				    "\"io.containerd.runc.v2.group\":\"g\"}}");
	cr_assert_eq(bundle_group_id(dfd, "web", g, sizeof(g), NULL), 0);
	cr_assert_str_eq(g, "g");

	/* present but empty is used as is, like Go's map lookup with ok */
	puts_file(BUNDLE_SPEC_FILE, "{\"annotations\":{\"io.containerd.runc.v2.group\":\"\","
				    "\"io.kubernetes.cri.sandbox-id\":\"s\"}}");
	cr_assert_eq(bundle_group_id(dfd, "web", g, sizeof(g), NULL), 0);
	cr_assert_str_eq(g, "");

	cr_assert_eq(bundle_group_id(dfd, "web", g, 0, NULL), -ENAMETOOLONG);
}

Test(spec, pid_namespace_and_cgroups_path)
{
	static const struct {
		const char *json;
		bool private_pid;
		const char *cgroups;
	} cases[] = {
		{sample_spec, true, "/default/web"},
		{"{\"linux\":{\"namespaces\":[{\"type\":\"pid\",\"path\":\"/proc/1/ns/pid\"}]}}",
		 false, ""},
		{"{\"linux\":{\"namespaces\":[{\"type\":\"pid\",\"path\":\"\"}]}}", true, ""},
		{"{\"linux\":{\"namespaces\":[{\"type\":\"network\"},{\"type\":\"mount\"}]}}", false,
		 ""},
		{"{\"linux\":{\"namespaces\":null,\"cgroupsPath\":\"system.slice:cri:web\"}}", false,
		 "system.slice:cri:web"},
		{"{\"linux\":{}}", false, ""},
		{"{\"linux\":null}", false, ""},
		{"{}", false, ""},
		{"{\"Linux\":{\"Namespaces\":[{\"Type\":\"pid\"}],\"CgroupsPath\":\"/c\"}}", true, "/c"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct bundle_spec_info info;
		struct ttrpc_status st = {0};
		memset(&info, 0x55, sizeof(info));
		puts_file(BUNDLE_SPEC_FILE, cases[i].json);
		cr_assert_eq(bundle_spec_info(dfd, &info, &st), 0, "%s: %s", cases[i].json,
			     st.message);
		cr_assert_eq(info.private_pid_ns, cases[i].private_pid, "%s", cases[i].json);
		cr_assert_str_eq(info.cgroups_path, cases[i].cgroups, "%s", cases[i].json);
	}

	static const char *bad[] = {
		"{\"linux\":[]}",
		"{\"linux\":{\"namespaces\":{}}}",
		"{\"linux\":{\"namespaces\":[\"pid\"]}}",
		"{\"linux\":{\"namespaces\":[{\"type\":1}]}}",
		"{\"linux\":{\"cgroupsPath\":5}}",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct bundle_spec_info info;
		struct ttrpc_status st = {0};
		puts_file(BUNDLE_SPEC_FILE, bad[i]);
		cr_assert_eq(bundle_spec_info(dfd, &info, &st), -EBADMSG, "%s", bad[i]);
		cr_assert(strstr(st.message, "read config.json: linux") == st.message, "%s",
			  st.message);
	}
}

/* ---- socket address ---- */

Test(address, matches_containerd_1_6)
{
	/* produced by containerd 1.6's shim.SocketAddress for the same inputs */
	static const struct {
		const char *address, *ns, *group, *want;
	} cases[] = {
		{"/run/containerd/containerd.sock", "default", "web",
		 "unix:///run/containerd/s/"
		 "2cde4450fa38c74f53603e01d2afd903b315a27a596f12a151414cd59897d883"},
		{"/run/containerd//containerd.sock/", "k8s.io",
		 "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
		 "unix:///run/containerd/s/"
		 "428e2faf0a8621e508bdf59b20b756691d7b9e23d6f777125dc830568aeab725"},
		{"/tmp/x/../c.sock", "ns", "a.b_c-d",
		 "unix:///run/containerd/s/"
		 "d3cf72ea5bb0059a124fac37e829ac045481d75dc65bcc775591273f27f1fad9"},
		{"", "default", "web",
		 "unix:///run/containerd/s/"
		 "82b3ade9d00cd1642a4d420e670d6cd98eb4849a2ee0ff66d6689e645c8eb33f"},
		{"/run/containerd/containerd.sock", "default", "",
		 "unix:///run/containerd/s/"
		 "c74a9fcb58e00dc4bca4eab79e985d4016b808ac3e9e160ba71f565d374985b8"},
		{"relative/./sock", "n", "g",
		 "unix:///run/containerd/s/"
		 "979e60ed9979c767bc6ae5381017121bea2e416a92607979b9311de0efb8b5ad"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char out[BUNDLE_ADDRESS_MAX];
		cr_assert_eq(bundle_socket_address(cases[i].address, cases[i].ns, cases[i].group,
						   out, sizeof(out)),
			     0);
		cr_assert_str_eq(out, cases[i].want, "%s %s %s", cases[i].address, cases[i].ns,
				 cases[i].group);
	}
}

Test(address, matches_sha256sum)
{
	char out[BUNDLE_ADDRESS_MAX], line[256];
	FILE *p = popen("printf '%s' /var/run/other.sock/prod/app-7 | sha256sum", "r");
	cr_assert(p);
	cr_assert(fgets(line, sizeof(line), p));
	pclose(p);
	line[BUNDLE_SHA256_HEX_LEN] = '\0';
	cr_assert_eq(bundle_socket_address("/var/run/other.sock", "prod", "app-7", out,
					   sizeof(out)),
		     0);
	cr_assert(strncmp(out, "unix:///run/containerd/s/", 25) == 0);
	cr_assert_str_eq(out + 25, line);
}

Test(address, limits_and_errors)
{
	char out[BUNDLE_ADDRESS_MAX], path[BUNDLE_SOCKET_PATH_MAX + 1];
	cr_assert_eq(bundle_socket_address("/a", "", "g", out, sizeof(out)), -EINVAL);
	cr_assert_eq(bundle_socket_address("/a", NULL, "g", out, sizeof(out)), -EINVAL);
	cr_assert_eq(bundle_socket_address("/a", "n", "g", out, 30), -ENAMETOOLONG);

	/* 41 + "/" + 64 = 106 bytes: the longest socket path containerd accepts */
	char dir[64];
	memset(dir, 'd', 41);
	dir[0] = '/';
	dir[41] = '\0';
	cr_assert_eq(bundle_socket_address_in(dir, "/a", "n", "g", out, sizeof(out)), 0);
	cr_assert_eq(bundle_socket_path(out, path, sizeof(path)), 0);
	cr_assert_eq(strlen(path), BUNDLE_SOCKET_PATH_MAX);
	cr_assert_str_eq(path, out + strlen("unix://"));
	strcat(dir, "d");
	cr_assert_eq(bundle_socket_address_in(dir, "/a", "n", "g", out, sizeof(out)),
		     -ENAMETOOLONG);

	cr_assert_eq(bundle_socket_path("/run/containerd/s/abc", path, sizeof(path)), -EINVAL,
		     "abstract sockets are not used");
	cr_assert_eq(bundle_socket_path("unix://", path, sizeof(path)), -EINVAL);
	char longaddr[200] = "unix:///";
	memset(longaddr + 8, 'x', 106);
	longaddr[8 + 106] = '\0';
	cr_assert_eq(bundle_socket_path(longaddr, path, sizeof(path)), -ENAMETOOLONG);
	cr_assert_eq(bundle_socket_path("unix:///ab", path, 3), -ENAMETOOLONG);
	cr_assert_eq(bundle_socket_path("unix:///ab", path, 4), 0);
}

Test(address, path_clean_matches_go)
{
	/* Go's filepath.Clean on the same inputs */
	static const char *cases[][2] = {
		{"", "."},
		{".", "."},
		{"/", "/"},
		{"//a//b/", "/a/b"},
		{"a/../..", ".."},
		{"/../x", "/x"},
		{"a/./b/..", "a"},
		{"../../a/b/../c", "../../a/c"},
		{"/a/b/../../..", "/"},
		{"abc/def/../../..", ".."},
		{"/run/containerd//containerd.sock/k8s.io/x", "/run/containerd/containerd.sock/k8s.io/x"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char out[128];
		bundle_path_clean(cases[i][0], out);
		cr_assert_str_eq(out, cases[i][1], "clean(\"%s\")", cases[i][0]);
	}
}

/* Exec specs: "terminal" follows the request, as the Go shim sets it; every
 * other member survives byte for byte in meaning (numbers as written). */
Test(spec, process_terminal_follows_the_request)
{
	const char in[] = "{\"terminal\":false,\"user\":{\"uid\":0,\"gid\":0},"
			  "\"args\":[\"sh\",\"-c\",\"echo \\\"hi\\\"/\\u00e9\"],"
			  "\"env\":[],\"cwd\":\"/\",\"oomScoreAdj\":-998,\"big\":12345678901234567890,"
			  "\"noNewPrivileges\":true,\"x\":null}";
	char *out = NULL;
	size_t n = 0;
	struct ttrpc_status st;
	cr_assert_eq(bundle_process_set_terminal(in, strlen(in), true, &out, &n, &st), 0);
	cr_assert_str_eq(out, "{\"terminal\":true,\"user\":{\"uid\":0,\"gid\":0},"
			      "\"args\":[\"sh\",\"-c\",\"echo \\\"hi\\\"/\xc3\xa9\"],"
			      "\"env\":[],\"cwd\":\"/\",\"oomScoreAdj\":-998,"
			      "\"big\":12345678901234567890,\"noNewPrivileges\":true,\"x\":null}");
	cr_assert_eq(n, strlen(out));
	free(out);
	/* absent: appended */
	const char bare[] = "{\"args\":[\"true\"]}";
	cr_assert_eq(bundle_process_set_terminal(bare, strlen(bare), false, &out, &n, NULL), 0);
	cr_assert_str_eq(out, "{\"args\":[\"true\"],\"terminal\":false}");
	free(out);
	const char *bad[] = {"[1]", "{\"a\":", "", "\"s\""};
	for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
		out = NULL;
		cr_assert_eq(bundle_process_set_terminal(bad[i], strlen(bad[i]), true, &out, &n, &st),
			     -EBADMSG, "%s", bad[i]);
		cr_assert_eq(st.code, TTRPC_INVALID_ARGUMENT);
		cr_assert_null(out);
	}
}
