/* dsm-int.h — inside the DSM node: the home's directory (dsm_home.c) and
 * the node's copies and kernel operations (dsm_node.c). */
#pragma once
#include <stdbool.h>
#include "dsm/dsm.h"
#include "dsm.pb-c.h"

/* LOST: the page's home died; every access gets SIGBUS (UFFDIO_POISON). */
enum dsm_state { DSM_INVALID = 0, DSM_READ = 1, DSM_WRITE = 2, DSM_LOST = 3 };

/* A request waiting at a page's home. */
struct dsm_req {
	struct dsm_req *next;
	uint32_t from;
	bool write;
};

/* The home's directory entry of one page (only pages homed here are used). */
struct dsm_dir {
	int32_t writer;           /* node holding the write copy, or -1 */
	uint64_t copyset;         /* nodes holding read copies (bit per node) */
	struct dsm_req *head, *tail; /* FIFO: head is the request in progress when busy */
	bool busy;
	bool deferred;            /* head waits for the residency */
	uint32_t acks;            /* INVAL acks still expected */
	uint8_t *data;            /* the page for the grant, or NULL */
	uint8_t *kept;            /* the page as it was when a writer elsewhere took
	                           * it: what comes back if that writer dies */
	uint32_t last_grantee;
	uint64_t resident_until;  /* the last grantee keeps the page until then */
};

/* This node's copy of one page. */
struct dsm_copy {
	uint8_t state;            /* enum dsm_state */
	uint8_t pending;          /* 0, or DSM_READ/DSM_WRITE requested */
	uint32_t asked_us;        /* when the pending request left (low bits of us) */
};

/* One address space mapping the segment: its userfaultfd, and where the
 * segment starts in it. View 0 is the node's own mapping. */
#define DSM_MAX_VIEWS 64
struct dsm_view {
	int uffd;                 /* -1: unused */
	uint64_t base;
};

struct dsm_node {
	struct dsm_config cfg;
	dsm_send_fn send;
	void *ctx;
	int memfd;
	int epfd;                 /* every view's uffd */
	struct dsm_view views[DSM_MAX_VIEWS];
	uint8_t *map;             /* view 0 */
	size_t size;
	struct dsm_copy *copy;    /* npages */
	struct dsm_dir *dir;      /* npages (entries used at the home only) */
	uint64_t ndeferred;
	struct dsm_stats st;
	uint64_t now;             /* of the entry point running (tick: the caller's) */
	uint64_t dead;            /* nodes declared down (bit per node) */
	uint64_t ra_next;         /* read-ahead: the page after the last read miss, */
	uint64_t ra_end;          /* and after the last page asked for ahead */
	dsm_fork_fn fork_fn;      /* dsm_node_on_fork */
	void *fork_ctx;
};

/* dsm_node.c: the node side. */
/* dsm_node_deliver of a message unpacked already (krgd reads its segment
 * first: one unpack, not two). m may be NULL (refused). */
int dsm_node_deliver_msg(struct dsm_node *n, uint32_t from, const Krg__Dsm__Msg *m);
int dsm_send_msg(struct dsm_node *n, uint32_t to, Krg__Dsm__Type type, uint64_t page,
		bool flag, const uint8_t *data);
void dsm_copy_on_grant(struct dsm_node *n, uint64_t page, bool writable, const uint8_t *data);
int dsm_read_page(struct dsm_node *n, uint64_t page, uint8_t *buf);
int dsm_write_page(struct dsm_node *n, uint64_t page, const uint8_t *buf);
/* Drop or downgrade this node's copy; buf (if not NULL) gets the data first. */
int dsm_copy_give_up(struct dsm_node *n, uint64_t page, bool invalidate, uint8_t *buf);

void dsm_on_fault(struct dsm_node *n, int view, uint64_t page, bool write);

/* dsm_view.c: the kernel side, in every address space that maps the segment. */
int dsm_view_init(struct dsm_node *n);    /* view 0: the node's own mapping */
void dsm_view_fini(struct dsm_node *n);
/* Map the present page in one view as the copy's state allows; wake its waiters. */
void dsm_view_map(struct dsm_node *n, int view, uint64_t page);
void dsm_view_map_all(struct dsm_node *n, uint64_t page);
/* Write-protect the page in every view (before a downgrade or invalidation). */
void dsm_view_protect_all(struct dsm_node *n, uint64_t page);
/* Poison the page in one view or all (-1): SIGBUS on access, waiters woken. */
void dsm_view_poison(struct dsm_node *n, int view, uint64_t page);

/* dsm_home.c: the home side. */
void dsm_home_request(struct dsm_node *n, uint64_t page, uint32_t from, bool write);
int dsm_home_ack(struct dsm_node *n, uint64_t page, uint32_t from, const uint8_t *data);
void dsm_home_run(struct dsm_node *n, uint64_t page);
