/* wire.h — blocking length-prefixed frames (4-byte big-endian length, then
 * a packed protobuf) between krgd and the krg-fsview processes, over a
 * socketpair. Shared by the FUSE client and the home server. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define FSV_MAX_FRAME (8u << 20)
#define FSV_MAX_IO (1u << 20)      /* largest read/write one request carries */
#define FSV_READAHEAD (8u << 20)   /* a view's readahead: 8 reads of FSV_MAX_IO in flight */
#define FSV_WRITE_BEHIND (8u << 20) /* a view's writes in flight, not yet answered by home */

/* Whole frame or -errno (-EPIPE at end of file). *buf is malloc'd. */
int fsv_read_frame(int fd, uint8_t **buf, size_t *len);
/* Header and body in one writev loop; -errno. */
int fsv_write_frame(int fd, const uint8_t *body, size_t len);
/* One frame made of head (a packed message) then data, written as they
 * are: a message's bulk bytes field sent without copying it into the
 * packed buffer (head ends with fsv_bytes_field's key and length; a
 * protobuf field may come after the others). -errno. */
int fsv_write_frame2(int fd, const uint8_t *head, size_t hlen, const uint8_t *data, size_t dlen);
/* A frame's start: its length (hlen + dlen) and head; the caller writes
 * the dlen bytes that follow (sendfile, fsv_write_raw). -errno. */
int fsv_write_head(int fd, const uint8_t *head, size_t hlen, size_t dlen);
/* n bytes inside a frame begun by fsv_write_head. -EIO. */
int fsv_write_raw(int fd, const uint8_t *p, size_t n);
/* n bytes from a pipe, moved by splice (the pages the pipe refers to are
 * not copied here), inside a frame begun by fsv_write_head. -EIO. */
int fsv_write_splice(int fd, int pipe, size_t n);
/* The key (field, length-delimited) and length of a bytes field whose
 * len bytes follow, into out (up to 11 bytes); its size. */
size_t fsv_bytes_field(uint8_t *out, uint32_t field, size_t len);
/* A varint field (number < 16) and its value, into out (up to 11 bytes);
 * its size. */
size_t fsv_varint_key(uint8_t *out, uint32_t field, uint64_t v);
/* Bulk data shorter than this is packed with the rest of a message. */
#define FSV_SPLIT_MIN 4096
/* p[0..avail) is the start of a total-byte message, well formed so far,
 * whose last field is `field`, length-delimited, running to its end:
 * *hlen = where that field's key starts (p[0..*hlen) is the message
 * without it), *doff = where its bytes start. Lets a frame's bulk bytes
 * be used where they are instead of copied by an unpack. */
bool fsv_split_last(const uint8_t *p, size_t avail, size_t total, uint32_t field, size_t *hlen, size_t *doff);
/* The varint field's last value in the whole message p[0..n); false when
 * absent or malformed. */
bool fsv_varint_field(const uint8_t *p, size_t n, uint32_t field, uint64_t *out);
/* Like fsv_read_frame, but a frame whose message ends with a length-
 * delimited `field` longer than FSV_SPLIT_MIN comes as *head (the message
 * without it, *hlen bytes) and *data (its bytes, *dlen, malloc'd: a
 * protobuf-c bytes field may own it); else *head is the whole frame and
 * *data NULL. */
int fsv_read_frame_split(int fd, uint32_t field, uint8_t **head, size_t *hlen, uint8_t **data, size_t *dlen);
/* The start of a frame, for a caller that takes a large last `field`'s
 * bytes from fd itself (splice): 1 when the frame ends with one longer
 * than FSV_SPLIT_MIN: *buf (malloc'd) holds its first *got bytes of
 * *total, the message without that field is (*buf)[0..*hlen), its bytes
 * start at *doff (the first *got - *doff of them in *buf, the other
 * *total - *got still in fd). 0: *buf is the whole frame (*got = *total =
 * *hlen bytes). -errno. */
int fsv_read_frame_start(int fd, uint32_t field, uint8_t **buf, size_t *got, size_t *total, size_t *hlen, size_t *doff);
