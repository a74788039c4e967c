/*
 * Frame and payload codec. Little-endian by explicit byte shuffling (no
 * casts over unaligned buffers), every length checked against what is left.
 */
#include "ihsm_codec.h"
#include "ihsm_proto.h"

#include <stdlib.h>
#include <string.h>
#include <openssl/crypto.h>

static uint16_t get16(const uint8_t *p)
{
    return (uint16_t)(p[0] | (p[1] << 8));
}

static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16)
           | ((uint32_t)p[3] << 24);
}

static void put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static void put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

/* ---- reader ---- */

void ihsm_rd_init(ihsm_rd *r, const void *p, size_t len)
{
    r->p = p;
    r->len = p != NULL ? len : 0;
    r->off = 0;
    r->err = 0;
}

static const uint8_t *rd_take(ihsm_rd *r, size_t n)
{
    if (r->err || n > r->len - r->off) {
        r->err = 1;
        return NULL;
    }
    const uint8_t *q = r->p + r->off;
    r->off += n;
    return q;
}

uint32_t ihsm_rd_u32(ihsm_rd *r)
{
    const uint8_t *q = rd_take(r, 4);
    return q != NULL ? get32(q) : 0;
}

uint64_t ihsm_rd_u64(ihsm_rd *r)
{
    const uint8_t *q = rd_take(r, 8);
    return q != NULL ? (uint64_t)get32(q) | ((uint64_t)get32(q + 4) << 32) : 0;
}

const uint8_t *ihsm_rd_bytes(ihsm_rd *r, size_t *len, size_t max)
{
    uint32_t n = ihsm_rd_u32(r);
    *len = 0;
    if (r->err)
        return NULL;
    if (n > max) {
        r->err = 1;
        return NULL;
    }
    const uint8_t *q = rd_take(r, n);
    if (q == NULL)
        return NULL;
    *len = n;
    /* a zero-length field still yields a valid, non-NULL pointer */
    return q;
}

int ihsm_rd_end(const ihsm_rd *r)
{
    return (r->err || r->off != r->len) ? -1 : 0;
}

/* ---- writer ---- */

void ihsm_wr_init(ihsm_wr *w)
{
    memset(w, 0, sizeof(*w));
}

void ihsm_wr_reset(ihsm_wr *w)
{
    if (w->p != NULL)
        OPENSSL_cleanse(w->p, w->len);
    w->len = 0;
    w->err = 0;
}

void ihsm_wr_free(ihsm_wr *w)
{
    if (w->p != NULL)
        OPENSSL_clear_free(w->p, w->cap);
    memset(w, 0, sizeof(*w));
}

uint8_t *ihsm_wr_reserve(ihsm_wr *w, size_t n)
{
    size_t limit = w->limit != 0 ? w->limit : IHSM_MAX_FRAME;

    if (w->err)
        return NULL;
    if (n > limit || w->len > limit - n) {
        w->err = IHSM_ERR_LIMIT_FRAME;
        return NULL;
    }
    if (w->len + n > w->cap) {
        size_t cap = w->cap != 0 ? w->cap : 256;
        while (cap < w->len + n)
            cap *= 2;
        /* grow by copy so the old buffer can be cleansed: it may hold secrets */
        uint8_t *np = OPENSSL_malloc(cap);
        if (np == NULL) {
            w->err = IHSM_ERR_NOMEM;
            return NULL;
        }
        if (w->p != NULL) {
            memcpy(np, w->p, w->len);
            OPENSSL_clear_free(w->p, w->cap);
        }
        w->p = np;
        w->cap = cap;
    }
    uint8_t *q = w->p + w->len;
    w->len += n;
    return q;
}

void ihsm_wr_u32(ihsm_wr *w, uint32_t v)
{
    uint8_t *q = ihsm_wr_reserve(w, 4);
    if (q != NULL)
        put32(q, v);
}

void ihsm_wr_u64(ihsm_wr *w, uint64_t v)
{
    uint8_t *q = ihsm_wr_reserve(w, 8);
    if (q != NULL) {
        put32(q, (uint32_t)v);
        put32(q + 4, (uint32_t)(v >> 32));
    }
}

void ihsm_wr_raw(ihsm_wr *w, const void *p, size_t len)
{
    uint8_t *q = ihsm_wr_reserve(w, len);
    if (q != NULL && len != 0)
        memcpy(q, p, len);
}

void ihsm_wr_bytes(ihsm_wr *w, const void *p, size_t len)
{
    if (len > UINT32_MAX) {
        w->err = IHSM_ERR_LIMIT_FRAME;
        return;
    }
    ihsm_wr_u32(w, (uint32_t)len);
    ihsm_wr_raw(w, p, len);
}

size_t ihsm_wr_bytes_begin(ihsm_wr *w)
{
    size_t mark = w->len;
    ihsm_wr_u32(w, 0);
    return mark;
}

void ihsm_wr_bytes_end(ihsm_wr *w, size_t mark)
{
    if (w->err || mark + 4 > w->len)
        return;
    put32(w->p + mark, (uint32_t)(w->len - mark - 4));
}

/* ---- frames ---- */

void ihsm_frame_begin(ihsm_wr *w, uint16_t kind)
{
    uint8_t *h;

    ihsm_wr_reset(w);
    h = ihsm_wr_reserve(w, IHSM_FRAME_HDR_LEN);
    if (h == NULL)
        return;
    put32(h, IHSM_FRAME_MAGIC);
    put16(h + 4, IHSM_PROTO_VERSION);
    put16(h + 6, kind);
    put16(h + 8, 0);
    put16(h + 10, 0);
    put32(h + 12, 0);
}

size_t ihsm_frame_entry_begin(ihsm_wr *w, uint64_t id, uint16_t cmd,
                              uint16_t status, uint32_t session)
{
    size_t mark = w->len;
    uint8_t *e = ihsm_wr_reserve(w, IHSM_ENTRY_HDR_LEN);

    if (e == NULL)
        return mark;
    put32(e, (uint32_t)id);
    put32(e + 4, (uint32_t)(id >> 32));
    put16(e + 8, cmd);
    put16(e + 10, status);
    put32(e + 12, session);
    put32(e + 16, 0);
    if (w->len >= IHSM_FRAME_HDR_LEN) {
        uint16_t count = get16(w->p + 8);
        put16(w->p + 8, (uint16_t)(count + 1));
    }
    return mark;
}

void ihsm_frame_entry_end(ihsm_wr *w, size_t mark)
{
    if (w->err || mark + IHSM_ENTRY_HDR_LEN > w->len)
        return;
    put32(w->p + mark + 16, (uint32_t)(w->len - mark - IHSM_ENTRY_HDR_LEN));
}

int ihsm_frame_finish(ihsm_wr *w)
{
    if (w->err)
        return w->err == IHSM_ERR_NOMEM ? IHSM_ERR_NOMEM : IHSM_ERR_LIMIT_FRAME;
    if (w->len < IHSM_FRAME_HDR_LEN)
        return IHSM_ERR_MALFORMED;
    uint16_t count = get16(w->p + 8);
    if (count == 0)
        return IHSM_ERR_MALFORMED;
    if (count > IHSM_MAX_BATCH || w->len > IHSM_MAX_FRAME)
        return IHSM_ERR_LIMIT_FRAME;
    put32(w->p + 12, (uint32_t)(w->len - IHSM_FRAME_HDR_LEN));
    return IHSM_OK;
}

int ihsm_frame_decode(const uint8_t *buf, size_t len, uint16_t *kind,
                      ihsm_entry *entries, size_t max_entries, size_t *count)
{
    size_t off, n;

    *count = 0;
    if (buf == NULL || len < IHSM_FRAME_HDR_LEN)
        return IHSM_ERR_MALFORMED;
    if (len > IHSM_MAX_FRAME)
        return IHSM_ERR_LIMIT_FRAME;
    if (get32(buf) != IHSM_FRAME_MAGIC)
        return IHSM_ERR_MALFORMED;
    if (get16(buf + 4) != IHSM_PROTO_VERSION)
        return IHSM_ERR_VERSION;
    *kind = get16(buf + 6);
    if (*kind != IHSM_FRAME_REQUEST && *kind != IHSM_FRAME_COMPLETION)
        return IHSM_ERR_MALFORMED;
    n = get16(buf + 8);
    if (n == 0 || get16(buf + 10) != 0)
        return IHSM_ERR_MALFORMED;
    if (n > IHSM_MAX_BATCH || n > max_entries)
        return IHSM_ERR_LIMIT_FRAME;
    if (get32(buf + 12) != len - IHSM_FRAME_HDR_LEN)
        return IHSM_ERR_MALFORMED;

    off = IHSM_FRAME_HDR_LEN;
    for (size_t i = 0; i < n; i++) {
        const uint8_t *e;
        uint32_t plen;

        if (len - off < IHSM_ENTRY_HDR_LEN)
            return IHSM_ERR_MALFORMED;
        e = buf + off;
        plen = get32(e + 16);
        if (plen > len - off - IHSM_ENTRY_HDR_LEN)
            return IHSM_ERR_MALFORMED;
        entries[i].id = (uint64_t)get32(e) | ((uint64_t)get32(e + 4) << 32);
        entries[i].cmd = get16(e + 8);
        entries[i].status = get16(e + 10);
        entries[i].session = get32(e + 12);
        entries[i].len = plen;
        entries[i].payload = e + IHSM_ENTRY_HDR_LEN;
        off += IHSM_ENTRY_HDR_LEN + plen;
    }
    if (off != len)
        return IHSM_ERR_MALFORMED;
    *count = n;
    return IHSM_OK;
}
