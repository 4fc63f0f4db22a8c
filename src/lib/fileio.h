/* fileio.h — small file helpers shared by the services. */
#pragma once
#include <stddef.h>
#include <sys/types.h>

/* Read at most len-1 bytes of a small file (/proc entries, sysfs knobs)
 * into buf, NUL-terminated. Bytes read, or -errno. */
ssize_t krg_read_small(const char *path, char *buf, size_t len);
