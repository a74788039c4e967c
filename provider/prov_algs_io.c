/*
 * Algorithm tables for the key I/O operations; provider.c returns them from
 * query_operation. Names carry OpenSSL's aliases so they meet the default
 * provider's in the name map; every property string starts with
 * provider=ihsm so `-propquery provider=ihsm` selects them.
 */
#include <openssl/core.h>

#include "ihsm_prov_io.h"

#define NAMES_RSA     "RSA:rsaEncryption:1.2.840.113549.1.1.1"
#define NAMES_RSA_PSS "RSA-PSS:RSASSA-PSS:1.2.840.113549.1.1.10"
#define NAMES_EC      "EC:id-ecPublicKey:1.2.840.10045.2.1"
#define NAMES_ED25519 "ED25519:1.3.101.112"
#define NAMES_X25519  "X25519:1.3.101.110"

/* PEM (our label only) → DER → key object, as tpm2-openssl's "TSS2". */
#define DER2KEY(names, fns)                                                   \
    { names, "provider=ihsm,input=der,structure=" IHSM_KEYFILE_STRUCTURE, fns, \
      "ihsm masked key (DER) to a device key" }

const OSSL_ALGORITHM ihsm_decoder_algs[] = {
    { "DER", "provider=ihsm,input=pem", ihsm_keyfile_decoder_functions,
      "PEM " IHSM_KEYFILE_PEM_LABEL " to DER" },
    DER2KEY(NAMES_RSA, ihsm_rsa_keyfile_decoder_functions),
    DER2KEY(NAMES_RSA_PSS, ihsm_rsapss_keyfile_decoder_functions),
    DER2KEY(NAMES_EC, ihsm_ec_keyfile_decoder_functions),
    DER2KEY(NAMES_ED25519, ihsm_ed25519_keyfile_decoder_functions),
    DER2KEY(NAMES_X25519, ihsm_x25519_keyfile_decoder_functions),
    { NULL, NULL, NULL, NULL }
};
#undef DER2KEY

/* Per key type: SPKI (DER, PEM), text, and the private key as the masked
 * key file (PEM, DER). The latter answer to "PrivateKeyInfo", the structure
 * PEM_write_bio_PrivateKey and i2d_PrivateKey ask for: libcrypto only uses
 * an encoder that names the structure asked for (encoder_lib.c). */
#define ENCODERS(names)                                                       \
    { names, "provider=ihsm,output=der,structure=SubjectPublicKeyInfo",       \
      ihsm_spki_der_encoder_functions, "public key, SubjectPublicKeyInfo DER" }, \
    { names, "provider=ihsm,output=pem,structure=SubjectPublicKeyInfo",       \
      ihsm_spki_pem_encoder_functions, "public key, SubjectPublicKeyInfo PEM" }, \
    { names, "provider=ihsm,output=text", ihsm_text_encoder_functions,        \
      "device key as text" },                                                 \
    { names, "provider=ihsm,output=pem,structure=PrivateKeyInfo",             \
      ihsm_keyfile_pem_encoder_functions,                                     \
      "private key as a masked key file (PEM " IHSM_KEYFILE_PEM_LABEL ")" },  \
    { names, "provider=ihsm,output=der,structure=PrivateKeyInfo",             \
      ihsm_keyfile_der_encoder_functions, "private key as a masked key (DER)" }

const OSSL_ALGORITHM ihsm_encoder_algs[] = {
    ENCODERS(NAMES_RSA),
    ENCODERS(NAMES_RSA_PSS),
    ENCODERS(NAMES_EC),
    ENCODERS(NAMES_ED25519),
    ENCODERS(NAMES_X25519),
    { NULL, NULL, NULL, NULL }
};
#undef ENCODERS

const OSSL_ALGORITHM ihsm_store_algs[] = {
    { "ihsm", "provider=ihsm", ihsm_store_functions, "keys in ihsmd by name (ihsm: URIs)" },
    { NULL, NULL, NULL, NULL }
};
