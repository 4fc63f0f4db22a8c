/* fileio.h — small file helpers shared by the services. */
#pragma once
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Read at most len-1 bytes of a small file (/proc entries, sysfs knobs)
 * into buf, NUL-terminated. Bytes read, or -errno. */
ssize_t krg_read_small(const char *path, char *buf, size_t len);

/* Remove name (relative to dirfd, or a path with AT_FDCWD) and, if it is
 * a directory, everything under it, never following a symbolic link
 * (each level is opened O_NOFOLLOW from its parent: a tree a user can
 * change meanwhile cannot lead the removal elsewhere). *bytes, if not
 * NULL, grows by the size of every file removed. 0, or the first -errno
 * (the rest is still tried). */
int krg_rm_tree(int dirfd, const char *name, uint64_t *bytes);

/* Sum of the sizes of the regular files under path (a file: its size),
 * never following a symbolic link. 0 or -errno. */
int krg_tree_bytes(const char *path, uint64_t *bytes);

/* Write all len bytes of buf to fd: a short write goes on where it
 * stopped and EINTR is retried. EAGAIN (a non-blocking fd that is full)
 * waits until fd takes more, as a blocking fd would: for fds someone
 * else drains (a terminal, a pipe to a reader). 0, or -errno; a write
 * that takes nothing gives -EIO. */
int krg_write_all(int fd, const void *buf, size_t len);

/* krg_write_all, but EAGAIN fails at once with -EAGAIN (what was written
 * before stays written): for fds nobody drains while we write, where
 * waiting would hang (a stopped process's pipe). */
int krg_write_all_nowait(int fd, const void *buf, size_t len);

/* Read exactly len bytes from fd into buf: a short read goes on, EINTR
 * is retried, EAGAIN waits until fd has more. 0, -EPIPE when the other
 * end closes (end of file) before len bytes, or -errno. */
int krg_read_all(int fd, void *buf, size_t len);
