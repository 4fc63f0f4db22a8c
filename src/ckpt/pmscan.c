/* pmscan.c — one PAGEMAP_SCAN walk for the dump (mm.c), incremental
 * checkpoints (incr.c) and pre-copy (precopy.c); see ckpt-int.h. */
#include <errno.h>
#include <inttypes.h>
#include <string.h>
#include <sys/ioctl.h>
#include "ckpt/ckpt-int.h"

int ckpt_pm_scan(pid_t pid, int pmfd, struct pm_scan_arg base, struct page_region *vec, size_t vec_len, bool may_fall_back,
		 ckpt_pm_fn fn, void *ctx, struct ckpt_error *err)
{
	for (uint64_t at = base.start; at < base.end;) {
		struct pm_scan_arg sa = base;
		sa.size = sizeof(sa), sa.start = at, sa.vec = (uintptr_t)vec, sa.vec_len = vec_len;
		long n = ioctl(pmfd, PAGEMAP_SCAN, &sa);
		if (n < 0 && may_fall_back && at == base.start && (errno == ENOTTY || errno == EINVAL || errno == EOPNOTSUPP))
			return 1;
		if (n < 0)
			return ckpt_fail(err, errno, "process %d: PAGEMAP_SCAN of %#" PRIx64 "-%#" PRIx64 ": %s", pid, at, base.end,
					 strerror(errno));
		for (long k = 0; fn && k < n; k++) {
			int r = fn(ctx, &vec[k], err);
			if (r < 0)
				return r;
		}
		if (sa.walk_end <= at)
			break;
		at = sa.walk_end;
	}
	return 0;
}
