/*
 * Partition credential files: "key = value" lines, '#' comments. The PIN
 * is hex so the file stays a text file an operator can inspect and copy.
 */
#include "ihsm_credential.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <openssl/crypto.h>

const char *ihsm_credential_path(const char *explicit_path)
{
    const char *env;

    if (explicit_path != NULL && *explicit_path != '\0')
        return explicit_path;
    env = getenv("IHSM_CREDENTIAL");
    return (env != NULL && *env != '\0') ? env : NULL;
}

static int __attribute__((format(printf, 3, 4)))
fail(char *err, size_t errlen, const char *fmt, ...)
{
    if (err != NULL && errlen != 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return IHSM_ERR_CREDENTIAL_FILE;
}

static char *trim(char *s)
{
    char *e;

    while (*s == ' ' || *s == '\t')
        s++;
    e = s + strlen(s);
    while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\n' || e[-1] == '\r'))
        *--e = '\0';
    return s;
}

static int parse_pin(const char *hex, uint8_t pin[IHSM_PIN_LEN])
{
    long n = 0;
    unsigned char *raw;
    int ok;

    if (strlen(hex) != 2 * IHSM_PIN_LEN)
        return 0;
    raw = OPENSSL_hexstr2buf(hex, &n);
    ok = raw != NULL && n == IHSM_PIN_LEN;
    if (ok)
        memcpy(pin, raw, IHSM_PIN_LEN);
    OPENSSL_clear_free(raw, raw != NULL ? (size_t)n : 0);
    return ok;
}

int ihsm_credential_load(const char *path, ihsm_credential *c, char *err, size_t errlen)
{
    char line[512];
    int have_part = 0, have_pin = 0, lineno = 0, rc = IHSM_OK;
    FILE *f;

    memset(c, 0, sizeof(*c));
    c->role = IHSM_ROLE_USER;
    if (path == NULL)
        return fail(err, errlen, "no credential file given: set IHSM_CREDENTIAL, "
                    "--credential or ihsm-credential to the file `ihsmctl init` wrote");
    f = fopen(path, "re");
    if (f == NULL)
        return fail(err, errlen, "cannot read credential file %s: %s", path, strerror(errno));
    while (rc == IHSM_OK && fgets(line, sizeof(line), f) != NULL) {
        char *eq, *key, *val;

        lineno++;
        key = trim(line);
        if (*key == '\0' || *key == '#')
            continue;
        eq = strchr(key, '=');
        if (eq == NULL) {
            rc = fail(err, errlen, "credential file %s line %d: expected key = value", path, lineno);
            break;
        }
        *eq = '\0';
        val = trim(eq + 1);
        key = trim(key);
        if (strcmp(key, "partition") == 0) {
            if (*val == '\0' || strlen(val) > IHSM_MAX_PARTITION_NAME)
                rc = fail(err, errlen, "credential file %s line %d: bad partition name", path, lineno);
            else {
                strcpy(c->partition, val);
                have_part = 1;
            }
        } else if (strcmp(key, "pin") == 0) {
            if (!parse_pin(val, c->pin))
                rc = fail(err, errlen, "credential file %s line %d: pin must be %d hex digits",
                          path, lineno, 2 * IHSM_PIN_LEN);
            else
                have_pin = 1;
        } else if (strcmp(key, "role") == 0) {
            if (strcmp(val, "user") == 0)
                c->role = IHSM_ROLE_USER;
            else if (strcmp(val, "officer") == 0)
                c->role = IHSM_ROLE_OFFICER;
            else
                rc = fail(err, errlen, "credential file %s line %d: unknown role '%s' (user or "
                          "officer)", path, lineno, val);
        } else {
            rc = fail(err, errlen, "credential file %s line %d: unknown key '%s'", path, lineno, key);
        }
    }
    OPENSSL_cleanse(line, sizeof(line));
    fclose(f);
    if (rc == IHSM_OK && (!have_part || !have_pin))
        rc = fail(err, errlen, "credential file %s lacks %s", path, have_part ? "a pin" : "a partition");
    if (rc != IHSM_OK)
        ihsm_credential_clear(c);
    return rc;
}

int ihsm_credential_save(const char *path, const ihsm_credential *c, int overwrite)
{
    char hex[2 * IHSM_PIN_LEN + 1];
    FILE *f;
    int fd, ok;

    fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC | (overwrite ? O_TRUNC : O_EXCL), 0600);
    if (fd < 0)
        return -1;
    if (fchmod(fd, 0600) != 0 || (f = fdopen(fd, "w")) == NULL) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    for (size_t i = 0; i < IHSM_PIN_LEN; i++)
        snprintf(hex + 2 * i, 3, "%02x", c->pin[i]);
    ok = fprintf(f, "# ihsm partition credential: keep it secret (mode 0600)\n"
                    "partition = %s\npin = %s\nrole = %s\n", c->partition, hex,
                 ihsm_credential_role_name(c->role == IHSM_ROLE_OFFICER ? IHSM_ROLE_OFFICER
                                                                        : IHSM_ROLE_USER)) > 0;
    OPENSSL_cleanse(hex, sizeof(hex));
    ok = fflush(f) == 0 && fsync(fileno(f)) == 0 && ok;
    if (fclose(f) != 0)
        ok = 0;
    return ok ? 0 : -1;
}

void ihsm_credential_clear(ihsm_credential *c)
{
    OPENSSL_cleanse(c, sizeof(*c));
}

const char *ihsm_credential_officer_path(const char *explicit_path)
{
    const char *env;

    if (explicit_path != NULL && *explicit_path != '\0')
        return explicit_path;
    env = getenv("IHSM_OFFICER_CREDENTIAL");
    return (env != NULL && *env != '\0') ? env : NULL;
}

const char *ihsm_credential_role_name(uint32_t role)
{
    switch (role) {
    case IHSM_ROLE_USER: return "user";
    case IHSM_ROLE_OFFICER: return "officer";
    default: return "unknown";
    }
}
