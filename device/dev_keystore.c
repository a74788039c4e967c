/*
 * Key files: partitions/NAME/keys/LABEL.key (named keys) and import.key.
 *
 *   "IHSMDKEY" | u32 version (1) | u32 type | u32 bits | u32 usage
 *   | bytes public (SPKI DER) | bytes masked blob
 *
 * Fields in the codec's encoding. Only the blob is authenticated (by the
 * crypto core, against the partition): type/bits/usage/public are a cache
 * so KEY_LIST needs no unmasking; a loaded key reports its own.
 */
#include "dev.h"

#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "ihsm_keyfile.h"

#define KEYREC_MAGIC "IHSMDKEY"
#define KEYREC_MAX (IHSM_MAX_BLOB + 16384)

int dev_keyrec_encode(const ihsm_key *k, const uint8_t *blob, size_t blob_len,
                      ihsm_wr *out)
{
    int st;

    ihsm_wr_raw(out, KEYREC_MAGIC, 8);
    ihsm_wr_u32(out, 1);
    ihsm_wr_u32(out, ihsm_key_type(k));
    ihsm_wr_u32(out, ihsm_key_bits(k));
    ihsm_wr_u32(out, ihsm_key_usage(k));
    st = ihsm_key_write_public(k, out);
    if (st != IHSM_OK)
        return st;
    ihsm_wr_bytes(out, blob, blob_len);
    return out->err ? IHSM_ERR_LIMIT_FRAME : IHSM_OK;
}

int dev_keyrec_decode(const uint8_t *buf, size_t len, struct dev_keyrec *r)
{
    ihsm_rd rd;

    if (len < 8 || memcmp(buf, KEYREC_MAGIC, 8) != 0)
        return -1;
    ihsm_rd_init(&rd, buf + 8, len - 8);
    if (ihsm_rd_u32(&rd) != 1)
        return -1;
    r->type = ihsm_rd_u32(&rd);
    r->bits = ihsm_rd_u32(&rd);
    r->usage = ihsm_rd_u32(&rd);
    r->pub = ihsm_rd_bytes(&rd, &r->pub_len, 16384);
    r->blob = ihsm_rd_bytes(&rd, &r->blob_len, IHSM_MAX_BLOB);
    return ihsm_rd_end(&rd) == 0 ? 0 : -1;
}

static int fname(const uint8_t *name, size_t len, char *out, size_t cap)
{
    if (!dev_name_valid(name, len) || len + 5 > cap)
        return -1;
    memcpy(out, name, len);
    memcpy(out + len, ".key", 5);
    return 0;
}

int dev_keystore_path(const struct dev_partition *p, const uint8_t *name,
                      size_t name_len, char *out, size_t cap)
{
    char f[DEV_MAX_NAME + 8];

    if (fname(name, name_len, f, sizeof(f)) != 0)
        return -1;
    return dev_path(out, cap, p->keydir, f);
}

int dev_keystore_exists(const struct dev_partition *p, const uint8_t *name,
                        size_t len)
{
    char path[4096];

    return dev_keystore_path(p, name, len, path, sizeof(path)) == 0
           && access(path, F_OK) == 0;
}

int dev_keystore_store(const struct dev_partition *p, const uint8_t *name,
                       size_t len, const uint8_t *rec, size_t rec_len)
{
    char f[DEV_MAX_NAME + 8];
    int r;

    if (fname(name, len, f, sizeof(f)) != 0)
        return IHSM_ERR_BAD_INPUT;
    r = dev_write_atomic(p->keydir, f, rec, rec_len, 1);
    if (r == -EEXIST)
        return IHSM_ERR_EXISTS;
    if (r != 0) {
        dev_log("cannot store key %s in %s: %s", f, p->keydir, strerror(-r));
        return IHSM_ERR_STORAGE;
    }
    return IHSM_OK;
}

int dev_keystore_load(const struct dev_partition *p, const uint8_t *name,
                      size_t len, uint8_t **buf, size_t *buf_len)
{
    char path[4096];
    int r;

    if (dev_keystore_path(p, name, len, path, sizeof(path)) != 0)
        return IHSM_ERR_BAD_INPUT;
    r = dev_read_file(path, KEYREC_MAX, buf, buf_len);
    if (r == -ENOENT)
        return IHSM_ERR_NOT_FOUND;
    if (r != 0) {
        dev_log("cannot read key file %s: %s", path, strerror(-r));
        return IHSM_ERR_STORAGE;
    }
    return IHSM_OK;
}

int dev_keystore_remove(const struct dev_partition *p, const uint8_t *name,
                        size_t len)
{
    char path[4096];

    if (dev_keystore_path(p, name, len, path, sizeof(path)) != 0)
        return IHSM_ERR_BAD_INPUT;
    if (unlink(path) != 0) {
        if (errno == ENOENT)
            return IHSM_ERR_NOT_FOUND;
        dev_log("cannot delete key file %s: %s", path, strerror(errno));
        return IHSM_ERR_STORAGE;
    }
    dev_fsync_dir(p->keydir);
    return IHSM_OK;
}

/* Key names in the directory, sorted; *n gets the count. */
static char **scan(const struct dev_partition *p, size_t *n)
{
    DIR *dir = opendir(p->keydir);
    struct dirent *de;
    char **names = NULL;
    size_t cap = 0;

    *n = 0;
    if (dir == NULL)
        return NULL;
    while ((de = readdir(dir)) != NULL) {
        size_t len = strlen(de->d_name);
        if (len <= 4 || strcmp(de->d_name + len - 4, ".key") != 0
            || !dev_name_valid((const uint8_t *)de->d_name, len - 4))
            continue;
        if (*n == cap) {
            char **nn = realloc(names, (cap = cap ? cap * 2 : 16) * sizeof(*nn));
            if (nn == NULL)
                break;
            names = nn;
        }
        names[*n] = strndup(de->d_name, len - 4);
        if (names[*n] != NULL)
            (*n)++;
    }
    closedir(dir);
    return names;
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int dev_keystore_list(const struct dev_partition *p, ihsm_wr *out)
{
    size_t n, listed = 0, mark;
    char **names = scan(p, &n);

    if (n > 0)
        qsort(names, n, sizeof(*names), cmp_names);
    mark = out->len;
    ihsm_wr_u32(out, 0); /* patched below: unreadable files are skipped */
    for (size_t i = 0; i < n; i++) {
        uint8_t *buf;
        size_t len;
        struct dev_keyrec r;

        if (dev_keystore_load(p, (const uint8_t *)names[i], strlen(names[i]),
                              &buf, &len) == IHSM_OK) {
            if (dev_keyrec_decode(buf, len, &r) == 0) {
                ihsm_wr_bytes(out, names[i], strlen(names[i]));
                ihsm_wr_u32(out, r.type);
                ihsm_wr_u32(out, r.bits);
                ihsm_wr_u32(out, r.usage);
                listed++;
            }
            dev_free_file(buf, len);
        }
        free(names[i]);
    }
    free(names);
    if (out->err)
        return IHSM_ERR_LIMIT_FRAME;
    out->p[mark] = (uint8_t)listed;
    out->p[mark + 1] = (uint8_t)(listed >> 8);
    out->p[mark + 2] = (uint8_t)(listed >> 16);
    out->p[mark + 3] = (uint8_t)(listed >> 24);
    return IHSM_OK;
}

size_t dev_keystore_wipe(const struct dev_partition *p)
{
    size_t n, wiped = 0;
    char **names = scan(p, &n);

    for (size_t i = 0; i < n; i++) {
        if (dev_keystore_remove(p, (const uint8_t *)names[i], strlen(names[i])) == IHSM_OK)
            wiped++;
        free(names[i]);
    }
    free(names);
    return wiped;
}
