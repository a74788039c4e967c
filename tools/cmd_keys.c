/*
 * Key lifecycle: keygen, list, delete, pubkey (import: cmd_import.c).
 * A key exists in the device and, outside it, only as a masked blob: stored
 * by name in the partition (IHSM_KEYF_PERSIST) and/or in a key file.
 */
#include "tools_common.h"

#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/pem.h>
#include "ihsm_keyfile.h"

#define MAX_SPKI 4096

/* ---- shared with import ---- */

int ihsm_tool_key_created(ihsm_tool *t, const char *verb, const char *name,
                          const char *out, uint32_t type, uint32_t bits,
                          const ihsm_result *res)
{
    ihsm_keyfile kf;
    ihsm_rd r;
    const uint8_t *blob, *pub;
    size_t blob_len = 0, pub_len = 0;
    char tname[32];
    uint32_t handle;
    int rc = IHSM_TOOL_OK;

    ihsm_rd_init(&r, res->data, res->len);
    handle = ihsm_rd_u32(&r);
    blob = ihsm_rd_bytes(&r, &blob_len, IHSM_MAX_BLOB);
    pub = ihsm_rd_bytes(&r, &pub_len, MAX_SPKI);
    if (ihsm_rd_end(&r) != 0 || blob_len == 0) {
        ihsm_tool_err(t, "the device's answer is malformed (no masked blob): client and "
                      "ihsmd versions may differ");
        return IHSM_TOOL_FAIL;
    }
    if (out != NULL) {
        memset(&kf, 0, sizeof(kf));
        kf.key_type = type;
        kf.spki = (uint8_t *)pub;
        kf.spki_len = pub_len;
        kf.blob = (uint8_t *)blob;
        kf.blob_len = blob_len;
        if (ihsm_keyfile_write(out, &kf) != 0) {
            ihsm_tool_err(t, "the key was %s%s%s but the key file %s could not be "
                          "written: %m", verb, name ? " as " : "", name ? name : "", out);
            rc = IHSM_TOOL_FAIL;
        }
    }
    if (rc == IHSM_TOOL_OK) {
        printf("%s %s key:", verb, ihsm_tool_type_name(type, bits, tname, sizeof(tname)));
        if (name != NULL)
            printf(" name=%s", name);
        printf(" handle=%u", handle);
        if (out != NULL)
            printf(" file=%s", out);
        putchar('\n');
    }
    return rc;
}

/* ---- keygen ---- */

static const char keygen_help[] =
    "Usage: ihsmctl keygen --type TYPE [--name NAME] [--out FILE] [--usage LIST] [--force]\n"
    "\n"
    "Generate a key inside the device. Its private part never leaves the device\n"
    "in clear: with --name it is stored in the partition under NAME (use it as\n"
    "--name NAME or the URI ihsm:NAME); with --out its masked form is written to\n"
    "a key file (PEM \"IHSM MASKED KEY\") that nginx/HAProxy/openssl load through\n"
    "the provider. At least one of --name and --out.\n"
    "\n"
    "  --type TYPE   rsa-2048 rsa-3072 rsa-4096 ec-p256 ec-p384 ed25519 x25519\n"
    "                aes-128 aes-256\n"
    "  --name NAME   store the key in the partition under this name\n"
    "  --out FILE    write the masked key file (mode 0600)\n"
    "  --usage LIST  comma-separated: sign,derive,encrypt,decrypt (default: the\n"
    "                type's natural use; EC keys may take sign,derive)\n"
    "  --force       overwrite an existing --out file\n";

int ihsm_cmd_keygen(ihsm_tool *t, int argc, char **argv)
{
    static const struct option opts[] = {
        { "type", required_argument, NULL, 't' },
        { "name", required_argument, NULL, 'n' },
        { "out", required_argument, NULL, 'o' },
        { "usage", required_argument, NULL, 'u' },
        { "force", no_argument, NULL, 'f' },
        IHSM_TOOL_GLOBAL_OPTS,
        { NULL, 0, NULL, 0 },
    };
    const char *name = NULL, *out = NULL, *tstr = NULL;
    uint32_t type = 0, bits = 0, usage = 0;
    ihsm_result res;
    ihsm_wr w;
    int c, force = 0, st, rc;

    while ((c = getopt_long(argc, argv, "+h", opts, NULL)) != -1) {
        switch (c) {
        case 't': tstr = optarg; break;
        case 'n': name = optarg; break;
        case 'o': out = optarg; break;
        case 'f': force = 1; break;
        case 'u':
            if (ihsm_tool_parse_usage(optarg, &usage) != 0)
                return ihsm_tool_usage_err(t, "--usage '%s' is not a comma-separated list "
                                           "of sign, derive, encrypt, decrypt", optarg);
            break;
        case 'h': fputs(keygen_help, stdout); return IHSM_TOOL_OK;
        default:
            if (ihsm_tool_global_opt(t, c, optarg))
                break;
            return ihsm_tool_bad_option(t, argv);
        }
    }
    if ((rc = ihsm_tool_no_operands(t, argc, argv)) != IHSM_TOOL_OK)
        return rc;
    if (tstr == NULL)
        return ihsm_tool_usage_err(t, "--type is required (rsa-2048, rsa-3072, rsa-4096, "
                                   "ec-p256, ec-p384, ed25519, x25519, aes-128, aes-256)");
    if (ihsm_tool_parse_type(tstr, &type, &bits) != 0)
        return ihsm_tool_usage_err(t, "unknown key type '%s': use rsa-2048, rsa-3072, "
                                   "rsa-4096, ec-p256, ec-p384, ed25519, x25519, aes-128 "
                                   "or aes-256", tstr);
    if (name == NULL && out == NULL)
        return ihsm_tool_usage_err(t, "give --name NAME (store the key in the partition) "
                                   "and/or --out FILE (write a key file): otherwise the "
                                   "key would be lost when this command exits");
    if (name != NULL && !ihsm_tool_valid_name(name))
        return ihsm_tool_usage_err(t, "key name '%s' is invalid: use " IHSM_TOOL_NAME_RULE,
                                   name);
    if (out != NULL && ihsm_tool_exists(out) && !force) {
        ihsm_tool_err(t, "%s already exists: refusing to overwrite it (pass --force, or "
                      "choose another --out)", out);
        return IHSM_TOOL_FAIL;
    }
    if (ihsm_tool_queue(t, &rc) == NULL)
        return rc;

    ihsm_wr_init(&w);
    ihsm_wr_u32(&w, type);
    ihsm_wr_u32(&w, ihsm_tool_wire_bits(type, bits));
    ihsm_wr_u32(&w, usage);
    ihsm_wr_u32(&w, name != NULL ? IHSM_KEYF_PERSIST : 0);
    ihsm_wr_bytes(&w, name != NULL ? name : "", name != NULL ? strlen(name) : 0);
    st = ihsm_tool_call(t, IHSM_CMD_KEY_GENERATE, &w, &res);
    ihsm_wr_free(&w);
    if (st != IHSM_OK) {
        ihsm_result_clear(&res);
        if (st == IHSM_ERR_EXISTS)
            ihsm_tool_err(t, "a key named '%s' already exists in partition '%s': choose "
                          "another name or `ihsmctl delete --name %s` first",
                          name, t->partition, name);
        else
            ihsm_tool_status_err(t, st, "cannot generate a %s key", tstr);
        return IHSM_TOOL_FAIL;
    }
    rc = ihsm_tool_key_created(t, "generated", name, out, type, bits, &res);
    ihsm_result_clear(&res);
    return rc;
}

/* ---- list ---- */

static const char list_help[] =
    "Usage: ihsmctl list [--json]\n"
    "\n"
    "List the keys stored in the partition: name, type, usage.\n";

int ihsm_cmd_list(ihsm_tool *t, int argc, char **argv)
{
    static const struct option opts[] = {
        { "json", no_argument, NULL, 'j' },
        IHSM_TOOL_GLOBAL_OPTS,
        { NULL, 0, NULL, 0 },
    };
    ihsm_result res;
    ihsm_rd r;
    uint32_t n;
    int c, json = 0, st, rc;

    while ((c = getopt_long(argc, argv, "+h", opts, NULL)) != -1) {
        switch (c) {
        case 'j': json = 1; break;
        case 'h': fputs(list_help, stdout); return IHSM_TOOL_OK;
        default:
            if (ihsm_tool_global_opt(t, c, optarg))
                break;
            return ihsm_tool_bad_option(t, argv);
        }
    }
    if ((rc = ihsm_tool_no_operands(t, argc, argv)) != IHSM_TOOL_OK)
        return rc;
    if (ihsm_tool_queue(t, &rc) == NULL)
        return rc;
    st = ihsm_tool_call(t, IHSM_CMD_KEY_LIST, NULL, &res);
    if (st != IHSM_OK) {
        ihsm_result_clear(&res);
        return ihsm_tool_status_err(t, st, "cannot list the keys of partition '%s'",
                                    t->partition);
    }
    /* Parse everything before printing anything: no half tables. */
    ihsm_rd_init(&r, res.data, res.len);
    n = ihsm_rd_u32(&r);
    for (uint32_t i = 0; i < n && !r.err; i++) {
        size_t len;
        (void)ihsm_rd_bytes(&r, &len, IHSM_MAX_LABEL);
        (void)ihsm_rd_u32(&r);
        (void)ihsm_rd_u32(&r);
        (void)ihsm_rd_u32(&r);
    }
    if (ihsm_rd_end(&r) != 0) {
        ihsm_result_clear(&res);
        ihsm_tool_err(t, "the device's answer to KEY_LIST is malformed: client and "
                      "ihsmd versions may differ");
        return IHSM_TOOL_FAIL;
    }
    ihsm_rd_init(&r, res.data, res.len);
    n = ihsm_rd_u32(&r);
    if (json)
        fputs("[", stdout);
    else if (n != 0)
        printf("%-32s %-10s %s\n", "NAME", "TYPE", "USAGE");
    for (uint32_t i = 0; i < n; i++) {
        size_t len = 0;
        const char *nm = (const char *)ihsm_rd_bytes(&r, &len, IHSM_MAX_LABEL);
        uint32_t type = ihsm_rd_u32(&r), bits = ihsm_rd_u32(&r), usage = ihsm_rd_u32(&r);
        char tname[32], uname[64];

        ihsm_tool_type_name(type, bits, tname, sizeof(tname));
        ihsm_tool_usage_name(usage, uname, sizeof(uname));
        if (json) {
            fputs(i ? ",\n {\"name\":" : "\n {\"name\":", stdout);
            ihsm_tool_json_str(stdout, nm, len);
            printf(",\"type\":\"%s\",\"bits\":%u,\"usage\":\"%s\"}", tname, bits, uname);
        } else {
            printf("%-32.*s %-10s %s\n", (int)len, nm, tname, uname);
        }
    }
    if (json)
        fputs(n ? "\n]\n" : "]\n", stdout);
    else if (n == 0)
        printf("no keys stored in partition %s\n", t->partition);
    ihsm_result_clear(&res);
    return IHSM_TOOL_OK;
}

/* ---- delete ---- */

static const char delete_help[] =
    "Usage: ihsmctl delete --name NAME\n"
    "\n"
    "Delete the stored key NAME from the partition (and unload it). Key files\n"
    "made from it keep working until the partition is zeroized.\n"
    "\n"
    "Deleting is the crypto officer's: the credential is --officer-credential,\n"
    "else --credential, else $IHSM_OFFICER_CREDENTIAL, else $IHSM_CREDENTIAL.\n";

int ihsm_cmd_delete(ihsm_tool *t, int argc, char **argv)
{
    static const struct option opts[] = {
        { "name", required_argument, NULL, 'n' },
        IHSM_TOOL_GLOBAL_OPTS,
        { NULL, 0, NULL, 0 },
    };
    const char *name = NULL;
    ihsm_result res;
    ihsm_wr w;
    int c, st, rc;

    while ((c = getopt_long(argc, argv, "+h", opts, NULL)) != -1) {
        switch (c) {
        case 'n': name = optarg; break;
        case 'h': fputs(delete_help, stdout); return IHSM_TOOL_OK;
        default:
            if (ihsm_tool_global_opt(t, c, optarg))
                break;
            return ihsm_tool_bad_option(t, argv);
        }
    }
    if ((rc = ihsm_tool_no_operands(t, argc, argv)) != IHSM_TOOL_OK)
        return rc;
    if (name == NULL)
        return ihsm_tool_usage_err(t, "--name NAME is required");
    if (!ihsm_tool_valid_name(name))
        return ihsm_tool_usage_err(t, "key name '%s' is invalid: use " IHSM_TOOL_NAME_RULE,
                                   name);
    ihsm_tool_use_officer(t); /* deleting is the crypto officer's */
    if (ihsm_tool_queue(t, &rc) == NULL)
        return rc;
    ihsm_wr_init(&w);
    ihsm_wr_u32(&w, 0);
    ihsm_wr_bytes(&w, name, strlen(name));
    st = ihsm_tool_call(t, IHSM_CMD_KEY_DELETE, &w, &res);
    ihsm_wr_free(&w);
    ihsm_result_clear(&res);
    if (st == IHSM_ERR_NOT_FOUND) {
        ihsm_tool_err(t, "no key named '%s' in partition '%s': see `ihsmctl list`",
                      name, t->partition);
        return IHSM_TOOL_FAIL;
    }
    if (st != IHSM_OK)
        return ihsm_tool_status_err(t, st, "cannot delete key '%s'", name);
    printf("deleted key %s\n", name);
    return IHSM_TOOL_OK;
}

/* ---- pubkey ---- */

static const char pubkey_help[] =
    "Usage: ihsmctl pubkey --name NAME | --key FILE [--out FILE]\n"
    "\n"
    "Print the key's public key as PEM SubjectPublicKeyInfo (\"PUBLIC KEY\"), for\n"
    "`openssl pkeyutl -verify -pubin`, CSRs and certificates. With --key the\n"
    "public key comes from the key file itself (no device needed).\n";

int ihsm_cmd_pubkey(ihsm_tool *t, int argc, char **argv)
{
    static const struct option opts[] = {
        { "name", required_argument, NULL, 'n' },
        { "key", required_argument, NULL, 'k' },
        { "out", required_argument, NULL, 'o' },
        IHSM_TOOL_GLOBAL_OPTS,
        { NULL, 0, NULL, 0 },
    };
    const char *name = NULL, *file = NULL, *out = NULL;
    ihsm_tool_key k;
    EVP_PKEY *pk;
    BIO *bio;
    char *pem = NULL;
    long pem_len;
    int c, rc;

    while ((c = getopt_long(argc, argv, "+h", opts, NULL)) != -1) {
        switch (c) {
        case 'n': name = optarg; break;
        case 'k': file = optarg; break;
        case 'o': out = optarg; break;
        case 'h': fputs(pubkey_help, stdout); return IHSM_TOOL_OK;
        default:
            if (ihsm_tool_global_opt(t, c, optarg))
                break;
            return ihsm_tool_bad_option(t, argv);
        }
    }
    if ((rc = ihsm_tool_no_operands(t, argc, argv)) != IHSM_TOOL_OK)
        return rc;
    if ((rc = ihsm_tool_key_public(t, name, file, &k)) != IHSM_TOOL_OK)
        return rc;
    if (k.spki == NULL) {
        ihsm_tool_err(t, "%s %s is a secret (AES) key: it has no public key",
                      name ? "key" : "key file", name ? name : file);
        ihsm_tool_key_clear(&k);
        return IHSM_TOOL_FAIL;
    }
    /* Parse before printing: never hand out something OpenSSL cannot read. */
    pk = ihsm_tool_key_pkey(&k);
    bio = BIO_new(BIO_s_mem());
    if (pk == NULL || bio == NULL || !PEM_write_bio_PUBKEY(bio, pk)
        || (pem_len = BIO_get_mem_data(bio, &pem)) <= 0) {
        ihsm_tool_err(t, "the public key of %s is not a valid SubjectPublicKeyInfo",
                      name ? name : file);
        rc = IHSM_TOOL_FAIL;
    } else {
        rc = ihsm_tool_write_file(t, out != NULL ? out : "-", pem, (size_t)pem_len) == 0
                 ? IHSM_TOOL_OK : IHSM_TOOL_FAIL;
    }
    BIO_free(bio);
    EVP_PKEY_free(pk);
    ihsm_tool_key_clear(&k);
    return rc;
}
