/*
 * eddsa_verify: Ed25519 signatures (PureEdDSA over msg) through the ihsm
 * provider's ED25519 signature, the group's public key imported as an ihsm
 * Ed25519 key. Ed448 groups are skipped: the provider has no Ed448.
 */
#include "wycheproof.h"

static void setup(wp_run *r, const wp_json *g, wp_vgroup *v)
{
    v->md = NULL;
    v->pub = wp_verify_group_key(r, g, "publicKeyDer", v);
}

int wp_run_eddsa_verify(wp_run *r, const wp_json *root)
{
    return wp_run_verify(r, root, setup);
}
