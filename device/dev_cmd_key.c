/*
 * Key lifecycle commands: KEY_GENERATE, KEY_IMPORT, GET_IMPORT_KEY,
 * KEY_UNMASK, KEY_MASK, KEY_DELETE, KEY_PUBLIC, KEY_FIND, KEY_LIST,
 * KEY_RELEASE, ZEROIZE. Key bytes stay inside the crypto core: these handle
 * opaque keys, masked blobs and their files, and the partition's handles.
 *
 * Masking, unmasking and putting a key in the partition's table happen with
 * the partition's epoch held (dev_partition_epoch_hold): a ZEROIZE waits for
 * them and they see either the old partition id and masking key or the new,
 * never a mix, and no key made under the old epoch survives it.
 */
#include "dev.h"
#include "ihsm_keyfile.h" /* IHSM_MAX_BLOB */

#include <stdio.h>
#include <string.h>

static void patch_u32(ihsm_wr *w, size_t at, uint32_t v)
{
    if (w->err || at + 4 > w->len)
        return;
    for (int i = 0; i < 4; i++)
        w->p[at + (size_t)i] = (uint8_t)(v >> (8 * i));
}

/* The partition's masking key exists unless the device failed at start. */
static int mask_ready(const struct dev_ctx *c)
{
    return c->sess->part->mask_key != NULL;
}

static void audit_key(struct dev_ctx *c, const char *event, const uint8_t *label,
                      size_t len, int st)
{
    dev_audit(c->d, c->conn, event, c->sess->part->name, label, len,
              st == IHSM_OK ? "ok" : ihsm_status_name(st));
}

static int make_key(struct dev_ctx *c, int import)
{
    struct dev_partition *p = c->sess->part;
    const char *event = import ? "import" : "generate";
    uint32_t type, bits, usage, flags;
    const uint8_t *label, *wrapped = NULL;
    size_t label_len, wrapped_len = 0, hmark, bmark;
    uint8_t hash[32];
    ihsm_key *k = NULL;
    struct dev_keyobj *o;
    int persist, ephemeral, st;

    type = ihsm_rd_u32(c->rd);
    bits = ihsm_rd_u32(c->rd);
    usage = ihsm_rd_u32(c->rd);
    flags = ihsm_rd_u32(c->rd);
    label = ihsm_rd_bytes(c->rd, &label_len, IHSM_MAX_LABEL);
    if (import)
        wrapped = ihsm_rd_bytes(c->rd, &wrapped_len, IHSM_MAX_PAYLOAD);
    if (ihsm_rd_end(c->rd) != 0)
        return IHSM_ERR_MALFORMED;
    if ((flags & ~(IHSM_KEYF_PERSIST | IHSM_KEYF_EPHEMERAL)) != 0)
        return IHSM_ERR_BAD_INPUT;
    persist = (flags & IHSM_KEYF_PERSIST) != 0;
    ephemeral = (flags & IHSM_KEYF_EPHEMERAL) != 0;
    /* An ephemeral key (one TLS key exchange, thousands a second) only
     * derives and is never stored, so it needs no masked blob and no audit
     * line (whose fdatasync would cap the handshake rate). */
    if (ephemeral && (import || persist || usage != IHSM_USAGE_DERIVE
                      || (type != IHSM_KEY_EC_P256 && type != IHSM_KEY_EC_P384
                          && type != IHSM_KEY_X25519)))
        return IHSM_ERR_BAD_INPUT;
    if (persist) {
        /* the label becomes a file name */
        if (!dev_name_valid(label, label_len))
            return IHSM_ERR_BAD_INPUT;
        if (dev_keystore_exists(p, label, label_len))
            return IHSM_ERR_EXISTS; /* before spending a key generation */
    }
    if (!mask_ready(c))
        return IHSM_ERR_DEVICE_FAILED;

    if (import) {
        const ihsm_key *ik = dev_import_key(c->d);
        st = ik == NULL ? IHSM_ERR_DEVICE_FAILED
                        : ihsm_key_import(ik, type, bits, usage, label, label_len,
                                          wrapped, wrapped_len, &k);
    } else {
        st = ihsm_key_generate(type, bits, usage, label, label_len, &k);
    }
    if (st != IHSM_OK)
        goto fail;

    dev_partition_epoch_hold(p);
    hmark = c->out->len;
    ihsm_wr_u32(c->out, 0); /* the handle, once the key is in the table */
    if (ephemeral) {
        /* no blob: a table identity no masked blob can have */
        static _Atomic unsigned long long n_ephemeral;
        struct { char tag[16]; unsigned long long n; const void *k; } id = {
            "ihsm ephemeral", atomic_fetch_add(&n_ephemeral, 1), k,
        };

        ihsm_wr_bytes(c->out, NULL, 0);
        dev_blob_hash((const uint8_t *)&id, sizeof(id), hash);
        st = c->out->err ? IHSM_ERR_LIMIT_FRAME : IHSM_OK;
        goto hold;
    }
    if (p->mask_key == NULL) { /* a ZEROIZE could not derive the new one */
        st = IHSM_ERR_DEVICE_FAILED;
        goto fail_epoch;
    }
    bmark = ihsm_wr_bytes_begin(c->out);
    st = ihsm_key_mask(k, p->mask_key, p->id, c->out);
    ihsm_wr_bytes_end(c->out, bmark);
    if (st == IHSM_OK && c->out->err)
        st = IHSM_ERR_LIMIT_FRAME;
    if (st != IHSM_OK)
        goto fail_epoch;
    dev_blob_hash(c->out->p + bmark + 4, c->out->len - bmark - 4, hash);
    if (persist) {
        ihsm_wr rec;
        ihsm_wr_init(&rec);
        rec.limit = 4 * IHSM_MAX_FRAME;
        st = dev_keyrec_encode(k, c->out->p + bmark + 4, c->out->len - bmark - 4, &rec);
        if (st == IHSM_OK)
            st = dev_keystore_store(p, label, label_len, rec.p, rec.len);
        ihsm_wr_free(&rec);
        if (st != IHSM_OK)
            goto fail_epoch;
    }
hold:
    if (st != IHSM_OK)
        goto fail_epoch;
    st = dev_keys_hold(c->d, &p->keys, c->sess, hash, &k, &o);
    if (st != IHSM_OK) {
        if (persist)
            dev_keystore_remove(p, label, label_len);
        goto fail_epoch;
    }
    dev_partition_epoch_drop(p);
    patch_u32(c->out, hmark, o->handle);
    st = ihsm_key_write_public(o->key, c->out);
    dev_debug("%s: partition %s handle %08x type %u%s", event, p->name, o->handle,
              type, persist ? " (stored)" : ephemeral ? " (ephemeral)" : "");
    dev_keyobj_put(c->d, o);
    if (!ephemeral)
        audit_key(c, event, label, label_len, st);
    return st;
fail_epoch:
    dev_partition_epoch_drop(p);
fail:
    ihsm_key_free(k);
    if (!ephemeral)
        audit_key(c, event, label, label_len, st);
    return st;
}

int dev_cmd_key_generate(struct dev_ctx *c)
{
    return make_key(c, 0);
}

int dev_cmd_key_import(struct dev_ctx *c)
{
    return make_key(c, 1);
}

int dev_cmd_get_import_key(struct dev_ctx *c)
{
    const ihsm_key *ik;

    if (ihsm_rd_end(c->rd) != 0)
        return IHSM_ERR_MALFORMED;
    ik = dev_import_key(c->d);
    if (ik == NULL)
        return IHSM_ERR_DEVICE_FAILED;
    return ihsm_key_write_public(ik, c->out);
}

/* Load (or find loaded) the key of a masked blob, held by this session. */
static int load_blob(struct dev_ctx *c, const uint8_t *blob, size_t len,
                     struct dev_keyobj **o)
{
    struct dev_partition *p = c->sess->part;
    uint8_t hash[32];
    ihsm_key *k = NULL;
    int st;

    dev_blob_hash(blob, len, hash);
    dev_partition_epoch_hold(p);
    st = dev_keys_hold(c->d, &p->keys, c->sess, hash, NULL, o);
    if (st == IHSM_ERR_NOT_FOUND) {
        st = p->mask_key == NULL ? IHSM_ERR_DEVICE_FAILED
                                 : ihsm_key_unmask(blob, len, p->mask_key, p->id, &k);
        if (st == IHSM_OK)
            st = dev_keys_hold(c->d, &p->keys, c->sess, hash, &k, o);
    }
    dev_partition_epoch_drop(p);
    ihsm_key_free(k); /* NULL unless the hold failed */
    return st;
}

int dev_cmd_key_unmask(struct dev_ctx *c)
{
    const uint8_t *blob, *label;
    size_t len, label_len = 0;
    struct dev_keyobj *o;
    int st;

    blob = ihsm_rd_bytes(c->rd, &len, IHSM_MAX_BLOB);
    if (ihsm_rd_end(c->rd) != 0)
        return IHSM_ERR_MALFORMED;
    if (!mask_ready(c))
        return IHSM_ERR_DEVICE_FAILED;
    st = load_blob(c, blob, len, &o);
    if (st != IHSM_OK) {
        audit_key(c, "unmask", NULL, 0, st);
        return st;
    }
    label = ihsm_key_label(o->key, &label_len);
    ihsm_wr_u32(c->out, o->handle);
    ihsm_wr_u32(c->out, ihsm_key_type(o->key));
    ihsm_wr_u32(c->out, ihsm_key_bits(o->key));
    ihsm_wr_u32(c->out, ihsm_key_usage(o->key));
    ihsm_wr_bytes(c->out, label, label_len);
    st = ihsm_key_write_public(o->key, c->out);
    audit_key(c, "unmask", label, label_len, st);
    dev_keyobj_put(c->d, o);
    return st;
}

/* A handle-only request: the key, pinned. */
static int handle_arg(struct dev_ctx *c, struct dev_keyobj **o)
{
    uint32_t h = ihsm_rd_u32(c->rd);

    if (ihsm_rd_end(c->rd) != 0)
        return IHSM_ERR_MALFORMED;
    *o = dev_keys_get(&c->sess->part->keys, h);
    return *o != NULL ? IHSM_OK : IHSM_ERR_BAD_HANDLE;
}

int dev_cmd_key_mask(struct dev_ctx *c)
{
    struct dev_partition *p = c->sess->part;
    struct dev_keyobj *o;
    size_t mark;
    int st = handle_arg(c, &o);

    if (st != IHSM_OK)
        return st;
    if (!mask_ready(c)) {
        dev_keyobj_put(c->d, o);
        return IHSM_ERR_DEVICE_FAILED;
    }
    dev_partition_epoch_hold(p);
    mark = ihsm_wr_bytes_begin(c->out);
    st = p->mask_key == NULL ? IHSM_ERR_DEVICE_FAILED
                             : ihsm_key_mask(o->key, p->mask_key, p->id, c->out);
    ihsm_wr_bytes_end(c->out, mark);
    dev_partition_epoch_drop(p);
    dev_keyobj_put(c->d, o);
    return st;
}

int dev_cmd_key_public(struct dev_ctx *c)
{
    struct dev_keyobj *o;
    int st = handle_arg(c, &o);

    if (st != IHSM_OK)
        return st;
    st = ihsm_key_write_public(o->key, c->out);
    dev_keyobj_put(c->d, o);
    return st;
}

int dev_cmd_key_release(struct dev_ctx *c)
{
    uint32_t h = ihsm_rd_u32(c->rd);

    if (ihsm_rd_end(c->rd) != 0)
        return IHSM_ERR_MALFORMED;
    return dev_keys_release(c->d, &c->sess->part->keys, c->sess, h);
}

int dev_cmd_key_delete(struct dev_ctx *c)
{
    struct dev_partition *p = c->sess->part;
    uint32_t h = ihsm_rd_u32(c->rd);
    const uint8_t *name;
    size_t name_len;
    int st;

    name = ihsm_rd_bytes(c->rd, &name_len, IHSM_MAX_LABEL);
    if (ihsm_rd_end(c->rd) != 0)
        return IHSM_ERR_MALFORMED;
    if (h != 0) {
        uint8_t label[IHSM_MAX_LABEL];
        size_t label_len = 0;
        struct dev_keyobj *o = dev_keys_get(&p->keys, h);

        if (o != NULL) { /* for the audit line */
            const uint8_t *l = ihsm_key_label(o->key, &label_len);
            if (label_len > sizeof(label))
                label_len = sizeof(label);
            memcpy(label, l, label_len);
            dev_keyobj_put(c->d, o);
        }
        st = dev_keys_delete(c->d, &p->keys, h);
        audit_key(c, "delete", label, label_len, st);
        return st;
    }
    /* by name: the stored key goes, and with it the loaded copy */
    if (!dev_name_valid(name, name_len))
        return IHSM_ERR_BAD_INPUT;
    {
        uint8_t *buf, hash[32];
        size_t len;
        struct dev_keyrec r;
        int have_hash = 0;

        st = dev_keystore_load(p, name, name_len, &buf, &len);
        if (st == IHSM_OK) {
            if (dev_keyrec_decode(buf, len, &r) == 0) {
                dev_blob_hash(r.blob, r.blob_len, hash);
                have_hash = 1;
            }
            dev_free_file(buf, len);
            st = dev_keystore_remove(p, name, name_len);
        }
        if (st == IHSM_OK && have_hash)
            dev_keys_delete_hash(c->d, &p->keys, hash);
    }
    audit_key(c, "delete", name, name_len, st);
    return st;
}

int dev_cmd_key_find(struct dev_ctx *c)
{
    struct dev_partition *p = c->sess->part;
    const uint8_t *name;
    uint8_t *buf;
    size_t name_len, len;
    struct dev_keyrec r;
    struct dev_keyobj *o;
    int st;

    name = ihsm_rd_bytes(c->rd, &name_len, IHSM_MAX_LABEL);
    if (ihsm_rd_end(c->rd) != 0)
        return IHSM_ERR_MALFORMED;
    if (!dev_name_valid(name, name_len))
        return IHSM_ERR_BAD_INPUT;
    if (!mask_ready(c))
        return IHSM_ERR_DEVICE_FAILED;
    st = dev_keystore_load(p, name, name_len, &buf, &len);
    if (st != IHSM_OK)
        return st;
    if (dev_keyrec_decode(buf, len, &r) != 0) {
        dev_log("partition %s: key file %.*s.key is damaged", p->name, (int)name_len,
                (const char *)name);
        st = IHSM_ERR_BAD_BLOB;
    } else {
        st = load_blob(c, r.blob, r.blob_len, &o);
    }
    dev_free_file(buf, len);
    if (st != IHSM_OK) {
        audit_key(c, "find", name, name_len, st);
        return st;
    }
    ihsm_wr_u32(c->out, o->handle);
    ihsm_wr_u32(c->out, ihsm_key_type(o->key));
    ihsm_wr_u32(c->out, ihsm_key_bits(o->key));
    ihsm_wr_u32(c->out, ihsm_key_usage(o->key));
    st = ihsm_key_write_public(o->key, c->out);
    dev_keyobj_put(c->d, o);
    audit_key(c, "find", name, name_len, st);
    return st;
}

int dev_cmd_key_list(struct dev_ctx *c)
{
    if (ihsm_rd_end(c->rd) != 0)
        return IHSM_ERR_MALFORMED;
    return dev_keystore_list(c->sess->part, c->out);
}

int dev_cmd_zeroize(struct dev_ctx *c)
{
    struct dev_partition *p = c->sess->part;
    size_t files = 0, keys = 0;
    char what[80];
    int st;

    if (ihsm_rd_end(c->rd) != 0)
        return IHSM_ERR_MALFORMED;
    st = dev_partition_zeroize(c->d, p, &files, &keys);
    snprintf(what, sizeof(what), "%s_loaded_%zu_stored_%zu_new_epoch",
             st == IHSM_OK ? "ok" : "storage_error", keys, files);
    dev_audit(c->d, c->conn, "zeroize", p->name, NULL, 0, what);
    dev_log("partition %s zeroized by uid %ld pid %ld: %zu loaded keys, %zu stored keys, "
            "%s", p->name, (long)c->conn->uid, (long)c->conn->pid, keys, files,
            st == IHSM_OK ? "new partition id (older masked key files no longer unmask)"
                          : "the partition id could NOT be changed");
    return st;
}
