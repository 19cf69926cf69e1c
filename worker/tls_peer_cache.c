/* tls_peer_cache.c - the per-worker cache of upstream leaf certificate facts (tls_peer_cache.h):
 * direct-mapped by the address of the leaf's CRYPTO_BUFFER, each entry holding a reference to
 * it. Allocates only in tls_peer_cache_init. */
#include "worker/tls_peer_cache.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/pool.h>

struct tls_peer_slot {
    CRYPTO_BUFFER *leaf; /* held reference; NULL = empty */
    struct tls_peer_info info;
};

/* slot_of picks the slot of `leaf` by its address: an entry holds a reference to its leaf, so
 * while it is filed no other buffer can have that address, and a buffer's contents never
 * change. The same DER arriving in another buffer (no pool) is a miss that refiles it. */
static struct tls_peer_slot *slot_of(struct tls_peer_cache *pc, const CRYPTO_BUFFER *leaf)
{
    uint64_t h = (uint64_t)(uintptr_t)leaf * 0x9e3779b97f4a7c15ULL;

    return &pc->_slots[(h >> 32) % TLS_PEER_CACHE_SLOTS];
}

int tls_peer_cache_init(struct tls_peer_cache *pc)
{
    memset(pc, 0, sizeof(*pc));
    pc->_slots = calloc(TLS_PEER_CACHE_SLOTS, sizeof(*pc->_slots));
    return pc->_slots != NULL ? 0 : -ENOMEM;
}

void tls_peer_cache_dispose(struct tls_peer_cache *pc)
{
    if (pc->_slots != NULL)
        for (size_t i = 0; i < TLS_PEER_CACHE_SLOTS; i++)
            CRYPTO_BUFFER_free(pc->_slots[i].leaf);
    free(pc->_slots);
    pc->_slots = NULL;
}

const struct tls_peer_info *tls_peer_cache_get(struct tls_peer_cache *pc,
                                               const CRYPTO_BUFFER *leaf)
{
    struct tls_peer_slot *s;

    if (pc->_slots == NULL || leaf == NULL)
        return NULL;
    s = slot_of(pc, leaf);
    if (s->leaf == leaf) {
        pc->hits++;
        return &s->info;
    }
    pc->misses++;
    return NULL;
}

const struct tls_peer_info *tls_peer_cache_put(struct tls_peer_cache *pc, CRYPTO_BUFFER *leaf,
                                               const struct tls_peer_info *info)
{
    struct tls_peer_slot *s;

    if (pc->_slots == NULL || leaf == NULL || CRYPTO_BUFFER_len(leaf) > TLS_PEER_LEAF_MAX)
        return NULL;
    s = slot_of(pc, leaf);
    CRYPTO_BUFFER_up_ref(leaf);
    CRYPTO_BUFFER_free(s->leaf);
    s->leaf = leaf;
    s->info = *info;
    return &s->info;
}

bool tls_peer_info_add_name(struct tls_peer_info *pi, const char *name, size_t len)
{
    size_t off = pi->n_names == 0 ? 0
                                  : pi->name_off[pi->n_names - 1] +
                                        strlen(pi->names + pi->name_off[pi->n_names - 1]) + 1;

    if (pi->n_names == TLS_PEER_NAMES_MAX || len + 1 > sizeof(pi->names) - off)
        return false;
    memcpy(pi->names + off, name, len);
    pi->names[off + len] = '\0';
    pi->name_off[pi->n_names++] = (uint16_t)off;
    return true;
}

const char *tls_peer_info_name(const struct tls_peer_info *pi, size_t i)
{
    return pi->names + pi->name_off[i];
}
