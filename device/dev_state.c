/*
 * The device's own state in STATE/: an exclusive lock (one ihsmd per state
 * directory), root.key (the 32-byte root secret every masking key is
 * derived from), serial (16 bytes, hex) and import.key (the RSA-3072 key
 * clients wrap imported keys to, stored masked under the "device"
 * partition: an all-zero partition id no real partition has).
 *
 * On first start the import key is generated in the background: RSA-3072
 * generation takes seconds, and nothing but KEY_IMPORT/GET_IMPORT_KEY has
 * to wait for it.
 */
#include "dev.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>
#include <openssl/crypto.h>

static const uint8_t device_part_id[16]; /* all zero */

static int check_dir(const char *dir)
{
    struct stat st;
    int r = dev_mkdir(dir, 0700);

    if (r != 0) {
        dev_log("state directory %s: %s: create its parent or pass another --state-dir",
                dir, strerror(-r));
        return r;
    }
    if (stat(dir, &st) != 0 || access(dir, W_OK | X_OK) != 0) {
        r = -errno;
        dev_log("state directory %s is not writable by uid %ld: %s: fix its owner or mode",
                dir, (long)geteuid(), strerror(errno));
        return r;
    }
    if ((st.st_mode & 077) != 0)
        dev_log("warning: state directory %s is mode %03o; 0700 keeps the masked keys private",
                dir, (unsigned)(st.st_mode & 0777));
    return 0;
}

static int take_lock(struct ihsmd *d)
{
    char path[4096];

    if (dev_path(path, sizeof(path), d->cfg.state_dir, "ihsmd.lock") != 0)
        return -ENAMETOOLONG;
    d->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (d->lock_fd < 0) {
        dev_log("cannot open %s: %s: is the state directory writable?", path, strerror(errno));
        return -errno;
    }
    if (flock(d->lock_fd, LOCK_EX | LOCK_NB) != 0) {
        int e = errno;
        dev_log("another ihsmd is using the state directory %s: stop it first", d->cfg.state_dir);
        return -e;
    }
    return 0;
}

static int has_partitions(const struct ihsmd *d)
{
    char path[4096];
    DIR *dir;
    struct dirent *de;
    int found = 0;

    if (dev_path(path, sizeof(path), d->cfg.state_dir, "partitions") != 0
        || (dir = opendir(path)) == NULL)
        return 0;
    while (!found && (de = readdir(dir)) != NULL)
        found = de->d_name[0] != '.';
    closedir(dir);
    return found;
}

/* The root secret: read it, or make it on first start. */
static int load_root(struct ihsmd *d)
{
    char path[4096];
    uint8_t *buf;
    size_t len;
    int r;

    if (dev_path(path, sizeof(path), d->cfg.state_dir, "root.key") != 0)
        return -ENAMETOOLONG;
    d->root = OPENSSL_secure_malloc(32);
    if (d->root == NULL)
        return -ENOMEM;
    r = dev_read_file(path, 64, &buf, &len);
    if (r == 0) {
        struct stat st;
        if (len != 32) {
            dev_free_file(buf, len);
            dev_log("%s is %zu bytes, not 32: it is damaged; restore it from a backup "
                    "(without it no stored key can be unmasked)", path, len);
            return -EINVAL;
        }
        memcpy(d->root, buf, 32);
        dev_free_file(buf, len);
        if (stat(path, &st) == 0 && (st.st_mode & 077) != 0) {
            dev_log("warning: %s was mode %03o: set to 0600", path, (unsigned)(st.st_mode & 0777));
            chmod(path, 0600);
        }
        return 0;
    }
    if (r != -ENOENT) {
        dev_log("cannot read %s: %s", path, strerror(-r));
        return r;
    }
    if (has_partitions(d)) {
        /* a new root secret would silently orphan every stored key */
        dev_log("%s is missing but %s/partitions holds partitions: restore root.key "
                "from a backup (or move the partitions away to start afresh)",
                path, d->cfg.state_dir);
        return -ENOENT;
    }
    if (d->failed) {
        /* no trustworthy generator: make no secret now */
        OPENSSL_secure_clear_free(d->root, 32);
        d->root = NULL;
        return 0;
    }
    if (ihsm_random_bytes(d->root, 32) != IHSM_OK) {
        dev_log("cannot draw the root secret from the device generator");
        return -EIO;
    }
    r = dev_write_atomic(d->cfg.state_dir, "root.key", d->root, 32, 1);
    if (r != 0) {
        dev_log("cannot write %s: %s", path, strerror(-r));
        return r;
    }
    dev_log("new device: root secret created in %s", path);
    return 0;
}

static int load_serial(struct ihsmd *d)
{
    char path[4096], hex[40];
    uint8_t *buf;
    size_t len;
    int r;

    if (dev_path(path, sizeof(path), d->cfg.state_dir, "serial") != 0)
        return -ENAMETOOLONG;
    r = dev_read_file(path, 64, &buf, &len);
    if (r == 0) {
        while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == ' '))
            buf[--len] = '\0';
        r = dev_unhex(d->serial, sizeof(d->serial), (const char *)buf);
        dev_free_file(buf, len);
        if (r != 0) {
            dev_log("%s is not 32 hex digits: delete it to get a new serial", path);
            return -EINVAL;
        }
        return 0;
    }
    if (r != -ENOENT)
        return r;
    /* not a secret: any good randomness will do, even in the failed state */
    if (d->failed || ihsm_random_bytes(d->serial, sizeof(d->serial)) != IHSM_OK) {
        if (getrandom(d->serial, sizeof(d->serial), 0) != (ssize_t)sizeof(d->serial))
            return -EIO;
    }
    dev_hex(hex, d->serial, sizeof(d->serial));
    strcat(hex, "\n");
    return dev_write_atomic(d->cfg.state_dir, "serial", hex, strlen(hex), 0);
}

/* Temp files a crash left behind (".tmp.*": never a valid name). */
static void sweep_tmp(const char *dir)
{
    DIR *dh = opendir(dir);
    struct dirent *de;
    char path[4096];

    if (dh == NULL)
        return;
    while ((de = readdir(dh)) != NULL) {
        if (strncmp(de->d_name, ".tmp.", 5) == 0
            && dev_path(path, sizeof(path), dir, de->d_name) == 0 && unlink(path) == 0)
            dev_log("removed %s, left by an interrupted write", path);
    }
    closedir(dh);
}

static void sweep_partitions(const struct ihsmd *d)
{
    char parts[4096], path[4096], keys[4096];
    DIR *dh;
    struct dirent *de;

    if (dev_path(parts, sizeof(parts), d->cfg.state_dir, "partitions") != 0
        || (dh = opendir(parts)) == NULL)
        return;
    while ((de = readdir(dh)) != NULL) {
        if (!dev_name_valid((const uint8_t *)de->d_name, strlen(de->d_name))
            || dev_path(path, sizeof(path), parts, de->d_name) != 0
            || dev_path(keys, sizeof(keys), path, "keys") != 0)
            continue;
        sweep_tmp(path);
        sweep_tmp(keys);
    }
    closedir(dh);
}

int dev_state_open(struct ihsmd *d)
{
    int r;

    d->lock_fd = -1;
    d->audit_fd = -1;
    if ((r = check_dir(d->cfg.state_dir)) != 0 || (r = take_lock(d)) != 0)
        return r;
    /* under the lock: no other ihsmd is writing here */
    sweep_tmp(d->cfg.state_dir);
    sweep_partitions(d);
    if ((r = load_root(d)) != 0 || (r = load_serial(d)) != 0)
        return r;
    if ((r = dev_audit_open(d)) != 0) {
        dev_log("cannot open the audit log in %s: %s", d->cfg.state_dir, strerror(-r));
        return r;
    }
    if ((r = dev_partitions_init(d)) != 0) {
        dev_log("cannot create %s: %s", d->parts.dir, strerror(-r));
        return r;
    }
    return 0;
}

void dev_state_close(struct ihsmd *d)
{
    dev_audit_close(d);
    if (d->root != NULL) {
        OPENSSL_secure_clear_free(d->root, 32);
        d->root = NULL;
    }
    if (d->lock_fd >= 0) {
        close(d->lock_fd);
        d->lock_fd = -1;
    }
}

/* ---- the import key ---- */

static void import_set(struct ihsmd *d, ihsm_key *k)
{
    pthread_mutex_lock(&d->import_mu);
    d->import_key = k;
    d->import_state = k != NULL ? 1 : -1;
    pthread_cond_broadcast(&d->import_cv);
    pthread_mutex_unlock(&d->import_mu);
}

static int device_mask_key(struct ihsmd *d, uint8_t mk[32])
{
    return ihsm_derive_mask_key(d->root, device_part_id, mk);
}

static void *import_gen(void *arg)
{
    struct ihsmd *d = arg;
    ihsm_key *k = NULL;
    ihsm_wr blob, rec;
    uint8_t *mk = OPENSSL_secure_malloc(32);
    int st, r = 0;
    int64_t t0 = dev_now_mono();

    ihsm_wr_init(&blob);
    ihsm_wr_init(&rec);
    st = mk == NULL ? IHSM_ERR_CRYPTO : device_mask_key(d, mk);
    if (st == IHSM_OK)
        st = ihsm_key_generate(IHSM_KEY_RSA, 3072, IHSM_USAGE_DECRYPT,
                               (const uint8_t *)"ihsm-import", 11, &k);
    if (st == IHSM_OK)
        st = ihsm_key_mask(k, mk, device_part_id, &blob);
    if (st == IHSM_OK)
        st = dev_keyrec_encode(k, blob.p, blob.len, &rec);
    if (st == IHSM_OK)
        r = dev_write_atomic(d->cfg.state_dir, "import.key", rec.p, rec.len, 1);
    if (st != IHSM_OK || r != 0) {
        dev_log("cannot make the import key (%s%s%s): KEY_IMPORT is unavailable",
                st != IHSM_OK ? ihsm_status_name(st) : "write failed",
                r != 0 ? ": " : "", r != 0 ? strerror(-r) : "");
        ihsm_key_free(k);
        k = NULL;
    } else {
        dev_log("import key (RSA-3072) generated in %llds and stored in %s/import.key",
                (long long)(dev_now_mono() - t0), d->cfg.state_dir);
        dev_audit(d, NULL, "generate", NULL, (const uint8_t *)"import.key", 10, "ok");
    }
    if (mk != NULL)
        OPENSSL_secure_clear_free(mk, 32);
    ihsm_wr_free(&blob);
    ihsm_wr_free(&rec);
    import_set(d, k);
    return NULL;
}

int dev_import_start(struct ihsmd *d)
{
    char path[4096];
    uint8_t *buf, *mk;
    size_t len;
    struct dev_keyrec rec;
    ihsm_key *k = NULL;
    int r, st;

    pthread_mutex_init(&d->import_mu, NULL);
    pthread_cond_init(&d->import_cv, NULL);
    d->import_state = 0;
    if (d->root == NULL || d->failed) {
        import_set(d, NULL);
        return 0;
    }
    if (dev_path(path, sizeof(path), d->cfg.state_dir, "import.key") != 0)
        return -ENAMETOOLONG;
    r = dev_read_file(path, 65536, &buf, &len);
    if (r == -ENOENT) {
        r = pthread_create(&d->import_tid, NULL, import_gen, d);
        if (r != 0)
            return -r;
        d->import_thread = 1;
        return 0;
    }
    if (r != 0) {
        dev_log("cannot read %s: %s", path, strerror(-r));
        return r;
    }
    mk = OPENSSL_secure_malloc(32);
    if (dev_keyrec_decode(buf, len, &rec) != 0 || mk == NULL)
        st = IHSM_ERR_BAD_BLOB;
    else if ((st = device_mask_key(d, mk)) == IHSM_OK)
        st = ihsm_key_unmask(rec.blob, rec.blob_len, mk, device_part_id, &k);
    if (mk != NULL)
        OPENSSL_secure_clear_free(mk, 32);
    dev_free_file(buf, len);
    if (st != IHSM_OK) {
        dev_log("%s does not unmask under this root.key (%s): restore the matching "
                "root.key, or delete import.key to make a new import key", path,
                ihsm_status_name(st));
        return -EINVAL;
    }
    import_set(d, k);
    return 0;
}

const ihsm_key *dev_import_key(struct ihsmd *d)
{
    const ihsm_key *k;

    pthread_mutex_lock(&d->import_mu);
    while (d->import_state == 0)
        pthread_cond_wait(&d->import_cv, &d->import_mu);
    k = d->import_state == 1 ? d->import_key : NULL;
    pthread_mutex_unlock(&d->import_mu);
    return k;
}

void dev_import_stop(struct ihsmd *d)
{
    if (d->import_thread) {
        pthread_join(d->import_tid, NULL);
        d->import_thread = 0;
    }
    ihsm_key_free(d->import_key);
    d->import_key = NULL;
    pthread_cond_destroy(&d->import_cv);
    pthread_mutex_destroy(&d->import_mu);
}
