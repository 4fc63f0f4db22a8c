/* frame.h — the loop-independent part of the wire format: the length-prefix
 * frame decoder and the in-place Envelope codec. No I/O, no allocation
 * except the decoder's reassembly buffer, so both are unit tested and
 * fuzzed on their own (tests/net/test_frame.c, tests/net/fuzz_frame.c).
 *
 * Frame = 4-byte big-endian payload length L (1 <= L <= max) + L bytes.
 * Envelope = protobuf krg.net.Envelope (src/proto/net.proto), encoded and
 * decoded here by hand so a body is never copied: decode returns pointers
 * into the frame, encode writes the header fields and leaves the body to
 * the caller (gathered with writev or sealed in place). */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define KRG_FRAME_HDR 4
#define KRG_FRAME_DEFAULT_MAX (16u << 20)
#define KRG_ENVELOPE_VERSION 1
#define KRG_TYPE_MAX 128                        /* longest message type name */
/* Upper bound of krg_env_encode_head() output for any type <= KRG_TYPE_MAX. */
#define KRG_ENV_HEAD_MAX (2 + 5 + 2 + 1 + KRG_TYPE_MAX + 1 + 10 + 2 + 1 + 5 + 1 + 5)

struct krg_frame_dec {
	size_t max;         /* largest accepted payload length */
	uint8_t hdr[KRG_FRAME_HDR]; /* length bytes seen so far */
	unsigned hdr_have;  /* 0..4 */
	size_t need;        /* payload length of the frame being assembled, 0 = in header */
	size_t have;        /* payload bytes in buf */
	uint8_t *buf;       /* owned reassembly buffer for frames split across feeds */
	size_t cap;         /* allocated size of buf */
};

void krg_frame_dec_init(struct krg_frame_dec *d, size_t max);
void krg_frame_dec_free(struct krg_frame_dec *d);
/* Change the bound (handshake frames are small, session frames up to max_frame). */
void krg_frame_dec_set_max(struct krg_frame_dec *d, size_t max);

/* Consume bytes from (*data, *len), advancing both. Returns 1 with
 * (*frame, *frame_len) set when a whole payload is available: it points
 * into the input when the frame was contiguous there (zero copy), else into
 * the decoder's buffer; either way it is writable (decrypted in place) and
 * valid until the next call or until the input is reused. Returns 0 when
 * the input is used up, -EBADMSG for a zero length, -EMSGSIZE for a length
 * above max, -ENOMEM. After an error the decoder must not be fed again. */
int krg_frame_dec_next(struct krg_frame_dec *d, uint8_t **data, size_t *len, uint8_t **frame, size_t *frame_len);
/* Length in the header that failed (for the log line), valid after -EMSGSIZE. */
uint32_t krg_frame_dec_bad_len(const struct krg_frame_dec *d);

/* Zero-copy reads of large payloads: when the frame being assembled still
 * misses at least min bytes, return where the next *room bytes go so the
 * socket can read straight into place; then krg_frame_dec_commit(n) and
 * call krg_frame_dec_next() with an empty input to collect the frame. */
uint8_t *krg_frame_dec_direct(struct krg_frame_dec *d, size_t min, size_t *room);
void krg_frame_dec_commit(struct krg_frame_dec *d, size_t n);

static inline void krg_frame_put_len(uint8_t out[KRG_FRAME_HDR], uint32_t len)
{
	out[0] = (uint8_t)(len >> 24);
	out[1] = (uint8_t)(len >> 16);
	out[2] = (uint8_t)(len >> 8);
	out[3] = (uint8_t)len;
}

static inline uint32_t krg_frame_get_len(const uint8_t in[KRG_FRAME_HDR])
{
	return (uint32_t)in[0] << 24 | (uint32_t)in[1] << 16 | (uint32_t)in[2] << 8 | in[3];
}

/* A decoded Envelope; type and body point into the decoded buffer. */
struct krg_env {
	uint32_t version;
	const char *type; /* not NUL-terminated */
	size_t type_len;
	uint64_t req_id;
	bool is_reply;
	int32_t status;
	const uint8_t *body;
	size_t body_len;
};

/* Parse a protobuf Envelope in place. Unknown fields are skipped (forward
 * compatibility); 0 or -EBADMSG for malformed input. */
int krg_env_decode(const uint8_t *buf, size_t len, struct krg_env *env);
/* Write every field of env except the body's bytes, ending with the body's
 * tag and length, so head || body is the complete encoding. out must hold
 * KRG_ENV_HEAD_MAX bytes; returns the head length, or -EINVAL if the type
 * is longer than KRG_TYPE_MAX. */
int krg_env_encode_head(const struct krg_env *env, uint8_t *out);
