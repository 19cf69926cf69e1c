/* layout.h - the byte layout of the certcache shared-memory region (memfd).
 * Types and static_asserts only. Written by the master (certcache.c); read by workers, which
 * treat every field as untrusted and re-check it. Never changes without a version bump. */
#ifndef MITMD_CERTCACHE_LAYOUT_H
#define MITMD_CERTCACHE_LAYOUT_H

#include <assert.h>
#include <stddef.h>
#include <stdint.h>

/* Region: [header: one page][tags: nsets * ways u64, page-rounded][slots: nsets * ways]. */

#define CERTCACHE_MAGIC UINT64_C(0x314343444d54494d) /* "MITMDCC1" little-endian */
#define CERTCACHE_VERSION 1u
#define CERTCACHE_PAGE 4096u
#define CERTCACHE_WAYS 8u           /* slots per set */
#define CERTCACHE_SLOT_SIZE 8192u   /* one entry, seqlock included */
#define CERTCACHE_SLOT_HDR_SIZE 64u /* struct certcache_slot up to `key` */
#define CERTCACHE_KEY_MAX 1024u     /* canonical name set (shared/nameset.h) */
#define CERTCACHE_DER_MAX (CERTCACHE_SLOT_SIZE - CERTCACHE_SLOT_HDR_SIZE - CERTCACHE_KEY_MAX)
#define CERTCACHE_HASHKEY_SIZE 16u             /* libsodium crypto_shorthash_KEYBYTES */
#define CERTCACHE_MAX_SETS (UINT32_C(1) << 24) /* 128 GiB of slots: far above any config */

/* struct certcache_hdr is the first page. Geometry and hash key are written once by
 * certcache_create before the fd is shared and never change. The counters are written by
 * the master only, with relaxed atomic stores, and are informational. */
struct certcache_hdr {
    uint64_t magic;     /* CERTCACHE_MAGIC */
    uint32_t version;   /* CERTCACHE_VERSION */
    uint32_t hdr_size;  /* CERTCACHE_PAGE */
    uint32_t slot_size; /* CERTCACHE_SLOT_SIZE */
    uint32_t ways;      /* CERTCACHE_WAYS */
    uint32_t key_max;   /* CERTCACHE_KEY_MAX */
    uint32_t der_max;   /* CERTCACHE_DER_MAX */
    uint32_t nsets;     /* 1 .. CERTCACHE_MAX_SETS */
    uint32_t _pad0;
    uint64_t tags_off;   /* == CERTCACHE_PAGE */
    uint64_t slots_off;  /* == tags_off + page-rounded nsets * ways * 8 */
    uint64_t total_size; /* == slots_off + nsets * ways * slot_size == the memfd's size */
    uint8_t hashkey[CERTCACHE_HASHKEY_SIZE]; /* SipHash key, random per cache */

    /* master-only counters */
    uint64_t inserts;   /* entries written with a key that was not cached */
    uint64_t updates;   /* entries rewritten in place for a key that was cached */
    uint64_t evictions; /* unexpired entries dropped to make room */
    uint64_t reclaims;  /* expired entries overwritten */
    uint64_t refused;   /* inserts refused (key or DER too large) */
    uint64_t forges;    /* certificates forged by the master (certcache_count_forge) */
    uint64_t clock;     /* insert counter; slot stamps come from it (LRU by insert time) */

    uint8_t _reserved[CERTCACHE_PAGE - 136];
};

/* struct certcache_slot is one entry. `seq` is the seqlock: 0 = never written, odd = the
 * master is writing, even and non-zero = stable. All other fields are only meaningful when
 * read between two equal even loads of `seq`. Unused bytes of key/der are unspecified. */
struct certcache_slot {
    uint64_t seq;
    uint64_t hash;   /* crypto_shorthash(key) with the header's hashkey */
    int64_t expires; /* unix seconds; the entry is a miss when now >= expires */
    uint64_t stamp;  /* hdr.clock value at insert, for eviction */
    uint32_t keylen; /* 1 .. CERTCACHE_KEY_MAX */
    uint32_t derlen; /* 1 .. CERTCACHE_DER_MAX */
    uint8_t _pad[24];
    /* key and der are bytes in memory order, stored as words because both sides access
     * them with word-sized relaxed atomics (a byte array under a seqlock is a data race). */
    uint64_t key[CERTCACHE_KEY_MAX / 8];
    uint64_t der[CERTCACHE_DER_MAX / 8];
};

static_assert(sizeof(struct certcache_hdr) == CERTCACHE_PAGE, "header is one page");
static_assert(offsetof(struct certcache_hdr, inserts) % 8 == 0, "counters aligned");
static_assert(sizeof(struct certcache_slot) == CERTCACHE_SLOT_SIZE, "slot size");
static_assert(offsetof(struct certcache_slot, key) == CERTCACHE_SLOT_HDR_SIZE, "slot header");
static_assert(offsetof(struct certcache_slot, key) % 8 == 0, "key is word aligned");
static_assert(offsetof(struct certcache_slot, der) % 8 == 0, "der is word aligned");
static_assert(CERTCACHE_SLOT_SIZE % CERTCACHE_PAGE == 0, "slots stay page aligned");
static_assert(CERTCACHE_KEY_MAX % 8 == 0 && CERTCACHE_DER_MAX % 8 == 0, "whole words");

#endif
