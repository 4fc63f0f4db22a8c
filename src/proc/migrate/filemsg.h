/* filemsg.h — the "mig.file" message (one piece of an image file, proto
 * Krg.Mig.File) encoded and decoded by hand, so that a piece's data is
 * read from its file straight into the message on the source and used in
 * place in the received frame on the target: protobuf-c's pack and
 * unpack would each copy up to 2 MiB per piece. The wire bytes are the
 * protobuf encoding of the same message (docs/protocol.md, "Migration");
 * a decoder takes fields in any order and skips unknown ones. */
#ifndef KRG_MIG_FILEMSG_H
#define KRG_MIG_FILEMSG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MIG_FILE_NAME_MAX 255

/* Bytes mig_file_head() may write for a name of nl bytes. */
#define MIG_FILE_HEAD_MAX(nl) (1 + 10 + 1 + 10 + (nl) + 1 + 10 + 2 + 2 + 1 + 10)

/* Fields 1 (xfer), 2 (name), 3 (offset), 5 (last), 6 (end), then the key
 * and length of 4 (data): the data itself follows (data_len bytes at the
 * returned offset). Returns the head's length. */
size_t mig_file_head(uint8_t *out, uint64_t xfer, const char *name, uint64_t offset, size_t data_len, bool last, bool end);

struct mig_file_view {
	uint64_t xfer, offset;
	char name[MIG_FILE_NAME_MAX + 1];
	const uint8_t *data;   /* inside the decoded buffer */
	size_t len;
	bool last, end, abort;
};

/* 0, or -EBADMSG: truncated, a bad varint or wire type, a required field
 * (xfer, name, offset, data) missing, a name longer than
 * MIG_FILE_NAME_MAX or holding a NUL. */
int mig_file_decode(const uint8_t *buf, size_t len, struct mig_file_view *out);

#endif
