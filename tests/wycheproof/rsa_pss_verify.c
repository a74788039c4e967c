/*
 * rsassa_pss_verify: RSA-PSS signatures with the group's digest, MGF1
 * digest and salt length, through the ihsm provider's RSA signature with
 * the group's key imported as an ihsm RSA key.
 */
#include "wycheproof.h"

#include <stdio.h>
#include <string.h>

static void setup(wp_run *r, const wp_json *g, wp_vgroup *v)
{
    const char *mgf = wp_json_str(g, "mgf");
    long long slen;

    v->md = wp_json_str(g, "sha");
    v->pss.pss = 1;
    v->pss.mgf1_md = wp_json_str(g, "mgfSha");
    if (v->md == NULL || v->pss.mgf1_md == NULL || wp_json_int(g, "sLen", &slen) != 0
        || slen < 0 || slen > 4096) {
        snprintf(v->why, sizeof(v->why), "the group lacks sha, mgfSha or sLen");
        return;
    }
    if (mgf == NULL || strcmp(mgf, "MGF1") != 0) {
        v->skip = 1;
        snprintf(v->why, sizeof(v->why), "mask generation %s: only MGF1 exists in OpenSSL",
                 mgf ? mgf : "(none)");
        return;
    }
    v->pss.salt_len = (int)slen;
    v->pub = wp_verify_group_key(r, g, wp_json_get(g, "keyDer") ? "keyDer" : "publicKeyDer",
                                 v);
}

int wp_run_rsa_pss_verify(wp_run *r, const wp_json *root)
{
    return wp_run_verify(r, root, setup);
}
