/* io.containerd.cgroups.v1.Metrics from the v1 controllers, field for field
 * as containerd/cgroups fills them (memory.go, cpu.go, cpuacct.go, pids.go,
 * blkio.go, hugetlb.go). Unlike it, a missing file skips only its own fields
 * rather than the rest of its controller. rdma is not read. */
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

typedef Io__Containerd__Cgroups__V1__Metrics Metrics;
typedef Io__Containerd__Cgroups__V1__MemoryStat MemoryStat;
typedef Io__Containerd__Cgroups__V1__MemoryEntry MemoryEntry;
typedef Io__Containerd__Cgroups__V1__MemoryOomControl MemoryOomControl;
typedef Io__Containerd__Cgroups__V1__Throttle Throttle;
typedef Io__Containerd__Cgroups__V1__BlkIOStat BlkIOStat;
typedef Io__Containerd__Cgroups__V1__BlkIOEntry BlkIOEntry;
typedef Io__Containerd__Cgroups__V1__HugetlbStat HugetlbStat;

#define HUGEPAGES_DIR "/sys/kernel/mm/hugepages"
#define MAX_HUGEPAGE_SIZES 16

/* One controller directory being read. */
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

/* Reads one number; a missing file leaves *dst alone. */
static int read_u64(const struct cgdir *d, const char *name, uint64_t *dst)
{
	int r = cgroup_file_u64(d->fd, name, dst);

	if (r < 0 && !cgroup_err_missing(r))
		return fail(d, name, r);
	return 0;
}

static int read_kv(const struct cgdir *d, const char *name, const struct cgroup_pb_u64_field *table,
                   size_t n, void *msg, bool *found)
{
	int r = cgroup_pb_read_kv(d->fd, name, table, n, msg, true, NULL);

	*found = r == 0;
	if (r < 0 && !cgroup_err_missing(r))
		return fail(d, name, r);
	return 0;
}

static const struct cgroup_pb_u64_field memory_stat_keys[] = {
    {"cache", offsetof(MemoryStat, cache)},
    {"rss", offsetof(MemoryStat, rss)},
    {"rss_huge", offsetof(MemoryStat, rss_huge)},
    {"mapped_file", offsetof(MemoryStat, mapped_file)},
    {"dirty", offsetof(MemoryStat, dirty)},
    {"writeback", offsetof(MemoryStat, writeback)},
    {"pgpgin", offsetof(MemoryStat, pg_pg_in)},
    {"pgpgout", offsetof(MemoryStat, pg_pg_out)},
    {"pgfault", offsetof(MemoryStat, pg_fault)},
    {"pgmajfault", offsetof(MemoryStat, pg_maj_fault)},
    {"inactive_anon", offsetof(MemoryStat, inactive_anon)},
    {"active_anon", offsetof(MemoryStat, active_anon)},
    {"inactive_file", offsetof(MemoryStat, inactive_file)},
    {"active_file", offsetof(MemoryStat, active_file)},
    {"unevictable", offsetof(MemoryStat, unevictable)},
    {"hierarchical_memory_limit", offsetof(MemoryStat, hierarchical_memory_limit)},
    {"hierarchical_memsw_limit", offsetof(MemoryStat, hierarchical_swap_limit)},
    {"total_cache", offsetof(MemoryStat, total_cache)},
    {"total_rss", offsetof(MemoryStat, total_rss)},
    {"total_rss_huge", offsetof(MemoryStat, total_rss_huge)},
    {"total_mapped_file", offsetof(MemoryStat, total_mapped_file)},
    {"total_dirty", offsetof(MemoryStat, total_dirty)},
    {"total_writeback", offsetof(MemoryStat, total_writeback)},
    {"total_pgpgin", offsetof(MemoryStat, total_pg_pg_in)},
    {"total_pgpgout", offsetof(MemoryStat, total_pg_pg_out)},
    {"total_pgfault", offsetof(MemoryStat, total_pg_fault)},
    {"total_pgmajfault", offsetof(MemoryStat, total_pg_maj_fault)},
    {"total_inactive_anon", offsetof(MemoryStat, total_inactive_anon)},
    {"total_active_anon", offsetof(MemoryStat, total_active_anon)},
    {"total_inactive_file", offsetof(MemoryStat, total_inactive_file)},
    {"total_active_file", offsetof(MemoryStat, total_active_file)},
    {"total_unevictable", offsetof(MemoryStat, total_unevictable)},
};

static const struct cgroup_pb_u64_field oom_control_keys[] = {
    {"oom_kill_disable", offsetof(MemoryOomControl, oom_kill_disable)},
    {"under_oom", offsetof(MemoryOomControl, under_oom)},
    {"oom_kill", offsetof(MemoryOomControl, oom_kill)},
};

static const struct cgroup_pb_u64_field cpu_stat_keys[] = {
    {"nr_periods", offsetof(Throttle, periods)},
    {"nr_throttled", offsetof(Throttle, throttled_periods)},
    {"throttled_time", offsetof(Throttle, throttled_time)},
};

#define N(a) (sizeof(a) / sizeof((a)[0]))

static int stat_memory(const struct cgdir *d, Metrics *m)
{
	static const char *const modules[] = {"", "memsw.", "kmem.", "kmem.tcp."};
	MemoryStat *ms;
	MemoryEntry **entries[N(modules)];
	bool found;
	int r;

	ms = cgroup_pb_new(&io__containerd__cgroups__v1__memory_stat__descriptor);
	if (!ms)
		return -ENOMEM;
	r = read_kv(d, "memory.stat", memory_stat_keys, N(memory_stat_keys), ms, &found);
	if (r < 0 || !found) {
		protobuf_c_message_free_unpacked(&ms->base, NULL);
		return r;
	}
	m->memory = ms;
	entries[0] = &ms->usage;
	entries[1] = &ms->swap;
	entries[2] = &ms->kernel;
	entries[3] = &ms->kernel_tcp;
	for (size_t i = 0; i < N(modules); i++) {
		MemoryEntry *e =
		    cgroup_pb_new(&io__containerd__cgroups__v1__memory_entry__descriptor);
		char name[64];

		if (!e)
			return -ENOMEM;
		*entries[i] = e;
		snprintf(name, sizeof(name), "memory.%susage_in_bytes", modules[i]);
		if ((r = read_u64(d, name, &e->usage)) < 0)
			return r;
		snprintf(name, sizeof(name), "memory.%smax_usage_in_bytes", modules[i]);
		if ((r = read_u64(d, name, &e->max)) < 0)
			return r;
		snprintf(name, sizeof(name), "memory.%sfailcnt", modules[i]);
		if ((r = read_u64(d, name, &e->failcnt)) < 0)
			return r;
		snprintf(name, sizeof(name), "memory.%slimit_in_bytes", modules[i]);
		if ((r = read_u64(d, name, &e->limit)) < 0)
			return r;
	}

	m->memory_oom_control =
	    cgroup_pb_new(&io__containerd__cgroups__v1__memory_oom_control__descriptor);
	if (!m->memory_oom_control)
		return -ENOMEM;
	r = read_kv(d, "memory.oom_control", oom_control_keys, N(oom_control_keys),
	            m->memory_oom_control, &found);
	if (r == 0 && !found) {
		protobuf_c_message_free_unpacked(&m->memory_oom_control->base, NULL);
		m->memory_oom_control = NULL;
	}
	return r;
}

static int stat_cpu(const struct cgdir *d, Metrics *m)
{
	bool found;

	return read_kv(d, "cpu.stat", cpu_stat_keys, N(cpu_stat_keys), m->cpu->throttling, &found);
}

/* cpuacct.stat counts USER_HZ ticks; containerd reports nanoseconds. */
static uint64_t ticks_to_ns(uint64_t ticks)
{
	long hz = sysconf(_SC_CLK_TCK);
	uint64_t h = hz > 0 ? (uint64_t)hz : 100;

	return ticks / h * 1000000000ull + ticks % h * 1000000000ull / h;
}

struct percpu_ctx {
	Io__Containerd__Cgroups__V1__CPUUsage *u;
};

static int percpu_line(char *line, void *ctx)
{
	Io__Containerd__Cgroups__V1__CPUUsage *u = ((struct percpu_ctx *)ctx)->u;
	char *save = NULL, *tok;
	uint64_t v;
	int r;

	for (tok = strtok_r(line, " \t", &save); tok; tok = strtok_r(NULL, " \t", &save)) {
		r = cgroup_parse_u64(tok, &v);
		if (r < 0)
			return r;
		r = cgroup_pb_append_u64(&u->per_cpu, &u->n_per_cpu, v, CGROUP_STATS_MAX_ENTRIES);
		if (r < 0)
			return r;
	}
	return 0;
}

static int stat_cpuacct(const struct cgdir *d, Metrics *m)
{
	static const struct cgroup_pb_u64_field ticks_keys[] = {
	    {"user", offsetof(Io__Containerd__Cgroups__V1__CPUUsage, user)},
	    {"system", offsetof(Io__Containerd__Cgroups__V1__CPUUsage, kernel)},
	};
	Io__Containerd__Cgroups__V1__CPUUsage *u = m->cpu->usage;
	struct percpu_ctx pc = {u};
	bool found;
	int r;

	r = read_kv(d, "cpuacct.stat", ticks_keys, N(ticks_keys), u, &found);
	if (r < 0)
		return r;
	u->user = ticks_to_ns(u->user);
	u->kernel = ticks_to_ns(u->kernel);
	if ((r = read_u64(d, "cpuacct.usage", &u->total)) < 0)
		return r;
	r = cgroup_file_lines(d->fd, "cpuacct.usage_percpu", percpu_line, &pc);
	if (r < 0 && !cgroup_err_missing(r))
		return fail(d, "cpuacct.usage_percpu", r);
	return 0;
}

static int stat_pids(const struct cgdir *d, Metrics *m)
{
	Io__Containerd__Cgroups__V1__PidsStat *p;
	uint64_t current;
	int r;

	r = cgroup_file_u64(d->fd, "pids.current", &current);
	if (r < 0)
		return cgroup_err_missing(r) ? 0 : fail(d, "pids.current", r);
	p = cgroup_pb_new(&io__containerd__cgroups__v1__pids_stat__descriptor);
	if (!p)
		return -ENOMEM;
	m->pids = p;
	p->current = current;
	/* v1 reports "max" (no limit) as 0. */
	r = cgroup_file_u64_or_max(d->fd, "pids.max", 0, &p->limit);
	if (r < 0 && !cgroup_err_missing(r))
		return fail(d, "pids.max", r);
	return 0;
}

/* /proc/partitions names the devices blkio entries refer to by number. */
struct partition {
	unsigned major, minor;
	char *dev; /* "/dev/<name>" */
};

struct partitions {
	struct partition *v;
	size_t n;
	int line;
};

static int partitions_line(char *line, void *ctx)
{
	struct partitions *ps = ctx;
	unsigned major, minor;
	unsigned long long blocks;
	char name[64], *dev;
	struct partition *nv;

	/* The first two lines are the header and a blank line. */
	if (ps->line++ < 2)
		return 0;
	if (sscanf(line, "%u %u %llu %63s", &major, &minor, &blocks, name) != 4)
		return 0;
	for (size_t i = 0; i < ps->n; i++)
		if (ps->v[i].major == major && ps->v[i].minor == minor)
			return 0; /* the first name wins, as in containerd */
	if (ps->n >= CGROUP_STATS_MAX_ENTRIES)
		return -E2BIG;
	if (asprintf(&dev, "/dev/%s", name) < 0)
		return -ENOMEM;
	nv = realloc(ps->v, (ps->n + 1) * sizeof(*nv));
	if (!nv) {
		free(dev);
		return -ENOMEM;
	}
	ps->v = nv;
	ps->v[ps->n++] = (struct partition){major, minor, dev};
	return 0;
}

static void partitions_free(struct partitions *ps)
{
	for (size_t i = 0; i < ps->n; i++)
		free(ps->v[i].dev);
	free(ps->v);
}

struct blkio_ctx {
	const struct partitions *ps;
	BlkIOEntry ***list;
	size_t *n;
};

static int blkio_line(char *line, void *ctx)
{
	struct blkio_ctx *c = ctx;
	char *f[5], *save = NULL, *tok;
	uint64_t major, minor, value;
	size_t nf = 0;
	BlkIOEntry *e;
	int r;

	/* "8:0 Read 4096", "8:0 4096" (no op) or "Total 4096". */
	for (tok = strtok_r(line, " :", &save); tok && nf < N(f); tok = strtok_r(NULL, " :", &save))
		f[nf++] = tok;
	if (nf == 0)
		return 0;
	if (nf < 3)
		return nf == 2 && strcmp(f[0], "Total") == 0 ? 0 : -EINVAL;
	if (cgroup_parse_u64(f[0], &major) < 0 || cgroup_parse_u64(f[1], &minor) < 0 ||
	    cgroup_parse_u64(f[nf == 4 ? 3 : 2], &value) < 0)
		return -EINVAL;
	e = cgroup_pb_new(&io__containerd__cgroups__v1__blk_ioentry__descriptor);
	if (!e)
		return -ENOMEM;
	e->major = major;
	e->minor = minor;
	e->value = value;
	if (nf == 4 && !(e->op = strdup(f[2])))
		goto nomem;
	for (size_t i = 0; i < c->ps->n; i++) {
		if (c->ps->v[i].major == major && c->ps->v[i].minor == minor) {
			if (!(e->device = strdup(c->ps->v[i].dev)))
				goto nomem;
			break;
		}
	}
	r = cgroup_pb_append((void ***)c->list, c->n, e, CGROUP_STATS_MAX_ENTRIES);
	if (r < 0)
		protobuf_c_message_free_unpacked(&e->base, NULL);
	return r;
nomem:
	protobuf_c_message_free_unpacked(&e->base, NULL);
	return -ENOMEM;
}

struct blkio_file {
	const char *name;
	size_t list_off; /* offsetof the BlkIOEntry ** in BlkIOStat */
	size_t n_off;    /* offsetof its count */
};

/* CFQ's files, read when the kernel has them. */
static const struct blkio_file blkio_cfq[] = {
    {"blkio.sectors_recursive", offsetof(BlkIOStat, sectors_recursive),
     offsetof(BlkIOStat, n_sectors_recursive)},
    {"blkio.io_service_bytes_recursive", offsetof(BlkIOStat, io_service_bytes_recursive),
     offsetof(BlkIOStat, n_io_service_bytes_recursive)},
    {"blkio.io_serviced_recursive", offsetof(BlkIOStat, io_serviced_recursive),
     offsetof(BlkIOStat, n_io_serviced_recursive)},
    {"blkio.io_queued_recursive", offsetof(BlkIOStat, io_queued_recursive),
     offsetof(BlkIOStat, n_io_queued_recursive)},
    {"blkio.io_service_time_recursive", offsetof(BlkIOStat, io_service_time_recursive),
     offsetof(BlkIOStat, n_io_service_time_recursive)},
    {"blkio.io_wait_time_recursive", offsetof(BlkIOStat, io_wait_time_recursive),
     offsetof(BlkIOStat, n_io_wait_time_recursive)},
    {"blkio.io_merged_recursive", offsetof(BlkIOStat, io_merged_recursive),
     offsetof(BlkIOStat, n_io_merged_recursive)},
    {"blkio.time_recursive", offsetof(BlkIOStat, io_time_recursive),
     offsetof(BlkIOStat, n_io_time_recursive)},
};
/* The throttle files every kernel has, used when CFQ reports nothing. */
static const struct blkio_file blkio_throttle[] = {
    {"blkio.throttle.io_serviced", offsetof(BlkIOStat, io_serviced_recursive),
     offsetof(BlkIOStat, n_io_serviced_recursive)},
    {"blkio.throttle.io_service_bytes", offsetof(BlkIOStat, io_service_bytes_recursive),
     offsetof(BlkIOStat, n_io_service_bytes_recursive)},
};

static int blkio_read(const struct cgdir *d, const struct partitions *ps, BlkIOStat *b,
                      const struct blkio_file *files, size_t nfiles, size_t *total)
{
	for (size_t i = 0; i < nfiles; i++) {
		struct blkio_ctx c = {
		    .ps = ps,
		    .list = (BlkIOEntry ***)((char *)b + files[i].list_off),
		    .n = (size_t *)((char *)b + files[i].n_off),
		};
		int r = cgroup_file_lines(d->fd, files[i].name, blkio_line, &c);

		if (r < 0 && !cgroup_err_missing(r))
			return fail(d, files[i].name, r);
		*total += *c.n;
	}
	return 0;
}

static int stat_blkio(const struct cgdir *d, Metrics *m)
{
	struct partitions ps = {0};
	size_t total = 0;
	int r;

	m->blkio = cgroup_pb_new(&io__containerd__cgroups__v1__blk_iostat__descriptor);
	if (!m->blkio)
		return -ENOMEM;
	r = cgroup_file_lines(AT_FDCWD, "/proc/partitions", partitions_line, &ps);
	if (r < 0 && !cgroup_err_missing(r)) {
		partitions_free(&ps);
		return cgroup_err_set(d->err, r, "read /proc/partitions: %s", strerror(-r));
	}
	if (faccessat(d->fd, "blkio.io_serviced_recursive", F_OK, 0) == 0)
		r = blkio_read(d, &ps, m->blkio, blkio_cfq, N(blkio_cfq), &total);
	else
		r = 0;
	if (r == 0 && total == 0)
		r = blkio_read(d, &ps, m->blkio, blkio_throttle, N(blkio_throttle), &total);
	partitions_free(&ps);
	return r;
}

/* "2048kB" → 2097152, as go-units RAMInBytes reads the hugepages dir names. */
static int parse_ram_size(const char *s, uint64_t *out)
{
	static const char units[] = "kmgtp";
	uint64_t v = 0;
	const char *u;

	if (*s < '0' || *s > '9')
		return -EINVAL;
	for (; *s >= '0' && *s <= '9'; s++)
		v = v * 10 + (uint64_t)(*s - '0');
	if (*s && (u = strchr(units, *s | 0x20))) {
		for (long i = 0; i <= u - units; i++)
			v *= 1024;
		s++;
	}
	if (*s == 'i' || *s == 'I')
		s++;
	if (*s == 'b' || *s == 'B')
		s++;
	if (*s)
		return -EINVAL;
	*out = v;
	return 0;
}

/* "2MB", "1GB": go-units CustomSize("%g%s", size, 1024, {B,KB,MB,GB,TB,PB}),
 * the suffix of the hugetlb.<size>.* files. */
static void format_page_size(uint64_t bytes, char *buf, size_t len)
{
	static const char *const units[] = {"B", "KB", "MB", "GB", "TB", "PB"};
	double size = (double)bytes;
	size_t i = 0;

	while (size >= 1024 && i < N(units) - 1) {
		size /= 1024;
		i++;
	}
	snprintf(buf, len, "%g%s", size, units[i]);
}

struct page_sizes {
	char name[MAX_HUGEPAGE_SIZES][32];
	size_t n;
};

static int hugepages_entry(const char *name, void *ctx)
{
	struct page_sizes *ps = ctx;

	if (strncmp(name, "hugepages-", 10) != 0 || strlen(name) >= sizeof(ps->name[0]))
		return 0;
	if (ps->n >= MAX_HUGEPAGE_SIZES)
		return -E2BIG;
	strcpy(ps->name[ps->n++], name);
	return 0;
}

static int cmp_name(const void *a, const void *b)
{
	return strcmp(a, b);
}

static int stat_hugetlb(const struct cgdir *d, Metrics *m)
{
	static const char *const files[] = {"usage_in_bytes", "max_usage_in_bytes", "failcnt"};
	struct page_sizes ps = {.n = 0};
	int r;

	r = cgroup_dir_list(AT_FDCWD, HUGEPAGES_DIR, hugepages_entry, &ps);
	if (r < 0)
		return cgroup_err_missing(r)
		           ? 0
		           : cgroup_err_set(d->err, r, "list %s: %s", HUGEPAGES_DIR, strerror(-r));
	/* containerd lists them with ReadDir, sorted by name. */
	qsort(ps.name, ps.n, sizeof(ps.name[0]), cmp_name);
	for (size_t i = 0; i < ps.n; i++) {
		HugetlbStat *h;
		uint64_t bytes;
		char size[32];

		if (parse_ram_size(ps.name[i] + 10, &bytes) < 0)
			return cgroup_err_set(d->err, -EINVAL, "parse huge page size %s",
			                      ps.name[i]);
		format_page_size(bytes, size, sizeof(size));
		h = cgroup_pb_new(&io__containerd__cgroups__v1__hugetlb_stat__descriptor);
		if (!h || !(h->pagesize = strdup(size)))
			goto nomem;
		r = cgroup_pb_append((void ***)&m->hugetlb, &m->n_hugetlb, h,
		                     CGROUP_STATS_MAX_ENTRIES);
		if (r < 0)
			goto nomem;
		for (size_t f = 0; f < N(files); f++) {
			uint64_t *dst = f == 0 ? &h->usage : f == 1 ? &h->max : &h->failcnt;
			char name[80];

			snprintf(name, sizeof(name), "hugetlb.%s.%s", size, files[f]);
			if ((r = read_u64(d, name, dst)) < 0)
				return r;
		}
		continue;
	nomem:
		if (h)
			protobuf_c_message_free_unpacked(&h->base, NULL);
		return -ENOMEM;
	}
	return 0;
}

static int (*const readers[CGROUP_NCONTROLLERS])(const struct cgdir *, Metrics *) = {
    [CGROUP_MEMORY] = stat_memory, [CGROUP_CPU] = stat_cpu,     [CGROUP_CPUACCT] = stat_cpuacct,
    [CGROUP_PIDS] = stat_pids,     [CGROUP_BLKIO] = stat_blkio, [CGROUP_HUGETLB] = stat_hugetlb,
};

int cgroup_stats_v1(const struct cgroup_ref *ref, Metrics **out, struct cgroup_err *err)
{
	Metrics *m;
	bool any = false;
	int r = 0;

	*out = NULL;
	m = cgroup_pb_new(&io__containerd__cgroups__v1__metrics__descriptor);
	if (!m)
		goto nomem;
	/* containerd always sends cpu with both parts, even when empty. */
	m->cpu = cgroup_pb_new(&io__containerd__cgroups__v1__cpustat__descriptor);
	if (!m->cpu)
		goto nomem;
	m->cpu->usage = cgroup_pb_new(&io__containerd__cgroups__v1__cpuusage__descriptor);
	m->cpu->throttling = cgroup_pb_new(&io__containerd__cgroups__v1__throttle__descriptor);
	if (!m->cpu->usage || !m->cpu->throttling)
		goto nomem;
	for (int c = 0; c < CGROUP_NCONTROLLERS; c++) {
		struct cgdir d = {.path = ref->v1[c], .err = err};

		if (!d.path)
			continue;
		d.fd = open(d.path, O_PATH | O_DIRECTORY | O_CLOEXEC);
		if (d.fd < 0) {
			if (errno == ENOENT)
				continue;
			r = cgroup_err_set(err, -errno, "open %s: %s", d.path, strerror(errno));
			goto fail;
		}
		any = true;
		r = readers[c](&d, m);
		close(d.fd);
		if (r == -ENOMEM)
			goto nomem;
		if (r < 0)
			goto fail;
	}
	if (!any) {
		r = cgroup_err_set(err, -ENOENT, "cgroup does not exist");
		goto fail;
	}
	*out = m;
	return 0;
nomem:
	r = cgroup_err_set(err, -ENOMEM, "cgroup v1 stats: out of memory");
fail:
	if (m)
		protobuf_c_message_free_unpacked(&m->base, NULL);
	return r;
}
