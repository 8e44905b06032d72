/* cgroup_stats: pick v1 or v2 Metrics the way the Go shim does (hybrid hosts
 * report v1) and pack them for a google.protobuf.Any (see cgroup_stats.h). */
#include "cgroup_stats.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static int pack(const ProtobufCMessage *m, const char *url, char **type_url, uint8_t **value,
                size_t *len, struct cgroup_err *err)
{
	size_t size = protobuf_c_message_get_packed_size(m);
	uint8_t *buf;
	char *u;

	if (size > CGROUP_STATS_MAX_PACKED)
		return cgroup_err_set(err, -EMSGSIZE, "%s: %zu bytes packed, more than %u", url,
		                      size, CGROUP_STATS_MAX_PACKED);
	buf = malloc(size ? size : 1);
	u = strdup(url);
	if (!buf || !u) {
		free(buf);
		free(u);
		return cgroup_err_set(err, -ENOMEM, "%s: out of memory", url);
	}
	protobuf_c_message_pack(m, buf);
	*type_url = u;
	*value = buf;
	*len = size;
	return 0;
}

int cgroup_stats(const struct cgroup_ref *ref, char **type_url, uint8_t **value, size_t *len,
                 struct cgroup_err *err)
{
	Io__Containerd__Cgroups__V1__Metrics *m1;
	Io__Containerd__Cgroups__V2__Metrics *m2;
	int r;

	*type_url = NULL;
	*value = NULL;
	*len = 0;
	switch (ref->mode) {
	case CGROUP_MODE_V1:
	case CGROUP_MODE_HYBRID:
		r = cgroup_stats_v1(ref, &m1, err);
		if (r < 0)
			return r;
		r = pack(&m1->base, CGROUP_V1_METRICS_URL, type_url, value, len, err);
		protobuf_c_message_free_unpacked(&m1->base, NULL);
		return r;
	case CGROUP_MODE_V2:
		r = cgroup_stats_v2(ref, &m2, err);
		if (r < 0)
			return r;
		r = pack(&m2->base, CGROUP_V2_METRICS_URL, type_url, value, len, err);
		protobuf_c_message_free_unpacked(&m2->base, NULL);
		return r;
	default:
		return cgroup_err_set(err, -EOPNOTSUPP, "stats: no cgroup mode");
	}
}
