/* intercept.h — System V IPC syscalls of krg processes served by krgd
 * (docs/ipc.md, "Interception").
 *
 * Every process of a krg application carries a seccomp filter that sends
 * msgget, msgsnd, msgrcv, msgctl, semget, semop, semtimedop, semctl,
 * shmget, shmctl and shmat to
 * a listener in krgd (user notification) and lets every other syscall run
 * natively. Two halves:
 *
 *  - the filter (intercept_filter.c, intercept_fdpass.c; lib_ipc_filter,
 *    no dependencies): the BPF program, installing it in the calling
 *    process (async-signal-safe: used between fork and exec), recognising
 *    it in a checkpointed process, and passing the listener fd to krgd;
 *  - the listener (intercept_svc.h; lib_ipc_intercept, on libuv): one per
 *    application tree, it reads the caller's arguments and credentials,
 *    hands the call to a backend (the cluster's IPC service) and writes
 *    the answer back.
 *
 * Architectures: the filter checks seccomp_data.arch. x86_64 calls go to
 * krgd. x32 (nr | __X32_SYSCALL_BIT) and i386 (ipc(2) with a msg/sem call,
 * and the direct i386 msg/sem syscalls) fail with ENOSYS: krg does not
 * serve those layouts, and letting them through would silently hand the
 * program node-local objects. System V shm: shmget and shmctl are served
 * cluster-wide like msg and sem; shmat maps the node's memfd of the
 * segment, and fails with ENOSYS when another node has it attached until
 * the DSM serves it (docs/dsm.md, "Node-local segments"): a second
 * node's own copy would not be coherent. shmdt unmaps krgd's attaches. */
#pragma once
#include <linux/filter.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* ---- the filter (lib_ipc_filter) ---- */

/* Instructions in krg's filter program, exactly (a checkpoint compares the
 * length of a process's filter with it). */
#define KRG_INTERCEPT_FILTER_LEN 71
/* The same with getsockname, getpeername and getsockopt sent to the listener too:
 * installed by the restore in a migrant with forwarded sockets, whose
 * addresses its krgd answers (docs/migration.md, "Forwarded fds"). */
#define KRG_INTERCEPT_FILTER_SOCK_LEN 74

/* The filter sends execve and execveat to the listener too (placement at
 * exec, docs/sched.md), except an execve whose 4th argument (r10, unused
 * by execve) is this value: krg's own execs in an application's process
 * (a deputy, a ghost, the first program), which need no answer from a
 * krgd that may be the one waiting for them. */
#define KRG_INTERCEPT_EXEC_PASS 0x6b72672d65786563ULL /* "krg-exec" */

/* krg's filter program: the same bytes every time (a checkpoint compares
 * a process's filter with it). Returns the number of instructions. */
size_t krg_intercept_filter(struct sock_filter out[KRG_INTERCEPT_FILTER_LEN]);
/* Either program: sockets, the one of a migrant with forwarded sockets. */
size_t krg_intercept_filter_for(struct sock_filter out[KRG_INTERCEPT_FILTER_SOCK_LEN], bool sockets);

/* Is this filter program (from PTRACE_SECCOMP_GET_FILTER) krg's (either)? */
bool krg_intercept_filter_is_ours(const struct sock_filter *prog, size_t n);

/* Install the filter in the calling thread (and so in every process it
 * will fork and exec). Needs CAP_SYS_ADMIN (krgd's exec child, still
 * root): no PR_SET_NO_NEW_PRIVS, so setuid programs keep working.
 * Async-signal-safe. Returns the listener fd (close-on-exec), or -errno. */
int krg_intercept_install(void);

/* Pass a listener fd to krgd over a unix socket (SCM_RIGHTS).
 * Async-signal-safe. 0 or -errno. */
int krg_intercept_send_fd(int sock, int fd);

/* The same channel carries, besides listeners (tag 'L'), the DSM's side
 * of a migration (docs/dsm.md, "Migration of an attached process"): the holder
 * restoring a migrant asks krgd for this node's object of a segment (tag
 * 'S', krgd answers 'S' with ret and, if 0, the memfd), then hands krgd
 * the userfaultfd the restore made for each re-attached mapping (tag 'D'):
 * krgd serves it as a view of the segment and counts the attach at the
 * segment's home. Between krgd and its own child: a plain struct. */
struct krg_intercept_dsm_msg {
	uint64_t seg, npages, addr, len;
	int32_t pid;    /* 'D': the migrant, as this node sees it */
	uint32_t prot;  /* 'D': PROT_* of its mapping (no PROT_WRITE: attached SHM_RDONLY) */
	int32_t ret;    /* 'S' answer: 0 or -errno */
};
/* One message: tag, len bytes of data, and fd (-1: none). 0 or -errno. */
int krg_intercept_send_msg(int sock, char tag, const void *data, size_t len, int fd);
/* Receive one (wait: block until one comes): its tag, up to cap bytes of
 * data (*len), its fd or -1 (close-on-exec). 0; -EAGAIN (not wait)
 * if nothing is waiting; 0 with *tag 0 at end of stream; -errno. */
int krg_intercept_recv_msg(int sock, bool wait, char *tag, void *data, size_t cap, size_t *len, int *fd);
