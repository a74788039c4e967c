/*
 * TLS-GROUP capability: the groups whose ephemeral keys ihsm makes in the
 * device (x25519, secp256r1, secp384r1), offered only when ihsm-route
 * includes derive.
 *
 * libssl (3.0) keeps a group of a provider only if an EVP_KEYMGMT_fetch of
 * the group's algorithm ("EC", "X25519") with the SSL_CTX's property query
 * returns that provider's key management; it then makes its ephemeral keys
 * with EVP_PKEY_CTX_new_from_name(algorithm) and the group's internal name.
 * So these entries are used exactly when ihsm's keymgmt wins that fetch
 * (openssl.cnf `default_properties = ?ihsm.derive=yes`, see
 * docs/configuration.md), and the internal names (IHSM_KEX_GROUP_*) tell our
 * key management that the key is an ephemeral ECDHE key. The TLS names and
 * their aliases are the default provider's, so group lists in server
 * configurations (nginx ssl_ecdh_curve, HAProxy curves) keep working.
 */
#include <string.h>
#include <openssl/core_names.h>
#include <openssl/params.h>
#include <openssl/prov_ssl.h>
#include "prov_int.h"

typedef struct {
    unsigned int id;       /* TLS NamedGroup */
    unsigned int secbits;
    int mintls, maxtls, mindtls, maxdtls;
} IHSM_GROUP_CONSTANTS;

static const IHSM_GROUP_CONSTANTS group_consts[] = {
    { 0x001d, 128, TLS1_VERSION, 0, DTLS1_VERSION, 0 }, /* x25519 */
    { 0x0017, 128, TLS1_VERSION, 0, DTLS1_VERSION, 0 }, /* secp256r1 */
    { 0x0018, 192, TLS1_VERSION, 0, DTLS1_VERSION, 0 }, /* secp384r1 */
};

#define GROUP(tlsname, realname, alg, i)                                                  \
    {                                                                                     \
        OSSL_PARAM_utf8_string(OSSL_CAPABILITY_TLS_GROUP_NAME, tlsname, sizeof(tlsname)), \
        OSSL_PARAM_utf8_string(OSSL_CAPABILITY_TLS_GROUP_NAME_INTERNAL, realname,         \
                               sizeof(realname)),                                         \
        OSSL_PARAM_utf8_string(OSSL_CAPABILITY_TLS_GROUP_ALG, alg, sizeof(alg)),          \
        OSSL_PARAM_uint(OSSL_CAPABILITY_TLS_GROUP_ID, (unsigned int *)&group_consts[i].id), \
        OSSL_PARAM_uint(OSSL_CAPABILITY_TLS_GROUP_SECURITY_BITS,                          \
                        (unsigned int *)&group_consts[i].secbits),                        \
        OSSL_PARAM_int(OSSL_CAPABILITY_TLS_GROUP_MIN_TLS, (int *)&group_consts[i].mintls), \
        OSSL_PARAM_int(OSSL_CAPABILITY_TLS_GROUP_MAX_TLS, (int *)&group_consts[i].maxtls), \
        OSSL_PARAM_int(OSSL_CAPABILITY_TLS_GROUP_MIN_DTLS, (int *)&group_consts[i].mindtls), \
        OSSL_PARAM_int(OSSL_CAPABILITY_TLS_GROUP_MAX_DTLS, (int *)&group_consts[i].maxdtls), \
        OSSL_PARAM_END                                                                    \
    }

/* Names are matched exactly by SSL_CTX_set1_groups_list: the default
 * provider's TLS names, its aliases, and the curve names people write. */
static const OSSL_PARAM groups[][10] = {
    GROUP("x25519", IHSM_KEX_GROUP_X25519, "X25519", 0),
    GROUP("X25519", IHSM_KEX_GROUP_X25519, "X25519", 0),
    GROUP("secp256r1", IHSM_KEX_GROUP_P256, "EC", 1),
    GROUP("P-256", IHSM_KEX_GROUP_P256, "EC", 1),
    GROUP("prime256v1", IHSM_KEX_GROUP_P256, "EC", 1),
    GROUP("secp384r1", IHSM_KEX_GROUP_P384, "EC", 2),
    GROUP("P-384", IHSM_KEX_GROUP_P384, "EC", 2),
};

int ihsm_prov_get_capabilities(void *provctx, const char *capability, OSSL_CALLBACK *cb,
                               void *arg)
{
    IHSM_PROV_CTX *ctx = provctx;
    size_t i;

    if (strcasecmp(capability, "TLS-GROUP") != 0)
        return 1; /* none of that kind */
    /* Without derive in ihsm-route, libssl keeps the default provider's. */
    if ((ctx->route & IHSM_ROUTE_DERIVE) == 0)
        return 1;
    for (i = 0; i < IHSM_ARRAY_LEN(groups); i++) {
        if (!cb(groups[i], arg))
            return 0;
    }
    return 1;
}
