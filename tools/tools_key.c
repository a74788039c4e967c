/*
 * Key references on the command line: --name NAME (a key stored in the
 * partition, KEY_FIND) or --key FILE (a masked key file, KEY_UNMASK).
 */
#include "tools_common.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/x509.h>
#include "ihsm_keyfile.h"

#define MAX_SPKI 4096

void ihsm_tool_key_clear(ihsm_tool_key *k)
{
    free(k->spki);
    free(k->name);
    free(k->file);
    memset(k, 0, sizeof(*k));
}

static int take_spki(ihsm_tool_key *k, const uint8_t *p, size_t len)
{
    if (len == 0)
        return 0;
    k->spki = malloc(len);
    if (k->spki == NULL)
        return -1;
    memcpy(k->spki, p, len);
    k->spki_len = len;
    return 0;
}

static int check_ref(ihsm_tool *t, const char *name, const char *file)
{
    if ((name == NULL) == (file == NULL))
        return ihsm_tool_usage_err(t, "give the key as exactly one of --name NAME "
                                   "(a key stored in the partition) or --key FILE "
                                   "(a masked key file)");
    if (name != NULL && !ihsm_tool_valid_name(name))
        return ihsm_tool_usage_err(t, "key name '%s' is invalid: use " IHSM_TOOL_NAME_RULE,
                                   name);
    return IHSM_TOOL_OK;
}

static int read_keyfile(ihsm_tool *t, const char *file, ihsm_keyfile *kf)
{
    memset(kf, 0, sizeof(*kf));
    errno = 0;
    if (ihsm_keyfile_read(file, kf) != 0) {
        /* EINVAL: the file is there but holds no masked key */
        if (errno != 0 && errno != EINVAL)
            ihsm_tool_err(t, "cannot read key file %s: %s", file, strerror(errno));
        else
            ihsm_tool_err(t, "%s is not an ihsm masked key file (PEM \"%s\"): write "
                          "one with `ihsmctl keygen --out` or `ihsmctl import --out`",
                          file, IHSM_KEYFILE_PEM_LABEL);
        return IHSM_TOOL_FAIL;
    }
    return IHSM_TOOL_OK;
}

static int find_named(ihsm_tool *t, const char *name, ihsm_tool_key *k)
{
    ihsm_result res;
    ihsm_wr w;
    ihsm_rd r;
    const uint8_t *pub;
    size_t pub_len = 0;
    int st;

    ihsm_wr_init(&w);
    ihsm_wr_bytes(&w, name, strlen(name));
    st = ihsm_tool_call(t, IHSM_CMD_KEY_FIND, &w, &res);
    ihsm_wr_free(&w);
    if (st == IHSM_ERR_NOT_FOUND) {
        ihsm_result_clear(&res);
        ihsm_tool_err(t, "no key named '%s' in partition '%s': see `ihsmctl list`, or "
                      "create it with `ihsmctl keygen --name %s` / `ihsmctl import`",
                      name, t->partition, name);
        return IHSM_TOOL_FAIL;
    }
    if (st != IHSM_OK) {
        ihsm_result_clear(&res);
        return ihsm_tool_status_err(t, st, "cannot find key '%s'", name);
    }
    ihsm_rd_init(&r, res.data, res.len);
    k->handle = ihsm_rd_u32(&r);
    k->type = ihsm_rd_u32(&r);
    k->bits = ihsm_rd_u32(&r);
    k->usage = ihsm_rd_u32(&r);
    pub = ihsm_rd_bytes(&r, &pub_len, MAX_SPKI);
    if (ihsm_rd_end(&r) != 0 || take_spki(k, pub, pub_len) != 0) {
        ihsm_result_clear(&res);
        ihsm_tool_err(t, "the device's answer to KEY_FIND is malformed: client and "
                      "ihsmd versions may differ");
        return IHSM_TOOL_FAIL;
    }
    ihsm_result_clear(&res);
    return IHSM_TOOL_OK;
}

static int unmask_file(ihsm_tool *t, const char *file, ihsm_tool_key *k)
{
    ihsm_keyfile kf;
    ihsm_result res;
    ihsm_wr w;
    ihsm_rd r;
    const uint8_t *pub;
    size_t pub_len = 0, label_len = 0;
    int st, rc;

    if ((rc = read_keyfile(t, file, &kf)) != IHSM_TOOL_OK)
        return rc;
    ihsm_wr_init(&w);
    ihsm_wr_bytes(&w, kf.blob, kf.blob_len);
    st = ihsm_tool_call(t, IHSM_CMD_KEY_UNMASK, &w, &res);
    ihsm_wr_free(&w);
    if (st != IHSM_OK) {
        ihsm_result_clear(&res);
        ihsm_keyfile_clear(&kf);
        return ihsm_tool_status_err(t, st, "cannot load key file %s into partition '%s'",
                                    file, t->partition);
    }
    ihsm_rd_init(&r, res.data, res.len);
    k->handle = ihsm_rd_u32(&r);
    k->type = ihsm_rd_u32(&r);
    k->bits = ihsm_rd_u32(&r);
    k->usage = ihsm_rd_u32(&r);
    (void)ihsm_rd_bytes(&r, &label_len, IHSM_MAX_LABEL);
    pub = ihsm_rd_bytes(&r, &pub_len, MAX_SPKI);
    rc = IHSM_TOOL_OK;
    if (ihsm_rd_end(&r) != 0 || take_spki(k, pub, pub_len) != 0) {
        ihsm_tool_err(t, "the device's answer to KEY_UNMASK is malformed: client and "
                      "ihsmd versions may differ");
        rc = IHSM_TOOL_FAIL;
    } else if (kf.key_type != k->type) {
        ihsm_tool_err(t, "key file %s says key type %u but the device unmasked type %u: "
                      "the file was altered", file, kf.key_type, k->type);
        rc = IHSM_TOOL_FAIL;
    }
    ihsm_result_clear(&res);
    ihsm_keyfile_clear(&kf);
    return rc;
}

int ihsm_tool_key_load(ihsm_tool *t, const char *name, const char *file, ihsm_tool_key *k)
{
    int rc;

    memset(k, 0, sizeof(*k));
    if ((rc = check_ref(t, name, file)) != IHSM_TOOL_OK)
        return rc;
    if (ihsm_tool_queue(t, &rc) == NULL)
        return rc;
    k->name = name != NULL ? strdup(name) : NULL;
    k->file = file != NULL ? strdup(file) : NULL;
    rc = name != NULL ? find_named(t, name, k) : unmask_file(t, file, k);
    if (rc != IHSM_TOOL_OK)
        ihsm_tool_key_clear(k);
    return rc;
}

/* Key type and bits from an SPKI alone, for key files (no device). */
static int spki_type(const ihsm_tool_key *k, uint32_t *type, uint32_t *bits)
{
    EVP_PKEY *pk = ihsm_tool_key_pkey(k);
    char group[64];
    int rc = 0;

    if (pk == NULL)
        return -1;
    switch (EVP_PKEY_get_base_id(pk)) {
    case EVP_PKEY_RSA: *type = IHSM_KEY_RSA; *bits = (uint32_t)EVP_PKEY_get_bits(pk); break;
    case EVP_PKEY_ED25519: *type = IHSM_KEY_ED25519; *bits = 256; break;
    case EVP_PKEY_X25519: *type = IHSM_KEY_X25519; *bits = 256; break;
    case EVP_PKEY_EC:
        if (!EVP_PKEY_get_utf8_string_param(pk, "group", group, sizeof(group), NULL))
            rc = -1;
        else if (strcmp(group, "prime256v1") == 0 || strcmp(group, "P-256") == 0)
            *type = IHSM_KEY_EC_P256, *bits = 256;
        else if (strcmp(group, "secp384r1") == 0 || strcmp(group, "P-384") == 0)
            *type = IHSM_KEY_EC_P384, *bits = 384;
        else
            rc = -1;
        break;
    default: rc = -1; break;
    }
    EVP_PKEY_free(pk);
    return rc;
}

int ihsm_tool_key_public(ihsm_tool *t, const char *name, const char *file, ihsm_tool_key *k)
{
    ihsm_keyfile kf;
    int rc;

    memset(k, 0, sizeof(*k));
    if ((rc = check_ref(t, name, file)) != IHSM_TOOL_OK)
        return rc;
    if (name != NULL)
        return ihsm_tool_key_load(t, name, NULL, k);
    if ((rc = read_keyfile(t, file, &kf)) != IHSM_TOOL_OK)
        return rc;
    k->file = strdup(file);
    k->type = kf.key_type;
    rc = take_spki(k, kf.spki, kf.spki_len) == 0 ? IHSM_TOOL_OK : IHSM_TOOL_FAIL;
    ihsm_keyfile_clear(&kf);
    if (rc == IHSM_TOOL_OK && k->spki != NULL) {
        uint32_t type = 0, bits = 0;

        if (spki_type(k, &type, &bits) != 0 || type != k->type) {
            ihsm_tool_err(t, "key file %s holds a public key that does not match its "
                          "key type %u: the file was altered", file, k->type);
            rc = IHSM_TOOL_FAIL;
        }
        k->bits = bits;
    }
    if (rc != IHSM_TOOL_OK)
        ihsm_tool_key_clear(k);
    return rc;
}

EVP_PKEY *ihsm_tool_key_pkey(const ihsm_tool_key *k)
{
    const unsigned char *p = k->spki;

    if (k->spki == NULL || k->spki_len == 0)
        return NULL;
    return d2i_PUBKEY(NULL, &p, (long)k->spki_len);
}
