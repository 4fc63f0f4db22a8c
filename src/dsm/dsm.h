/* dsm.h — distributed shared memory: one segment's pages kept sequentially
 * consistent across nodes, one writer or many readers, write-invalidate
 * (Li & Hudak's fixed distributed manager). docs/dsm.md.
 *
 * On each node a segment is one local memfd and one mapping of it
 * registered with userfaultfd (MISSING | MINOR | WP). A present page of the
 * memfd is a valid copy, a hole an invalid one; read copies are mapped
 * write-protected. The node's agent moves pages with pread/pwrite on the
 * memfd and never touches the mapping, so it cannot fault on itself.
 *
 * The node is an event machine with no thread of its own: the caller polls
 * dsm_node_uffd() and its transport, and calls dsm_node_fault(),
 * dsm_node_deliver() and dsm_node_tick(). Messages leave through the
 * send callback (to another node: never to this one). All entry points
 * from one thread. dsm_sock.h runs a node over sockets on a thread.
 *
 * Needs Linux 6.5+ (UFFDIO_CONTINUE_MODE_WP) and CAP_SYS_PTRACE (a
 * userfaultfd that also sees the kernel's own accesses to the mapping).
 */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define DSM_PAGE_SIZE 4096u
#define DSM_MAX_NODES 64u

struct dsm_config {
	uint64_t seg;             /* segment id, the same on every node */
	uint32_t self;            /* this node, < nnodes */
	uint32_t nnodes;          /* nodes sharing the segment, <= DSM_MAX_NODES */
	uint64_t npages;          /* segment size in pages */
	uint64_t min_residency_ns;/* a page granted stays at least this long (0: none) */
	bool own_map_unused;      /* nobody touches dsm_node_addr() (krgd: the processes
	                           * are views): pages are never mapped there, so a
	                           * downgrade or a punch has one address space less
	                           * to write-protect and unmap */
	uint32_t readahead;       /* pages asked for ahead of a sequential read miss
	                           * (0: none): docs/dsm.md, "Read-ahead" */
};

/* Send buf (len bytes, a krg.dsm.Msg) to node `to` (never self). 0 or
 * -errno; a failure is counted and the message lost (the link is down). */
typedef int (*dsm_send_fn)(void *ctx, uint32_t to, const uint8_t *buf, size_t len);

struct dsm_stats {
	uint64_t read_miss;       /* requests sent or served locally for a read */
	uint64_t write_miss;      /* write requests (misses and upgrades) */
	uint64_t fetched;         /* FETCHes answered (this node was the writer) */
	uint64_t invalidated;     /* copies dropped */
	uint64_t grants;          /* grants installed */
	uint64_t deferred;        /* requests held at this home by the residency */
	uint64_t rejected;        /* peers' messages refused */
	uint64_t send_errors;
	uint64_t recovered;       /* pages of a dead writer restored from the home's last copy */
	uint64_t lost;            /* pages whose home died: SIGBUS on access here */
	uint64_t prefetched;      /* read requests sent ahead of a sequential reader
	                           * (counted in read_miss too) */
	/* Where a miss's time goes (docs/dsm.md, "Figures"), summed in ns: */
	uint64_t rwaits, rwait_ns;  /* read misses sent to another node: fault seen -> grant in */
	uint64_t wwaits, wwait_ns;  /* write misses and upgrades, the same */
	uint64_t install_ns;        /* grant in -> page mapped in every view (those misses) */
	uint64_t serves, serve_ns;  /* grants sent by this home: the message that completed
	                             * the request in -> the grant out */
};

struct dsm_node;

/* 0 or -errno (-EINVAL bad config, -EPERM/-ENOSYS no userfaultfd, ...). */
int dsm_node_new(const struct dsm_config *cfg, dsm_send_fn send, void *ctx,
		struct dsm_node **out);
void dsm_node_free(struct dsm_node *n);

/* The segment's mapping on this node: what the application uses. */
void *dsm_node_addr(const struct dsm_node *n);
size_t dsm_node_size(const struct dsm_node *n);
/* Readable when faults are waiting in any view (an epoll fd). */
int dsm_node_uffd(const struct dsm_node *n);

/* Another address space that maps the segment (a process attached on this
 * node): uffd was created in that process (krgd injects the calls) and
 * registers [base, base + size) — a MAP_SHARED mapping of dsm_node_memfd()
 * — with MISSING | MINOR | WP and the features MISSING_SHMEM, MINOR_SHMEM,
 * WP_HUGETLBFS_SHMEM. The node owns uffd from here on. The view id, or
 * -ENOSPC (DSM_MAX_VIEWS), -errno. */
int dsm_node_attach(struct dsm_node *n, int uffd, uint64_t base);
/* Views free for dsm_node_attach (views of processes gone are dropped
 * first: their address space has no users left). */
int dsm_node_views_free(struct dsm_node *n);
/* The process detached or ended: forget the view (closes its uffd). */
void dsm_node_detach(struct dsm_node *n, int view);
/* Whether view's mapping is still there: 0 yes; -ESRCH its address space
 * is gone (the process exited, or exec'd); another -errno: the range is
 * not registered there (unmapped). */
int dsm_node_view_probe(struct dsm_node *n, int view);
/* A process of view `parent` forked: the child's mapping is view `child`
 * (UFFD_EVENT_FORK), served from now on. */
typedef void (*dsm_fork_fn)(void *ctx, int parent, int child);
void dsm_node_on_fork(struct dsm_node *n, dsm_fork_fn fn, void *ctx);
/* The local object backing the segment (present page = valid copy). */
int dsm_node_memfd(const struct dsm_node *n);

/* Handle every fault waiting on the userfaultfds. 0 or -errno. */
int dsm_node_fault(struct dsm_node *n);
/* A message from node `from`. 0, or -EBADMSG (refused, counted). */
int dsm_node_deliver(struct dsm_node *n, uint32_t from, const uint8_t *buf, size_t len);
/* Run requests held by the residency whose time has come. now: CLOCK_MONOTONIC ns. */
void dsm_node_tick(struct dsm_node *n, uint64_t now);
/* Earliest time tick has work, or UINT64_MAX. */
uint64_t dsm_node_next_deadline(const struct dsm_node *n);

void dsm_node_stats(const struct dsm_node *n, struct dsm_stats *out);

/* Node `node` is gone (membership). For the pages this node homes nothing
 * waits for it any more: its requests are dropped, a FETCH or INVAL
 * outstanding there counts as answered, and a page it was writing comes
 * back as the home's last copy — stale by what it wrote since it took the
 * page (counted in recovered). Pages homed at the dead node are not
 * re-homed yet: they are lost, poisoned in every view (SIGBUS on access,
 * threads waiting for them woken to it; counted in lost). docs/dsm.md,
 * "Failures". Needs Linux 6.6 (UFFDIO_POISON) for the SIGBUS. */
void dsm_node_down(struct dsm_node *n, uint32_t node);

/* The home of a page (a hash of segment and page over the nodes). */
uint32_t dsm_page_home(uint64_t seg, uint64_t page, uint32_t nnodes);

uint64_t dsm_now_ns(void);
