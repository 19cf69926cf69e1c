/* cert_cmd.c - `mitmd cert NAME...`: forge a chain for NAMEs and print it in PEM.
 * Owns nothing past the call. Called by master/main.c; uses master/ca and master/forge. */
#include "master/cert_cmd.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/base64.h>

#include "master/ca.h"
#include "master/forge.h"

/* cert_cmd_print_pem writes `der` as one PEM CERTIFICATE block, 64 columns per line. */
static int cert_cmd_print_pem(FILE *out, const uint8_t *der, size_t len)
{
    size_t b64_len;
    char *b64;
    int ret = 0;

    if (EVP_EncodedLength(&b64_len, len) != 1)
        return -EOVERFLOW;
    b64 = malloc(b64_len);
    if (b64 == NULL)
        return -ENOMEM;
    b64_len = EVP_EncodeBlock((uint8_t *)b64, der, len);
    if (fputs("-----BEGIN CERTIFICATE-----\n", out) == EOF)
        ret = -EIO;
    for (size_t off = 0; ret == 0 && off < b64_len; off += 64) {
        size_t line = b64_len - off < 64 ? b64_len - off : 64;

        if (fwrite(b64 + off, 1, line, out) != line || fputc('\n', out) == EOF)
            ret = -EIO;
    }
    if (ret == 0 && fputs("-----END CERTIFICATE-----\n", out) == EOF)
        ret = -EIO;
    free(b64);
    return ret;
}

int cert_cmd_run(const char *confdir, int n, char **names, FILE *out, FILE *err)
{
    char msg[512];
    struct ca *ca = NULL;
    struct forge *f = NULL;
    const char *why = NULL;
    const uint8_t *ca_der;
    uint8_t *leaf = NULL;
    size_t ca_len, leaf_len;
    int ret;

    if (n <= 0) {
        fprintf(err, "mitmd cert: usage: mitmd cert NAME...\n");
        return 1;
    }
    ret = ca_load_or_create(confdir, &ca, msg, sizeof(msg));
    if (ret) {
        fprintf(err, "mitmd cert: %s\n", msg);
        return 1;
    }
    if (ca_was_created(ca))
        fprintf(err, "mitmd cert: created a new CA in %s (no CA was there); clients must trust "
                "%s\n", confdir, ca_cert_path(ca));
    f = forge_new(ca, &why);
    if (f == NULL) {
        fprintf(err, "mitmd cert: %s\n", why);
        ret = 1;
        goto out_free_ca;
    }
    ret = forge_leaf(f, (const char *const *)names, (size_t)n, NULL, &leaf, &leaf_len, NULL,
                     &why);
    if (ret) {
        /* name the offending name when the reason is about one */
        const char *bad = NULL;

        for (int i = 0; i < n && bad == NULL; i++) {
            const char *w;

            if (forge_name_check(names[i], &w) != 0)
                bad = names[i];
        }
        if (bad != NULL)
            fprintf(err, "mitmd cert: %s: %s\n", bad, why);
        else
            fprintf(err, "mitmd cert: %s\n", why);
        ret = 1;
        goto out_free_forge;
    }
    ca_der = ca_cert_der(ca, &ca_len);
    if (cert_cmd_print_pem(out, leaf, leaf_len) != 0 ||
        cert_cmd_print_pem(out, ca_der, ca_len) != 0 || fflush(out) == EOF) {
        fprintf(err, "mitmd cert: cannot write the chain: %s\n", strerror(errno));
        ret = 1;
    }
    free(leaf);
out_free_forge:
    forge_free(f);
out_free_ca:
    ca_free(ca);
    return ret;
}
