/* fd-int.h — what the fd kinds of the checkpoint engine share (files.c
 * holds the generic part; fd_*.c one kind each; locks.c file locks). A kind is a struct ckpt_fd_ops (ckpt-int.h) listed in files.c's
 * fd_kinds[]. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include "ckpt/ckpt-int.h"

/* State of a restore: which entries are done (the peer of a pair is
 * placed with the first end), a pidfd of the tracee for pidfd_getfd. */
struct ckpt_fd_rctx {
	struct ckpt_tracee *t;
	const Krg__Ckpt__Files *f;
	bool *done;
	int pidfd;
	struct ckpt_app_fds *app;  /* every process of the restore */
	size_t idx;                /* this one's index in app */
	int park_base;             /* parked fds go at or above this */
	long stdio[3];             /* the restorer's fds 0-2, kept in the tracee for "inherit" entries; -1: none */
};

/* A duplicate of fd `fd` of process `pid` in krg (close-on-exec), or -errno. */
int ckpt_fd_getfd_pid(pid_t pid, int fd);
/* An injected syscall's result as an errno (EIO for nonsense). */
int ckpt_fd_inj_errno(long ret);

/* Run a syscall in the tracee; a failure is one line naming fd and call
 * (returns from the calling function, which has `err`). */
#define INJ(c, fdnum, what, ...)                                                                                                \
	({                                                                                                                      \
		long ret_ = ckpt_syscall((c)->t, err, __VA_ARGS__);                                                               \
		if (ret_ < 0)                                                                                                   \
			return ckpt_fail(err, ckpt_fd_inj_errno(ret_), "fd %d: %s: %s", (fdnum), (what),                        \
					 strerror(ckpt_fd_inj_errno(ret_)));                                                    \
		ret_;                                                                                                           \
	})

/* The tracee's fd `tfd`, duplicated into krg (close-on-exec), or -errno. */
int ckpt_fd_rgetfd(struct ckpt_fd_rctx *c, long tfd, int fdnum, struct ckpt_error *err);
/* Move a new object's fd `tmp` to fd->fd, with its close-on-exec and
 * status flags (O_NONBLOCK, O_APPEND). */
int ckpt_fd_place(struct ckpt_fd_rctx *c, long tmp, const Krg__Ckpt__Fd *fd, struct ckpt_error *err);
/* /proc/PID/fdinfo/FD into buf (NUL-terminated); 0 or -errno with err set. */
int ckpt_fd_fdinfo(pid_t pid, int fd, char *buf, size_t len, struct ckpt_error *err);
/* Copy len bytes to the tracee's scratch memory; its address, or -errno. */
long ckpt_fd_scratch(struct ckpt_fd_rctx *c, const void *buf, size_t len, int fdnum, struct ckpt_error *err);

/* sock_diag of unix socket `ino` (fd_unix_listen.c): its peer's inode
 * (0: none), queue lengths (listening: connections waiting, backlog),
 * its socket file's inode (0: none). 0 or -errno. */
struct ckpt_unix_diag {
	uint64_t peer_ino;
	uint32_t rqlen, wqlen;
	uint64_t vfs_ino;
};
int ckpt_unix_diag(uint64_t ino, struct ckpt_unix_diag *out);

/* A unix socket's name (fd_unix_listen.c): into out (sock_addr, and for
 * a path the absolute path, mode and owner of its file); bound again in
 * the tracee's socket s (a stale file of the dead original removed). */
int ckpt_unix_name_dump(pid_t pid, int fd, int l, uint64_t ino, Krg__Ckpt__Fd *out, struct ckpt_error *err);
int ckpt_unix_name_restore(struct ckpt_fd_rctx *c, long s, const Krg__Ckpt__Fd *fd, struct ckpt_error *err);

/* The kinds in their own files. */
extern const struct ckpt_fd_ops ckpt_fd_eventfd, ckpt_fd_timerfd, ckpt_fd_signalfd, ckpt_fd_epoll, ckpt_fd_inotify,
	ckpt_fd_unix_listen;

/* ---- shared by files.c and the kinds split out of it ---- */

/* An fd that only the linking pass finds unsupported: a line, as for the
 * others, or (--ignore-unsupported) dropped. */
struct link_state {
	pid_t pid;
	bool ignore;
	int *refused;
	bool *drop;
	bool in_app;  /* other ends may be in other processes: ckpt_files_link_app decides */
};

const char *ckpt_fd_describe(const struct stat *st, const char *link);
const Krg__Ckpt__Fd *ckpt_fd_entry_of(const Krg__Ckpt__Files *f, int n, size_t *idx);
int ckpt_fd_link_pass(struct link_state *ls, Krg__Ckpt__Files *f, struct ckpt_error *err);
int ckpt_fd_link_unix(struct link_state *ls, Krg__Ckpt__Files *f, size_t i, struct ckpt_error *err);
void ckpt_fd_make_inherit(Krg__Ckpt__Fd *e);
void ckpt_fd_note_refusal(struct ckpt_error *err, pid_t pid, int fd, enum ckpt_refusal_reason why);
int ckpt_fd_park(struct ckpt_fd_rctx *c, long tmp, int32_t for_pid, int32_t for_fd, struct ckpt_error *err);
pid_t ckpt_fd_pipe_holder(const pid_t *skip, size_t nskip, uint64_t ino);
int ckpt_fd_pipe_peek(int src, Krg__Ckpt__Fd *out, struct ckpt_error *err);
int ckpt_fd_place_pair(struct ckpt_fd_rctx *c, long a, const Krg__Ckpt__Fd *fa, long b, const Krg__Ckpt__Fd *fb, struct ckpt_error *err);
void __attribute__((format(printf, 6, 7))) ckpt_fd_refuse(struct link_state *ls, size_t i, int fd, enum ckpt_refusal_reason why,
							  struct ckpt_error *err, const char *fmt, ...);
const Krg__Ckpt__Fd *ckpt_fd_remote_peer(struct ckpt_fd_rctx *c, const Krg__Ckpt__Fd *fd, bool *made);
int ckpt_fd_snapshot_dump(pid_t pid, int fd, const struct stat *st, Krg__Ckpt__Fd *out, struct ckpt_error *err);
int ckpt_fd_take_parked(struct ckpt_fd_rctx *c, const Krg__Ckpt__Fd *fd, struct ckpt_error *err);
long long ckpt_fd_unix_peer_ino(uint64_t ino);

/* The locks of open file e (of stat st, its fdinfo text info) into e (locks.c). */
struct stat;
int ckpt_locks_dump(Krg__Ckpt__Files *f, Krg__Ckpt__Fd *e, const struct stat *st, const char *info, struct ckpt_error *err);

/* The kinds split out of files.c. */
extern const struct ckpt_fd_ops ckpt_fd_chr_mem, ckpt_fd_deleted, ckpt_fd_dir, ckpt_fd_fifo, ckpt_fd_inherit, ckpt_fd_memfd, ckpt_fd_pipe, ckpt_fd_reg, ckpt_fd_tty, ckpt_fd_unix;

/* fd_pipe.c: a second open file description of a pipe end (made by the
 * link pass, never matched at dump) and a FIFO whose name is gone. */
extern const struct ckpt_fd_ops ckpt_fd_pipe_reopen, ckpt_fd_fifo_deleted;
