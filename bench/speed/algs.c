/*
 * The rows ihsm-speed knows: what each measures and what the ihsm provider
 * must offer for it. Names are the --alg spellings.
 */
#include <string.h>

#include "speed.h"

const struct sp_row sp_rows[] = {
    { "rsa-2048", SP_OP_SIGN, "RSA", NULL, 2048, "RSA", 0, NULL },
    { "rsa-3072", SP_OP_SIGN, "RSA", NULL, 3072, "RSA", 0, NULL },
    { "ecdsa-p256", SP_OP_SIGN, "EC", "P-256", 0, "ECDSA", 0, NULL },
    { "ecdsa-p384", SP_OP_SIGN, "EC", "P-384", 0, "ECDSA", 0, NULL },
    { "ed25519", SP_OP_SIGN, "ED25519", NULL, 0, "ED25519", 0, NULL },
    { "x25519", SP_OP_DERIVE, "X25519", NULL, 0, "X25519", 0, "x25519" },
    { "ecdh-p256", SP_OP_DERIVE, "EC", "P-256", 0, "ECDH", 0, "secp256r1" },
    { "aes-256-gcm-64", SP_OP_SEAL, NULL, NULL, 0, "AES-256-GCM", 64, NULL },
    { "aes-256-gcm-1k", SP_OP_SEAL, NULL, NULL, 0, "AES-256-GCM", 1024, NULL },
    { "aes-256-gcm-16k", SP_OP_SEAL, NULL, NULL, 0, "AES-256-GCM", 16384, NULL },
    { "chacha20-poly1305-64", SP_OP_SEAL, NULL, NULL, 0, "ChaCha20-Poly1305", 64, NULL },
    { "chacha20-poly1305-1k", SP_OP_SEAL, NULL, NULL, 0, "ChaCha20-Poly1305", 1024, NULL },
    { "chacha20-poly1305-16k", SP_OP_SEAL, NULL, NULL, 0, "ChaCha20-Poly1305", 16384, NULL },
};
const size_t sp_nrows = sizeof(sp_rows) / sizeof(sp_rows[0]);

const struct sp_row *sp_row_find(const char *name)
{
    for (size_t i = 0; i < sp_nrows; i++)
        if (strcmp(sp_rows[i].name, name) == 0)
            return &sp_rows[i];
    return NULL;
}

const char *sp_op_name(enum sp_op_kind k)
{
    switch (k) {
    case SP_OP_SIGN: return "sign";
    case SP_OP_DERIVE: return "derive";
    case SP_OP_SEAL: return "seal";
    }
    return "?";
}

/* ihsmd's STATS counts AEAD seal and open together as "aead". */
const char *sp_device_counter(enum sp_op_kind k)
{
    switch (k) {
    case SP_OP_SIGN: return "sign";
    case SP_OP_DERIVE: return "derive";
    case SP_OP_SEAL: return "aead";
    }
    return "?";
}

const struct sp_op_ops *sp_ops_for(const struct sp_row *row)
{
    switch (row->kind) {
    case SP_OP_SIGN: return &sp_sign_ops;
    case SP_OP_DERIVE: return &sp_derive_ops;
    case SP_OP_SEAL: return &sp_aead_ops;
    }
    return NULL;
}
