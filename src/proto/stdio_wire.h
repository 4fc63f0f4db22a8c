/* stdio_wire.h — the bulk stdio messages of proc.proto (Data between
 * krgd's, Io between krg and krgd) without copying their bytes.
 *
 * protobuf-c packs a message into a buffer of its own and unpacks a bytes
 * field into a fresh copy: two copies of every chunk of stdout or stdin
 * per hop. These encode only the head of the message (every field but the
 * bytes, then the bytes field's tag and length), to be placed right in
 * front of data already where it will be sent from, and decode a message
 * with its bytes left where they are (pointing into the buffer). The
 * bytes on the wire are exactly what protobuf-c packs and unpacks. */
#pragma once
#include <stddef.h>
#include <stdint.h>
#include "proto/proc.pb-c.h"

/* Room for the longest head of either message (tags, two varints, one length). */
#define KRG_WIRE_HEADROOM 32

/* Head of Data{stream, fd, data = len bytes that follow}: returns its
 * length n (<= KRG_WIRE_HEADROOM), the bytes are in head[0..n). */
size_t krg_wire_data_head(uint8_t head[KRG_WIRE_HEADROOM], uint64_t stream, uint32_t fd, size_t len);
/* Head of Io{fd, data = len bytes that follow}. */
size_t krg_wire_io_head(uint8_t head[KRG_WIRE_HEADROOM], uint32_t fd, size_t len);

/* Decode a Data into *d (initialised here) as krg__proc__data__unpack
 * would, except that d->data.data points into buf (valid while buf is).
 * Unknown fields are skipped. 0, or -EBADMSG (malformed, a required field
 * missing). Nothing to free. */
int krg_wire_data_view(const uint8_t *buf, size_t len, Krg__Proc__Data *d);
/* An Io with nothing but fd and data (the bulk of a stream): 1 and its
 * fields (data pointing into buf); 0 if it has any other field (unpack it
 * with protobuf-c); -EBADMSG if malformed. */
int krg_wire_io_data_view(const uint8_t *buf, size_t len, uint32_t *fd, const uint8_t **data, size_t *dlen);
