/*
 * Names on the command line <-> protocol numbers. Tables, so --help, the
 * parsers and the printers cannot disagree.
 */
#include "tools_common.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static const struct {
    const char *name;
    uint32_t type, bits;
} key_types[] = {
    { "rsa-2048", IHSM_KEY_RSA, 2048 },
    { "rsa-3072", IHSM_KEY_RSA, 3072 },
    { "rsa-4096", IHSM_KEY_RSA, 4096 },
    { "ec-p256", IHSM_KEY_EC_P256, 256 },
    { "ec-p384", IHSM_KEY_EC_P384, 384 },
    { "ed25519", IHSM_KEY_ED25519, 256 },
    { "x25519", IHSM_KEY_X25519, 256 },
    { "aes-128", IHSM_KEY_AES, 128 },
    { "aes-256", IHSM_KEY_AES, 256 },
};
#define N_KEY_TYPES (sizeof(key_types) / sizeof(key_types[0]))

int ihsm_tool_parse_type(const char *s, uint32_t *type, uint32_t *bits)
{
    for (size_t i = 0; i < N_KEY_TYPES; i++)
        if (strcmp(s, key_types[i].name) == 0) {
            *type = key_types[i].type;
            *bits = key_types[i].bits;
            return 0;
        }
    return -1;
}

uint32_t ihsm_tool_type_bits(uint32_t type)
{
    switch (type) {
    case IHSM_KEY_EC_P256: return 256;
    case IHSM_KEY_EC_P384: return 384;
    case IHSM_KEY_ED25519: return 256;
    case IHSM_KEY_X25519: return 256;
    default: return 0;
    }
}

uint32_t ihsm_tool_wire_bits(uint32_t type, uint32_t bits)
{
    return type == IHSM_KEY_RSA || type == IHSM_KEY_AES ? bits : 0;
}

const char *ihsm_tool_type_name(uint32_t type, uint32_t bits, char *buf, size_t len)
{
    for (size_t i = 0; i < N_KEY_TYPES; i++)
        if (key_types[i].type == type
            && (key_types[i].bits == bits
                || (type != IHSM_KEY_RSA && type != IHSM_KEY_AES))) {
            snprintf(buf, len, "%s", key_types[i].name);
            return buf;
        }
    switch (type) {
    case IHSM_KEY_RSA: snprintf(buf, len, "rsa-%u", bits); break;
    case IHSM_KEY_AES: snprintf(buf, len, "aes-%u", bits); break;
    default: snprintf(buf, len, "type-%u", type); break;
    }
    return buf;
}

static const struct {
    const char *name;
    uint32_t flag;
} usages[] = {
    { "sign", IHSM_USAGE_SIGN },
    { "derive", IHSM_USAGE_DERIVE },
    { "encrypt", IHSM_USAGE_ENCRYPT },
    { "decrypt", IHSM_USAGE_DECRYPT },
};
#define N_USAGES (sizeof(usages) / sizeof(usages[0]))

int ihsm_tool_parse_usage(const char *s, uint32_t *usage)
{
    uint32_t u = 0;

    while (*s != '\0') {
        size_t n = strcspn(s, ",");
        size_t i;

        for (i = 0; i < N_USAGES; i++)
            if (strlen(usages[i].name) == n && strncmp(s, usages[i].name, n) == 0)
                break;
        if (i == N_USAGES)
            return -1;
        u |= usages[i].flag;
        s += n;
        if (*s == ',') {
            s++;
            if (*s == '\0')
                return -1;
        }
    }
    if (u == 0)
        return -1;
    *usage = u;
    return 0;
}

const char *ihsm_tool_usage_name(uint32_t usage, char *buf, size_t len)
{
    size_t off = 0;

    if (len == 0)
        return buf;
    buf[0] = '\0';
    for (size_t i = 0; i < N_USAGES; i++)
        if (usage & usages[i].flag) {
            int r = snprintf(buf + off, len - off, "%s%s", off ? "," : "", usages[i].name);
            if (r < 0 || (size_t)r >= len - off)
                break;
            off += (size_t)r;
        }
    if (off == 0)
        snprintf(buf, len, "%s", usage == 0 ? "-" : "?");
    return buf;
}

static const struct {
    const char *name;
    const char *evp; /* name for EVP_get_digestbyname */
    uint32_t md;
} digests[] = {
    { "none", NULL, IHSM_MD_NONE },
    { "sha1", "SHA1", IHSM_MD_SHA1 },
    { "sha224", "SHA224", IHSM_MD_SHA224 },
    { "sha256", "SHA256", IHSM_MD_SHA256 },
    { "sha384", "SHA384", IHSM_MD_SHA384 },
    { "sha512", "SHA512", IHSM_MD_SHA512 },
};
#define N_DIGESTS (sizeof(digests) / sizeof(digests[0]))

int ihsm_tool_parse_md(const char *s, uint32_t *md)
{
    for (size_t i = 0; i < N_DIGESTS; i++)
        if (strcmp(s, digests[i].name) == 0) {
            *md = digests[i].md;
            return 0;
        }
    return -1;
}

const char *ihsm_tool_md_evp_name(uint32_t md)
{
    for (size_t i = 0; i < N_DIGESTS; i++)
        if (digests[i].md == md)
            return digests[i].evp;
    return NULL;
}

static const struct {
    const char *name;
    uint32_t scheme;
} schemes[] = {
    { "pkcs1", IHSM_SIG_RSA_PKCS1 },
    { "pss", IHSM_SIG_RSA_PSS },
    { "ecdsa", IHSM_SIG_ECDSA },
    { "ed25519", IHSM_SIG_ED25519 },
};

int ihsm_tool_parse_scheme(const char *s, uint32_t *scheme)
{
    for (size_t i = 0; i < sizeof(schemes) / sizeof(schemes[0]); i++)
        if (strcmp(s, schemes[i].name) == 0) {
            *scheme = schemes[i].scheme;
            return 0;
        }
    return -1;
}

uint32_t ihsm_tool_default_scheme(uint32_t type)
{
    switch (type) {
    case IHSM_KEY_RSA: return IHSM_SIG_RSA_PKCS1;
    case IHSM_KEY_EC_P256:
    case IHSM_KEY_EC_P384: return IHSM_SIG_ECDSA;
    case IHSM_KEY_ED25519: return IHSM_SIG_ED25519;
    default: return 0;
    }
}

int ihsm_tool_scheme_fits(uint32_t scheme, uint32_t type)
{
    switch (scheme) {
    case IHSM_SIG_RSA_PKCS1:
    case IHSM_SIG_RSA_PSS: return type == IHSM_KEY_RSA ? 0 : -1;
    case IHSM_SIG_ECDSA: return type == IHSM_KEY_EC_P256 || type == IHSM_KEY_EC_P384 ? 0 : -1;
    case IHSM_SIG_ED25519: return type == IHSM_KEY_ED25519 ? 0 : -1;
    default: return -1;
    }
}

int ihsm_tool_parse_aead(const char *s, uint32_t *alg)
{
    if (strcmp(s, "aes-gcm") == 0)
        *alg = IHSM_AEAD_AES_GCM;
    else if (strcmp(s, "chacha20-poly1305") == 0)
        *alg = IHSM_AEAD_CHACHA20_POLY1305;
    else
        return -1;
    return 0;
}

int ihsm_tool_valid_name(const char *s)
{
    size_t n = strlen(s);

    if (n == 0 || n > IHSM_TOOL_MAX_NAME || s[0] == '.')
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];

        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
              || c == '.' || c == '_' || c == '-'))
            return 0;
    }
    return 1;
}

int ihsm_tool_parse_long(const char *s, long min, long max, long *out)
{
    char *end;
    long v;

    if (s == NULL || *s == '\0')
        return -1;
    errno = 0;
    v = strtol(s, &end, 10);
    if (errno != 0 || *end != '\0' || v < min || v > max)
        return -1;
    *out = v;
    return 0;
}
