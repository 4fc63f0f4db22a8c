/* ckpt.h — checkpoint/restart of unmodified processes (the public side of
 * src/ckpt; ckpt-int.h is the module's own): an application (a process
 * and its descendants) dumped into an image directory, restored by the
 * caller as its child. See docs/checkpoint.md. */
#pragma once
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

/* Image format version written by this krg; readers refuse others. */
#define CKPT_IMAGE_VERSION 3

/* A failure, in words for a person: the library fills it, the boundary
 * prints it once. Several lines when several things were refused. */
/* Why an fd was refused (ckpt_error.refused): callers that can do
 * something about an fd (a migration proxies it) read these, never the
 * text. */
enum ckpt_refusal_reason {
	CKPT_REFUSED_KIND = 1,      /* a kind krg cannot save (TCP socket, io_uring, ...) */
	CKPT_REFUSED_PEER_OUTSIDE,  /* a pipe or socket end whose other end is outside the process/application */
	CKPT_REFUSED_SHARED,        /* one pipe end opened again as a separate file */
};

struct ckpt_refusal {
	pid_t pid;
	int fd;
	enum ckpt_refusal_reason reason;
};

#define CKPT_MAX_REFUSALS 64

struct ckpt_error {
	char msg[2048];
	/* A dump refused for its fds: one line each in msg, and here (the
	 * first CKPT_MAX_REFUSALS; refused_more counts the rest). */
	size_t n_refused;
	size_t refused_more;
	struct ckpt_refusal refused[CKPT_MAX_REFUSALS];
};

struct ckpt_dump_opts {
	bool kill;                 /* kill the application after a good dump */
	int kill_sig;              /* with kill: the signal sent to every process (0: SIGKILL) */
	bool stop;                 /* leave every process stopped (SIGSTOP) after a good dump */
	bool snapshot_files;       /* save regular files open for writing; restart writes them back */
	bool ignore_unsupported;   /* drop unsupported fds (closed at restart) */
	const char *description;   /* borrowed; may be NULL */
	uint32_t view_home;        /* krgd: the node whose node-local files the application
				    * sees (docs/fsview.md), kept beside the image in the
				    * store (`view`); 0: not recorded */
	bool process_only;         /* this process alone, not its descendants */
	struct ckpt_precopy *precopy;  /* borrowed, may be NULL: the root's memory was pre-copied
					  there (ckpt_precopy_*); only what was written since is read */
	bool has_root_pidfd;       /* root_pidfd: a pidfd of the process the caller checked
				    * (owner, capabilities); the dump fails rather than
				    * freeze another process that got its pid since */
	int root_pidfd;
	bool root_stopped_by_caller; /* the caller stopped the root (SIGSTOP) to freeze it: that
				      * stop is not the application's and is not saved */
	const struct ckpt_track *track; /* borrowed, n_track of them: write trackers of the application's
					 * processes (ckpt_track_take), for an incremental checkpoint */
	size_t n_track;
	const char *parent;        /* with track: the image the trackers' state is relative to (their last
				    * dump, which must have succeeded), or NULL: a full image that arms
				    * them. The image records the parent by its directory's name: it must
				    * end up next to it (STORE/<id>/v3 beside v4) */
	const uint8_t *sysv;       /* borrowed, may be NULL: a packed krg.ipc.Saved (the cluster's
				    * System V objects the application created), written as sysvipc.img */
	size_t sysv_len;
	bool dsm_follow;           /* a migration: a System V segment of krgd's DSM is saved as
				    * the attachment alone (VMA_DSM, no pages: they stay in the
				    * DSM, docs/dsm.md "Migration of an attached process"); else refused */
};

/* Incremental checkpoints (incr.c; docs/checkpoint.md "Incremental
 * images"): a write tracker is a userfaultfd made in process pid, in
 * asynchronous write-protect mode, that the caller keeps open between
 * checkpoints (closing it drops the tracking). A dump with trackers and a
 * parent saves only the pages written since the parent, and references
 * the parent's copies of the others; one with trackers and no parent is
 * full and starts the tracking. A failed dump stops the tracking of
 * every area it touched, so the next must be a full one or name the same
 * parent again. Root (ptrace). -EOPNOTSUPP: this kernel cannot track. */
struct ckpt_track {
	pid_t pid;
	int uffd;
};
int ckpt_track_take(pid_t pid, int *uffd_out, struct ckpt_error *err);
/* Longest chain of increments an image may build on. */
#define CKPT_MAX_CHAIN 64
/* The parent image an incremental image builds on (a directory next to
 * it): 0 and its name, -ENOENT for a full image, or -errno. */
int ckpt_image_parent(const char *dir, char *name, size_t len);

/* Dump process `pid` and its descendants (the application) into `dir`
 * (created 0700; must not hold an image). They are left running unless
 * opts->kill. 0 or -errno. */
int ckpt_dump(pid_t pid, const char *dir, const struct ckpt_dump_opts *opts, struct ckpt_error *err);

/* sysvipc.img (sysv.c): the System V objects an image holds, a packed
 * krg.ipc.Saved (ipc.proto). validate: decodes it and checks each object's
 * shape (kind, id, counts, no id twice); n_objs may be NULL. read: -ENOENT
 * when the image has none (no message), else the verified payload
 * (*out malloc'ed). write: the part, into an image being made. */
int ckpt_sysv_validate(const uint8_t *p, size_t len, size_t *n_objs, struct ckpt_error *err);
int ckpt_sysv_read(const char *dir, uint8_t **out, size_t *len, size_t *n_objs, struct ckpt_error *err);
int ckpt_sysv_write(int dirfd, const uint8_t *saved, size_t len, struct ckpt_error *err);

/* Pre-copy, for a live migration (precopy.c): the private anonymous
 * memory of process `pid` is copied into the pages file of image `dir`
 * while it runs, round after round, each round copying what was written
 * since the last (userfaultfd async write-protection + PAGEMAP_SCAN).
 * ckpt_dump with opts->precopy then reads only the pages written since
 * their copy and continues the same file. The file only grows (a page
 * copied again is appended), so its bytes may be sent on as they come.
 * uffd: a userfaultfd made by the process itself (its mm), duplicated to
 * the caller; taken (closed by ckpt_precopy_free, which drops the
 * write-protection). -EOPNOTSUPP: this kernel cannot track writes. */
struct ckpt_precopy;
int ckpt_precopy_start(pid_t pid, int uffd, const char *dir, struct ckpt_precopy **out, struct ckpt_error *err);
/* One round; *bytes: bytes copied (the first round: every present page). */
int ckpt_precopy_round(struct ckpt_precopy *pc, uint64_t *bytes, struct ckpt_error *err);
/* Bytes of memory pre-copy would track in process pid now (nothing done
 * to it: worth making a userfaultfd there?). */
int ckpt_precopy_size(pid_t pid, uint64_t *bytes, struct ckpt_error *err);
/* Bytes of memory present in the tracked areas when it started. */
uint64_t ckpt_precopy_tracked(const struct ckpt_precopy *pc);
/* Size of the pages file written so far (frame head included), 0 once a dump took it. */
uint64_t ckpt_precopy_file_size(const struct ckpt_precopy *pc);
void ckpt_precopy_free(struct ckpt_precopy *pc);
/* Someone else copies (a migration's krgd, straight from the process into
 * the messages it sends): a round then leaves a hole in the pages file
 * for each range it would have copied and calls copy(ctx, addr, len,
 * off) instead (payload offset off; 0 or -errno). Such a page has no copy
 * until ckpt_precopy_copied says what was read there: n pages from addr,
 * put at payload offset off, sums[k] the XXH3-64 of page k, ok[k] false
 * where it could not be read. Ranges are reported in the order given;
 * a page the final dump finds without a reported copy is read then. */
typedef int (*ckpt_precopy_copy_fn)(void *ctx, uint64_t addr, uint64_t len, uint64_t off);
void ckpt_precopy_set_copier(struct ckpt_precopy *pc, ckpt_precopy_copy_fn copy, void *ctx);
void ckpt_precopy_copied(struct ckpt_precopy *pc, uint64_t addr, uint64_t off, size_t n, const uint64_t *sums, const uint8_t *ok);

/* Freeze (SIGSTOP, parents before their children are listed, so nothing
 * forks past it) or thaw (SIGCONT) the application rooted at `pid`, e.g.
 * to copy files it uses while it cannot change them. A frozen application
 * is checkpointed as it is and stays frozen. *count: processes signalled.
 * 0 or -errno. */
int ckpt_app_freeze(pid_t pid, bool freeze, size_t *count, struct ckpt_error *err);
/* The thread of process pid through which /proc/TID/{fd,maps,...}, ptrace
 * and process_vm_* reach the process: pid itself, or a live thread when
 * the leader has exited (pthread_exit in main: a zombie thread, with no
 * files or mm of its own any more). */
pid_t ckpt_live_tid(pid_t pid);

/* A few syscalls run inside a live process by the engine's injector
 * (ptrace.c), for callers outside a dump or restore: the migration worker
 * swaps proxied fds and execs the deputy with it. Attach seizes and
 * interrupts the leader (a live thread if the leader exited); each call
 * runs at a `syscall` instruction of its vdso; detach puts its registers
 * back (a syscall it was stopped in restarts) unless it exec'd, and gives
 * back the signals that showed up meanwhile. Attach always sets *out
 * (NULL only when out of memory): detach it whatever attach returned. */
struct ckpt_inj;
/* 0 or -errno. */
int ckpt_inj_attach(struct ckpt_inj **out, pid_t pid);
/* The syscall's return value (-errno on its failure, and on the
 * injection's). */
long ckpt_inj_call(struct ckpt_inj *j, long nr, long a1, long a2, long a3, long a4, long a5, long a6);
/* Write len bytes at addr of the process. 0 or -errno. */
int ckpt_inj_poke(struct ckpt_inj *j, uint64_t addr, const void *buf, size_t len);
/* The thread the calls run in (the process's pid once it exec'd). */
pid_t ckpt_inj_tid(const struct ckpt_inj *j);
/* An injected execve succeeded: detach leaves its registers as they are. */
bool ckpt_inj_execed(const struct ckpt_inj *j);
/* Let it go and free j (NULL: nothing). */
void ckpt_inj_detach(struct ckpt_inj *j);

/* Release (take false) or take again (true) the file locks that the
 * image in `dir` lists for its root process `pid`, inside that process
 * (stopped or running): a migration hands them to the target and gives
 * them back if it fails. 0 or -errno. */
int ckpt_app_locks(pid_t pid, const char *dir, bool take, struct ckpt_error *err);

/* The pid the image's root process had (> 0), or -errno. */
pid_t ckpt_image_root_pid(const char *dir);
/* The pids of every process of the image (malloc'ed, *n of them), or
 * -errno. */
int ckpt_image_pids(const char *dir, pid_t **out, size_t *n);

/* Verify the whole image in `dir`, then recreate its processes, the root
 * as a child of the caller, running. *pid_out is the root's pid. A tree
 * gets the image's pids back (or fails: restart it in a new pid
 * namespace); a lone process gets another pid if its own is taken. On
 * failure nothing is left running. 0 or -errno. */
int ckpt_restore(const char *dir, pid_t *pid_out, struct ckpt_error *err);

/* A fresh pid namespace for a restart: its init is a reaper (a fork of the
 * caller, pid 1 there) that reaps every orphan and, once told the restored
 * process's status, exits with it (which ends everything left in the
 * namespace). */
struct ckpt_pidns {
	pid_t reaper;  /* in the caller's namespace; 0: none */
	int fd;        /* write end of the reaper's pipe */
	int home;      /* the caller's own pid namespace, to go back to */
};

/* ckpt_restore, but into a new pid namespace (ns != NULL): the caller's
 * next children go there (unshare(CLONE_NEWPID); after the restore child
 * the caller's later children are in its own namespace again), the process and
 * its threads get exactly the image's pid and tids inside it (clone3
 * set_tid; refused if the image's pid is 1) and stay the caller's child,
 * *pid_out being its pid in the caller's namespace. Call
 * ckpt_pidns_finish with its wait status once it is reaped (or on failure,
 * with any status: it is done already). */
int ckpt_restore_ns(const char *dir, struct ckpt_pidns *ns, pid_t *pid_out, struct ckpt_error *err);
/* A child the restored root gets that is not in the image: a live
 * migration's "ghost" of a child left on the process's home node
 * (src/proc/migrate/ghost.c). It is made before the root runs, with `pid`
 * if that is free (else another), every signal blocked (the mask survives
 * exec, so nothing the root sends is lost or kills it before it takes
 * its signals), and exec'd into argv[0] with the caller's fds that are
 * not close-on-exec. */
struct ckpt_extra_child {
	pid_t pid;                /* wanted */
	char *const *argv;        /* borrowed; argv[0] is the path */
	pid_t got;                /* out: its pid in the caller's namespace, 0 if not made */
};

/* Options of a restart. */
struct ckpt_restore_opts {
	const char *replace_tty;  /* --replace-tty: every terminal fd becomes this terminal (a path), and
				     the root stays in the caller's session and process group (a shell job) */
	struct ckpt_extra_child *extra;  /* borrowed, n_extra of them: children of the root, made as above */
	size_t n_extra;
	struct ckpt_lazy **lazy;  /* non-NULL: a lazy restore of a one-process image (below); *lazy is set
				     to its handle, or NULL when everything was copied in before it runs */
	int *ipc_listener;        /* non-NULL: an application that had krg's IPC filter gets it again, and
				     its listener lands here (-1 if none; close-on-exec; the caller hands it
				     to krgd). NULL: it comes back without (the node's own IPC, as any
				     process outside krg: krg restart --local) */
	bool ipc_sockets;         /* with ipc_listener: the filter that sends getsockname/getpeername to the
				     listener too (a migrant with forwarded sockets, docs/migration.md) */
	int root_pdeathsig;       /* non-zero: the root gets this signal when the caller's thread dies
				     (PR_SET_PDEATHSIG, set after its credentials, which would clear it):
				     a restorer that stays its parent (a migration's holder) takes it along */	pid_t into;               /* non-zero: restore into this existing process, not a new child of ours (a
				     migrant back home becomes its deputy, docs/migration.md "Back home"): it
				     keeps its pid, parent, children, session and group, is seized (ptrace) and
				     rebuilt as the image says, and must run as the image's user already
				     unless it is root's (groups, ids: nothing is raised). Or a shell made
				     for it (a migrant adopted by a sibling's holder, adopt.c). A one-process
				     image; krg's IPC filter is installed unless the process has a seccomp
				     filter already (one it kept); no lazy, extra children, replace_tty or
				     pid namespace. If the seizure itself fails the process goes on
				     untouched; a later failure kills it (its old state is gone by then) */
	const int *keep_num;      /* with into: fd keep_fd[i] of that process becomes its fd keep_num[i] */
	const int *keep_fd;       /* (instead of the image's entry there); its other fds are closed */
	size_t n_keep;            /* at most CKPT_MAX_KEEP */
	struct ckpt_dsm_hooks *dsm; /* non-NULL: an image's System V segments of the DSM are mapped
				     again from this node's object of each (below); NULL: refused */
};
/* A segment of krgd's DSM re-attached by a restore (a migration): the
 * node's object of it mapped where the image had it, registered with a
 * userfaultfd made in the process before it runs, so that its first
 * access faults to the DSM (docs/dsm.md, "Migration of an attached process"). */
struct ckpt_dsm_attach {
	uint64_t seg;          /* the segment's name (id << 32 | creator) */
	uint64_t npages;       /* its size */
	uint64_t addr, len;    /* the mapping */
	uint32_t prot;
	pid_t pid;             /* the process, as this node sees it */
	int uffd;              /* its userfaultfd (the caller's to close or hand on) */
};
struct ckpt_dsm_hooks {
	/* The node's object of seg (an fd of the restorer's, kept by the
	 * hook's owner: the restore only opens it in the process), or -errno. */
	int (*segment)(void *ctx, uint64_t seg, uint64_t npages);
	void *ctx;
	struct ckpt_dsm_attach *out; /* filled by the restore (malloc'ed, n of them); the caller frees */
	size_t n;
};
#define CKPT_MAX_KEEP 64
/* ckpt_restore_ns with options (o may be NULL). */
int ckpt_restore_opts(const char *dir, struct ckpt_pidns *ns, const struct ckpt_restore_opts *o, pid_t *pid_out, struct ckpt_error *err);
/* Hand the reaper the status (a waitpid status) and reap it. */
void ckpt_pidns_finish(struct ckpt_pidns *ns, int status);

/* Lazy restore (post-copy from the image, for a live migration: lazy.c,
 * docs/migration.md): the process runs as soon as everything but the
 * contents of its private anonymous memory is restored; a thread of the
 * caller serves its page faults from the image (userfaultfd, missing
 * pages) and copies the rest in meanwhile, checking the pages against
 * their sums as it goes (a sum that fails kills the process: SIGKILL).
 * Its forks, mremap, munmap and MADV_DONTNEED are followed. The caller
 * must keep running until ckpt_lazy_fd is readable: the process's memory
 * is served by this thread until then. A kernel or caller that cannot
 * (no userfaultfd events, not CAP_SYS_PTRACE) gets a plain restore. */
struct ckpt_lazy;
struct ckpt_lazy_stats {
	uint64_t bytes;    /* copied in, by faults and by the background copy */
	uint64_t faults;   /* page faults served */
	uint64_t forks;    /* forks of the process followed */
	double secs;       /* from the process's start until all was in */
	bool complete;     /* every page in (or every mm it served gone) */
	int result;        /* 0, or -errno (msg says why) */
	char msg[256];
};
/* Readable (an eventfd) once all is in, or it failed. */
int ckpt_lazy_fd(const struct ckpt_lazy *lz);
/* Stop the thread if still running (the process must be dead or gone: its
 * missing pages would read as zeros), close everything; st may be NULL. */
void ckpt_lazy_free(struct ckpt_lazy *lz, struct ckpt_lazy_stats *st);

/* The pid the image's root process had (> 0), or -errno. */
pid_t ckpt_image_root_pid(const char *dir);
/* The pids of every process of the image (malloc'ed, *n of them), or
 * -errno. */
int ckpt_image_pids(const char *dir, pid_t **out, size_t *n);

/* Verify the whole image in `dir` (frames, sums, pages), as a restore
 * does before anything runs. 0 or -errno with err set. */
int ckpt_image_check(const char *dir, struct ckpt_error *err);

/* Decode and print every part of the image, for people or as JSON. */
int ckpt_image_show(const char *dir, bool json, FILE *out, struct ckpt_error *err);

/* Progress of the long part of a dump or restore (memory contents):
 * called from the calling thread with bytes done and the expected total
 * about every CKPT_PROGRESS_STEP bytes, and once more at the end with
 * done == total. `what` is "dump" or "restore". The total of a dump is
 * estimated from /proc/PID/smaps before pages are read. Process-wide
 * setting; NULL turns it off. */
#define CKPT_PROGRESS_STEP (64ULL << 20)
typedef void (*ckpt_progress_fn)(const char *what, uint64_t done, uint64_t total, void *arg);
void ckpt_set_progress(ckpt_progress_fn fn, void *arg);

/* A userfaultfd for process pid's address space (docs/dsm.md): injects
 * userfaultfd(O_CLOEXEC | O_NONBLOCK) into it, takes the fd and closes
 * its copy there. The caller does UFFDIO_API and UFFDIO_REGISTER. Root
 * (ptrace; the process needs the right to make one: CAP_SYS_PTRACE, or
 * vm.unprivileged_userfaultfd). 0, or -errno with err set. */
int ckpt_uffd_take(pid_t pid, int *uffd_out, struct ckpt_error *err);

/* Answer syscall nr of thread tid (process pid), held in a seccomp user
 * notification, with a mapping: freezes the process (the notification is
 * dropped by that), injects mmap(addr, size, prot, flags, fd, 0) and
 * close(fd) — fd is the caller's, installed by SECCOMP_IOCTL_NOTIF_ADDFD
 * before — and makes the interrupted call return the address (or the
 * mmap's -errno) instead of restarting. With uffd_out, also a userfaultfd
 * of the process, the new range registered (MISSING | MINOR | WP, the
 * DSM's features: dsm_node_attach takes it) before the process runs
 * again; if that fails the mapping is undone and the call gets ENOMEM.
 * *mapped: the address. 0; -errno with err set; -EAGAIN if the thread is
 * no longer in that call (then it goes on untouched). Root (ptrace).
 * fd < 0: munmap(addr, size) instead, the call returning 0 (shmdt).
 * devfd: /dev/userfaultfd installed in the caller like fd (or -1), closed
 * there: a caller that may not make a userfaultfd taking the kernel's
 * faults (no CAP_SYS_PTRACE, vm.unprivileged_userfaultfd 0) gets one
 * through it, else a user-mode-only one (docs/dsm.md).
 * docs/dsm.md, "The shmat path". */
int ckpt_map_answer(pid_t pid, pid_t tid, long nr, int fd, int devfd, uint64_t addr, uint64_t size, int prot,
		    int flags, uint64_t *mapped, int *uffd_out, struct ckpt_error *err);
