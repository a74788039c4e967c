/*
 * Frame and payload encoding. Pure functions over bytes: the decoder never
 * trusts a length and never reads outside the buffer it is given, so it can
 * be fuzzed alone (tests/fuzz/fuzz_frame.c).
 *
 * Payload fields are little-endian: u32, u64, and "bytes" = u32 length then
 * that many bytes. A command's payload is a fixed sequence of such fields
 * (docs/protocol.md).
 */
#ifndef IHSM_CODEC_H
#define IHSM_CODEC_H

#include <stddef.h>
#include <stdint.h>

/* ---- payload reader: errors are sticky, check once with ihsm_rd_end ---- */
typedef struct {
    const uint8_t *p;
    size_t len;
    size_t off;
    int err; /* nonzero after any short or over-long read */
} ihsm_rd;

void ihsm_rd_init(ihsm_rd *r, const void *p, size_t len);
uint32_t ihsm_rd_u32(ihsm_rd *r);
uint64_t ihsm_rd_u64(ihsm_rd *r);
/* A length-prefixed field; *len gets its length. Returns NULL (and sets err)
 * when the field runs past the end or is longer than max. */
const uint8_t *ihsm_rd_bytes(ihsm_rd *r, size_t *len, size_t max);
/* 0 when every read succeeded and the whole payload was consumed. */
int ihsm_rd_end(const ihsm_rd *r);

/* ---- growable writer; always cleansed when freed (it may hold secrets) ---- */
typedef struct {
    uint8_t *p;
    size_t len;
    size_t cap;
    int err; /* nonzero after an allocation failure or limit overflow */
    size_t limit; /* 0: IHSM_MAX_FRAME */
} ihsm_wr;

void ihsm_wr_init(ihsm_wr *w);
void ihsm_wr_reset(ihsm_wr *w);   /* len = 0, keep the buffer (cleansed) */
void ihsm_wr_free(ihsm_wr *w);    /* cleanse and free */
void ihsm_wr_u32(ihsm_wr *w, uint32_t v);
void ihsm_wr_u64(ihsm_wr *w, uint64_t v);
void ihsm_wr_bytes(ihsm_wr *w, const void *p, size_t len); /* u32 length + data */
void ihsm_wr_raw(ihsm_wr *w, const void *p, size_t len);   /* data only */
/* Reserve n bytes and return a pointer to them (NULL on error). The pointer
 * is valid until the next write. */
uint8_t *ihsm_wr_reserve(ihsm_wr *w, size_t n);
/* Start a "bytes" field whose length is not known yet; ihsm_wr_bytes_end
 * patches the length in. Returns a mark. */
size_t ihsm_wr_bytes_begin(ihsm_wr *w);
void ihsm_wr_bytes_end(ihsm_wr *w, size_t mark);

/* ---- frames ---- */
typedef struct {
    uint64_t id;         /* chosen by the client, echoed in the completion */
    uint16_t cmd;        /* enum ihsm_cmd */
    uint16_t status;     /* completions: enum ihsm_status; requests: 0 */
    uint32_t session;    /* requests: session id (0 = none); completions: 0 */
    const uint8_t *payload;
    uint32_t len;
} ihsm_entry;

/* Encoding: begin, then for each entry entry_begin + payload writes +
 * entry_end, then finish (patches count and body length). */
void ihsm_frame_begin(ihsm_wr *w, uint16_t kind);
size_t ihsm_frame_entry_begin(ihsm_wr *w, uint64_t id, uint16_t cmd,
                              uint16_t status, uint32_t session);
void ihsm_frame_entry_end(ihsm_wr *w, size_t mark);
/* Returns IHSM_OK, or IHSM_ERR_LIMIT_FRAME / IHSM_ERR_NOMEM. */
int ihsm_frame_finish(ihsm_wr *w);
/* Bytes one more entry with this payload length would add. */
static inline size_t ihsm_frame_entry_size(size_t payload_len)
{
    return 20 + payload_len;
}

/* Decode a whole frame. entries[] receive pointers into buf. Returns IHSM_OK
 * or a status naming what was wrong (IHSM_ERR_MALFORMED, IHSM_ERR_VERSION,
 * IHSM_ERR_LIMIT_FRAME). Never reads outside buf[0..len). */
int ihsm_frame_decode(const uint8_t *buf, size_t len, uint16_t *kind,
                      ihsm_entry *entries, size_t max_entries, size_t *count);

#endif
