/* wire.h — blocking length-prefixed frames (4-byte big-endian length, then
 * a packed protobuf) between krgd and the krg-fsview processes, over a
 * socketpair. Shared by the FUSE client and the home server. */
#pragma once
#include <stddef.h>
#include <stdint.h>

#define FSV_MAX_FRAME (8u << 20)
#define FSV_MAX_IO (1u << 20)      /* largest read/write one request carries */

/* Whole frame or -errno (-EPIPE at end of file). *buf is malloc'd. */
int fsv_read_frame(int fd, uint8_t **buf, size_t *len);
/* Header and body in one writev loop; -errno. */
int fsv_write_frame(int fd, const uint8_t *body, size_t len);
