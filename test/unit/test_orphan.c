/* When a taskless shim goes on its own (shim/orphan.c): never with a task;
 * after SHIM_ORPHAN_GRACE_MS with no task; held by a connection that has not
 * asked anything yet (containerd between `start` and Create), up to
 * SHIM_ORPHAN_FRESH_CONN_MS, or by events not delivered yet; at once when its
 * bundle is removed, unless one of those holds it. */
#include "orphan.h"

#include <criterion/criterion.h>

TestSuite(orphan, .timeout = 10);

#define MS 1000000LL
#define T0 (1000 * 1000 * MS) /* an arbitrary monotonic time */

static struct shim_orphan_facts idle_for(int64_t ms)
{
	struct shim_orphan_facts f = {.now_ns = T0 + ms * MS, .idle_since_ns = T0};
	return f;
}

Test(orphan, a_shim_with_a_task_never_goes)
{
	struct shim_orphan_facts f = idle_for(3600 * 1000);
	f.tasks = 1;
	f.bundle_gone = true;
	int64_t recheck = -1;
	cr_assert_eq(shim_orphan_decide(&f, &recheck), SHIM_ORPHAN_KEEP);
	cr_assert_eq(recheck, -1, "no recheck for a shim that keeps");
	f.tasks = 3; /* a group */
	f.conns = 0;
	cr_assert_eq(shim_orphan_decide(&f, NULL), SHIM_ORPHAN_KEEP);
}

Test(orphan, taskless_and_unconnected_goes_after_the_grace)
{
	int64_t recheck = 0;
	struct shim_orphan_facts f = idle_for(0);
	cr_assert_eq(shim_orphan_decide(&f, &recheck), SHIM_ORPHAN_WAIT);
	cr_assert_eq(recheck, T0 + SHIM_ORPHAN_GRACE_MS * MS);
	f = idle_for(SHIM_ORPHAN_GRACE_MS - 1);
	cr_assert_eq(shim_orphan_decide(&f, &recheck), SHIM_ORPHAN_WAIT);
	f = idle_for(SHIM_ORPHAN_GRACE_MS);
	cr_assert_eq(shim_orphan_decide(&f, &recheck), SHIM_ORPHAN_EXIT);
}

Test(orphan, a_connection_that_asked_something_does_not_hold_it)
{
	/* a reloaded containerd (Connect), or one whose Delete came before it
	 * died and that came back: the grace only */
	struct shim_orphan_facts f = idle_for(1000);
	f.conns = 1;
	f.request_since_idle = true;
	int64_t recheck = 0;
	cr_assert_eq(shim_orphan_decide(&f, &recheck), SHIM_ORPHAN_WAIT);
	cr_assert_eq(recheck, T0 + SHIM_ORPHAN_GRACE_MS * MS);
	f = idle_for(SHIM_ORPHAN_GRACE_MS);
	f.conns = 1;
	f.request_since_idle = true;
	cr_assert_eq(shim_orphan_decide(&f, NULL), SHIM_ORPHAN_EXIT);
}

Test(orphan, a_fresh_connection_holds_it_up_to_its_bound)
{
	/* containerd connected after `start` and is slow to send Create */
	struct shim_orphan_facts f = idle_for(SHIM_ORPHAN_GRACE_MS + 1000);
	f.conns = 1;
	int64_t recheck = 0;
	cr_assert_eq(shim_orphan_decide(&f, &recheck), SHIM_ORPHAN_WAIT);
	cr_assert_eq(recheck, T0 + SHIM_ORPHAN_FRESH_CONN_MS * MS);
	f.bundle_gone = true; /* a group's first bundle, removed: held all the same */
	cr_assert_eq(shim_orphan_decide(&f, NULL), SHIM_ORPHAN_WAIT);
	f = idle_for(SHIM_ORPHAN_FRESH_CONN_MS);
	f.conns = 1;
	cr_assert_eq(shim_orphan_decide(&f, NULL), SHIM_ORPHAN_EXIT);
}

Test(orphan, undelivered_events_hold_it)
{
	/* the TaskDelete of its last Delete, for a containerd that died right
	 * after: kept for as long as containerd is away, even with the bundle
	 * gone, as every lifecycle event is (events.h) */
	struct shim_orphan_facts f = idle_for(3600 * 1000);
	f.events_pending = true;
	f.bundle_gone = true;
	int64_t recheck = 0;
	cr_assert_eq(shim_orphan_decide(&f, &recheck), SHIM_ORPHAN_WAIT);
	cr_assert_gt(recheck, f.now_ns);
	cr_assert_leq(recheck, f.now_ns + SHIM_ORPHAN_POLL_MS * MS);
	f.events_pending = false; /* delivered: past the grace, it goes */
	cr_assert_eq(shim_orphan_decide(&f, NULL), SHIM_ORPHAN_EXIT);
}

Test(orphan, a_removed_bundle_ends_the_wait)
{
	struct shim_orphan_facts f = idle_for(10);
	f.bundle_gone = true;
	cr_assert_eq(shim_orphan_decide(&f, NULL), SHIM_ORPHAN_EXIT);
	f.conns = 2;
	f.request_since_idle = true;
	cr_assert_eq(shim_orphan_decide(&f, NULL), SHIM_ORPHAN_EXIT);
}

Test(orphan, the_bounds_are_sane)
{
	cr_assert_geq(SHIM_ORPHAN_GRACE_MS, 1000, "containerd's Create/Shutdown gap is ms, not s");
	cr_assert_gt(SHIM_ORPHAN_FRESH_CONN_MS, SHIM_ORPHAN_GRACE_MS);
	cr_assert_lt(SHIM_ORPHAN_POLL_MS, SHIM_ORPHAN_GRACE_MS);
}
