/* A container's stats from its cgroup, as the Go shim's Task.Stats returns
 * them: io.containerd.cgroups.v1.Metrics on v1 and hybrid hosts, v2.Metrics on
 * unified ones, filled from the files containerd/cgroups reads. Files that
 * are missing (controller not mounted or not enabled) leave their fields
 * unset; any other read or parse failure is an error. */
#pragma once

#include "cgroup_ref.h"

#include "cgroups/v1/metrics.pb-c.h"
#include "cgroups/v2/metrics.pb-c.h"

#include <stddef.h>
#include <stdint.h>

/* Bare type URLs, as containerd's typeurl registers them. */
#define CGROUP_V1_METRICS_URL "io.containerd.cgroups.v1.Metrics"
#define CGROUP_V2_METRICS_URL "io.containerd.cgroups.v2.Metrics"

/* Entries per repeated field (block devices x ops, CPUs, huge page sizes). */
#define CGROUP_STATS_MAX_ENTRIES 4096
/* Largest packed Metrics returned; it travels inside a ttrpc reply. */
#define CGROUP_STATS_MAX_PACKED (1u << 20)

/* Reads the stats of ref and packs them. On success the caller owns and
 * frees *type_url (the bare URL for google.protobuf.Any) and *value.
 * -ENOENT: the cgroup is gone; -EOPNOTSUPP: no cgroup mode. */
int cgroup_stats(const struct cgroup_ref *ref, char **type_url, uint8_t **value, size_t *len,
                 struct cgroup_err *err);

/* The unpacked forms; free with protobuf_c_message_free_unpacked(&m->base,
 * NULL). cgroup_stats_v1 reads ref->v1, cgroup_stats_v2 ref->unified,
 * whatever ref->mode says. */
int cgroup_stats_v1(const struct cgroup_ref *ref, Io__Containerd__Cgroups__V1__Metrics **out,
                    struct cgroup_err *err);
int cgroup_stats_v2(const struct cgroup_ref *ref, Io__Containerd__Cgroups__V2__Metrics **out,
                    struct cgroup_err *err);
