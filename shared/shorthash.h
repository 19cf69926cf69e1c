/* shorthash.h - a keyed 64-bit hash for hash tables whose keys come from clients (host
 * names): SipHash-2-4 (libsodium's crypto_shorthash) under a random per-table key, so that
 * nobody can aim many keys at one bucket. Header-only; callers link libsodium. */
#ifndef MITMD_SHARED_SHORTHASH_H
#define MITMD_SHARED_SHORTHASH_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <sodium.h>

/* shorthash64 returns the keyed hash of `len` bytes at `p` under `key`
 * (crypto_shorthash_KEYBYTES = 16 bytes). */
static inline uint64_t shorthash64(const void *p, size_t len, const uint8_t *key)
{
    uint8_t h[crypto_shorthash_BYTES];
    uint64_t v;

    crypto_shorthash(h, (const unsigned char *)p, len, key);
    memcpy(&v, h, sizeof(v));
    return v;
}

#endif
