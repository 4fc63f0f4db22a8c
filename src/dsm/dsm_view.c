/* dsm_view.c — the segment's mappings on one node, each an address space
 * with its own userfaultfd (docs/dsm.md, "Transitions and their kernel
 * operations"). The memfd's page cache is shared by all of them: a punched
 * hole leaves every mapping at once, but mapping a present page
 * (UFFDIO_CONTINUE) and write protection are per address space. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/userfaultfd.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>
#include "dsm/dsm-int.h"
#include "lib/log.h"

#ifndef UFFDIO_CONTINUE_MODE_WP
#define UFFDIO_CONTINUE_MODE_WP ((__u64)1 << 1) /* Linux 6.5; Debian 12's headers are 6.1 */
#endif
#ifndef UFFD_FEATURE_POISON                     /* Linux 6.6 */
#define UFFD_FEATURE_POISON (1 << 14)
#define _UFFDIO_POISON 0x08
struct uffdio_poison {
	struct uffdio_range range;
	__u64 mode;
	__s64 updated;
};
#define UFFDIO_POISON _IOWR(UFFDIO, _UFFDIO_POISON, struct uffdio_poison)
#endif

static struct uffdio_range range_of(const struct dsm_view *v, uint64_t page)
{
	return (struct uffdio_range){ .start = v->base + page * DSM_PAGE_SIZE, .len = DSM_PAGE_SIZE };
}

static int view_wp(const struct dsm_view *v, uint64_t page, bool protect)
{
	struct uffdio_writeprotect wp = { .range = range_of(v, page),
		.mode = protect ? UFFDIO_WRITEPROTECT_MODE_WP : 0 };
	return ioctl(v->uffd, UFFDIO_WRITEPROTECT, &wp) < 0 ? -errno : 0;
}

/* Errors from a view whose process is gone or unmapped the segment are
 * expected (it is detached soon after); only view 0's are news. */
static void view_err(int view, const char *what, uint64_t page, int err)
{
	if (view == 0)
		log_error("dsm: %s page %" PRIu64 ": %s", what, page, strerror(err));
	else
		log_debug("dsm: view %d: %s page %" PRIu64 ": %s", view, what, page, strerror(err));
}

void dsm_view_map(struct dsm_node *n, int view, uint64_t page)
{
	const struct dsm_view *v = &n->views[view];
	bool writable = n->copy[page].state == DSM_WRITE;
	struct uffdio_continue c = { .range = range_of(v, page),
		.mode = writable ? 0 : UFFDIO_CONTINUE_MODE_WP };
	if (ioctl(v->uffd, UFFDIO_CONTINUE, &c) == 0)
		return;
	if (errno != EEXIST) {
		view_err(view, "UFFDIO_CONTINUE", page, errno);
		return;
	}
	/* Already mapped (an upgrade, or a fault seen twice): set the
	 * protection, which wakes when it un-protects; wake in any case. */
	int r = view_wp(v, page, !writable);
	if (r < 0)
		view_err(view, "UFFDIO_WRITEPROTECT", page, -r);
	if (!writable || r < 0) {
		struct uffdio_range rg = range_of(v, page);
		if (ioctl(v->uffd, UFFDIO_WAKE, &rg) < 0)
			view_err(view, "UFFDIO_WAKE", page, errno);
	}
}

/* The first view that pages are mapped in: 1 when the node's own
 * mapping is never touched (its uffd only stays registered). */
static int first_view(const struct dsm_node *n)
{
	return n->cfg.own_map_unused ? 1 : 0;
}

void dsm_view_map_all(struct dsm_node *n, uint64_t page)
{
	for (int i = first_view(n); i < DSM_MAX_VIEWS; i++)
		if (n->views[i].uffd >= 0)
			dsm_view_map(n, i, page);
}

void dsm_view_poison(struct dsm_node *n, int view, uint64_t page)
{
	for (int i = view < 0 ? 0 : view; i < (view < 0 ? DSM_MAX_VIEWS : view + 1); i++) {
		const struct dsm_view *v = &n->views[i];
		if (v->uffd < 0)
			continue;
		struct uffdio_poison p = { .range = range_of(v, page) };
		if (ioctl(v->uffd, UFFDIO_POISON, &p) < 0 && errno != EEXIST)
			view_err(i, "UFFDIO_POISON", page, errno);
		struct uffdio_range rg = range_of(v, page);
		ioctl(v->uffd, UFFDIO_WAKE, &rg);
	}
}

void dsm_view_protect_all(struct dsm_node *n, uint64_t page)
{
	for (int i = first_view(n); i < DSM_MAX_VIEWS; i++) {
		if (n->views[i].uffd < 0)
			continue;
		int r = view_wp(&n->views[i], page, true);
		if (r < 0)
			view_err(i, "UFFDIO_WRITEPROTECT", page, -r);
	}
}

static void read_faults(struct dsm_node *n, int view)
{
	const struct dsm_view *v = &n->views[view];
	for (;;) {
		struct uffd_msg m[16];
		ssize_t r = read(v->uffd, m, sizeof m);
		if (r <= 0)
			return;
		for (size_t i = 0; i < (size_t)r / sizeof m[0]; i++) {
			if (m[i].event == UFFD_EVENT_FORK) {
				/* A process of this view forked (UFFD_FEATURE_EVENT_FORK):
				 * the child maps the segment at the same address through
				 * its own userfaultfd, installed here by this read. */
				int fd = (int)m[i].arg.fork.ufd;
				int child = dsm_node_attach(n, fd, v->base);
				if (child < 0) {
					log_warn("dsm: segment %" PRIu64 ": no view left for a forked child; "
						 "its accesses to the segment wait", n->cfg.seg);
					close(fd);
				} else if (n->fork_fn) {
					n->fork_fn(n->fork_ctx, view, child);
				}
				continue;
			}
			if (m[i].event != UFFD_EVENT_PAGEFAULT)
				continue;
			uint64_t addr = m[i].arg.pagefault.address, flags = m[i].arg.pagefault.flags;
			if (addr < v->base || addr - v->base >= n->size)
				continue;
			dsm_on_fault(n, view, (addr - v->base) / DSM_PAGE_SIZE,
					flags & (UFFD_PAGEFAULT_FLAG_WRITE | UFFD_PAGEFAULT_FLAG_WP));
		}
	}
}

int dsm_node_fault(struct dsm_node *n)
{
	struct epoll_event ev[DSM_MAX_VIEWS];
	n->now = dsm_now_ns();
	int k = epoll_wait(n->epfd, ev, DSM_MAX_VIEWS, 0);
	if (k < 0)
		return errno == EINTR ? 0 : -errno;
	for (int i = 0; i < k; i++)
		if (n->views[ev[i].data.u32].uffd >= 0)
			read_faults(n, (int)ev[i].data.u32);
	return 0;
}

/* Views whose address space is gone (the process exited or exec'd: the
 * userfaultfd's mm has no users left, its ioctls fail with ESRCH) are
 * dropped. The probe re-applies page 0's protection as it stands. */
static void sweep(struct dsm_node *n)
{
	for (int v = 1; v < DSM_MAX_VIEWS; v++)
		if (n->views[v].uffd >= 0 &&
				view_wp(&n->views[v], 0, n->copy[0].state != DSM_WRITE) == -ESRCH)
			dsm_node_detach(n, v);
}

int dsm_node_view_probe(struct dsm_node *n, int view)
{
	if (view <= 0 || view >= DSM_MAX_VIEWS || n->views[view].uffd < 0)
		return -ENOENT;
	return view_wp(&n->views[view], 0, n->copy[0].state != DSM_WRITE);
}

void dsm_node_on_fork(struct dsm_node *n, dsm_fork_fn fn, void *ctx)
{
	n->fork_fn = fn;
	n->fork_ctx = ctx;
}

int dsm_node_views_free(struct dsm_node *n)
{
	int k = 0;
	for (int v = 0; v < DSM_MAX_VIEWS; v++)
		k += n->views[v].uffd < 0;
	if (k)
		return k;
	/* Only when full: a view swept here may still be named by its
	 * attach in krgd, which detaches it (by id) a moment later. */
	sweep(n);
	for (int v = 0; v < DSM_MAX_VIEWS; v++)
		k += n->views[v].uffd < 0;
	return k;
}

int dsm_node_attach(struct dsm_node *n, int uffd, uint64_t base)
{
	int v = 0;
	while (v < DSM_MAX_VIEWS && n->views[v].uffd >= 0)
		v++;
	if (v == DSM_MAX_VIEWS) {
		sweep(n);
		for (v = 0; v < DSM_MAX_VIEWS && n->views[v].uffd >= 0;)
			v++;
	}
	if (v == DSM_MAX_VIEWS)
		return -ENOSPC;
	struct epoll_event ev = { .events = EPOLLIN, .data.u32 = (uint32_t)v };
	if (epoll_ctl(n->epfd, EPOLL_CTL_ADD, uffd, &ev) < 0)
		return -errno;
	n->views[v].uffd = uffd;
	n->views[v].base = base;
	/* Pages this node already holds are mapped as the faults come. */
	return v;
}

void dsm_node_detach(struct dsm_node *n, int view)
{
	if (view < 0 || view >= DSM_MAX_VIEWS || n->views[view].uffd < 0)
		return;
	epoll_ctl(n->epfd, EPOLL_CTL_DEL, n->views[view].uffd, NULL);
	close(n->views[view].uffd);
	n->views[view].uffd = -1;
}

int dsm_view_init(struct dsm_node *n)
{
	n->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (n->epfd < 0)
		return -errno;
	n->map = mmap(NULL, n->size, PROT_READ | PROT_WRITE, MAP_SHARED, n->memfd, 0);
	if (n->map == MAP_FAILED)
		return -errno;
	int uffd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
	if (uffd < 0)
		return -errno;
	struct uffdio_api api = { .api = UFFD_API,
		.features = UFFD_FEATURE_MISSING_SHMEM | UFFD_FEATURE_MINOR_SHMEM |
			UFFD_FEATURE_WP_HUGETLBFS_SHMEM | UFFD_FEATURE_POISON };
	struct uffdio_register reg = {
		.range = { .start = (uintptr_t)n->map, .len = n->size },
		.mode = UFFDIO_REGISTER_MODE_MISSING | UFFDIO_REGISTER_MODE_MINOR |
			UFFDIO_REGISTER_MODE_WP,
	};
	uint64_t need = (1ull << _UFFDIO_CONTINUE) | (1ull << _UFFDIO_WRITEPROTECT) |
		(1ull << _UFFDIO_WAKE);
	int r = 0;
	if (ioctl(uffd, UFFDIO_API, &api) < 0 && errno == EINVAL) {
		/* Before Linux 6.6: no poison; a lost page then waits instead of SIGBUS. */
		close(uffd);
		uffd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
		if (uffd < 0)
			return -errno;
		api = (struct uffdio_api){ .api = UFFD_API, .features = UFFD_FEATURE_MISSING_SHMEM |
			UFFD_FEATURE_MINOR_SHMEM | UFFD_FEATURE_WP_HUGETLBFS_SHMEM };
		if (ioctl(uffd, UFFDIO_API, &api) < 0)
			r = -errno;
	}
	if (r == 0 && ioctl(uffd, UFFDIO_REGISTER, &reg) < 0)
		r = -errno;
	else if ((reg.ioctls & need) != need)
		r = -ENOSYS;
	if (r == 0)
		r = dsm_node_attach(n, uffd, (uintptr_t)n->map);
	if (r < 0) {
		close(uffd);
		return r;
	}
	return 0;
}

void dsm_view_fini(struct dsm_node *n)
{
	for (int i = 0; i < DSM_MAX_VIEWS; i++)
		dsm_node_detach(n, i);
	if (n->map && n->map != MAP_FAILED)
		munmap(n->map, n->size);
	if (n->epfd >= 0)
		close(n->epfd);
}
