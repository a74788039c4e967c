/*
 * libFuzzer target: the device frame decoder and the payload reader.
 * Anything that decodes must re-encode to the same bytes; nothing may read
 * outside the input (AddressSanitizer watches).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ihsm_codec.h"
#include "ihsm_proto.h"

static ihsm_entry entries[IHSM_MAX_BATCH];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint16_t kind = 0;
    size_t count = 0;
    ihsm_wr w;

    if (ihsm_frame_decode(data, size, &kind, entries, IHSM_MAX_BATCH, &count) != IHSM_OK)
        return 0;
    ihsm_wr_init(&w);
    ihsm_frame_begin(&w, kind);
    for (size_t i = 0; i < count; i++) {
        size_t m = ihsm_frame_entry_begin(&w, entries[i].id, entries[i].cmd,
                                          entries[i].status, entries[i].session);
        ihsm_wr_raw(&w, entries[i].payload, entries[i].len);
        ihsm_frame_entry_end(&w, m);

        /* walk the payload as a SIGN request would: hostile lengths */
        ihsm_rd r;
        size_t len;
        ihsm_rd_init(&r, entries[i].payload, entries[i].len);
        for (int f = 0; f < 5; f++)
            (void)ihsm_rd_u32(&r);
        (void)ihsm_rd_bytes(&r, &len, IHSM_MAX_PAYLOAD);
        (void)ihsm_rd_end(&r);
    }
    if (ihsm_frame_finish(&w) != IHSM_OK || w.len != size || memcmp(w.p, data, size) != 0)
        abort(); /* decode and encode disagree */
    ihsm_wr_free(&w);
    return 0;
}
