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
