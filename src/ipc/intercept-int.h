/* intercept-int.h — internals of the IPC listener service
 * (intercept_svc.h): a notification decoded into the engine's request,
 * the caller's credentials, the answer written back. */
#pragma once
#include <linux/seccomp.h>
#include "ipc/intercept_svc.h"

/* One call: the request and everything it points to, owned. */
struct icall {
	int nr;                       /* x86_64 syscall number */
	struct krg_ipc_req req;       /* pointers below */
	struct krg_ipc_caller who;    /* cred.groups: groups below */
	uint8_t *text;                /* msgsnd: the text */
	struct krg_ipc_sembuf *sops;  /* semop */
	uint16_t *vals;               /* SETALL */
	uint32_t *groups;
	uint64_t out_addr;            /* msgrcv's msgp, *ctl's buf, GETALL's array */
	bool sem_undo;                /* a semop with SEM_UNDO (any semop or semctl is followed to its exit too) */
	pid_t tgid;                   /* the caller's process as krgd sees it (icall_creds) */
};

/* Decode notification n (x86_64) into c, reading the caller's memory with
 * process_vm_readv. 0, or -errno to answer at once: Linux's checks that
 * come before the object is looked up (sizes against lim, then EFAULT),
 * ENOSYS for a call that is not ours, ESRCH if the caller is gone. */
int icall_decode(const struct seccomp_notif *n, const struct krg_ipc_limits *lim, struct icall *c);
/* The caller's credentials and pids from /proc/TID/status into c->who
 * and c->tgid (proc_id left 0). 0 or -errno (ESRCH: gone, ENOMEM: too many groups). */
int icall_creds(pid_t tid, struct icall *c);
/* Write reply r's outputs into the caller; the syscall's result: r->ret,
 * or -EFAULT when the caller's buffer could not take them (as Linux, a
 * message received into a bad buffer is consumed all the same). */
long icall_write_reply(pid_t tid, const struct icall *c, const struct krg_ipc_reply *r);
void icall_free(struct icall *c);

/* Copy len bytes from process pid at addr. 0, -EFAULT (also for a
 * partial copy: *got says how much), -ESRCH. */
int icall_read(pid_t pid, uint64_t addr, void *buf, size_t len, size_t *got);
int icall_write(pid_t pid, uint64_t addr, const void *buf, size_t len);
/* The cheap part of them, from a pidfd of the calling thread
 * (PIDFD_GET_INFO: ids, tgid; no groups, no capabilities): 0, -ESRCH,
 * -EOPNOTSUPP (kernel before 6.13). c->who.pid is the tgid as krgd sees
 * it: the caller's own view only when it is in krgd's pid namespace. */
int icall_creds_pidfd(int pidfd, struct icall *c);

/* ---- intercept_restart.c: a restart after a handler, or without ---- */
#define IRESTART_MAX_STALE 4
struct irestart_frame {
	size_t off;                   /* in the search area below the red zone */
	uint64_t hash;                /* of its saved registers */
};
/* Taken when a call parks: its stack pointer and the frames of this call
 * already below it (stale: they do not count later). */
struct irestart_probe {
	bool valid;
	uint64_t sp;
	size_t nstale;
	struct irestart_frame stale[IRESTART_MAX_STALE];
};
/* The thread is back with call d after its parked call was dropped: did
 * a signal handler run in between, the kernel restarting the call
 * (SA_RESTART)? Then Linux's answer is EINTR. */
bool irestart_after_handler(pid_t tid, const struct seccomp_data *d, const struct irestart_probe *p);
/* The stack pointer of thread tid, blocked in a syscall. */
int irestart_sp(pid_t tid, uint64_t *sp);
/* The same from /proc/TID/syscall's text. */
int irestart_parse_sp(const char *buf, uint64_t *sp);
/* Take the probe of call d, parked with stack pointer sp. */
void irestart_probe_at(pid_t tid, const struct seccomp_data *d, uint64_t sp, struct irestart_probe *p);

/* ---- intercept_tcache.c: what the listener keeps per calling thread ----
 * Every call costs the listener a pidfd of its thread (the cheap
 * credentials), and every call that parks /proc/TID/syscall and a 32 KiB
 * read of the stack below it (the restart probe): together about 40% of
 * krgd's time per call, measured (docs/ipc.md). The cache keeps the two
 * files open per thread, and the probes of its last ITCACHE_PROBES
 * distinct parked calls: a thread
 * parked again at the same stack pointer in the same call with the same
 * arguments has the same stale frames, as long as none of its calls was
 * interrupted since (a new frame of this call is only ever written by a
 * handler that interrupted such a call, and every such interruption is
 * seen here: the call is dropped, its answer undelivered, or it is
 * answered EINTR; each of those forgets the thread). A tid reused by a
 * new thread is caught by its old files: both answer ESRCH for a task
 * that is gone, and the entry starts again. Direct-mapped by tid,
 * bounded: ITCACHE_SIZE entries, two fds each. */
#define ITCACHE_SIZE 64
/* Probes kept per thread: a call whose home is on another node waits for
 * its answer like a parked one and is probed too, so a ping-pong parks
 * its msgsnd and its msgrcv (or its two semops) in turn; one slot would
 * miss every time. */
#define ITCACHE_PROBES 4
struct itcache_probe {
	bool probed;                  /* probe and key hold a parked call's */
	uint64_t sp;
	struct seccomp_data key;
	struct irestart_probe probe;
};
struct itcache_ent {
	pid_t tid;                    /* 0: free */
	int pidfd;                    /* -1: not open */
	int sysfd;                    /* /proc/TID/syscall, -1: not open */
	unsigned next;                /* slot the next new probe replaces */
	struct itcache_probe p[ITCACHE_PROBES];
};
struct itcache {
	struct itcache_ent e[ITCACHE_SIZE];
	uint64_t hits, misses;        /* probes reused, taken */
};
void itcache_init(struct itcache *tc);
void itcache_clear(struct itcache *tc);
/* icall_creds_pidfd with the thread's pidfd kept open. */
int itcache_creds_fast(struct itcache *tc, pid_t tid, struct icall *c);
/* irestart_probe_at of a call that parks, reused when nothing changed. */
void itcache_probe(struct itcache *tc, pid_t tid, const struct seccomp_data *d, struct irestart_probe *p);
/* A call of tid was interrupted or not answered: its probe is stale. */
void itcache_forget(struct itcache *tc, pid_t tid);

/* System V segments attached on this node (intercept_shm.c). */
struct ishm_seg {
	struct ishm_seg *next;
	int32_t id, cpid;             /* id and creator: a reused id is another segment */
	uint64_t size;
	int fd;                       /* the node's pages: a memfd */
	uint64_t attached;            /* attaches served on this node */
};
/* Segment id of creator cpid and size, if this node holds it (a stale
 * entry of a reused id is dropped). */
struct ishm_seg *ishm_find(struct ishm_seg **list, int32_t id, int32_t cpid, uint64_t size);
/* The same, made (a fresh zeroed memfd) when missing: 0 or -errno. */
/* src_fd >= 0: the pages are that object's (a DSM segment's memfd, dup'd). */
int ishm_get(struct ishm_seg **list, int32_t id, int32_t cpid, uint64_t size, int src_fd, struct ishm_seg **out);
/* The segment's cluster-wide name for the DSM: id and creator. */
uint64_t ishm_name(int32_t id, int32_t cpid);
void ishm_free(struct ishm_seg **list);
/* One attach made by krgd: process tgid (as krgd sees it) has segment
 * id's size bytes mapped at addr. */
struct ishm_att {
	struct ishm_att *next;
	pid_t tgid;
	uint64_t addr, size;
	int32_t id;
	uint64_t seg;                 /* ishm_name */
	int view;                     /* the DSM's view of this mapping, or -1 */
	struct krg_ipc_caller who;    /* without groups: for the SHMDT at the home */
};
/* a: filled but next; copied. */
int ishm_att_add(struct ishm_att **list, const struct ishm_att *a);
/* Take the first attach of tgid (any address): NULL if none. */
struct ishm_att *ishm_att_take_any(struct ishm_att **list, pid_t tgid);
/* Take (unlink) the attach of tgid at addr: NULL if none. Freed by the caller. */
struct ishm_att *ishm_att_take(struct ishm_att **list, pid_t tgid, uint64_t addr);
void ishm_att_free(struct ishm_att **list);
