/*
 * ihsmd's counters (STATS, no session needed) on a connection of our own,
 * so reading them never goes through, or disturbs, the provider's queue.
 * The row reports the deltas: requests per frame (how well the queue
 * batched) and the op counter (every operation we sent reached the device).
 */
#include <string.h>
#include <unistd.h>
#include <openssl/crypto.h>

#include "ihsm_codec.h"
#include "ihsm_proto.h"
#include "ihsm_transport.h"
#include "speed.h"

#define STATS_TIMEOUT_MS 5000
#define MAX_NAME 128

static void note(struct sp_devstats *st, const uint8_t *nm, size_t len, uint64_t v)
{
    static const struct {
        const char *name;
        size_t off;
    } want[] = {
        { "requests", offsetof(struct sp_devstats, requests) },
        { "frames_in", offsetof(struct sp_devstats, frames_in) },
        { "sign", offsetof(struct sp_devstats, sign) },
        { "derive", offsetof(struct sp_devstats, derive) },
        { "aead", offsetof(struct sp_devstats, aead) },
    };

    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
        if (strlen(want[i].name) == len && memcmp(want[i].name, nm, len) == 0)
            *(uint64_t *)((char *)st + want[i].off) = v;
}

int sp_devstats_read(const char *socket_path, struct sp_devstats *st)
{
    uint8_t *buf = NULL;
    ihsm_entry ent;
    ihsm_wr w;
    ihsm_rd r;
    size_t len = 0, n = 0, mark;
    uint16_t kind = 0;
    uint32_t count;
    int fd, rc = -1;

    memset(st, 0, sizeof(*st));
    if ((fd = ihsm_transport_connect(socket_path)) < 0)
        return -1;
    ihsm_wr_init(&w);
    ihsm_frame_begin(&w, IHSM_FRAME_REQUEST);
    mark = ihsm_frame_entry_begin(&w, 1, IHSM_CMD_STATS, 0, 0);
    ihsm_frame_entry_end(&w, mark);
    if (ihsm_frame_finish(&w) != IHSM_OK || ihsm_transport_send(fd, w.p, w.len) != IHSM_OK)
        goto out;
    if ((buf = OPENSSL_malloc(IHSM_MAX_FRAME)) == NULL
        || ihsm_transport_recv(fd, buf, IHSM_MAX_FRAME, &len, STATS_TIMEOUT_MS) != IHSM_OK
        || ihsm_frame_decode(buf, len, &kind, &ent, 1, &n) != IHSM_OK
        || kind != IHSM_FRAME_COMPLETION || n != 1 || ent.id != 1 || ent.status != IHSM_OK)
        goto out;
    ihsm_rd_init(&r, ent.payload, ent.len);
    count = ihsm_rd_u32(&r);
    for (uint32_t i = 0; i < count && !r.err; i++) {
        size_t nlen = 0;
        const uint8_t *nm = ihsm_rd_bytes(&r, &nlen, MAX_NAME);
        uint64_t v = ihsm_rd_u64(&r);

        if (!r.err)
            note(st, nm, nlen, v);
    }
    if (ihsm_rd_end(&r) == 0) {
        st->ok = 1;
        rc = 0;
    }
out:
    OPENSSL_free(buf);
    ihsm_wr_free(&w);
    close(fd);
    return rc;
}

uint64_t sp_devstats_counter(const struct sp_devstats *st, enum sp_op_kind k)
{
    switch (k) {
    case SP_OP_SIGN: return st->sign;
    case SP_OP_DERIVE: return st->derive;
    case SP_OP_SEAL: return st->aead;
    }
    return 0;
}
