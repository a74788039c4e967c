/*
 * ihsmctl import: bring an existing private key into the device (BYOK).
 * The key is wrapped here to the device's import key (byok.c); only the
 * wrapped form crosses the socket. Every buffer that held it in clear is
 * cleansed.
 */
#include "tools_common.h"
#include "byok.h"

#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#define MAX_KEY_FILE (64 * 1024)
#define MAX_SPKI 4096

static const char help[] =
    "Usage: ihsmctl import (--in KEY.pem | --aes-key FILE) [--name NAME] [--out FILE]\n"
    "                      [--usage LIST] [--force]\n"
    "\n"
    "Import a private key into the device. The key is wrapped on this machine to\n"
    "the device's import key (RSA-OAEP SHA-256 of a one-time AES-256 key, then\n"
    "AES key wrap with padding of the PKCS#8 DER): the clear key never crosses\n"
    "the socket. Then store it under --name and/or write a key file with --out\n"
    "(at least one), and delete or lock away the plain file.\n"
    "\n"
    "  --in FILE       PEM or DER private key (PKCS#8 or traditional): RSA\n"
    "                  2048/3072/4096, EC P-256/P-384, Ed25519, X25519\n"
    "  --aes-key FILE  a raw AES key, 16 or 32 bytes (instead of --in)\n"
    "  --name NAME     store the key in the partition under this name\n"
    "  --out FILE      write the masked key file (mode 0600)\n"
    "  --usage LIST    comma-separated: sign,derive,encrypt,decrypt (default:\n"
    "                  the type's natural use)\n"
    "  --force         overwrite an existing --out file\n"
    "\n"
    "Importing is the crypto officer's: the credential is --officer-credential,\n"
    "else --credential, else $IHSM_OFFICER_CREDENTIAL, else $IHSM_CREDENTIAL.\n";

/* Parse a private key from a buffer we can cleanse (not a FILE's buffers). */
static EVP_PKEY *load_private(const uint8_t *buf, size_t len)
{
    const unsigned char *p = buf;
    EVP_PKEY *pk = NULL;
    BIO *bio;

    if (len > INT32_MAX)
        return NULL;
    bio = BIO_new_mem_buf(buf, (int)len);
    if (bio != NULL)
        pk = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
    BIO_free(bio);
    if (pk == NULL)
        pk = d2i_AutoPrivateKey(NULL, &p, (long)len);
    return pk;
}

static int get_import_key(ihsm_tool *t, EVP_PKEY **pub)
{
    ihsm_result res;
    ihsm_rd r;
    const uint8_t *spki;
    const unsigned char *p;
    size_t len = 0;
    int st;

    *pub = NULL;
    st = ihsm_tool_call(t, IHSM_CMD_GET_IMPORT_KEY, NULL, &res);
    if (st != IHSM_OK) {
        ihsm_result_clear(&res);
        return ihsm_tool_status_err(t, st, "cannot fetch the device's import key");
    }
    ihsm_rd_init(&r, res.data, res.len);
    spki = ihsm_rd_bytes(&r, &len, MAX_SPKI);
    p = spki;
    if (ihsm_rd_end(&r) == 0 && len <= LONG_MAX)
        *pub = d2i_PUBKEY(NULL, &p, (long)len);
    ihsm_result_clear(&res);
    if (*pub == NULL || EVP_PKEY_get_base_id(*pub) != EVP_PKEY_RSA
        || EVP_PKEY_get_bits(*pub) < 2048) {
        EVP_PKEY_free(*pub);
        *pub = NULL;
        ihsm_tool_err(t, "the device's import key is not an RSA public key of at least "
                      "2048 bits: client and ihsmd versions may differ");
        return IHSM_TOOL_FAIL;
    }
    return IHSM_TOOL_OK;
}

int ihsm_cmd_import(ihsm_tool *t, int argc, char **argv)
{
    static const struct option opts[] = {
        { "in", required_argument, NULL, 'i' },
        { "aes-key", required_argument, NULL, 'a' },
        { "name", required_argument, NULL, 'n' },
        { "out", required_argument, NULL, 'o' },
        { "usage", required_argument, NULL, 'u' },
        { "force", no_argument, NULL, 'f' },
        IHSM_TOOL_GLOBAL_OPTS,
        { NULL, 0, NULL, 0 },
    };
    const char *in = NULL, *aes = NULL, *name = NULL, *out = NULL;
    uint32_t type = 0, bits = 0, usage = 0;
    uint8_t *file = NULL, *secret = NULL, *wrapped = NULL;
    size_t file_len = 0, secret_len = 0, wrapped_len = 0;
    EVP_PKEY *pk = NULL, *import_pub = NULL;
    ihsm_result res = { 0 };
    ihsm_wr w;
    char why[256];
    int c, force = 0, st, rc;

    while ((c = getopt_long(argc, argv, "+h", opts, NULL)) != -1) {
        switch (c) {
        case 'i': in = optarg; break;
        case 'a': aes = optarg; break;
        case 'n': name = optarg; break;
        case 'o': out = optarg; break;
        case 'f': force = 1; break;
        case 'u':
            if (ihsm_tool_parse_usage(optarg, &usage) != 0)
                return ihsm_tool_usage_err(t, "--usage '%s' is not a comma-separated list "
                                           "of sign, derive, encrypt, decrypt", optarg);
            break;
        case 'h': fputs(help, stdout); return IHSM_TOOL_OK;
        default:
            if (ihsm_tool_global_opt(t, c, optarg))
                break;
            return ihsm_tool_bad_option(t, argv);
        }
    }
    if ((rc = ihsm_tool_no_operands(t, argc, argv)) != IHSM_TOOL_OK)
        return rc;
    if ((in == NULL) == (aes == NULL))
        return ihsm_tool_usage_err(t, "give exactly one of --in KEY.pem (a private key) "
                                   "or --aes-key FILE (raw AES key bytes)");
    if (name == NULL && out == NULL)
        return ihsm_tool_usage_err(t, "give --name NAME (store the key in the partition) "
                                   "and/or --out FILE (write a key file): otherwise the "
                                   "imported key would be lost when this command exits");
    if (name != NULL && !ihsm_tool_valid_name(name))
        return ihsm_tool_usage_err(t, "key name '%s' is invalid: use " IHSM_TOOL_NAME_RULE,
                                   name);
    if (out != NULL && ihsm_tool_exists(out) && !force) {
        ihsm_tool_err(t, "%s already exists: refusing to overwrite it (pass --force, or "
                      "choose another --out)", out);
        return IHSM_TOOL_FAIL;
    }

    /* Parse the key first: a wrong file fails before touching the device. */
    if (ihsm_tool_read_file(t, in != NULL ? in : aes, MAX_KEY_FILE, &file, &file_len) != 0)
        return IHSM_TOOL_FAIL;
    rc = IHSM_TOOL_FAIL;
    if (aes != NULL) {
        if (file_len != 16 && file_len != 32) {
            ihsm_tool_err(t, "%s holds %zu bytes: a raw AES key is 16 or 32 bytes", aes,
                          file_len);
            goto done;
        }
        type = IHSM_KEY_AES;
        bits = (uint32_t)file_len * 8;
        secret = file; /* the raw key is the wrapped payload */
        secret_len = file_len;
        file = NULL;
    } else {
        pk = load_private(file, file_len);
        if (pk == NULL) {
            ihsm_tool_err(t, "%s is not a readable private key (PEM or DER, PKCS#8 or "
                          "traditional; decrypt it first with `openssl pkey`)", in);
            goto done;
        }
        if (ihsm_byok_key_type(pk, &type, &bits, why, sizeof(why)) != 0) {
            ihsm_tool_err(t, "%s holds %s", in, why);
            goto done;
        }
        if (ihsm_byok_pkcs8(pk, &secret, &secret_len) != 0) {
            ihsm_tool_err(t, "cannot encode the key in %s as PKCS#8", in);
            goto done;
        }
    }
    ihsm_tool_use_officer(t); /* importing is the crypto officer's */
    if (ihsm_tool_queue(t, &rc) == NULL)
        goto done;
    if ((rc = get_import_key(t, &import_pub)) != IHSM_TOOL_OK)
        goto done;
    rc = IHSM_TOOL_FAIL;
    if (ihsm_byok_wrap(import_pub, secret, secret_len, &wrapped, &wrapped_len) != 0) {
        const char *why_ssl = ERR_reason_error_string(ERR_peek_last_error());

        ihsm_tool_err(t, "cannot wrap the key to the device's import key (OpenSSL: %s)",
                      why_ssl != NULL ? why_ssl : "unknown error");
        goto done;
    }
    /* The clear key is no longer needed: drop it before talking to the device. */
    OPENSSL_clear_free(secret, secret_len);
    secret = NULL;
    EVP_PKEY_free(pk);
    pk = NULL;

    ihsm_wr_init(&w);
    ihsm_wr_u32(&w, type);
    ihsm_wr_u32(&w, ihsm_tool_wire_bits(type, bits));
    ihsm_wr_u32(&w, usage);
    ihsm_wr_u32(&w, name != NULL ? IHSM_KEYF_PERSIST : 0);
    ihsm_wr_bytes(&w, name != NULL ? name : "", name != NULL ? strlen(name) : 0);
    ihsm_wr_bytes(&w, wrapped, wrapped_len);
    st = ihsm_tool_call(t, IHSM_CMD_KEY_IMPORT, &w, &res);
    ihsm_wr_free(&w);
    if (st == IHSM_ERR_EXISTS) {
        ihsm_tool_err(t, "a key named '%s' already exists in partition '%s': choose "
                      "another name or `ihsmctl delete --name %s` first",
                      name, t->partition, name);
    } else if (st != IHSM_OK) {
        ihsm_tool_status_err(t, st, "the device refused to import %s", in ? in : aes);
    } else {
        rc = ihsm_tool_key_created(t, "imported", name, out, type, bits, &res);
    }
done:
    ihsm_result_clear(&res);
    if (wrapped != NULL)
        OPENSSL_clear_free(wrapped, wrapped_len);
    if (secret != NULL)
        OPENSSL_clear_free(secret, secret_len);
    if (file != NULL)
        OPENSSL_clear_free(file, file_len);
    EVP_PKEY_free(pk);
    EVP_PKEY_free(import_pub);
    return rc;
}
