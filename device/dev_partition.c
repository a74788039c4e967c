/*
 * Partitions: STATE/partitions/NAME/partition.conf and its keys/ folder.
 * A partition is loaded on first use and stays in memory until the daemon
 * stops; ihsmd is the only writer of its files.
 *
 * partition.conf holds the partition id, the uids allowed to open
 * sessions, the two PIN verifiers (salt, PBKDF2 iterations, one hash for
 * the user PIN and one for the crypto officer's: the PINs themselves are
 * never stored) and the lockout state, which must survive a restart so a
 * restart is not a way round it. Both PINs are 256 random bits, so one salt
 * serves both and one PBKDF2 run is compared with both hashes.
 *
 * The partition id salts the masking key and is bound into every masked
 * blob. ZEROIZE draws a new one (dev_partition_zeroize), so masked key
 * files made before it no longer unmask (IHSM_ERR_BAD_BLOB): zeroization
 * reaches the copies outside the device too. The epoch lock keeps that
 * switch atomic with every use of the id and masking key.
 */
#include "dev.h"

#include <errno.h>
#include <stdio.h>
#include <sys/random.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <openssl/crypto.h>

int dev_partitions_init(struct ihsmd *d)
{
    int r;

    pthread_mutex_init(&d->parts.mu, NULL);
    d->parts.head = NULL;
    if (dev_path(d->parts.dir, sizeof(d->parts.dir), d->cfg.state_dir, "partitions") != 0)
        return -ENAMETOOLONG;
    r = dev_mkdir(d->parts.dir, 0700);
    return r;
}

static void part_free(struct ihsmd *d, struct dev_partition *p)
{
    dev_keytab_destroy(d, &p->keys);
    if (p->mask_key != NULL)
        OPENSSL_secure_clear_free(p->mask_key, 32);
    pthread_mutex_destroy(&p->auth_mu);
    pthread_rwlock_destroy(&p->epoch_lock);
    OPENSSL_cleanse(p, sizeof(*p));
    free(p);
}

void dev_partitions_destroy(struct ihsmd *d)
{
    struct dev_partition *p = d->parts.head, *next;

    for (; p != NULL; p = next) {
        next = p->next;
        part_free(d, p);
    }
    d->parts.head = NULL;
    pthread_mutex_destroy(&d->parts.mu);
}

/* ---- partition.conf ---- */

static int conf_format(const struct dev_partition *p, char *buf, size_t cap)
{
    char id[33], salt[33], hash[65], ohash[65];
    size_t n;

    dev_hex(id, p->id, 16);
    dev_hex(salt, p->salt, 16);
    dev_hex(hash, p->verifier, 32);
    dev_hex(ohash, p->officer_verifier, 32);
    n = (size_t)snprintf(buf, cap,
                         "# ihsm partition %s: written by ihsmd, edit only while it is stopped\n"
                         "version = 1\nid = %s\nuids = ",
                         p->name, id);
    for (size_t i = 0; i < p->n_uids && n < cap; i++)
        n += (size_t)snprintf(buf + n, cap - n, "%s%lu", i ? "," : "", (unsigned long)p->uids[i]);
    if (n < cap)
        n += (size_t)snprintf(buf + n, cap - n,
                              "\npin_salt = %s\npin_iterations = %u\npin_hash = %s\n"
                              "%s%s%s"
                              "failures = %u\nlockout_until_ms = %lld\n",
                              salt, p->iterations, hash,
                              p->has_officer ? "officer_pin_hash = " : "",
                              p->has_officer ? ohash : "", p->has_officer ? "\n" : "",
                              p->failures, (long long)p->lockout_until);
    OPENSSL_cleanse(hash, sizeof(hash));
    OPENSSL_cleanse(ohash, sizeof(ohash));
    return n < cap ? (int)n : -1;
}

static int conf_write(const struct dev_partition *p, const char *dir)
{
    char buf[8192];
    int n = conf_format(p, buf, sizeof(buf)), r;

    if (n < 0)
        return -ENOSPC;
    r = dev_write_atomic(dir, "partition.conf", buf, (size_t)n, 0);
    OPENSSL_cleanse(buf, sizeof(buf));
    return r;
}

static int parse_uids(struct dev_partition *p, char *v)
{
    char *save = NULL, *tok;

    p->n_uids = 0;
    for (tok = strtok_r(v, ",", &save); tok != NULL; tok = strtok_r(NULL, ",", &save)) {
        char *end;
        unsigned long u;

        while (*tok == ' ')
            tok++;
        errno = 0;
        u = strtoul(tok, &end, 10);
        if (errno != 0 || end == tok || (*end != '\0' && *end != ' ')
            || u > UINT32_MAX - 1 || p->n_uids == DEV_MAX_UIDS)
            return -1;
        p->uids[p->n_uids++] = (uid_t)u;
    }
    return p->n_uids > 0 ? 0 : -1;
}

static int conf_parse(struct dev_partition *p, char *text)
{
    char *save = NULL, *line;
    unsigned seen = 0;

    for (line = strtok_r(text, "\n", &save); line != NULL; line = strtok_r(NULL, "\n", &save)) {
        char *eq, *k, *v, *end;

        while (*line == ' ' || *line == '\t')
            line++;
        if (*line == '#' || *line == '\0')
            continue;
        eq = strchr(line, '=');
        if (eq == NULL)
            return -1;
        *eq = '\0';
        k = line;
        v = eq + 1;
        for (end = eq; end > k && (end[-1] == ' ' || end[-1] == '\t'); end--)
            end[-1] = '\0';
        while (*v == ' ' || *v == '\t')
            v++;
        for (end = v + strlen(v); end > v && (end[-1] == ' ' || end[-1] == '\r'); end--)
            end[-1] = '\0';

        if (strcmp(k, "version") == 0) {
            if (strcmp(v, "1") != 0)
                return -1;
        } else if (strcmp(k, "id") == 0) {
            if (dev_unhex(p->id, 16, v) != 0)
                return -1;
            seen |= 1;
        } else if (strcmp(k, "uids") == 0) {
            if (parse_uids(p, v) != 0)
                return -1;
            seen |= 2;
        } else if (strcmp(k, "pin_salt") == 0) {
            if (dev_unhex(p->salt, 16, v) != 0)
                return -1;
            seen |= 4;
        } else if (strcmp(k, "pin_iterations") == 0) {
            unsigned long it = strtoul(v, &end, 10);
            if (*end != '\0' || it == 0 || it > 10000000)
                return -1;
            p->iterations = (uint32_t)it;
            seen |= 8;
        } else if (strcmp(k, "pin_hash") == 0) {
            if (dev_unhex(p->verifier, 32, v) != 0)
                return -1;
            seen |= 16;
        } else if (strcmp(k, "officer_pin_hash") == 0) {
            /* absent in partitions made before roles: no officer sessions */
            if (dev_unhex(p->officer_verifier, 32, v) != 0)
                return -1;
            p->has_officer = 1;
        } else if (strcmp(k, "failures") == 0) {
            p->failures = (uint32_t)strtoul(v, &end, 10);
        } else if (strcmp(k, "lockout_until_ms") == 0) {
            p->lockout_until = strtoll(v, &end, 10);
        }
    }
    return seen == 31 ? 0 : -1;
}

/* ---- the registry ---- */

static struct dev_partition *part_new(struct ihsmd *d, const uint8_t *name, size_t len)
{
    struct dev_partition *p = calloc(1, sizeof(*p));

    if (p == NULL)
        return NULL;
    memcpy(p->name, name, len);
    p->name[len] = '\0';
    if (dev_path(p->dir, sizeof(p->dir), d->parts.dir, p->name) != 0
        || dev_path(p->keydir, sizeof(p->keydir), p->dir, "keys") != 0
        || dev_keytab_init(&p->keys) != 0) {
        free(p);
        return NULL;
    }
    pthread_mutex_init(&p->auth_mu, NULL);
    {
        pthread_rwlockattr_t a;

        /* a steady stream of unmasks must not hold a ZEROIZE off forever */
        pthread_rwlockattr_init(&a);
        pthread_rwlockattr_setkind_np(&a, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
        pthread_rwlock_init(&p->epoch_lock, &a);
        pthread_rwlockattr_destroy(&a);
    }
    return p;
}

/* The masking key, when the device has its root secret (not in the failed
 * state): key commands refuse without it. */
static void part_mask_key(struct ihsmd *d, struct dev_partition *p)
{
    if (d->root == NULL)
        return;
    p->mask_key = OPENSSL_secure_malloc(32);
    if (p->mask_key != NULL && ihsm_derive_mask_key(d->root, p->id, p->mask_key) != IHSM_OK) {
        OPENSSL_secure_clear_free(p->mask_key, 32);
        p->mask_key = NULL;
        dev_log("partition %s: cannot derive its masking key", p->name);
    }
}

static struct dev_partition *find_loaded(struct ihsmd *d, const uint8_t *name, size_t len)
{
    for (struct dev_partition *p = d->parts.head; p != NULL; p = p->next)
        if (strlen(p->name) == len && memcmp(p->name, name, len) == 0)
            return p;
    return NULL;
}

int dev_partition_get(struct ihsmd *d, const uint8_t *name, size_t len,
                      struct dev_partition **out)
{
    struct dev_partition *p;
    char path[4096];
    uint8_t *text;
    size_t tlen;
    int r, st = IHSM_OK;

    *out = NULL;
    if (!dev_name_valid(name, len))
        return IHSM_ERR_BAD_INPUT;
    pthread_mutex_lock(&d->parts.mu);
    p = find_loaded(d, name, len);
    if (p != NULL)
        goto done;
    p = part_new(d, name, len);
    if (p == NULL) {
        st = IHSM_ERR_STORAGE;
        goto done;
    }
    if (dev_path(path, sizeof(path), p->dir, "partition.conf") != 0) {
        st = IHSM_ERR_STORAGE;
        goto fail;
    }
    r = dev_read_file(path, 65536, &text, &tlen);
    if (r == -ENOENT) {
        st = IHSM_ERR_NO_PARTITION;
        goto fail;
    }
    if (r != 0) {
        dev_log("partition %s: cannot read %s: %s", p->name, path, strerror(-r));
        st = IHSM_ERR_STORAGE;
        goto fail;
    }
    r = conf_parse(p, (char *)text);
    dev_free_file(text, tlen);
    if (r != 0) {
        dev_log("partition %s: %s is malformed: fix or restore it from a backup",
                p->name, path);
        st = IHSM_ERR_STORAGE;
        goto fail;
    }
    part_mask_key(d, p);
    p->next = d->parts.head;
    d->parts.head = p;
    dev_debug("partition %s loaded (%zu allowed uids)", p->name, p->n_uids);
    goto done;
fail:
    part_free(d, p);
    p = NULL;
done:
    pthread_mutex_unlock(&d->parts.mu);
    *out = p;
    return st;
}

/* Remove what a crashed create left behind: a conf and an empty keys/. */
static void remove_tmpdir(const char *tmp)
{
    char path[4096];

    if (dev_path(path, sizeof(path), tmp, "partition.conf") == 0)
        unlink(path);
    if (dev_path(path, sizeof(path), tmp, "keys") == 0)
        rmdir(path);
    rmdir(tmp);
}

int dev_partition_create(struct ihsmd *d, const uint8_t *name, size_t len,
                         const uint32_t *uids, size_t n_uids,
                         uint8_t pin[IHSM_PIN_LEN], uint8_t officer_pin[IHSM_PIN_LEN])
{
    struct dev_partition *p = NULL;
    char tmp[4096], tname[DEV_MAX_NAME + 32], keys[4096];
    struct stat st;
    int r, status = IHSM_OK;

    if (!dev_name_valid(name, len))
        return IHSM_ERR_BAD_INPUT;
    if (n_uids == 0 || n_uids > DEV_MAX_UIDS)
        return IHSM_ERR_BAD_INPUT;
    pthread_mutex_lock(&d->parts.mu);
    p = part_new(d, name, len);
    if (p == NULL) {
        status = IHSM_ERR_STORAGE;
        goto out;
    }
    if (find_loaded(d, name, len) != NULL || lstat(p->dir, &st) == 0) {
        status = IHSM_ERR_EXISTS;
        goto out;
    }
    for (size_t i = 0; i < n_uids; i++)
        p->uids[i] = (uid_t)uids[i];
    p->n_uids = n_uids;
    p->iterations = DEV_PIN_ITERATIONS;
    if (ihsm_random_bytes(p->id, sizeof(p->id)) != IHSM_OK
        || ihsm_random_bytes(p->salt, sizeof(p->salt)) != IHSM_OK
        || ihsm_random_bytes(pin, IHSM_PIN_LEN) != IHSM_OK
        || ihsm_random_bytes(officer_pin, IHSM_PIN_LEN) != IHSM_OK
        || ihsm_pin_hash(pin, IHSM_PIN_LEN, p->salt, p->iterations, p->verifier) != IHSM_OK
        || ihsm_pin_hash(officer_pin, IHSM_PIN_LEN, p->salt, p->iterations,
                         p->officer_verifier) != IHSM_OK) {
        status = IHSM_ERR_CRYPTO;
        goto out;
    }
    p->has_officer = 1;
    /* build it under a dot name, then rename: a partition is whole or absent */
    snprintf(tname, sizeof(tname), ".new.%s", p->name);
    if (dev_path(tmp, sizeof(tmp), d->parts.dir, tname) != 0
        || dev_path(keys, sizeof(keys), tmp, "keys") != 0) {
        status = IHSM_ERR_STORAGE;
        goto out;
    }
    remove_tmpdir(tmp);
    r = 0;
    if (mkdir(tmp, 0700) != 0 || mkdir(keys, 0700) != 0)
        r = -errno;
    else if ((r = conf_write(p, tmp)) == 0 && rename(tmp, p->dir) != 0)
        r = -errno; /* EEXIST/ENOTEMPTY: created meanwhile by hand */
    if (r == 0)
        r = dev_fsync_dir(d->parts.dir);
    if (r != 0) {
        remove_tmpdir(tmp);
        if (r == -EEXIST || r == -ENOTEMPTY) {
            status = IHSM_ERR_EXISTS;
        } else {
            dev_log("cannot create partition %s in %s: %s", p->name, d->parts.dir,
                    strerror(-r));
            status = IHSM_ERR_STORAGE;
        }
        goto out;
    }
    part_mask_key(d, p);
    p->next = d->parts.head;
    d->parts.head = p;
    p = NULL;
out:
    pthread_mutex_unlock(&d->parts.mu);
    if (p != NULL)
        part_free(d, p);
    if (status != IHSM_OK) {
        OPENSSL_cleanse(pin, IHSM_PIN_LEN);
        OPENSSL_cleanse(officer_pin, IHSM_PIN_LEN);
    }
    return status;
}

int dev_partition_allows(const struct dev_partition *p, uid_t uid)
{
    for (size_t i = 0; i < p->n_uids; i++)
        if (p->uids[i] == uid)
            return 1;
    return 0;
}

/* 2^(n-3) seconds after the n-th wrong PIN in a row, at most an hour */
static int64_t lockout_ms(uint32_t failures)
{
    uint32_t shift = failures - DEV_LOCKOUT_AFTER;
    int64_t ms = shift >= 12 ? DEV_LOCKOUT_MAX : 1000LL << shift;

    return ms < DEV_LOCKOUT_MAX ? ms : DEV_LOCKOUT_MAX;
}

static int64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int dev_partition_login(struct ihsmd *d, struct dev_partition *p,
                        const struct dev_conn *conn, const uint8_t *pin,
                        size_t pin_len, uint32_t role)
{
    uint8_t h[32];
    int64_t now = now_ms(), left;
    int r;
    uint32_t failures, matched = 0;

    pthread_mutex_lock(&p->auth_mu);
    /* a clock set backwards must not stretch a lockout past its cap */
    if (p->lockout_until - now > DEV_LOCKOUT_MAX)
        p->lockout_until = now + DEV_LOCKOUT_MAX;
    if (now < p->lockout_until) {
        left = p->lockout_until - now;
        pthread_mutex_unlock(&p->auth_mu);
        dev_audit(d, conn, "login", p->name, NULL, 0, "locked");
        dev_debug("partition %s: locked for %lld ms more", p->name, (long long)left);
        return IHSM_ERR_LOCKED;
    }
    if (ihsm_pin_hash(pin, pin_len, p->salt, p->iterations, h) != IHSM_OK) {
        pthread_mutex_unlock(&p->auth_mu);
        return IHSM_ERR_CRYPTO;
    }
    /* both compared every time: the timing says nothing about which */
    if (CRYPTO_memcmp(h, p->verifier, sizeof(h)) == 0)
        matched = IHSM_ROLE_USER;
    if ((CRYPTO_memcmp(h, p->officer_verifier, sizeof(h)) == 0) & p->has_officer)
        matched = IHSM_ROLE_OFFICER;
    OPENSSL_cleanse(h, sizeof(h));
    if (matched != 0 && matched != role) {
        /* a right PIN for the other role: not a guess, so no strike, but
         * the credential does not give the role asked for */
        pthread_mutex_unlock(&p->auth_mu);
        dev_audit(d, conn, "login", p->name, NULL, 0,
                  matched == IHSM_ROLE_USER ? "role_mismatch_user_pin_for_officer"
                                            : "role_mismatch_officer_pin_for_user");
        dev_log("partition %s: pid %ld asked for the %s role with the %s PIN: refused",
                p->name, (long)conn->pid, role == IHSM_ROLE_OFFICER ? "officer" : "user",
                matched == IHSM_ROLE_OFFICER ? "officer" : "user");
        return IHSM_ERR_PERMISSION;
    }
    if (matched != 0) {
        r = 0;
        if (p->failures != 0 || p->lockout_until != 0) {
            p->failures = 0;
            p->lockout_until = 0;
            r = conf_write(p, p->dir);
        }
        pthread_mutex_unlock(&p->auth_mu);
        if (r != 0)
            dev_log("partition %s: cannot reset the failure counter: %s", p->name,
                    strerror(-r));
        return IHSM_OK;
    }
    failures = ++p->failures;
    if (failures >= DEV_LOCKOUT_AFTER)
        p->lockout_until = now + lockout_ms(failures);
    left = p->lockout_until - now;
    r = conf_write(p, p->dir);
    pthread_mutex_unlock(&p->auth_mu);
    if (r != 0)
        dev_log("partition %s: cannot persist the failure counter: %s", p->name,
                strerror(-r));
    dev_audit(d, conn, "auth_failure", p->name, NULL, 0, "wrong_pin");
    dev_log("partition %s: wrong PIN from uid %ld pid %ld (%u in a row)", p->name,
            (long)conn->uid, (long)conn->pid, failures);
    if (failures >= DEV_LOCKOUT_AFTER) {
        char what[48];
        snprintf(what, sizeof(what), "locked_%lldms", (long long)left);
        dev_audit(d, conn, "lockout", p->name, NULL, 0, what);
        dev_log("partition %s: locked out for %lld.%03lld s", p->name, (long long)left / 1000,
                (long long)left % 1000);
    }
    return IHSM_ERR_AUTH;
}

/* ---- the epoch: partition id and masking key ---- */

void dev_partition_epoch_hold(struct dev_partition *p)
{
    pthread_rwlock_rdlock(&p->epoch_lock);
}

void dev_partition_epoch_drop(struct dev_partition *p)
{
    pthread_rwlock_unlock(&p->epoch_lock);
}

static int new_id(uint8_t id[16])
{
    /* not a secret (it is in every blob's header), only never reused: the
     * kernel's generator will do when the device's own refuses (failed) */
    if (ihsm_random_bytes(id, 16) == IHSM_OK)
        return 0;
    return getrandom(id, 16, 0) == 16 ? 0 : -1;
}

int dev_partition_zeroize(struct ihsmd *d, struct dev_partition *p, size_t *files,
                          size_t *keys)
{
    uint8_t id[16], old[16];
    int r = -EIO, st = IHSM_OK;

    pthread_rwlock_wrlock(&p->epoch_lock);
    /* the new epoch first: once it is on disk, masked copies made outside
     * the device are dead even if the wipe below is interrupted */
    if (new_id(id) == 0) {
        pthread_mutex_lock(&p->auth_mu);
        memcpy(old, p->id, sizeof(old));
        memcpy(p->id, id, sizeof(id));
        r = conf_write(p, p->dir);
        if (r != 0)
            memcpy(p->id, old, sizeof(old));
        pthread_mutex_unlock(&p->auth_mu);
    }
    if (r != 0) {
        dev_log("partition %s: ZEROIZE could not store a new partition id (%s): keys are "
                "destroyed, but masked key files made outside the device still unmask",
                p->name, strerror(-r));
        st = IHSM_ERR_STORAGE;
    } else if (p->mask_key != NULL
               && ihsm_derive_mask_key(d->root, p->id, p->mask_key) != IHSM_OK) {
        OPENSSL_secure_clear_free(p->mask_key, 32);
        p->mask_key = NULL;
        dev_log("partition %s: cannot derive its new masking key", p->name);
    }
    *files = dev_keystore_wipe(p);
    *keys = dev_keys_zeroize(d, &p->keys);
    pthread_rwlock_unlock(&p->epoch_lock);
    OPENSSL_cleanse(old, sizeof(old));
    return st;
}
