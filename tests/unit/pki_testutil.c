/* pki_testutil.c - see pki_testutil.h. */
#include "tests/unit/pki_testutil.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <openssl/bn.h>
#include <openssl/ec_key.h>
#include <openssl/nid.h>
#include <openssl/rsa.h>
#include <openssl/x509v3.h>

time_t pki_testutil_asn1_to_posix(const ASN1_TIME *t)
{
    ASN1_TIME *epoch = ASN1_TIME_set(NULL, 0);
    int days, secs;

    assert_non_null(epoch);
    assert_int_equal(ASN1_TIME_diff(&days, &secs, epoch, t), 1);
    ASN1_TIME_free(epoch);
    return (time_t)days * 86400 + secs;
}

EVP_PKEY *pki_testutil_gen_key(int type)
{
    EVP_PKEY *pkey = EVP_PKEY_new();

    assert_non_null(pkey);
    if (type == EVP_PKEY_RSA) {
        RSA *rsa = RSA_new();
        BIGNUM *e = BN_new();

        assert_true(rsa != NULL && e != NULL && BN_set_word(e, RSA_F4) == 1);
        assert_int_equal(RSA_generate_key_ex(rsa, 2048, e, NULL), 1);
        assert_int_equal(EVP_PKEY_assign_RSA(pkey, rsa), 1);
        BN_free(e);
    } else {
        EC_KEY *ec = EC_KEY_new_by_curve_name(NID_X9_62_prime256v1);

        assert_true(ec != NULL && EC_KEY_generate_key(ec) == 1);
        assert_int_equal(EVP_PKEY_assign_EC_KEY(pkey, ec), 1);
    }
    return pkey;
}

void pki_testutil_add_ext(X509 *x, int nid, const char *value)
{
    X509V3_CTX ctx;
    X509_EXTENSION *ext;

    X509V3_set_ctx(&ctx, x, x, NULL, NULL, 0);
    ext = X509V3_EXT_nconf_nid(NULL, &ctx, nid, value);
    assert_non_null(ext);
    assert_int_equal(X509_add_ext(x, ext, -1), 1);
    X509_EXTENSION_free(ext);
}
