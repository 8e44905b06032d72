/* `-info` (see info.h). A one-shot process: blocking calls are fine here. */
#include "info.h"
#include "bootstrap.h"
#include "cli.h"

#include "bundle/atomic.h"
#include "bundle/runcopts.h"
#include "bundle/sha256.h"
#include "containerd/types/introspection.pb-c.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define DEFAULT_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

extern char **environ;

/* execvp's lookup, done here so the file we stat is the file we run. */
static int resolve(const char *binary, char *path, struct stat *st)
{
	if (strchr(binary, '/')) {
		if (strlen(binary) >= PATH_MAX)
			return -ENAMETOOLONG;
		snprintf(path, PATH_MAX, "%s", binary);
		return stat(path, st) == 0 ? 0 : -errno;
	}
	const char *env = getenv("PATH");
	const char *p = env && env[0] ? env : DEFAULT_PATH;
	while (*p) {
		const char *colon = strchrnul(p, ':');
		int n = snprintf(path, PATH_MAX, "%.*s%s%s", (int)(colon - p), p,
		                 colon == p ? "" : "/", binary);
		if (n > 0 && n < PATH_MAX && stat(path, st) == 0 && S_ISREG(st->st_mode) &&
		    access(path, X_OK) == 0)
			return 0;
		p = *colon ? colon + 1 : colon;
	}
	return -ENOENT;
}

static int mkdir_p(const char *dir)
{
	char p[PATH_MAX];
	snprintf(p, sizeof(p), "%s", dir);
	for (char *s = p + 1;; s++) {
		if (*s && *s != '/')
			continue;
		char c = *s;
		*s = '\0';
		if (mkdir(p, 0700) < 0 && errno != EEXIST)
			return -errno;
		if (!c)
			return 0;
		*s = c;
	}
}


static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Runs `path features` (argv[0] = name), stdout captured, bounded in time. */
static int run_features(const char *name, const char *path, char **json, size_t *len, char *why,
                        size_t whylen)
{
	int pipefd[2];
	if (pipe2(pipefd, O_CLOEXEC) < 0)
		return -errno;
	int devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
	posix_spawn_file_actions_t fa;
	posix_spawn_file_actions_init(&fa);
	if (devnull >= 0) {
		posix_spawn_file_actions_adddup2(&fa, devnull, 0);
		posix_spawn_file_actions_adddup2(&fa, devnull, 2);
	}
	posix_spawn_file_actions_adddup2(&fa, pipefd[1], 1);
	char *const argv[] = {(char *)name, "features", NULL};
	pid_t pid;
	int rc = posix_spawn(&pid, path, &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	if (devnull >= 0)
		close(devnull);
	close(pipefd[1]);
	if (rc != 0) {
		close(pipefd[0]);
		snprintf(why, whylen, "run %s features: %s", path, strerror(rc));
		return -rc;
	}
	/* nothing else to do meanwhile: wait for its output, up to the deadline */
	int64_t deadline = now_ms() + SHIM_FEATURES_TIMEOUT_MS;
	struct pollfd pfd = {.fd = pipefd[0], .events = POLLIN};
	int pr;
	while ((pr = poll(&pfd, 1, (int)(deadline - now_ms()))) < 0 && errno == EINTR)
		;
	if (pr <= 0) {
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		close(pipefd[0]);
		snprintf(why, whylen, "%s features: no answer in %d ms", path,
		         SHIM_FEATURES_TIMEOUT_MS);
		return -ETIMEDOUT;
	}
	rc = bundle_read_fd(pipefd[0], 0, SHIM_FEATURES_MAX, json, len);
	close(pipefd[0]);
	int status;
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (rc < 0) {
		snprintf(why, whylen, "read %s features: %s", path, strerror(-rc));
		return rc;
	}
	const char *p = *json;
	while (*p == ' ' || *p == '\n' || *p == '\t' || *p == '\r')
		p++;
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0 || *p != '{') {
		snprintf(why, whylen, "%s features: %s", path,
		         !WIFEXITED(status) || WEXITSTATUS(status) != 0 ? "failed"
		                                                        : "not a JSON object");
		free(*json);
		*json = NULL;
		return -EPROTO;
	}
	return 0;
}

int shim_runtime_features(const char *binary, const char *cache_dir, char **json, size_t *len,
                          char *why, size_t whylen)
{
	char path[PATH_MAX];
	struct stat st;
	*json = NULL;
	*len = 0;
	int rc = resolve(binary, path, &st);
	if (rc < 0) {
		snprintf(why, whylen, "runtime %s: %s", binary, strerror(-rc));
		return rc;
	}
	/* The key names this very file: replaced or rebuilt, it misses. */
	char key[PATH_MAX + 128], name[BUNDLE_SHA256_HEX_LEN + 1];
	int klen =
	    snprintf(key, sizeof(key), "%s\n%llu %llu %lld %lld.%09ld", path,
	             (unsigned long long)st.st_dev, (unsigned long long)st.st_ino,
	             (long long)st.st_size, (long long)st.st_mtim.tv_sec, st.st_mtim.tv_nsec);
	bundle_sha256_hex(key, (size_t)klen, name);
	int dirfd = -1;
	if (cache_dir && cache_dir[0] && mkdir_p(cache_dir) == 0)
		dirfd = open(cache_dir, O_DIRECTORY | O_RDONLY | O_CLOEXEC);
	if (dirfd >= 0) {
		int fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
		if (fd >= 0) {
			rc = bundle_read_fd(fd, 0, SHIM_FEATURES_MAX, json, len);
			close(fd);
			if (rc == 0 && *len > 0) {
				close(dirfd);
				return 0;
			}
			free(*json);
			*json = NULL;
		}
	}
	rc = run_features(binary, path, json, len, why, whylen);
	if (rc == 0 && dirfd >= 0)
		bundle_write_file_atomic(dirfd, name, *json, *len,
		                         0600); /* a miss next time at worst */
	if (dirfd >= 0)
		close(dirfd);
	return rc;
}

int shim_info(const struct shim_flags *f)
{
	uint8_t *buf;
	size_t len;
	char err[SHIM_STDIN_ERR_MAX];
	struct shim_stdin in;
	int rc = shim_stdin_read(STDIN_FILENO, &buf, &len);
	if (rc < 0) {
		fprintf(stderr, "info: read stdin: %s\n", strerror(-rc));
		return 1;
	}
	/* containerd passes neither -id nor -namespace with -info */
	bool flags = f->id && f->ns;
	rc = shim_stdin_parse(buf, len, flags ? f->id : NULL, flags ? f->ns : NULL, &in, err,
	                      sizeof(err));
	free(buf);
	if (rc < 0) {
		fprintf(stderr, "info: %s\n", err);
		shim_stdin_free(&in);
		return 1;
	}
	Containerd__Types__RuntimeInfo ri = CONTAINERD__TYPES__RUNTIME_INFO__INIT;
	Containerd__Types__RuntimeVersion ver = CONTAINERD__TYPES__RUNTIME_VERSION__INIT;
	Google__Protobuf__Any opts = GOOGLE__PROTOBUF__ANY__INIT;
	Google__Protobuf__Any feat = GOOGLE__PROTOBUF__ANY__INIT;
	ri.name = SHIM_RUNTIME_NAME;
	ver.version = SHIM_VERSION;
	ver.revision = "";
	ri.version = &ver;
	if (in.options_type_url) {
		opts.type_url = in.options_type_url;
		opts.value.data = in.options_value;
		opts.value.len = in.options_len;
		ri.options = &opts;
	}
	const char *cache = getenv(SHIM_FEATURES_CACHE_ENV);
	char *json = NULL;
	size_t jlen = 0;
	char why[PATH_MAX + 128];
	rc = shim_runtime_features(bundle_options_binary(in.options),
	                           cache ? cache : SHIM_FEATURES_CACHE_DIR, &json, &jlen, why,
	                           sizeof(why));
	if (rc < 0) {
		/* As the Go shim's Info: without the runtime's features there is no
		 * answer; containerd then treats those features as unsupported. */
		fprintf(stderr, "info: %s\n", why);
		shim_stdin_free(&in);
		return 1;
	}
	feat.type_url = SHIM_FEATURES_TYPE_URL;
	feat.value.data = (uint8_t *)json;
	feat.value.len = jlen;
	ri.features = &feat;
	size_t n = containerd__types__runtime_info__get_packed_size(&ri);
	uint8_t *out = malloc(n ? n : 1);
	rc = 1;
	if (!out) {
		fprintf(stderr, "info: out of memory\n");
	} else {
		containerd__types__runtime_info__pack(&ri, out);
		if (fwrite(out, 1, n, stdout) == n && fflush(stdout) == 0)
			rc = 0;
		else
			fprintf(stderr, "info: write stdout: %s\n", strerror(errno));
	}
	free(out);
	free(json);
	shim_stdin_free(&in);
	return rc;
}
