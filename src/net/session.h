/* session.h — handshake cryptography and frame sealing (libsodium), pure
 * functions with no I/O. Layout and derivations: docs/protocol.md
 * "Handshake" and "Frames". */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sodium.h>
#include "../lib/key.h"

#define KRG_NET_PROTOCOL_VERSION 1
#define KRG_HS_NONCE_BYTES 32
#define KRG_HS_HASH_BYTES 32
#define KRG_TAG_BYTES 16

enum krg_cipher {
	KRG_CIPHER_NONE = 0,     /* integrity only: AES-256-GMAC (OpenSSL), payload in clear */
	KRG_CIPHER_CHACHA = 1,   /* crypto_aead_chacha20poly1305_ietf */
	KRG_CIPHER_AESGCM = 2,   /* AES-256-GCM (where the CPU has AES-NI), computed by OpenSSL */
};
/* Bits for Hello.ciphers. */
#define KRG_CIPHER_BIT(c) (1u << ((c)-1))

/* Ciphers this CPU can run (Hello.ciphers). */
uint32_t krg_session_ciphers(void);
/* The cipher both sides pick from the two Hellos (same result on both). */
enum krg_cipher krg_session_pick(bool encrypt, uint32_t ours, uint32_t theirs);

/* Transcript hash over both raw Hello encodings, initiator's first. */
void krg_hs_transcript(const uint8_t *hello_i, size_t len_i, const uint8_t *hello_r, size_t len_r,
		       uint8_t out[KRG_HS_HASH_BYTES]);
/* Proof of the cluster key, role-tagged so a reflected proof fails. */
void krg_hs_proof(const uint8_t key[KRG_KEY_BYTES], bool initiator, const uint8_t th[KRG_HS_HASH_BYTES],
		  uint8_t out[crypto_auth_BYTES]);
bool krg_hs_proof_ok(const uint8_t key[KRG_KEY_BYTES], bool initiator, const uint8_t th[KRG_HS_HASH_BYTES],
		     const uint8_t *mac, size_t mac_len);

struct evp_cipher_ctx_st;

/* One direction of a session. Release with krg_seal_clear(). */
struct krg_seal {
	enum krg_cipher cipher;
	uint64_t counter;                      /* frames sealed/opened so far: the nonce */
	uint8_t key[32];
	/* owned; keyed AES-256-GCM context (OpenSSL) for NONE (GMAC) and
	 * AESGCM: OpenSSL's GCM runs at over twice libsodium's speed here. */
	struct evp_cipher_ctx_st *evp;
};

/* Session keys from the X25519 exchange, the cluster key and the
 * transcript; -EPROTO for a degenerate peer public key. */
int krg_session_derive(const uint8_t key[KRG_KEY_BYTES], const uint8_t eph_sk[32], const uint8_t peer_pk[32],
		       const uint8_t th[KRG_HS_HASH_BYTES], bool initiator, enum krg_cipher cipher,
		       struct krg_seal *tx, struct krg_seal *rx);

/* Seal a payload: the frame is hdr(4) || payload || tag(16); payload is
 * given as up to two pieces (head, body). Encrypting modes need the payload
 * contiguous in place (head == buffer, body NULL) and transform it; integrity
 * mode reads the pieces and leaves them. Advances the counter. */
void krg_seal_frame(struct krg_seal *s, const uint8_t hdr[4], uint8_t *head, size_t head_len,
		    const uint8_t *body, size_t body_len, uint8_t tag[KRG_TAG_BYTES]);
/* AES-GCM only (false otherwise: copy and use krg_seal_frame): the payload
 * head || body sealed with head encrypted in place and body encrypted into
 * out (body_len bytes, right after head in the frame), so a large body is
 * not copied first. Same bytes on the wire as sealing it contiguous. */
bool krg_seal_frame_out(struct krg_seal *s, const uint8_t hdr[4], uint8_t *head, size_t head_len, const uint8_t *body,
			size_t body_len, uint8_t *out, uint8_t tag[KRG_TAG_BYTES]);
/* Free what a derived seal holds and wipe its keys. */
void krg_seal_clear(struct krg_seal *s);
/* Open a received payload (payload || tag) in place; hdr is recomputed from
 * the length. Returns the plaintext length or -EBADMSG. */
long krg_open_frame(struct krg_seal *s, uint8_t *payload, size_t len);
