/* io.containerd.cgroups.v2.Metrics from one cgroup2 directory, as
 * containerd/cgroups v2 Manager.Stat fills it. cpu.stat is read even when
 * the cpu controller is not enabled (the kernel always provides the usage
 * part); rdma is sent empty, as on hosts without RDMA devices. */
#include "cgroup_stats.h"
#include "cgroup_file.h"
#include "cgroup_pb.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef Io__Containerd__Cgroups__V2__Metrics Metrics;
typedef Io__Containerd__Cgroups__V2__MemoryStat MemoryStat;
typedef Io__Containerd__Cgroups__V2__CPUStat CPUStat;
typedef Io__Containerd__Cgroups__V2__MemoryEvents MemoryEvents;
typedef Io__Containerd__Cgroups__V2__IOEntry IOEntry;
typedef Io__Containerd__Cgroups__V2__HugeTlbStat HugeTlbStat;

#define N(a) (sizeof(a) / sizeof((a)[0]))

static const struct cgroup_pb_u64_field cpu_stat_keys[] = {
    {"usage_usec", offsetof(CPUStat, usage_usec)},
    {"user_usec", offsetof(CPUStat, user_usec)},
    {"system_usec", offsetof(CPUStat, system_usec)},
    {"nr_periods", offsetof(CPUStat, nr_periods)},
    {"nr_throttled", offsetof(CPUStat, nr_throttled)},
    {"throttled_usec", offsetof(CPUStat, throttled_usec)},
};

static const struct cgroup_pb_u64_field memory_stat_keys[] = {
    {"anon", offsetof(MemoryStat, anon)},
    {"file", offsetof(MemoryStat, file)},
    {"kernel_stack", offsetof(MemoryStat, kernel_stack)},
    {"slab", offsetof(MemoryStat, slab)},
    {"sock", offsetof(MemoryStat, sock)},
    {"shmem", offsetof(MemoryStat, shmem)},
    {"file_mapped", offsetof(MemoryStat, file_mapped)},
    {"file_dirty", offsetof(MemoryStat, file_dirty)},
    {"file_writeback", offsetof(MemoryStat, file_writeback)},
    {"anon_thp", offsetof(MemoryStat, anon_thp)},
    {"inactive_anon", offsetof(MemoryStat, inactive_anon)},
    {"active_anon", offsetof(MemoryStat, active_anon)},
    {"inactive_file", offsetof(MemoryStat, inactive_file)},
    {"active_file", offsetof(MemoryStat, active_file)},
    {"unevictable", offsetof(MemoryStat, unevictable)},
    {"slab_reclaimable", offsetof(MemoryStat, slab_reclaimable)},
    {"slab_unreclaimable", offsetof(MemoryStat, slab_unreclaimable)},
    {"pgfault", offsetof(MemoryStat, pgfault)},
    {"pgmajfault", offsetof(MemoryStat, pgmajfault)},
    {"workingset_refault", offsetof(MemoryStat, workingset_refault)},
    {"workingset_activate", offsetof(MemoryStat, workingset_activate)},
    {"workingset_nodereclaim", offsetof(MemoryStat, workingset_nodereclaim)},
    {"pgrefill", offsetof(MemoryStat, pgrefill)},
    {"pgscan", offsetof(MemoryStat, pgscan)},
    {"pgsteal", offsetof(MemoryStat, pgsteal)},
    {"pgactivate", offsetof(MemoryStat, pgactivate)},
    {"pgdeactivate", offsetof(MemoryStat, pgdeactivate)},
    {"pglazyfree", offsetof(MemoryStat, pglazyfree)},
    {"pglazyfreed", offsetof(MemoryStat, pglazyfreed)},
    {"thp_fault_alloc", offsetof(MemoryStat, thp_fault_alloc)},
    {"thp_collapse_alloc", offsetof(MemoryStat, thp_collapse_alloc)},
};

static const struct cgroup_pb_u64_field memory_events_keys[] = {
    {"low", offsetof(MemoryEvents, low)},           {"high", offsetof(MemoryEvents, high)},
    {"max", offsetof(MemoryEvents, max)},           {"oom", offsetof(MemoryEvents, oom)},
    {"oom_kill", offsetof(MemoryEvents, oom_kill)},
};

struct cgdir {
	int fd;
	const char *path;
	struct cgroup_err *err;
};

static int fail(const struct cgdir *d, const char *name, int r)
{
	return cgroup_err_set(d->err, r, "read %s/%s: %s", d->path, name,
	                      r == -EINVAL ? "unexpected content" : strerror(-r));
}

static int read_kv(const struct cgdir *d, const char *name, const struct cgroup_pb_u64_field *table,
                   size_t n, void *msg, size_t *nlines)
{
	int r = cgroup_pb_read_kv(d->fd, name, table, n, msg, false, nlines);

	if (r < 0 && !cgroup_err_missing(r))
		return fail(d, name, r);
	return 0;
}

/* containerd's getStatFileContentUint64: any failure reads as 0, "max" as
 * the largest uint64. */
static uint64_t value_or_zero(const struct cgdir *d, const char *name)
{
	uint64_t v = 0;

	if (cgroup_file_u64_or_max(d->fd, name, UINT64_MAX, &v) < 0)
		return 0;
	return v;
}

/* "8:0 rbytes=1 wbytes=2 rios=3 wios=4 dbytes=0 dios=0" */
static int io_line(char *line, void *ctx)
{
	Io__Containerd__Cgroups__V2__IOStat *io = ctx;
	char *save = NULL, *tok, *colon, *eq;
	uint64_t major, minor, v;
	IOEntry *e;
	int r;

	tok = strtok_r(line, " ", &save);
	if (!tok || !(colon = strchr(tok, ':')))
		return 0;
	*colon = '\0';
	/* containerd stops at the first bad device number and keeps the rest. */
	if (cgroup_parse_u64(tok, &major) < 0 || cgroup_parse_u64(colon + 1, &minor) < 0)
		return 1;
	e = cgroup_pb_new(&io__containerd__cgroups__v2__ioentry__descriptor);
	if (!e)
		return -ENOMEM;
	e->major = major;
	e->minor = minor;
	while ((tok = strtok_r(NULL, " ", &save))) {
		if (!(eq = strchr(tok, '=')))
			continue;
		*eq = '\0';
		if (cgroup_parse_u64(eq + 1, &v) < 0)
			continue;
		if (strcmp(tok, "rbytes") == 0)
			e->rbytes = v;
		else if (strcmp(tok, "wbytes") == 0)
			e->wbytes = v;
		else if (strcmp(tok, "rios") == 0)
			e->rios = v;
		else if (strcmp(tok, "wios") == 0)
			e->wios = v;
	}
	r = cgroup_pb_append((void ***)&io->usage, &io->n_usage, e, CGROUP_STATS_MAX_ENTRIES);
	if (r < 0)
		protobuf_c_message_free_unpacked(&e->base, NULL);
	return r;
}

struct hugetlb_ctx {
	const struct cgdir *d;
	Metrics *m;
};

/* hugetlb.<size>.current and hugetlb.<size>.max; the other files of a size
 * (rsvd.*, events) still make its entry appear, as in containerd. */
static int hugetlb_entry(const char *name, void *ctx)
{
	struct hugetlb_ctx *c = ctx;
	char size[32], kind[16];
	const char *p1, *p2;
	HugeTlbStat *h = NULL;
	size_t len = strlen(name);
	uint64_t v;
	int r;

	if (!strstr(name, "hugetlb"))
		return 0;
	if (!(len >= 3 && strcmp(name + len - 3, "max") == 0) &&
	    !(len >= 7 && strcmp(name + len - 7, "current") == 0))
		return 0;
	p1 = strchr(name, '.');
	p2 = p1 ? strchr(p1 + 1, '.') : NULL;
	if (!p2 || (size_t)(p2 - p1 - 1) >= sizeof(size))
		return 0;
	memcpy(size, p1 + 1, (size_t)(p2 - p1 - 1));
	size[p2 - p1 - 1] = '\0';
	snprintf(kind, sizeof(kind), "%.*s", (int)strcspn(p2 + 1, "."), p2 + 1);
	if (cgroup_file_u64_or_max(c->d->fd, name, UINT64_MAX, &v) < 0)
		return 0;
	for (size_t i = 0; i < c->m->n_hugetlb; i++)
		if (strcmp(c->m->hugetlb[i]->pagesize, size) == 0)
			h = c->m->hugetlb[i];
	if (!h) {
		h = cgroup_pb_new(&io__containerd__cgroups__v2__huge_tlb_stat__descriptor);
		if (!h || !(h->pagesize = strdup(size)))
			goto nomem;
		r = cgroup_pb_append((void ***)&c->m->hugetlb, &c->m->n_hugetlb, h,
		                     CGROUP_STATS_MAX_ENTRIES);
		if (r < 0) {
			protobuf_c_message_free_unpacked(&h->base, NULL);
			return r;
		}
	}
	if (strcmp(kind, "max") == 0)
		h->max = v;
	else if (strcmp(kind, "current") == 0)
		h->current = v;
	return 0;
nomem:
	if (h)
		protobuf_c_message_free_unpacked(&h->base, NULL);
	return -ENOMEM;
}

static int fill(const struct cgdir *d, Metrics *m)
{
	MemoryEvents *ev;
	size_t nev = 0;
	uint64_t v;
	int r;

	m->pids = cgroup_pb_new(&io__containerd__cgroups__v2__pids_stat__descriptor);
	m->cpu = cgroup_pb_new(&io__containerd__cgroups__v2__cpustat__descriptor);
	m->memory = cgroup_pb_new(&io__containerd__cgroups__v2__memory_stat__descriptor);
	m->io = cgroup_pb_new(&io__containerd__cgroups__v2__iostat__descriptor);
	m->rdma = cgroup_pb_new(&io__containerd__cgroups__v2__rdma_stat__descriptor);
	if (!m->pids || !m->cpu || !m->memory || !m->io || !m->rdma)
		return -ENOMEM;

	/* A pids value that is not a number (other than "max") reads as 0. */
	if (cgroup_file_u64(d->fd, "pids.current", &v) == 0)
		m->pids->current = v;
	m->pids->limit = value_or_zero(d, "pids.max");

	if ((r = read_kv(d, "cpu.stat", cpu_stat_keys, N(cpu_stat_keys), m->cpu, NULL)) < 0)
		return r;
	r = read_kv(d, "memory.stat", memory_stat_keys, N(memory_stat_keys), m->memory, NULL);
	if (r < 0)
		return r;
	m->memory->usage = value_or_zero(d, "memory.current");
	m->memory->usage_limit = value_or_zero(d, "memory.max");
	m->memory->swap_usage = value_or_zero(d, "memory.swap.current");
	m->memory->swap_limit = value_or_zero(d, "memory.swap.max");

	ev = cgroup_pb_new(&io__containerd__cgroups__v2__memory_events__descriptor);
	if (!ev)
		return -ENOMEM;
	r = read_kv(d, "memory.events", memory_events_keys, N(memory_events_keys), ev, &nev);
	if (r < 0 || nev == 0) {
		protobuf_c_message_free_unpacked(&ev->base, NULL);
		if (r < 0)
			return r;
	} else {
		m->memory_events = ev;
	}

	r = cgroup_file_lines(d->fd, "io.stat", io_line, m->io);
	if (r < 0 && !cgroup_err_missing(r))
		return fail(d, "io.stat", r);

	r = cgroup_dir_list(d->fd, ".", hugetlb_entry, &(struct hugetlb_ctx){d, m});
	if (r < 0)
		return fail(d, ".", r);
	return 0;
}

int cgroup_stats_v2(const struct cgroup_ref *ref, Metrics **out, struct cgroup_err *err)
{
	struct cgdir d = {.fd = -1, .path = ref->unified, .err = err};
	Metrics *m;
	int r;

	*out = NULL;
	if (!d.path)
		return cgroup_err_set(err, -ENOENT, "no cgroup2 directory");
	d.fd = open(d.path, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (d.fd < 0) {
		r = -errno;
		return cgroup_err_set(err, r, "open %s: %s", d.path,
		                      r == -ENOENT ? "cgroup does not exist" : strerror(-r));
	}
	m = cgroup_pb_new(&io__containerd__cgroups__v2__metrics__descriptor);
	r = m ? fill(&d, m) : -ENOMEM;
	close(d.fd);
	if (r == -ENOMEM)
		cgroup_err_set(err, r, "cgroup v2 stats of %s: out of memory", d.path);
	if (r < 0) {
		if (m)
			protobuf_c_message_free_unpacked(&m->base, NULL);
		return r;
	}
	*out = m;
	return 0;
}
