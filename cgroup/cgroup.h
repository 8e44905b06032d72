/* The cgroup library: find a process's cgroup, read its stats as containerd
 * Metrics, watch it for OOM kills from an epoll loop. */
#pragma once

#include "cgroup_err.h"
#include "cgroup_oom.h"
#include "cgroup_ref.h"
#include "cgroup_stats.h"
