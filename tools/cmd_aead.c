/*
 * ihsmctl encrypt / decrypt: one AEAD_SEAL / AEAD_OPEN with a device AES
 * key. File format: IV (12 bytes) || ciphertext || tag (16 bytes). The IV is
 * fresh from the DRBG for every file; nothing is written when opening fails.
 */
#include "tools_common.h"

#include <getopt.h>
#include <string.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>

#define IV_LEN 12
#define TAG_LEN 16
#define MAX_AAD (16 * 1024)
/* Room for the other request fields and the completion's length prefix. */
#define MAX_DATA(aad_len) (IHSM_MAX_PAYLOAD - 64 - TAG_LEN - (aad_len))

static const char enc_help[] =
    "Usage: ihsmctl encrypt --name NAME | --key FILE --in FILE --out FILE\n"
    "                       [--aad FILE] [--alg aes-gcm|chacha20-poly1305]\n"
    "\n"
    "Encrypt and authenticate FILE in the device with an AES key (keygen --type\n"
    "aes-256). The output is a random 12-byte IV, the ciphertext and a 16-byte\n"
    "tag. --aad FILE is authenticated too and must be given again to decrypt.\n"
    "One operation holds up to about 127 KiB.\n";

static const char dec_help[] =
    "Usage: ihsmctl decrypt --name NAME | --key FILE --in FILE --out FILE\n"
    "                       [--aad FILE] [--alg aes-gcm|chacha20-poly1305]\n"
    "\n"
    "Check and decrypt a file written by `ihsmctl encrypt` (same key, --aad and\n"
    "--alg). If anything was altered nothing is written and the exit status is 1.\n";

static int aead(ihsm_tool *t, int argc, char **argv, int seal)
{
    static const struct option opts[] = {
        { "name", required_argument, NULL, 'n' },
        { "key", required_argument, NULL, 'k' },
        { "in", required_argument, NULL, 'i' },
        { "out", required_argument, NULL, 'o' },
        { "aad", required_argument, NULL, 'a' },
        { "alg", required_argument, NULL, 'g' },
        IHSM_TOOL_GLOBAL_OPTS,
        { NULL, 0, NULL, 0 },
    };
    const char *name = NULL, *file = NULL, *in = NULL, *out = NULL, *aadf = NULL;
    const char *alg_name = "aes-gcm";
    uint32_t alg = IHSM_AEAD_AES_GCM;
    uint8_t *data = NULL, *aad = NULL, iv[IV_LEN];
    size_t data_len = 0, aad_len = 0, res_len = 0;
    const uint8_t *body, *resp;
    size_t body_len;
    ihsm_tool_key k;
    ihsm_result res = { 0 };
    ihsm_wr w;
    ihsm_rd r;
    char tname[32];
    int c, st, rc;

    while ((c = getopt_long(argc, argv, "+h", opts, NULL)) != -1) {
        switch (c) {
        case 'n': name = optarg; break;
        case 'k': file = optarg; break;
        case 'i': in = optarg; break;
        case 'o': out = optarg; break;
        case 'a': aadf = optarg; break;
        case 'g':
            alg_name = optarg;
            if (ihsm_tool_parse_aead(optarg, &alg) != 0)
                return ihsm_tool_usage_err(t, "unknown --alg '%s': use aes-gcm or "
                                           "chacha20-poly1305", optarg);
            break;
        case 'h': fputs(seal ? enc_help : dec_help, stdout); return IHSM_TOOL_OK;
        default:
            if (ihsm_tool_global_opt(t, c, optarg))
                break;
            return ihsm_tool_bad_option(t, argv);
        }
    }
    if ((rc = ihsm_tool_no_operands(t, argc, argv)) != IHSM_TOOL_OK)
        return rc;
    if ((name == NULL) == (file == NULL))
        return ihsm_tool_usage_err(t, "give the key as exactly one of --name NAME or "
                                   "--key FILE");
    if (in == NULL || out == NULL)
        return ihsm_tool_usage_err(t, "--in FILE and --out FILE are required (- for "
                                   "standard input/output)");
    if (aadf != NULL && ihsm_tool_read_file(t, aadf, MAX_AAD, &aad, &aad_len) != 0)
        return IHSM_TOOL_FAIL;
    rc = IHSM_TOOL_FAIL;
    if (ihsm_tool_read_file(t, in, MAX_DATA(aad_len) + (seal ? 0 : IV_LEN), &data,
                            &data_len) != 0)
        goto out_files;
    if (!seal && data_len < IV_LEN + TAG_LEN) {
        ihsm_tool_err(t, "%s is %zu bytes, shorter than an IV and a tag: it is not a "
                      "file written by `ihsmctl encrypt`", in, data_len);
        goto out_files;
    }
    if ((rc = ihsm_tool_key_load(t, name, file, &k)) != IHSM_TOOL_OK)
        goto out_files;
    rc = IHSM_TOOL_FAIL;
    if (k.type != IHSM_KEY_AES) {
        ihsm_tool_err(t, "%s is an %s key: encrypt/decrypt need an AES key (keygen "
                      "--type aes-256)", name ? name : file,
                      ihsm_tool_type_name(k.type, k.bits, tname, sizeof(tname)));
        goto out;
    }
    if (seal) {
        if (RAND_bytes(iv, IV_LEN) != 1) {
            ihsm_tool_err(t, "the random generator failed to give an IV");
            goto out;
        }
        body = data;
        body_len = data_len;
    } else {
        memcpy(iv, data, IV_LEN);
        body = data + IV_LEN;
        body_len = data_len - IV_LEN;
    }

    ihsm_wr_init(&w);
    ihsm_wr_u32(&w, k.handle);
    ihsm_wr_u32(&w, alg);
    ihsm_wr_bytes(&w, iv, IV_LEN);
    ihsm_wr_bytes(&w, aad, aad_len);
    ihsm_wr_bytes(&w, body, body_len);
    ihsm_wr_u32(&w, TAG_LEN);
    st = ihsm_tool_call(t, seal ? IHSM_CMD_AEAD_SEAL : IHSM_CMD_AEAD_OPEN, &w, &res);
    ihsm_wr_free(&w);
    if (st == IHSM_ERR_AEAD_TAG) {
        ihsm_tool_err(t, "%s failed authentication: the file, its IV or tag, or the --aad "
                      "was altered, or it was encrypted with another key or --alg; nothing "
                      "was written to %s", in, out);
        goto out;
    }
    if (st != IHSM_OK) {
        ihsm_tool_status_err(t, st, "the device could not %s %s with %s (%s)",
                             seal ? "encrypt" : "decrypt", in, name ? name : file, alg_name);
        goto out;
    }
    ihsm_rd_init(&r, res.data, res.len);
    resp = ihsm_rd_bytes(&r, &res_len, IHSM_MAX_PAYLOAD);
    if (ihsm_rd_end(&r) != 0
        || res_len != (seal ? body_len + TAG_LEN : body_len - TAG_LEN)) {
        ihsm_tool_err(t, "the device's answer to %s has the wrong length: client and "
                      "ihsmd versions may differ", seal ? "AEAD_SEAL" : "AEAD_OPEN");
        goto out;
    }
    if (seal) {
        /* IV first, then what the device returned, in one write. */
        uint8_t *buf = OPENSSL_malloc(IV_LEN + res_len);

        if (buf == NULL) {
            ihsm_tool_err(t, "out of memory");
            goto out;
        }
        memcpy(buf, iv, IV_LEN);
        memcpy(buf + IV_LEN, resp, res_len);
        if (ihsm_tool_write_file(t, out, buf, IV_LEN + res_len) == 0)
            rc = IHSM_TOOL_OK;
        OPENSSL_free(buf);
    } else if (ihsm_tool_write_file(t, out, resp, res_len) == 0) {
        rc = IHSM_TOOL_OK;
    }
out:
    ihsm_result_clear(&res);
    ihsm_tool_key_clear(&k);
out_files:
    if (data != NULL)
        OPENSSL_clear_free(data, data_len);
    if (aad != NULL)
        OPENSSL_free(aad);
    return rc;
}

int ihsm_cmd_encrypt(ihsm_tool *t, int argc, char **argv)
{
    return aead(t, argc, argv, 1);
}

int ihsm_cmd_decrypt(ihsm_tool *t, int argc, char **argv)
{
    return aead(t, argc, argv, 0);
}
