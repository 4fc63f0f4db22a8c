/* key.h — the cluster key: 32 random bytes, stored as 64 hex digits in a
 * file only its owner may read (mode 0600 or stricter). */
#pragma once
#include <stddef.h>
#include <stdint.h>

#define KRG_KEY_BYTES 32

/* Load the key; refuses a key file readable or writable by group or
 * others. Returns 0 or -errno with a one-line reason in err. */
int krg_key_load(const char *path, uint8_t key[KRG_KEY_BYTES], char *err, size_t errlen);
/* Create a new random key at path (0600, fails if it exists). */
int krg_key_generate(const char *path, char *err, size_t errlen);
