/* Restart recovery: every bundle under the state dir is read back; live ones
 * get a client (a connect that never blocks) and a State call per process
 * as soon as each is read, so the shims answer while the scan goes on; each
 * with its own deadline, so one wedged shim holds up nobody.
 * What a shim reports is adopted (exits that happened while we were down are
 * published now); a shim that is gone is cleaned up with its own delete
 * action, whose reply is the exit status; a shim that does not answer in time
 * is listed as unreachable and retried; half-made and empty bundles go. */
#include "nanoshimd.h"
#include "files.h"
#include "log.h"
#include "netns.h"
#include "pidfile.h"
#include "state.h"

#include "containerd/task/v2/shim.pb-c.h"
#include "google/protobuf/empty.pb-c.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>


static bool marked_deleting(const struct ctr *c)
{
	char path[4200];
	snprintf(path, sizeof(path), "%s/%s", c->bundle, NANOSHIMD_DELETING_FILE);
	return access(path, F_OK) == 0;
}

/* The Waits of adopted processes: a backstop for an exit event lost while we
 * were down (the shim's TaskExit reaches us either way). They go out a little
 * after the recovery, once the clients that waited for it (a List on the
 * recovered event) have their answers: sent at once, a hundred shims woken
 * together take the CPU those answers need. */
static void send_waits(void *ud)
{
	struct daemon *d = ud;
	d->waits_timer = NULL;
	for (struct ctr *c = d->ctrs; c; c = c->next)
		for (struct proc *p = &c->init; p; p = p == &c->init ? c->execs : p->next)
			if (p->wait_after_recovery) {
				p->wait_after_recovery = false;
				shim_wait(p);
			}
}

static void finished(struct daemon *d)
{
	double ms = (double)(loop_now_ns() - d->recover_start_ns) / 1e6;
	unsigned n = 0, running = 0, unreachable = 0;
	for (struct ctr *c = d->ctrs; c; c = c->next) {
		n++;
		running += c->init.status == NANOSHIM__V1__STATUS__STATUS_RUNNING;
		unreachable += c->shim_state == SHIM_UNREACHABLE;
	}
	char msg[160];
	snprintf(msg, sizeof(msg), "recovered %u containers (%u running, %u unreachable) in %.1f ms",
		 n, running, unreachable, ms);
	log_info("%s", msg);
	events_publish(d, "", "/nanoshim/recovered", NULL, NULL, NULL, 0, 0, msg);
	crash_point(d, "recover-done");
	if (!d->waits_timer)
		d->waits_timer = loop_add_timer_ms(d->loop, NANOSHIMD_WAITS_AFTER_MS, send_waits, d);
	if (!d->waits_timer)
		send_waits(d);
}

static void ignore(struct ctr *c, const struct ttrpc_status *st, ProtobufCMessage *r, void *ud)
{
	ctr_destroy(c);
}

/* The shim serves but has no task (a create or delete cut short): let it go. */
static void retire(struct ctr *c, const char *why)
{
	log_info("%s/%s: %s; removing it", c->ns, c->id, why);
	c->shutting_down = true;
	Containerd__Task__V2__ShutdownRequest sr = CONTAINERD__TASK__V2__SHUTDOWN_REQUEST__INIT;
	sr.id = c->id;
	sr.now = true;
	if (shim_call(c, "Shutdown", &sr.base, &google__protobuf__empty__descriptor,
		      NANOSHIMD_RECOVER_TIMEOUT_NS, ignore, NULL) < 0)
		ctr_destroy(c);
}

void recover_done_one(struct ctr *c)
{
	if (!c->recovering)
		return;
	c->recovering = false;
	struct daemon *d = c->d;
	if (!c->removed && c->shim_state == SHIM_GONE && marked_deleting(c)) {
		log_info("%s/%s: its delete was cut short; finishing it", c->ns, c->id);
		ctr_destroy(c);
	}
	if (--d->recovering == 0)
		finished(d);
	ctr_unref(c);
}

static void adopt(struct proc *p, const Containerd__Task__V2__StateResponse *s)
{
	p->pid = s->pid;
	p->status = (Nanoshim__V1__Status)s->status;
	if (s->status == CONTAINERD__V1__TYPES__STATUS__STOPPED) {
		struct timespec at = {0};
		if (s->exited_at) {
			at.tv_sec = s->exited_at->seconds;
			at.tv_nsec = s->exited_at->nanos;
		}
		proc_exited(p, s->exit_status, &at, true);
	} else if (s->status != CONTAINERD__V1__TYPES__STATUS__CREATED || !p->exec_id[0]) {
		/* the Waits go out once every shim has answered its State: on the
		 * recovery's path they would only make the shims wake twice */
		if (p->ctr->d->recovering)
			p->wait_after_recovery = true;
		else
			shim_wait(p);
	}
}

struct state_arg {
	char exec_id[BUNDLE_ID_MAX + 1];
};

static void state_one_done(struct ctr *c)
{
	if (--c->recover_pending)
		return;
	if (c->shim_state == SHIM_CONNECTED && marked_deleting(c)) {
		retire(c, "its delete was cut short");
	}
	recover_done_one(c);
}

/* The init's pid when its shim cannot say it (gone, or not answering): the
 * runtime's pid file. A shim that answers gives it in its State. */
static void init_pid_from_file(struct ctr *c)
{
	if (c->init.pid)
		return;
	int dfd = open(c->bundle, O_PATH | O_DIRECTORY | O_CLOEXEC);
	pid_t pid;
	if (dfd >= 0 && bundle_read_pid(dfd, BUNDLE_INIT_PID_FILE, &pid) == 0)
		c->init.pid = (uint32_t)pid;
	if (dfd >= 0)
		close(dfd);
}

static void on_state(struct ctr *c, const struct ttrpc_status *st, ProtobufCMessage *reply, void *ud)
{
	struct state_arg *a = ud;
	struct proc *p = ctr_proc(c, a->exec_id);
	bool init = !a->exec_id[0];
	free(a);
	if (c->removed || !p) {
		state_one_done(c);
		return;
	}
	if (st->code == TTRPC_OK) {
		adopt(p, (const void *)reply);
	} else if (st->code == TTRPC_NOT_FOUND) {
		if (init) {
			if (!c->shutting_down)
				retire(c, "its shim has no task");
		} else {
			log_info("%s/%s: exec %s unknown to the shim; dropped", c->ns, c->id, p->exec_id);
			ctr_drop_exec(c, p);
			ctr_record_write(c);
		}
	} else if (st->code == TTRPC_DEADLINE_EXCEEDED && c->shim_state == SHIM_CONNECTED) {
		log_warn("%s/%s: shim at %s does not answer; retrying in %d ms", c->ns, c->id,
			 c->shim_address, NANOSHIMD_RETRY_MS);
		init_pid_from_file(c);
		shim_disconnect(c);
		c->shim_state = SHIM_UNREACHABLE;
		recover_retry(c);
	} else if (st->code == TTRPC_UNAVAILABLE) {
		/* the connection closed: its close path (dead shim, or unreachable)
		 * ends this container's recovery */
		log_debug("%s/%s: state: %s", c->ns, c->id, st->message);
		c->recover_pending--;
		return;
	} else {
		log_warn("%s/%s: state: %s", c->ns, c->id, st->message);
	}
	state_one_done(c);
}

static int ask_state(struct ctr *c, struct proc *p)
{
	struct state_arg *a = calloc(1, sizeof(*a));
	if (!a)
		return -ENOMEM;
	snprintf(a->exec_id, sizeof(a->exec_id), "%s", p->exec_id);
	Containerd__Task__V2__StateRequest r = CONTAINERD__TASK__V2__STATE_REQUEST__INIT;
	r.id = c->id;
	r.exec_id = p->exec_id;
	int rc = shim_call(c, "State", &r.base, &containerd__task__v2__state_response__descriptor,
			   NANOSHIMD_RECOVER_TIMEOUT_NS, on_state, a);
	if (rc < 0)
		free(a);
	else
		c->recover_pending++;
	return rc;
}

static void cleaned(struct ctr *c, void *ud)
{
	recover_done_one(c);
}

/* Connect and ask; a shim that is plainly gone goes to its delete action. */
static void reach(struct ctr *c)
{
	int rc = shim_connect(c, NANOSHIMD_RECOVER_TIMEOUT_NS);
	if (rc == 0) {
		c->recover_pending = 1; /* held until every State is out */
		if (ask_state(c, &c->init) == 0)
			for (struct proc *p = c->execs; p; p = p->next)
				ask_state(c, p);
		state_one_done(c);
		return;
	}
	log_info("%s/%s: shim at %s is gone (%s); cleaning up with its delete action", c->ns,
		 c->id, c->shim_address, strerror(-rc));
	init_pid_from_file(c);
	shim_cleanup_dead(c, cleaned, NULL);
}

static void on_retry(void *ud)
{
	struct ctr *c = ud;
	c->retry = NULL;
	if (c->removed || c->shim_state != SHIM_UNREACHABLE) {
		ctr_unref(c);
		return;
	}
	log_info("%s/%s: reconnecting to its shim", c->ns, c->id);
	if (!c->recovering) {
		c->recovering = true;
		c->d->recovering++;
		ctr_ref(c);
	}
	ctr_unref(c);
	reach(c);
}

void recover_retry(struct ctr *c)
{
	if (c->retry)
		return;
	ctr_ref(c);
	c->retry = loop_add_timer_ms(c->d->loop, NANOSHIMD_RETRY_MS, on_retry, c);
	if (!c->retry)
		ctr_unref(c);
}

static int load_live(struct daemon *d, const struct bundle_entry *e, int dirfd)
{
	Nanoshim__V1__Record *r = NULL;
	int rc = ctr_record_read(dirfd, &r);
	if (rc < 0) {
		log_warn("bundle %s/%s: no readable %s (%s): not ours, skipped", e->ns, e->id,
			 NANOSHIMD_RECORD_FILE, strerror(-rc));
		return 0;
	}
	struct ctr *c = ctr_new(d, e->ns, e->id);
	if (!c) {
		nanoshim__v1__record__free_unpacked(r, NULL);
		return -ENOMEM;
	}
	c->record = r;
	c->init.terminal = r->request->terminal;
	c->init.stdin = r->request->stdin;
	c->init.tty_relay = r->tty_relay;
	for (size_t i = 0; i < r->n_execs; i++) {
		struct proc *p = ctr_add_exec(c, r->execs[i]->exec_id, r->execs[i]->terminal,
					      r->execs[i]->stdin);
		if (!p)
			log_warn("%s/%s: exec %s dropped (too many)", e->ns, e->id, r->execs[i]->exec_id);
		else
			p->tty_relay = r->execs[i]->tty_relay;
	}
	/* relayed terminals go on where they stopped: what was written while we
	 * were down waits in their FIFOs */
	for (struct proc *p = &c->init; p; p = p == &c->init ? c->execs : p->next)
		if (p->tty_relay && (rc = relay_open(p)) < 0)
			log_warn("%s/%s: terminal relay of %s: %s", e->ns, e->id,
				 p->exec_id[0] ? p->exec_id : "init", strerror(-rc));
	rc = bundle_read_address(dirfd, c->shim_address, sizeof(c->shim_address));
	if (rc < 0)
		log_warn("%s/%s: address: %s", e->ns, e->id, strerror(-rc));
	pid_t pid;
	if (bundle_read_shim_pid(dirfd, &pid) == 0)
		c->shim_pid = pid;
	c->recovering = true;
	ctr_ref(c);
	d->recovering++;
	reach(c); /* connect and ask now: the shims answer while the scan goes on */
	return 0;
}

static int on_bundle(const struct bundle_entry *e, int dirfd, void *ud)
{
	struct daemon *d = ud;
	switch (e->kind) {
	case BUNDLE_EMPTY:
		log_info("bundle %s/%s is empty: removed", e->ns, e->id);
		bundle_state_remove(d->cfg.state, e->ns, e->id);
		return 0;
	case BUNDLE_HALF_MADE: {
		Nanoshim__V1__Record *r = NULL;
		if (ctr_record_read(dirfd, &r) == 0 && r->netns && r->netns[0])
			netns_remove(r->netns);
		if (r)
			nanoshim__v1__record__free_unpacked(r, NULL);
		log_info("bundle %s/%s was never finished (no shim address): removed", e->ns, e->id);
		int rc = bundle_state_remove(d->cfg.state, e->ns, e->id);
		if (rc < 0)
			log_warn("bundle %s/%s: remove: %s", e->ns, e->id, strerror(-rc));
		return 0;
	}
	case BUNDLE_LIVE:
		return load_live(d, e, dirfd);
	}
	return 0;
}

int recover_all(struct daemon *d)
{
	d->recover_start_ns = loop_now_ns();
	d->recovering = 1; /* held while the scan and the connects are issued */
	int rc = bundle_state_scan(d->cfg.state, on_bundle, d);
	if (rc < 0 && rc != -ENOENT)
		log_error("scan %s: %s", d->cfg.state, strerror(-rc));
	crash_point(d, "recover-scanned");
	for (struct ctr *c = d->ctrs; c; c = c->next)
		if (c->recovering && !c->client && !c->cleaning)
			reach(c);
	if (--d->recovering == 0)
		finished(d);
	return rc < 0 && rc != -ENOENT ? rc : 0;
}
