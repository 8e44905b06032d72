/* One shim per container, driven as containerd's runtime v2 drives it: the
 * `start` action (its printed address), one ttrpc client on the loop, Task
 * calls with the namespace in metadata, a Wait out for every live process, and,
 * when the connection drops without a Shutdown, the `delete` action — whose
 * reply is the exit status of a container whose shim died. */
#include "nanoshimd.h"
#include "atomic.h"
#include "files.h"
#include "log.h"
#include "reaper.h"
#include "spawn.h"

#include "containerd/task/v2/shim.pb-c.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

#define TASK_SERVICE "containerd.task.v2.Task"
#define NS_KEY "containerd-namespace-ttrpc"
#define MAX_ENV 512

extern char **environ;

static const char *shim_binary(const struct ctr *c)
{
	if (c->record && c->record->shim_binary && c->record->shim_binary[0])
		return c->record->shim_binary;
	return c->d->cfg.shim_binary;
}

/* The caller's environment with ours over it: TTRPC_ADDRESS (where the shim
 * publishes), GOMAXPROCS=2 as containerd sets it, and the socket dir our shim
 * honours (other shims ignore it). */
static const char **shim_env(const struct daemon *d, char (*own)[4200])
{
	static const char *env[MAX_ENV];
	size_t n = 0;
	snprintf(own[0], sizeof(own[0]), "TTRPC_ADDRESS=%s", d->cfg.address);
	snprintf(own[1], sizeof(own[1]), "NANOSHIM_SOCKET_DIR=%s", d->socket_dir);
	snprintf(own[2], sizeof(own[2]), "GOMAXPROCS=2");
	for (char **e = environ; *e && n < MAX_ENV - 4; e++) {
		/* (NANOSHIM_CRASH_AT passes through: a test arms our shims' crash points) */
		if (strncmp(*e, "TTRPC_ADDRESS=", 14) == 0 ||
		    strncmp(*e, "NANOSHIM_SOCKET_DIR=", 20) == 0 || strncmp(*e, "GOMAXPROCS=", 11) == 0)
			continue;
		env[n++] = *e;
	}
	for (int i = 0; i < 3; i++)
		env[n++] = own[i];
	env[n] = NULL;
	return env;
}

/* `<shim> ... start` or `<shim> ... -bundle B delete`, as containerd runs them:
 * in the bundle, our environment, stdout and stderr captured. argv and own
 * (the environment's strings) are the caller's storage. */
static void shim_action(struct ctr *c, const char *action, const char **argv,
			char (*own)[4200], struct spawn_req *req)
{
	struct daemon *d = c->d;
	int n = 0;
	argv[n++] = shim_binary(c);
	argv[n++] = "-namespace";
	argv[n++] = c->ns;
	argv[n++] = "-address";
	argv[n++] = d->cfg.address;
	argv[n++] = "-publish-binary";
	argv[n++] = d->self;
	argv[n++] = "-id";
	argv[n++] = c->id;
	if (strcmp(action, "delete") == 0) {
		argv[n++] = "-bundle";
		argv[n++] = c->bundle;
	}
	if (d->cfg.debug)
		argv[n++] = "-debug";
	argv[n++] = action;
	argv[n] = NULL;
	*req = (struct spawn_req){
		.argv = argv,
		.envp = shim_env(d, own),
		.cwd = c->bundle,
		.fds = {-1, -1, -1},
		.flags = SPAWN_CAPTURE_STDOUT | SPAWN_CAPTURE_STDERR,
	};
}

static bool has_pair(const char *argv, size_t len, const char *flag, const char *value)
{
	for (const char *a = argv; a < argv + len; a += strlen(a) + 1) {
		const char *v = a + strlen(a) + 1;
		if (strcmp(a, flag) == 0 && v < argv + len && strcmp(v, value) == 0)
			return true;
	}
	return false;
}

/* The serving shim of c found by its command line (-namespace, -id and our
 * -address; not a start or delete action), for a shim that wrote no shim.pid
 * and cannot answer Connect (the Go shim holds its lock through a Create). */
static pid_t shim_find_pid(struct ctr *c)
{
	DIR *dir = opendir("/proc");
	if (!dir)
		return 0;
	pid_t found = 0;
	struct dirent *de;
	char path[64], buf[8192];
	while (!found && (de = readdir(dir))) {
		char *end;
		long pid = strtol(de->d_name, &end, 10);
		if (*end || pid <= 0 || pid == getpid())
			continue;
		snprintf(path, sizeof(path), "/proc/%ld/cmdline", pid);
		int fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			continue;
		ssize_t n = read(fd, buf, sizeof(buf) - 1);
		close(fd);
		if (n <= 0)
			continue;
		buf[n] = '\0';
		const char *last = buf;
		for (const char *a = buf; a < buf + n; a += strlen(a) + 1)
			last = a;
		if (strcmp(last, "start") && strcmp(last, "delete") &&
		    has_pair(buf, (size_t)n, "-namespace", c->ns) && has_pair(buf, (size_t)n, "-id", c->id) &&
		    has_pair(buf, (size_t)n, "-address", c->d->cfg.address))
			found = (pid_t)pid;
	}
	closedir(dir);
	return found;
}

struct kill_op {
	struct ctr *c;
	int pidfd;
	struct loop_source *src;
	shim_cleaned_fn done;
	void *userdata;
};

static void on_shim_killed(struct loop_source *s, int fd, uint32_t events, void *ud)
{
	struct kill_op *op = ud;
	loop_io_remove(op->src);
	close(op->pidfd);
	/* only now is its socket dead: the delete action's cleanup removes it */
	shim_cleanup_dead(op->c, op->done, op->userdata);
	ctr_unref(op->c);
	free(op);
}

void shim_kill_and_cleanup(struct ctr *c, shim_cleaned_fn done, void *userdata)
{
	pid_t pid = c->shim_pid > 0 ? c->shim_pid : shim_find_pid(c);
	int pidfd = pid > 0 ? (int)syscall(SYS_pidfd_open, pid, 0) : -1;
	if (pidfd >= 0 && syscall(SYS_pidfd_send_signal, pidfd, SIGKILL, NULL, 0) == 0) {
		log_info("%s/%s: shim %d killed", c->ns, c->id, (int)pid);
		struct kill_op *op = calloc(1, sizeof(*op));
		if (op) {
			*op = (struct kill_op){c, pidfd, NULL, done, userdata};
			op->src = loop_add_io(c->d->loop, pidfd, EPOLLIN, on_shim_killed, op);
			if (op->src) {
				shim_disconnect(c);
				ctr_ref(c);
				return; /* on_shim_killed goes on once it is gone */
			}
			free(op);
		}
	}
	if (pidfd >= 0)
		close(pidfd);
	shim_cleanup_dead(c, done, userdata);
}

/* ---- start ----------------------------------------------------------- */

struct start_op {
	struct ctr *c;
	shim_started_fn done;
	void *userdata;
	struct loop_timer *timer;
	pid_t pid;
};

static void on_start_timeout(void *ud)
{
	struct start_op *op = ud;
	op->timer = NULL;
	log_warn("shim start %s/%s: no address after the start timeout; killing it", op->c->ns,
		 op->c->id);
	kill(op->pid, SIGKILL); /* our own child, not yet reaped */
}

static void trim(char *s, size_t *len)
{
	while (*len && (s[*len - 1] == '\n' || s[*len - 1] == ' ' || s[*len - 1] == '\r'))
		s[--*len] = '\0';
}

static void on_start_done(pid_t pid, int status, const char *out, size_t outlen, const char *err,
			  size_t errlen, void *ud)
{
	struct start_op *op = ud;
	struct ctr *c = op->c;
	loop_timer_cancel(op->timer);
	char msg[512];
	int rc = 0;
	char addr[256] = "";
	if (outlen < sizeof(addr)) {
		memcpy(addr, out, outlen);
		addr[outlen] = '\0';
		trim(addr, &outlen);
	}
	if (status != 0 || !addr[0] || outlen >= sizeof(addr)) {
		size_t el = errlen;
		char ebuf[400];
		snprintf(ebuf, sizeof(ebuf), "%s", errlen ? err : out);
		el = strlen(ebuf);
		trim(ebuf, &el);
		snprintf(msg, sizeof(msg), "shim start failed: %s",
			 ebuf[0] ? ebuf : status ? "exit status" : "no address printed");
		if (status != 0 && !ebuf[0])
			snprintf(msg, sizeof(msg), "shim start failed: exit status %d", status);
		rc = -EIO;
	} else if (c->removed) {
		rc = -ECANCELED;
		snprintf(msg, sizeof(msg), "container deleted while its shim started");
	} else {
		snprintf(c->shim_address, sizeof(c->shim_address), "%s", addr);
		crash_point(c->d, "create-shim-started");
		int dfd = open(c->bundle, O_PATH | O_DIRECTORY | O_CLOEXEC);
		if (dfd >= 0) {
			const char *bin = shim_binary(c);
			bundle_write_file_volatile(dfd, NANOSHIMD_SHIM_BINARY_FILE, bin, strlen(bin),
						   0600);
			pid_t spid;
			if (bundle_read_shim_pid(dfd, &spid) == 0)
				c->shim_pid = spid;
			close(dfd);
		}
		rc = shim_connect(c, c->d->cfg.start_timeout_ns);
		if (rc < 0)
			snprintf(msg, sizeof(msg), "connect to shim at %s: %s", addr, strerror(-rc));
	}
	op->done(c, rc, rc < 0 ? msg : NULL, op->userdata);
	ctr_unref(c);
	free(op);
}

/* Runs `<shim> ACTION` for c, holding a reference until fn has run. */
static pid_t run_action(struct ctr *c, const char *action, spawn_done_fn fn, void *op)
{
	struct spawn_req req;
	const char *argv[16];
	char own[3][4200];
	shim_action(c, action, argv, own, &req);
	ctr_ref(c);
	pid_t pid = spawn_async(c->d->loop, c->d->reaper, &req, fn, op);
	if (pid < 0)
		ctr_unref(c);
	return pid;
}

int shim_start(struct ctr *c, shim_started_fn done, void *userdata)
{
	struct daemon *d = c->d;
	struct start_op *op = calloc(1, sizeof(*op));
	if (!op)
		return -ENOMEM;
	op->c = c;
	op->done = done;
	op->userdata = userdata;
	c->shim_state = SHIM_STARTING;
	pid_t pid = run_action(c, "start", on_start_done, op);
	if (pid < 0) {
		free(op);
		return (int)pid;
	}
	op->pid = pid;
	if (d->cfg.start_timeout_ns > 0)
		op->timer = loop_add_timer(d->loop, loop_now_ns() + d->cfg.start_timeout_ns,
					   on_start_timeout, op);
	return 0;
}

/* ---- the connection ---------------------------------------------------- */

static void after_cleanup(struct ctr *c, void *ud)
{
	if (c->recovering)
		recover_done_one(c);
}

static void on_client_close(struct ttrpc_client *cl, int err, void *ud)
{
	struct ctr *c = ud;
	if (c->client != cl)
		return;
	ctr_ref(c); /* what follows may drop what holds it */
	/* freeing the client inside its own close callback is allowed */
	c->client = NULL;
	ttrpc_client_free(cl);
	if (c->shutting_down || c->removed) {
		c->shim_state = SHIM_GONE;
	} else if (err == ETIMEDOUT) {
		/* never connected in time: a wedged shim is not a dead one */
		log_warn("shim of %s/%s at %s: connect timed out; retrying", c->ns, c->id,
			 c->shim_address);
		c->shim_state = SHIM_UNREACHABLE;
		recover_done_one(c);
		recover_retry(c);
	} else {
		log_warn("shim of %s/%s: connection lost (%s); cleaning up with its delete action",
			 c->ns, c->id, err ? strerror(err) : "closed");
		shim_cleanup_dead(c, after_cleanup, NULL);
	}
	ctr_unref(c);
}

static void on_connect_reply(struct ctr *c, const struct ttrpc_status *st,
			     ProtobufCMessage *reply, void *ud)
{
	if (st->code == TTRPC_OK)
		c->shim_pid = (pid_t)((Containerd__Task__V2__ConnectResponse *)reply)->shim_pid;
}

/* The shim's pid when its bundle has no shim.pid (the Go runc v2 shim writes none). */
static void learn_shim_pid(struct ctr *c)
{
	if (c->shim_pid)
		return;
	Containerd__Task__V2__ConnectRequest r = CONTAINERD__TASK__V2__CONNECT_REQUEST__INIT;
	r.id = c->id;
	shim_call(c, "Connect", &r.base, &containerd__task__v2__connect_response__descriptor,
		  NANOSHIMD_CALL_TIMEOUT_NS, on_connect_reply, NULL);
}

int shim_connect(struct ctr *c, int64_t timeout_ns)
{
	shim_disconnect(c);
	struct ttrpc_client *cl;
	int rc = ttrpc_client_group_connect_nb(c->d->shims, c->shim_address, timeout_ns, &cl);
	if (rc < 0)
		return rc;
	c->client = cl;
	ttrpc_client_on_close(cl, on_client_close, c);
	c->shim_state = SHIM_CONNECTED;
	learn_shim_pid(c);
	return 0;
}

void shim_disconnect(struct ctr *c)
{
	struct ttrpc_client *cl = c->client;
	c->client = NULL;
	ttrpc_client_free(cl); /* pending calls fail with Canceled */
}

/* ---- calls ------------------------------------------------------------- */

struct call_op {
	struct ctr *c;
	shim_reply_fn done;
	void *userdata;
};

static void on_reply(const struct ttrpc_status *st, ProtobufCMessage *reply, void *ud)
{
	struct call_op *op = ud;
	op->done(op->c, st, reply, op->userdata);
	if (reply)
		protobuf_c_message_free_unpacked(reply, NULL);
	ctr_unref(op->c);
	free(op);
}

int shim_call(struct ctr *c, const char *method, const ProtobufCMessage *req,
	      const ProtobufCMessageDescriptor *reply_desc, int64_t timeout_ns, shim_reply_fn done,
	      void *userdata)
{
	if (!c->client)
		return -ENOTCONN;
	struct call_op *op = calloc(1, sizeof(*op));
	if (!op)
		return -ENOMEM;
	op->c = c;
	op->done = done;
	op->userdata = userdata;
	struct ttrpc_kv md = {NS_KEY, c->ns};
	struct ttrpc_call_opts opts = {.timeout_ns = timeout_ns, .metadata = &md, .n_metadata = 1};
	log_debug("%s/%s: %s to the shim at %s", c->ns, c->id, method, c->shim_address);
	ctr_ref(c);
	int64_t rc = ttrpc_client_call_async(c->client, TASK_SERVICE, method, req, reply_desc,
					     &opts, on_reply, op);
	if (rc < 0) {
		ctr_unref(c);
		free(op);
		return (int)rc;
	}
	return 0;
}

static void on_wait(struct ctr *c, const struct ttrpc_status *st, ProtobufCMessage *reply,
		    void *ud)
{
	struct proc *p = ud;
	/* p may be gone (exec deleted): find it again by identity */
	bool found = p == &c->init;
	for (struct proc *q = c->execs; q && !found; q = q->next)
		found = q == p;
	if (!found)
		return;
	p->waiting = false;
	if (st->code != TTRPC_OK) {
		/* the connection dropped: the dead-shim path or recovery takes over */
		log_debug("wait %s/%s %s: %s", c->ns, c->id, p->exec_id, st->message);
		return;
	}
	Containerd__Task__V2__WaitResponse *w = (void *)reply;
	struct timespec at = {0};
	if (w->exited_at) {
		at.tv_sec = w->exited_at->seconds;
		at.tv_nsec = w->exited_at->nanos;
	}
	proc_exited(p, w->exit_status, &at, false);
}

void shim_wait(struct proc *p)
{
	struct ctr *c = p->ctr;
	if (p->waiting || p->exited || !c->client)
		return;
	Containerd__Task__V2__WaitRequest req = CONTAINERD__TASK__V2__WAIT_REQUEST__INIT;
	req.id = c->id;
	req.exec_id = p->exec_id;
	if (shim_call(c, "Wait", &req.base, &containerd__task__v2__wait_response__descriptor, 0,
		      on_wait, p) == 0)
		p->waiting = true;
}

/* ---- a dead shim --------------------------------------------------------- */

struct cleanup_op {
	struct ctr *c;
	shim_cleaned_fn done;
	void *userdata;
};

/* A dead shim's socket file stays behind (the Go shim's delete action leaves it, in
 * containerd's /run/containerd/s): removed once nothing listens on it. */
/* 0: nothing listens there any more (removed, or gone); 1: something still
 * does (a runtime child that inherited the shim's listener, as the Go shim's
 * do, keeps it open after the shim died); -1: not a path to look at. */
static int remove_dead_socket_path(const struct sockaddr_un *sa, socklen_t len)
{
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -1;
	int rc = 0;
	if (connect(fd, (const struct sockaddr *)sa, len) < 0) {
		if (errno == ECONNREFUSED)
			unlink(sa->sun_path);
	} else {
		rc = 1;
	}
	close(fd);
	return rc;
}

struct dead_socket {
	struct dead_socket *next; /* in dead_sockets, while a timer holds it */
	struct loop *loop;
	struct sockaddr_un sa;
	socklen_t len;
	int tries;
};

static struct dead_socket *dead_sockets;

static void dead_socket_free(struct dead_socket *ds)
{
	for (struct dead_socket **pp = &dead_sockets; *pp; pp = &(*pp)->next)
		if (*pp == ds) {
			*pp = ds->next;
			break;
		}
	free(ds);
}

static void recheck_dead_socket(void *ud)
{
	struct dead_socket *ds = ud;
	if (remove_dead_socket_path(&ds->sa, ds->len) == 1 && ++ds->tries < 60 &&
	    loop_add_timer_ms(ds->loop, 1000, recheck_dead_socket, ds))
		return;
	dead_socket_free(ds);
}

void shim_sockets_release(void)
{
	while (dead_sockets) {
		remove_dead_socket_path(&dead_sockets->sa, dead_sockets->len); /* a last look */
		dead_socket_free(dead_sockets);
	}
}

/* The socket of a shim that is gone goes too; while something still holds
 * it open it is looked at again every second, for a minute. */
static void remove_dead_socket(struct loop *loop, const char *address)
{
	struct dead_socket *ds = calloc(1, sizeof(*ds));
	if (!ds)
		return;
	int len = ttrpc_sockaddr(address, &ds->sa);
	ds->loop = loop;
	ds->len = (socklen_t)len;
	if (len < 0 || !ds->sa.sun_path[0] || remove_dead_socket_path(&ds->sa, ds->len) != 1 ||
	    !loop_add_timer_ms(loop, 1000, recheck_dead_socket, ds)) {
		free(ds); /* abstract, not an address, removed already, or no timer */
		return;
	}
	ds->next = dead_sockets;
	dead_sockets = ds;
}

static void on_delete_done(pid_t pid, int status, const char *out, size_t outlen,
			   const char *err, size_t errlen, void *ud)
{
	struct cleanup_op *op = ud;
	struct ctr *c = op->c;
	c->cleaning = false;
	c->shim_state = SHIM_GONE;
	if (c->shim_address[0])
		remove_dead_socket(c->d->loop, c->shim_address);
	uint32_t code = 128 + SIGKILL;
	struct timespec at;
	clock_gettime(CLOCK_REALTIME, &at);
	Containerd__Task__V2__DeleteResponse *dr = NULL;
	if (status == 0)
		dr = containerd__task__v2__delete_response__unpack(NULL, outlen, (const uint8_t *)out);
	if (dr) {
		code = dr->exit_status;
		if (!c->init.pid)
			c->init.pid = dr->pid;
		if (dr->exited_at) {
			at.tv_sec = dr->exited_at->seconds;
			at.tv_nsec = dr->exited_at->nanos;
		}
		containerd__task__v2__delete_response__free_unpacked(dr, NULL);
	} else {
		log_warn("%s/%s: shim delete action failed (status %d): %.*s", c->ns, c->id, status,
			 (int)(errlen > 300 ? 300 : errlen), err);
	}
	for (struct proc *p = c->execs; p; p = p->next)
		if (!p->exited)
			proc_exited(p, 128 + SIGKILL, &at, true);
	if (!c->init.exited)
		proc_exited(&c->init, code, &at, true);
	if (op->done)
		op->done(c, op->userdata);
	ctr_unref(c);
	free(op);
}

void shim_cleanup_dead(struct ctr *c, shim_cleaned_fn done, void *userdata)
{
	shim_disconnect(c);
	struct cleanup_op *op = calloc(1, sizeof(*op));
	if (!op)
		return;
	op->c = c;
	op->done = done;
	op->userdata = userdata;
	c->cleaning = true;
	pid_t pid = run_action(c, "delete", on_delete_done, op);
	if (pid < 0) {
		ctr_ref(c); /* on_delete_done drops one */
		log_error("%s/%s: cannot run the shim's delete action: %s", c->ns, c->id,
			  strerror((int)-pid));
		on_delete_done(0, 127, "", 0, "", 0, op);
	}
}
