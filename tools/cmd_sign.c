/*
 * ihsmctl sign / verify. sign hashes the file here and has the device sign
 * the digest (Ed25519: the message itself); verify uses only the public key,
 * in OpenSSL's default provider, as any relying party would.
 */
#include "tools_common.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <openssl/crypto.h>
#include <openssl/rsa.h>

/* SIGN payload: 5 u32 and the tbs length before the tbs itself. */
#define MAX_MESSAGE (IHSM_MAX_PAYLOAD - 6 * 4)
#define MAX_RAW_TBS 1024 /* --digest none: a digest or DigestInfo, not a document */
#define MAX_SIG 1024

typedef struct {
    const char *name, *file, *in;
    const char *digest; /* as given, for messages */
    uint32_t md, scheme;
    int32_t salt;
    int have_scheme;
} sign_args;

static const char sign_help[] =
    "Usage: ihsmctl sign --name NAME | --key FILE --in FILE --out SIG\n"
    "                    [--digest sha256|sha384|sha512|sha1|sha224|none]\n"
    "                    [--scheme pkcs1|pss|ecdsa|ed25519] [--salt-len N|digest|max]\n"
    "\n"
    "Sign FILE with a device key: FILE is hashed here with --digest (default\n"
    "sha256) and the device signs the digest. Ed25519 signs the message itself\n"
    "(--digest is ignored). With --digest none, FILE already holds the digest\n"
    "(for pkcs1: a DER DigestInfo). The signature is DER for ECDSA and raw for\n"
    "RSA and Ed25519, as `openssl dgst -sign` / `openssl pkeyutl -sign` write.\n"
    "\n"
    "  --scheme S     default by key type: pkcs1 (RSA), ecdsa (EC), ed25519\n"
    "  --salt-len N   RSA-PSS salt length: bytes, digest (default) or max\n"
    "  --out SIG      signature file, or - for standard output\n";

static const char verify_help[] =
    "Usage: ihsmctl verify --name NAME | --key FILE --in FILE --sig SIG\n"
    "                      [--digest ...] [--scheme ...] [--salt-len ...]\n"
    "\n"
    "Verify SIG over FILE with the key's public key in OpenSSL's default\n"
    "provider (the device is only asked for the public key of --name; --key\n"
    "needs no device). Options as for sign. Exit status 0: valid, 1: invalid.\n";

/* The options sign and verify share; returns -1 when c is not one of them,
 * else an exit code. */
static int common_opt(ihsm_tool *t, sign_args *a, int c, const char *arg)
{
    long v;

    switch (c) {
    case 'n': a->name = arg; return IHSM_TOOL_OK;
    case 'k': a->file = arg; return IHSM_TOOL_OK;
    case 'i': a->in = arg; return IHSM_TOOL_OK;
    case 'd':
        a->digest = arg;
        if (ihsm_tool_parse_md(arg, &a->md) != 0)
            return ihsm_tool_usage_err(t, "unknown --digest '%s': use sha256, sha384, "
                                       "sha512, sha224, sha1 or none", arg);
        return IHSM_TOOL_OK;
    case 's':
        if (ihsm_tool_parse_scheme(arg, &a->scheme) != 0)
            return ihsm_tool_usage_err(t, "unknown --scheme '%s': use pkcs1, pss, ecdsa "
                                       "or ed25519", arg);
        a->have_scheme = 1;
        return IHSM_TOOL_OK;
    case 'l':
        if (strcmp(arg, "digest") == 0)
            a->salt = IHSM_PSS_SALT_DIGEST;
        else if (strcmp(arg, "max") == 0)
            a->salt = IHSM_PSS_SALT_MAX;
        else if (ihsm_tool_parse_long(arg, 0, 1024, &v) == 0)
            a->salt = (int32_t)v;
        else
            return ihsm_tool_usage_err(t, "--salt-len wants a byte count (0..1024), "
                                       "digest or max, not '%s'", arg);
        return IHSM_TOOL_OK;
    default:
        return -1;
    }
}

/* Checks that need only the command line. */
static int check_args(ihsm_tool *t, const sign_args *a)
{
    if ((a->name == NULL) == (a->file == NULL))
        return ihsm_tool_usage_err(t, "give the key as exactly one of --name NAME or "
                                   "--key FILE");
    if (a->in == NULL)
        return ihsm_tool_usage_err(t, "--in FILE (what to sign) is required");
    if (a->have_scheme && a->scheme == IHSM_SIG_RSA_PSS && a->md == IHSM_MD_NONE)
        return ihsm_tool_usage_err(t, "--scheme pss needs a digest (--digest sha256, ...)");
    return IHSM_TOOL_OK;
}

/* The options sign and verify share, plus each command's one file option
 * (extra_c: --out for sign, --sig for verify). *helped is set when --help
 * was printed and the command has nothing more to do. */
static int parse_args(ihsm_tool *t, sign_args *a, int argc, char **argv,
                      const struct option *opts, int extra_c, const char **extra,
                      const char *help, int *helped)
{
    int c, rc;

    *helped = 0;
    while ((c = getopt_long(argc, argv, "+h", opts, NULL)) != -1) {
        if (c == extra_c) {
            *extra = optarg;
            continue;
        }
        if (c == 'h') {
            fputs(help, stdout);
            *helped = 1;
            return IHSM_TOOL_OK;
        }
        if ((rc = common_opt(t, a, c, optarg)) == IHSM_TOOL_OK)
            continue;
        if (rc > 0)
            return rc;
        if (ihsm_tool_global_opt(t, c, optarg))
            continue;
        return ihsm_tool_bad_option(t, argv);
    }
    if ((rc = ihsm_tool_no_operands(t, argc, argv)) != IHSM_TOOL_OK)
        return rc;
    return check_args(t, a);
}

/* Checks that need the key's type; settles the scheme. */
static int check_key(ihsm_tool *t, sign_args *a, const ihsm_tool_key *k)
{
    char tname[32];

    ihsm_tool_type_name(k->type, k->bits, tname, sizeof(tname));
    if (ihsm_tool_default_scheme(k->type) == 0) {
        ihsm_tool_err(t, "%s is an %s key, which cannot sign: use an RSA, EC or Ed25519 key",
                      a->name ? a->name : a->file, tname);
        return IHSM_TOOL_FAIL;
    }
    if (!a->have_scheme)
        a->scheme = ihsm_tool_default_scheme(k->type);
    if (ihsm_tool_scheme_fits(a->scheme, k->type) != 0)
        return ihsm_tool_usage_err(t, "--scheme does not fit the %s key %s: RSA takes pkcs1 "
                                   "or pss, EC ecdsa, Ed25519 ed25519", tname,
                                   a->name ? a->name : a->file);
    if (a->scheme == IHSM_SIG_ED25519)
        a->md = IHSM_MD_NONE; /* PureEdDSA: the message is what is signed */
    return IHSM_TOOL_OK;
}

/* What the device signs: the digest of the file, the file itself for
 * Ed25519 and --digest none. OPENSSL_malloc'd. */
static int make_tbs(ihsm_tool *t, const sign_args *a, uint8_t **tbs, size_t *len)
{
    EVP_MD_CTX *mctx;
    EVP_MD *md;
    uint8_t buf[16384];
    unsigned int dlen = 0;
    int fd, ok = 0;

    *tbs = NULL;
    *len = 0;
    if (a->scheme == IHSM_SIG_ED25519 || a->md == IHSM_MD_NONE)
        return ihsm_tool_read_file(t, a->in,
                                   a->scheme == IHSM_SIG_ED25519 ? MAX_MESSAGE : MAX_RAW_TBS,
                                   tbs, len) == 0 ? IHSM_TOOL_OK : IHSM_TOOL_FAIL;
    /* Stream: documents may be larger than memory wants to hold. */
    fd = strcmp(a->in, "-") == 0 ? STDIN_FILENO : open(a->in, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        ihsm_tool_err(t, "cannot read %s: %s", a->in, strerror(errno));
        return IHSM_TOOL_FAIL;
    }
    md = EVP_MD_fetch(NULL, ihsm_tool_md_evp_name(a->md), NULL);
    mctx = EVP_MD_CTX_new();
    *tbs = OPENSSL_malloc(EVP_MAX_MD_SIZE);
    if (md == NULL || mctx == NULL || *tbs == NULL || !EVP_DigestInit_ex2(mctx, md, NULL)) {
        ihsm_tool_err(t, "digest %s is not available in OpenSSL", a->digest);
        goto done;
    }
    for (;;) {
        ssize_t n = read(fd, buf, sizeof(buf));

        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            ihsm_tool_err(t, "cannot read %s: %s", a->in, strerror(errno));
            goto done;
        }
        if (n == 0)
            break;
        if (!EVP_DigestUpdate(mctx, buf, (size_t)n))
            goto done;
    }
    if (!EVP_DigestFinal_ex(mctx, *tbs, &dlen))
        goto done;
    *len = dlen;
    ok = 1;
done:
    if (fd != STDIN_FILENO)
        close(fd);
    EVP_MD_CTX_free(mctx);
    EVP_MD_free(md);
    OPENSSL_cleanse(buf, sizeof(buf));
    if (!ok) {
        OPENSSL_free(*tbs);
        *tbs = NULL;
    }
    return ok ? IHSM_TOOL_OK : IHSM_TOOL_FAIL;
}

int ihsm_cmd_sign(ihsm_tool *t, int argc, char **argv)
{
    static const struct option opts[] = {
        { "name", required_argument, NULL, 'n' },
        { "key", required_argument, NULL, 'k' },
        { "in", required_argument, NULL, 'i' },
        { "out", required_argument, NULL, 'o' },
        { "digest", required_argument, NULL, 'd' },
        { "scheme", required_argument, NULL, 's' },
        { "salt-len", required_argument, NULL, 'l' },
        IHSM_TOOL_GLOBAL_OPTS,
        { NULL, 0, NULL, 0 },
    };
    sign_args a = { .digest = "sha256", .md = IHSM_MD_SHA256, .salt = IHSM_PSS_SALT_DIGEST };
    const char *out = NULL;
    ihsm_tool_key k;
    ihsm_result res = { 0 };
    uint8_t *tbs = NULL;
    size_t tbs_len = 0, sig_len = 0;
    const uint8_t *sig;
    ihsm_wr w;
    ihsm_rd r;
    int st, rc, helped;

    if ((rc = parse_args(t, &a, argc, argv, opts, 'o', &out, sign_help, &helped)) != IHSM_TOOL_OK
        || helped)
        return rc;
    if (out == NULL)
        return ihsm_tool_usage_err(t, "--out SIG is required (- for standard output)");
    if ((rc = ihsm_tool_key_load(t, a.name, a.file, &k)) != IHSM_TOOL_OK)
        return rc;
    if ((rc = check_key(t, &a, &k)) != IHSM_TOOL_OK)
        goto done;
    if ((rc = make_tbs(t, &a, &tbs, &tbs_len)) != IHSM_TOOL_OK)
        goto done;

    ihsm_wr_init(&w);
    ihsm_wr_u32(&w, k.handle);
    ihsm_wr_u32(&w, a.scheme);
    ihsm_wr_u32(&w, a.md);
    ihsm_wr_u32(&w, a.scheme == IHSM_SIG_RSA_PSS ? a.md : IHSM_MD_NONE);
    ihsm_wr_u32(&w, (uint32_t)a.salt);
    ihsm_wr_bytes(&w, tbs, tbs_len);
    st = ihsm_tool_call(t, IHSM_CMD_SIGN, &w, &res);
    ihsm_wr_free(&w);
    rc = IHSM_TOOL_FAIL;
    if (st != IHSM_OK) {
        ihsm_tool_status_err(t, st, "the device could not sign %s with %s", a.in,
                             a.name ? a.name : a.file);
        goto done;
    }
    ihsm_rd_init(&r, res.data, res.len);
    sig = ihsm_rd_bytes(&r, &sig_len, MAX_SIG);
    if (ihsm_rd_end(&r) != 0 || sig_len == 0) {
        ihsm_tool_err(t, "the device's answer to SIGN is malformed: client and ihsmd "
                      "versions may differ");
        goto done;
    }
    if (ihsm_tool_write_file(t, out, sig, sig_len) == 0)
        rc = IHSM_TOOL_OK;
done:
    ihsm_result_clear(&res);
    if (tbs != NULL)
        OPENSSL_clear_free(tbs, tbs_len);
    ihsm_tool_key_clear(&k);
    return rc;
}

/* 1 valid, 0 invalid, -1 error (message printed). */
static int verify_sig(ihsm_tool *t, const sign_args *a, EVP_PKEY *pk,
                      const uint8_t *tbs, size_t tbs_len, const uint8_t *sig, size_t sig_len)
{
    EVP_PKEY_CTX *pctx = NULL;
    EVP_MD_CTX *mctx = NULL;
    int r = -1;

    if (a->scheme == IHSM_SIG_ED25519) {
        mctx = EVP_MD_CTX_new();
        if (mctx == NULL || EVP_DigestVerifyInit_ex(mctx, NULL, NULL, NULL, NULL, pk, NULL) != 1)
            goto done;
        r = EVP_DigestVerify(mctx, sig, sig_len, tbs, tbs_len) == 1;
        goto done;
    }
    pctx = EVP_PKEY_CTX_new_from_pkey(NULL, pk, NULL);
    if (pctx == NULL || EVP_PKEY_verify_init(pctx) != 1)
        goto done;
    if (a->md != IHSM_MD_NONE
        && EVP_PKEY_CTX_set_signature_md(pctx, EVP_get_digestbyname(ihsm_tool_md_evp_name(a->md))) <= 0)
        goto done;
    if (a->scheme == IHSM_SIG_RSA_PKCS1
        && EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PADDING) <= 0)
        goto done;
    if (a->scheme == IHSM_SIG_RSA_PSS) {
        int salt = a->salt == IHSM_PSS_SALT_DIGEST ? RSA_PSS_SALTLEN_DIGEST
                   : a->salt == IHSM_PSS_SALT_MAX  ? RSA_PSS_SALTLEN_MAX
                                                   : a->salt;

        if (EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) <= 0
            || EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, salt) <= 0
            || EVP_PKEY_CTX_set_rsa_mgf1_md(pctx, EVP_get_digestbyname(ihsm_tool_md_evp_name(a->md))) <= 0)
            goto done;
    }
    r = EVP_PKEY_verify(pctx, sig, sig_len, tbs, tbs_len) == 1;
done:
    if (r < 0)
        ihsm_tool_err(t, "OpenSSL could not set up the verification with this key, "
                      "scheme and digest");
    EVP_PKEY_CTX_free(pctx);
    EVP_MD_CTX_free(mctx);
    return r;
}

int ihsm_cmd_verify(ihsm_tool *t, int argc, char **argv)
{
    static const struct option opts[] = {
        { "name", required_argument, NULL, 'n' },
        { "key", required_argument, NULL, 'k' },
        { "in", required_argument, NULL, 'i' },
        { "sig", required_argument, NULL, 'g' },
        { "digest", required_argument, NULL, 'd' },
        { "scheme", required_argument, NULL, 's' },
        { "salt-len", required_argument, NULL, 'l' },
        IHSM_TOOL_GLOBAL_OPTS,
        { NULL, 0, NULL, 0 },
    };
    sign_args a = { .digest = "sha256", .md = IHSM_MD_SHA256, .salt = IHSM_PSS_SALT_DIGEST };
    const char *sigfile = NULL;
    ihsm_tool_key k;
    EVP_PKEY *pk = NULL;
    uint8_t *tbs = NULL, *sig = NULL;
    size_t tbs_len = 0, sig_len = 0;
    int rc, v, helped;

    if ((rc = parse_args(t, &a, argc, argv, opts, 'g', &sigfile, verify_help, &helped)) != IHSM_TOOL_OK
        || helped)
        return rc;
    if (sigfile == NULL)
        return ihsm_tool_usage_err(t, "--sig SIG (the signature to check) is required");
    if ((rc = ihsm_tool_key_public(t, a.name, a.file, &k)) != IHSM_TOOL_OK)
        return rc;
    if ((rc = check_key(t, &a, &k)) != IHSM_TOOL_OK)
        goto done;
    rc = IHSM_TOOL_FAIL;
    if ((pk = ihsm_tool_key_pkey(&k)) == NULL) {
        ihsm_tool_err(t, "the public key of %s is not a valid SubjectPublicKeyInfo",
                      a.name ? a.name : a.file);
        goto done;
    }
    if (ihsm_tool_read_file(t, sigfile, MAX_SIG, &sig, &sig_len) != 0)
        goto done;
    if (make_tbs(t, &a, &tbs, &tbs_len) != IHSM_TOOL_OK)
        goto done;
    v = verify_sig(t, &a, pk, tbs, tbs_len, sig, sig_len);
    if (v == 1) {
        printf("Verified OK\n");
        rc = IHSM_TOOL_OK;
    } else if (v == 0) {
        ihsm_tool_err(t, "signature in %s does NOT match %s under key %s (scheme, digest "
                      "or file differ, or the signature was altered)", sigfile, a.in,
                      a.name ? a.name : a.file);
    }
done:
    if (tbs != NULL)
        OPENSSL_clear_free(tbs, tbs_len);
    OPENSSL_free(sig);
    EVP_PKEY_free(pk);
    ihsm_tool_key_clear(&k);
    return rc;
}
