/* fuzz_certstore.c - libFuzzer target for certcache/certstore's bundle decoder (the bytes a
 * worker reads from the master's memfd). Invariants, not only "no crash": a bundle that
 * decodes re-encodes to a fixed point (decode(encode(decode(x))) encodes to the same bytes,
 * with the same entries), and every entry it yields satisfies the store's own rules (a chain
 * of 1..CERTSTORE_MAX_CHAIN certificates with a key, or a file of bounded size). */
#include <assert.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "certcache/certstore.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct certstore a = {0}, b = {0};
    uint8_t *e1 = NULL, *e2 = NULL;
    size_t l1 = 0, l2 = 0;
    const char *why = NULL;

    if (certstore_decode(&a, data, size, &why) != 0) {
        assert(why != NULL);
        certstore_dispose(&a);
        return 0;
    }
    for (size_t i = 0; i < a.n; i++) {
        const struct certstore_entry *e = &a.e[i];

        assert(strlen(e->name) < CERTSTORE_NAME_MAX);
        if (e->kind == CERTSTORE_FILE)
            assert(e->data != NULL && e->data_len <= CERTSTORE_FILE_MAX && e->n_chain == 0);
        else
            assert(e->key != NULL && e->n_chain >= 1 && e->n_chain <= CERTSTORE_MAX_CHAIN);
    }
    if (certstore_encode(&a, &e1, &l1) == 0) {
        assert(certstore_decode(&b, e1, l1, &why) == 0 && b.n == a.n);
        assert(certstore_encode(&b, &e2, &l2) == 0);
        assert(l1 == l2 && memcmp(e1, e2, l1) == 0);
    }
    certstore_free_bundle(e1, l1);
    certstore_free_bundle(e2, l2);
    certstore_dispose(&a);
    certstore_dispose(&b);
    return 0;
}
