/* Frame and payload codec: round trips and every kind of malformed frame. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "ihsm_codec.h"
#include "ihsm_proto.h"

static ihsm_entry entries[IHSM_MAX_BATCH];

/* A request frame of n RANDOM entries, entry i asking for i+1 bytes. */
static void build_frame(ihsm_wr *w, unsigned n)
{
    ihsm_frame_begin(w, IHSM_FRAME_REQUEST);
    for (unsigned i = 0; i < n; i++) {
        size_t m = ihsm_frame_entry_begin(w, 1000 + i, IHSM_CMD_RANDOM, 0, 7);
        ihsm_wr_u32(w, i + 1);
        ihsm_frame_entry_end(w, m);
    }
    assert_int_equal(ihsm_frame_finish(w), IHSM_OK);
}

static void test_round_trip(void **state)
{
    ihsm_wr w;
    uint16_t kind = 0;
    size_t count = 0;

    ihsm_wr_init(&w);
    build_frame(&w, 64);
    assert_int_equal(w.len, IHSM_FRAME_HDR_LEN + 64 * (IHSM_ENTRY_HDR_LEN + 4));
    assert_int_equal(ihsm_frame_decode(w.p, w.len, &kind, entries, IHSM_MAX_BATCH, &count), IHSM_OK);
    assert_int_equal(kind, IHSM_FRAME_REQUEST);
    assert_int_equal(count, 64);
    for (unsigned i = 0; i < 64; i++) {
        ihsm_rd r;
        assert_int_equal(entries[i].id, 1000 + i);
        assert_int_equal(entries[i].cmd, IHSM_CMD_RANDOM);
        assert_int_equal(entries[i].session, 7);
        ihsm_rd_init(&r, entries[i].payload, entries[i].len);
        assert_int_equal(ihsm_rd_u32(&r), i + 1);
        assert_int_equal(ihsm_rd_end(&r), 0);
    }
    ihsm_wr_free(&w);
}

static void test_payload_fields(void **state)
{
    ihsm_wr w;
    ihsm_rd r;
    size_t len, mark;
    const uint8_t *b;

    ihsm_wr_init(&w);
    ihsm_wr_u32(&w, 0xdeadbeef);
    ihsm_wr_u64(&w, 0x0102030405060708ull);
    ihsm_wr_bytes(&w, "hello", 5);
    ihsm_wr_bytes(&w, NULL, 0);
    mark = ihsm_wr_bytes_begin(&w);
    ihsm_wr_raw(&w, "abc", 3);
    ihsm_wr_bytes_end(&w, mark);
    assert_int_equal(w.err, 0);
    /* little-endian on the wire */
    assert_int_equal(w.p[0], 0xef);
    assert_int_equal(w.p[4], 0x08);

    ihsm_rd_init(&r, w.p, w.len);
    assert_int_equal(ihsm_rd_u32(&r), 0xdeadbeef);
    assert_true(ihsm_rd_u64(&r) == 0x0102030405060708ull);
    b = ihsm_rd_bytes(&r, &len, 16);
    assert_non_null(b);
    assert_int_equal(len, 5);
    assert_memory_equal(b, "hello", 5);
    b = ihsm_rd_bytes(&r, &len, 16);
    assert_non_null(b);
    assert_int_equal(len, 0);
    b = ihsm_rd_bytes(&r, &len, 16);
    assert_int_equal(len, 3);
    assert_memory_equal(b, "abc", 3);
    assert_int_equal(ihsm_rd_end(&r), 0);

    /* a field longer than its limit is an error, and errors are sticky */
    ihsm_rd_init(&r, w.p, w.len);
    ihsm_rd_u32(&r);
    ihsm_rd_u64(&r);
    assert_null(ihsm_rd_bytes(&r, &len, 4));
    assert_int_equal(ihsm_rd_u32(&r), 0);
    assert_int_not_equal(ihsm_rd_end(&r), 0);

    /* leftover bytes are an error */
    ihsm_rd_init(&r, w.p, w.len);
    ihsm_rd_u32(&r);
    assert_int_not_equal(ihsm_rd_end(&r), 0);
    ihsm_wr_free(&w);
}

static void test_reader_never_overreads(void **state)
{
    /* a bytes field claiming 4 GiB in a 6-byte buffer */
    const uint8_t buf[6] = { 0xff, 0xff, 0xff, 0xff, 1, 2 };
    ihsm_rd r;
    size_t len = 99;

    ihsm_rd_init(&r, buf, sizeof(buf));
    assert_null(ihsm_rd_bytes(&r, &len, SIZE_MAX));
    assert_int_equal(len, 0);
    assert_int_not_equal(ihsm_rd_end(&r), 0);
    ihsm_rd_init(&r, buf, 3);
    ihsm_rd_u32(&r);
    assert_int_not_equal(r.err, 0);
}

static int decode(const uint8_t *p, size_t len)
{
    uint16_t kind;
    size_t count;
    return ihsm_frame_decode(p, len, &kind, entries, IHSM_MAX_BATCH, &count);
}

static void test_malformed_frames(void **state)
{
    ihsm_wr w;
    uint8_t copy[4096];

    ihsm_wr_init(&w);
    build_frame(&w, 3);
    assert_true(w.len < sizeof(copy));
    assert_int_equal(decode(w.p, w.len), IHSM_OK);

    /* every truncation fails */
    for (size_t n = 0; n < w.len; n++)
        assert_int_not_equal(decode(w.p, n), IHSM_OK);
    /* one extra byte fails (body length mismatch) */
    memcpy(copy, w.p, w.len);
    copy[w.len] = 0;
    assert_int_equal(decode(copy, w.len + 1), IHSM_ERR_MALFORMED);

#define MUTATE(off, val, expect) do {            \
        memcpy(copy, w.p, w.len);                  \
        copy[(off)] = (val);                       \
        assert_int_equal(decode(copy, w.len), (expect)); \
    } while (0)
    MUTATE(0, 'X', IHSM_ERR_MALFORMED);       /* magic */
    MUTATE(4, 2, IHSM_ERR_VERSION);           /* version */
    MUTATE(6, 3, IHSM_ERR_MALFORMED);         /* kind */
    MUTATE(8, 0, IHSM_ERR_MALFORMED);         /* count 0 */
    MUTATE(8, 4, IHSM_ERR_MALFORMED);         /* count larger than entries */
    MUTATE(9, 2, IHSM_ERR_LIMIT_FRAME);       /* count 515 > IHSM_MAX_BATCH */
    MUTATE(10, 1, IHSM_ERR_MALFORMED);        /* reserved */
    MUTATE(12, 1, IHSM_ERR_MALFORMED);        /* body length */
    /* first entry's payload length runs past the end */
    MUTATE(IHSM_FRAME_HDR_LEN + 16, 0xff, IHSM_ERR_MALFORMED);
    MUTATE(IHSM_FRAME_HDR_LEN + 19, 0x80, IHSM_ERR_MALFORMED);
    /* first entry's payload length shorter: the rest no longer parses */
    MUTATE(IHSM_FRAME_HDR_LEN + 16, 0, IHSM_ERR_MALFORMED);
#undef MUTATE
    /* too many entries for the caller's array */
    {
        uint16_t kind;
        size_t count;
        assert_int_equal(ihsm_frame_decode(w.p, w.len, &kind, entries, 2, &count),
                         IHSM_ERR_LIMIT_FRAME);
        assert_int_equal(count, 0);
    }
    assert_int_equal(decode(NULL, 0), IHSM_ERR_MALFORMED);
    ihsm_wr_free(&w);
}

static void test_limits(void **state)
{
    ihsm_wr w;
    static uint8_t big[IHSM_MAX_FRAME];

    /* a frame with too many entries is refused by the encoder */
    ihsm_wr_init(&w);
    ihsm_frame_begin(&w, IHSM_FRAME_REQUEST);
    for (unsigned i = 0; i < IHSM_MAX_BATCH + 1; i++) {
        size_t m = ihsm_frame_entry_begin(&w, i, IHSM_CMD_INFO, 0, 0);
        ihsm_frame_entry_end(&w, m);
    }
    assert_int_equal(ihsm_frame_finish(&w), IHSM_ERR_LIMIT_FRAME);

    /* a payload past IHSM_MAX_FRAME is refused, and the error sticks */
    ihsm_frame_begin(&w, IHSM_FRAME_REQUEST);
    size_t m = ihsm_frame_entry_begin(&w, 1, IHSM_CMD_RANDOM, 0, 0);
    ihsm_wr_bytes(&w, big, sizeof(big));
    ihsm_frame_entry_end(&w, m);
    assert_int_equal(ihsm_frame_finish(&w), IHSM_ERR_LIMIT_FRAME);

    /* a decoder given more than IHSM_MAX_FRAME refuses before looking */
    assert_int_equal(decode(big, sizeof(big) + 0), IHSM_ERR_MALFORMED); /* zeros: bad magic */
    ihsm_wr_free(&w);
}

static void test_status_text(void **state)
{
    assert_string_equal(ihsm_status_name(IHSM_ERR_AUTH), "IHSM_ERR_AUTH");
    assert_non_null(strstr(ihsm_status_str(IHSM_ERR_CONNECT), "ihsmd"));
    assert_string_equal(ihsm_status_name(9999), "IHSM_ERR_UNKNOWN");
    assert_string_equal(ihsm_cmd_name(IHSM_CMD_SIGN), "SIGN");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_payload_fields),
        cmocka_unit_test(test_reader_never_overreads),
        cmocka_unit_test(test_malformed_frames),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_status_text),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
