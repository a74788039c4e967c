/* Keys for the rows: made in whichever provider the side asks for (ihsm:
 * inside the device), and public halves moved between library contexts. */
#include <openssl/x509.h>

#include "speed.h"

EVP_PKEY *sp_keygen(OSSL_LIB_CTX *lc, const char *propq, const struct sp_row *row)
{
    EVP_PKEY_CTX *kc = EVP_PKEY_CTX_new_from_name(lc, row->keytype, propq);
    EVP_PKEY *pk = NULL;

    if (kc == NULL || EVP_PKEY_keygen_init(kc) <= 0
        || (row->bits != 0 && EVP_PKEY_CTX_set_rsa_keygen_bits(kc, (int)row->bits) <= 0)
        || (row->param != NULL && EVP_PKEY_CTX_set_group_name(kc, row->param) <= 0)
        || EVP_PKEY_generate(kc, &pk) <= 0) {
        EVP_PKEY_free(pk);
        pk = NULL;
    }
    EVP_PKEY_CTX_free(kc);
    return pk;
}

EVP_PKEY *sp_pub_in(OSSL_LIB_CTX *lc, EVP_PKEY *k)
{
    unsigned char *der = NULL;
    const unsigned char *p;
    EVP_PKEY *pub = NULL;
    int n = i2d_PUBKEY(k, &der);

    if (n > 0) {
        p = der;
        pub = d2i_PUBKEY_ex(NULL, &p, n, lc, NULL);
    }
    OPENSSL_free(der);
    return pub;
}
