/* session.c — see session.h. */
#include <errno.h>
#include <string.h>
#include <openssl/evp.h>
#include "frame.h"
#include "session.h"

static const char TRANSCRIPT_TAG[] = "krg-net-v1 transcript";
static const char PROOF_I_TAG[] = "krg-net-v1 proof initiator";
static const char PROOF_R_TAG[] = "krg-net-v1 proof responder";
static const char SESSION_TAG[] = "krg-net-v1 session";

uint32_t krg_session_ciphers(void)
{
	uint32_t c = KRG_CIPHER_BIT(KRG_CIPHER_CHACHA);
	if (crypto_aead_aes256gcm_is_available())
		c |= KRG_CIPHER_BIT(KRG_CIPHER_AESGCM);
	return c;
}

enum krg_cipher krg_session_pick(bool encrypt, uint32_t ours, uint32_t theirs)
{
	if (!encrypt)
		return KRG_CIPHER_NONE;
	if (ours & theirs & KRG_CIPHER_BIT(KRG_CIPHER_AESGCM))
		return KRG_CIPHER_AESGCM;
	return KRG_CIPHER_CHACHA; /* mandatory for everyone */
}

static void put32(crypto_generichash_state *st, size_t n)
{
	uint8_t b[4];
	krg_frame_put_len(b, (uint32_t)n);
	crypto_generichash_update(st, b, 4);
}

void krg_hs_transcript(const uint8_t *hello_i, size_t len_i, const uint8_t *hello_r, size_t len_r,
		       uint8_t out[KRG_HS_HASH_BYTES])
{
	crypto_generichash_state st;
	crypto_generichash_init(&st, NULL, 0, KRG_HS_HASH_BYTES);
	crypto_generichash_update(&st, (const uint8_t *)TRANSCRIPT_TAG, sizeof(TRANSCRIPT_TAG));
	put32(&st, len_i);
	crypto_generichash_update(&st, hello_i, len_i);
	put32(&st, len_r);
	crypto_generichash_update(&st, hello_r, len_r);
	crypto_generichash_final(&st, out, KRG_HS_HASH_BYTES);
}

void krg_hs_proof(const uint8_t key[KRG_KEY_BYTES], bool initiator, const uint8_t th[KRG_HS_HASH_BYTES],
		  uint8_t out[crypto_auth_BYTES])
{
	crypto_auth_hmacsha512256_state st;
	const char *tag = initiator ? PROOF_I_TAG : PROOF_R_TAG;
	crypto_auth_hmacsha512256_init(&st, key, KRG_KEY_BYTES);
	crypto_auth_hmacsha512256_update(&st, (const uint8_t *)tag, strlen(tag) + 1);
	crypto_auth_hmacsha512256_update(&st, th, KRG_HS_HASH_BYTES);
	crypto_auth_hmacsha512256_final(&st, out);
}

bool krg_hs_proof_ok(const uint8_t key[KRG_KEY_BYTES], bool initiator, const uint8_t th[KRG_HS_HASH_BYTES],
		     const uint8_t *mac, size_t mac_len)
{
	uint8_t want[crypto_auth_BYTES];
	if (mac_len != crypto_auth_BYTES)
		return false;
	krg_hs_proof(key, initiator, th, want);
	bool ok = sodium_memcmp(want, mac, crypto_auth_BYTES) == 0;
	sodium_memzero(want, sizeof(want));
	return ok;
}

int krg_session_derive(const uint8_t key[KRG_KEY_BYTES], const uint8_t eph_sk[32], const uint8_t peer_pk[32],
		       const uint8_t th[KRG_HS_HASH_BYTES], bool initiator, enum krg_cipher cipher,
		       struct krg_seal *tx, struct krg_seal *rx)
{
	uint8_t shared[crypto_scalarmult_BYTES], okm[64];
	crypto_generichash_state st;

	if (crypto_scalarmult(shared, eph_sk, peer_pk) != 0)
		return -EPROTO;
	crypto_generichash_init(&st, key, KRG_KEY_BYTES, sizeof(okm));
	crypto_generichash_update(&st, (const uint8_t *)SESSION_TAG, sizeof(SESSION_TAG));
	crypto_generichash_update(&st, shared, sizeof(shared));
	crypto_generichash_update(&st, th, KRG_HS_HASH_BYTES);
	crypto_generichash_final(&st, okm, sizeof(okm));
	/* okm[0..32) protects initiator->responder, okm[32..64) the reverse. */
	memset(tx, 0, sizeof(*tx));
	memset(rx, 0, sizeof(*rx));
	memcpy(tx->key, okm + (initiator ? 0 : 32), 32);
	memcpy(rx->key, okm + (initiator ? 32 : 0), 32);
	tx->cipher = rx->cipher = cipher;
	if (cipher != KRG_CIPHER_CHACHA) {
		/* Keyed once; each frame only sets its nonce. The receiving
		 * side of AES-GCM decrypts; GMAC only ever computes tags. */
		bool open_dec = cipher == KRG_CIPHER_AESGCM;
		tx->evp = EVP_CIPHER_CTX_new();
		rx->evp = EVP_CIPHER_CTX_new();
		if (!tx->evp || !rx->evp || !EVP_EncryptInit_ex(tx->evp, EVP_aes_256_gcm(), NULL, tx->key, NULL) ||
		    !(open_dec ? EVP_DecryptInit_ex(rx->evp, EVP_aes_256_gcm(), NULL, rx->key, NULL)
			       : EVP_EncryptInit_ex(rx->evp, EVP_aes_256_gcm(), NULL, rx->key, NULL))) {
			krg_seal_clear(tx);
			krg_seal_clear(rx);
			sodium_memzero(shared, sizeof(shared));
			sodium_memzero(okm, sizeof(okm));
			return -ENOMEM;
		}
	}
	sodium_memzero(shared, sizeof(shared));
	sodium_memzero(okm, sizeof(okm));
	return 0;
}

static void make_nonce(uint8_t n[12], uint64_t ctr)
{
	memset(n, 0, 4);
	for (int i = 0; i < 8; i++)
		n[4 + i] = (uint8_t)(ctr >> (8 * i));
}

void krg_seal_clear(struct krg_seal *s)
{
	EVP_CIPHER_CTX_free(s->evp);
	sodium_memzero(s, sizeof(*s));
}

/* Integrity mode: AES-256-GMAC (GCM with everything as associated data)
 * over hdr || payload. GHASH runs at about twice Poly1305's speed here,
 * which is what keeps bulk transfers near raw TCP speed. Returns false if
 * OpenSSL fails; the tag is then zero and the peer drops the link. */
static bool mac_pieces(const struct krg_seal *s, const uint8_t nonce[12], const uint8_t hdr[4], const uint8_t *a,
		       size_t alen, const uint8_t *b, size_t blen, uint8_t tag[KRG_TAG_BYTES])
{
	EVP_CIPHER_CTX *ctx = s->evp;
	uint8_t none[16];
	int l;
	bool ok = ctx && EVP_EncryptInit_ex(ctx, NULL, NULL, NULL, nonce) && EVP_EncryptUpdate(ctx, NULL, &l, hdr, 4) &&
		  (!alen || EVP_EncryptUpdate(ctx, NULL, &l, a, (int)alen)) &&
		  (!blen || EVP_EncryptUpdate(ctx, NULL, &l, b, (int)blen)) && EVP_EncryptFinal_ex(ctx, none, &l) &&
		  EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, KRG_TAG_BYTES, tag);
	if (!ok)
		memset(tag, 0, KRG_TAG_BYTES);
	return ok;
}

void krg_seal_frame(struct krg_seal *s, const uint8_t hdr[4], uint8_t *head, size_t head_len,
		    const uint8_t *body, size_t body_len, uint8_t tag[KRG_TAG_BYTES])
{
	uint8_t nonce[12];
	make_nonce(nonce, s->counter++);
	switch (s->cipher) {
	case KRG_CIPHER_NONE:
		mac_pieces(s, nonce, hdr, head, head_len, body, body_len, tag);
		break;
	case KRG_CIPHER_CHACHA:
		crypto_aead_chacha20poly1305_ietf_encrypt_detached(head, tag, NULL, head, head_len, hdr, 4, NULL,
								  nonce, s->key);
		break;
	case KRG_CIPHER_AESGCM: {
		EVP_CIPHER_CTX *ctx = s->evp;
		int l;
		uint8_t none[16];
		if (!EVP_EncryptInit_ex(ctx, NULL, NULL, NULL, nonce) || !EVP_EncryptUpdate(ctx, NULL, &l, hdr, 4) ||
		    (head_len && !EVP_EncryptUpdate(ctx, head, &l, head, (int)head_len)) ||
		    !EVP_EncryptFinal_ex(ctx, none, &l) ||
		    !EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, KRG_TAG_BYTES, tag))
			memset(tag, 0, KRG_TAG_BYTES); /* the peer drops the link */
		break;
	}
	}
}

bool krg_seal_frame_out(struct krg_seal *s, const uint8_t hdr[4], uint8_t *head, size_t head_len, const uint8_t *body,
			size_t body_len, uint8_t *out, uint8_t tag[KRG_TAG_BYTES])
{
	if (s->cipher != KRG_CIPHER_AESGCM || body_len > INT32_MAX)
		return false;
	uint8_t nonce[12], none[16];
	make_nonce(nonce, s->counter++);
	EVP_CIPHER_CTX *ctx = s->evp;
	int l;
	/* GCM is a stream: two updates give the bytes one would. */
	if (!EVP_EncryptInit_ex(ctx, NULL, NULL, NULL, nonce) || !EVP_EncryptUpdate(ctx, NULL, &l, hdr, 4) ||
	    (head_len && !EVP_EncryptUpdate(ctx, head, &l, head, (int)head_len)) ||
	    (body_len && !EVP_EncryptUpdate(ctx, out, &l, body, (int)body_len)) || !EVP_EncryptFinal_ex(ctx, none, &l) ||
	    !EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, KRG_TAG_BYTES, tag))
		memset(tag, 0, KRG_TAG_BYTES); /* the peer drops the link */
	return true;
}

long krg_open_frame(struct krg_seal *s, uint8_t *payload, size_t len)
{
	uint8_t nonce[12], hdr[4], tag[KRG_TAG_BYTES];
	int r = -1;
	if (len < KRG_TAG_BYTES)
		return -EBADMSG;
	size_t plen = len - KRG_TAG_BYTES;
	krg_frame_put_len(hdr, (uint32_t)len);
	make_nonce(nonce, s->counter);
	switch (s->cipher) {
	case KRG_CIPHER_NONE:
		if (mac_pieces(s, nonce, hdr, payload, plen, NULL, 0, tag))
			r = crypto_verify_16(tag, payload + plen);
		break;
	case KRG_CIPHER_CHACHA:
		r = crypto_aead_chacha20poly1305_ietf_decrypt_detached(payload, NULL, payload, plen, payload + plen,
								       hdr, 4, nonce, s->key);
		break;
	case KRG_CIPHER_AESGCM: {
		/* Decrypts in place before the tag is checked; on a bad tag the
		 * frame is dropped with its connection, its bytes never used. */
		EVP_CIPHER_CTX *ctx = s->evp;
		int l;
		uint8_t none[16];
		bool ok = EVP_DecryptInit_ex(ctx, NULL, NULL, NULL, nonce) &&
			  EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, KRG_TAG_BYTES, payload + plen) &&
			  EVP_DecryptUpdate(ctx, NULL, &l, hdr, 4) &&
			  (!plen || EVP_DecryptUpdate(ctx, payload, &l, payload, (int)plen)) &&
			  EVP_DecryptFinal_ex(ctx, none, &l) > 0;
		r = ok ? 0 : -1;
		break;
	}
	}
	if (r != 0)
		return -EBADMSG;
	s->counter++;
	return (long)plen;
}
