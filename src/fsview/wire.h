/* wire.h — blocking length-prefixed frames (4-byte big-endian length, then
 * a packed protobuf) between krgd and the krg-fsview processes, over a
 * socketpair. Shared by the FUSE client and the home server. */
#pragma once
#include <stddef.h>
#include <stdint.h>

#define FSV_MAX_FRAME (8u << 20)
#define FSV_MAX_IO (1u << 20)      /* largest read/write one request carries */
#define FSV_READAHEAD (4u << 20)   /* a view's readahead: 4 reads of FSV_MAX_IO in flight */

/* Whole frame or -errno (-EPIPE at end of file). *buf is malloc'd. */
int fsv_read_frame(int fd, uint8_t **buf, size_t *len);
/* Header and body in one writev loop; -errno. */
int fsv_write_frame(int fd, const uint8_t *body, size_t len);
/* One frame made of head (a packed message) then data, written as they
 * are: a message's bulk bytes field sent without copying it into the
 * packed buffer (head ends with fsv_bytes_field's key and length; a
 * protobuf field may come after the others). -errno. */
int fsv_write_frame2(int fd, const uint8_t *head, size_t hlen, const uint8_t *data, size_t dlen);
/* The key (field, length-delimited) and length of a bytes field whose
 * len bytes follow, into out (up to 11 bytes); its size. */
size_t fsv_bytes_field(uint8_t *out, uint32_t field, size_t len);
