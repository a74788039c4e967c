/*
 * ihsmd against hostile and unusual frames: garbage, truncated, oversized
 * and inconsistent frames get an error completion (id 0) or a closed
 * channel, while another client keeps getting correct RANDOM answers at the
 * same time; batches are answered entry by entry; the in-flight limit.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <openssl/rand.h>

#include "devtest.h"
#include "ihsm_transport.h"

static struct dt_daemon dd;
static uint8_t pin[IHSM_PIN_LEN];

static int setup(void **state)
{
    (void)state;
    dd.extra[0] = "--max-inflight";
    dd.extra[1] = "100";
    if (dt_start(&dd) != 0)
        return -1;
    int fd = dt_connect(&dd);
    int st = dt_init_partition(fd, "p", NULL, 0, pin);
    close(fd);
    return st == IHSM_OK ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    dt_cleanup(&dd);
    return 0;
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

/* A frame of n RANDOM(len) requests with ids base.. on session sid. */
static void random_frame(ihsm_wr *w, uint64_t base, unsigned n, uint32_t sid, uint32_t len)
{
    ihsm_frame_begin(w, IHSM_FRAME_REQUEST);
    for (unsigned i = 0; i < n; i++) {
        size_t m = ihsm_frame_entry_begin(w, base + i, IHSM_CMD_RANDOM, 0, sid);
        ihsm_wr_u32(w, len);
        ihsm_frame_entry_end(w, m);
    }
    assert_int_equal(ihsm_frame_finish(w), IHSM_OK);
}

/* ---- the well-behaved client ---- */

struct good {
    struct dt_daemon *dd;
    atomic_int stop;
    int ok, bad;
    char why[256];
};

static void *good_client(void *arg)
{
    struct good *g = arg;
    static uint8_t buf[IHSM_MAX_FRAME];
    ihsm_entry ents[IHSM_MAX_BATCH];
    uint32_t sid;
    uint64_t id = 1;
    int fd = dt_connect(g->dd);
    double t0 = dt_now();

    if (fd < 0 || dt_open_session(fd, "p", pin, &sid) != IHSM_OK) {
        snprintf(g->why, sizeof(g->why), "cannot open a session");
        g->bad++;
        return NULL;
    }
    while (!atomic_load(&g->stop) && dt_now() - t0 < 8.0) {
        unsigned n = (id & 1) ? 1 : 8, seen = 0;
        ihsm_wr w;

        ihsm_wr_init(&w);
        random_frame(&w, id, n, sid, 32);
        if (ihsm_transport_send(fd, w.p, w.len) != IHSM_OK) {
            snprintf(g->why, sizeof(g->why), "send failed");
            g->bad++;
            ihsm_wr_free(&w);
            break;
        }
        ihsm_wr_free(&w);
        while (seen < n) {
            size_t cnt;
            if (dt_recv(fd, buf, ents, &cnt, 5000) != IHSM_OK) {
                snprintf(g->why, sizeof(g->why), "no completion within 5 s");
                g->bad++;
                close(fd);
                return NULL;
            }
            for (size_t i = 0; i < cnt; i++) {
                ihsm_rd rd;
                size_t len;
                ihsm_rd_init(&rd, ents[i].payload, ents[i].len);
                ihsm_rd_bytes(&rd, &len, 64);
                if (ents[i].status != IHSM_OK || ents[i].id < id || ents[i].id >= id + n
                    || ihsm_rd_end(&rd) != 0 || len != 32) {
                    snprintf(g->why, sizeof(g->why), "bad answer: id %llu status %s",
                             (unsigned long long)ents[i].id, ihsm_status_name(ents[i].status));
                    g->bad++;
                } else {
                    g->ok++;
                }
                seen++;
            }
        }
        id += n;
    }
    close(fd);
    return NULL;
}

/* ---- hostile senders ---- */

/* Send raw bytes on a fresh connection; returns the fd. */
static int send_raw(const void *p, size_t len)
{
    int fd = dt_connect(&dd);
    int big = 512 * 1024;

    assert_true(fd >= 0);
    setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &big, sizeof(big));
    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &big, sizeof(big));
    assert_int_equal(send(fd, p, len, MSG_NOSIGNAL), (ssize_t)len);
    return fd;
}

/* The answer to a bad frame: one completion, id 0, this status. */
static void expect_error(int fd, int status)
{
    static uint8_t buf[IHSM_MAX_FRAME];
    ihsm_entry ents[IHSM_MAX_BATCH];
    size_t n;

    assert_int_equal(dt_recv(fd, buf, ents, &n, 5000), IHSM_OK);
    assert_int_equal(n, 1);
    assert_int_equal(ents[0].id, 0);
    assert_int_equal(ents[0].status, status);
    assert_int_equal(ents[0].len, 0);
}

static void expect_closed(int fd)
{
    static uint8_t buf[IHSM_MAX_FRAME];
    ihsm_entry ents[IHSM_MAX_BATCH];
    size_t n;

    assert_int_equal(dt_recv(fd, buf, ents, &n, 5000), -IHSM_ERR_DEVICE_GONE);
}

/* A valid one-entry RANDOM frame (session 0: never run, the frame is bad). */
static size_t valid_frame(uint8_t *out)
{
    ihsm_wr w;
    size_t len;

    ihsm_wr_init(&w);
    random_frame(&w, 7, 1, 0, 16);
    memcpy(out, w.p, w.len);
    len = w.len;
    ihsm_wr_free(&w);
    return len;
}

static void test_garbage_while_serving(void **state)
{
    (void)state;
    static uint8_t big[IHSM_MAX_FRAME + 4096];
    uint8_t f[256], junk[1000];
    static struct good g; /* static: the thread may outlive a failed assert */
    pthread_t th;
    size_t len;
    int fd;

    memset(&g, 0, sizeof(g));
    g.dd = &dd;
    assert_int_equal(pthread_create(&th, NULL, good_client, &g), 0);
    usleep(100 * 1000);

    /* random bytes: no magic, the channel is closed */
    RAND_bytes(junk, sizeof(junk));
    junk[0] = 0x00;
    fd = send_raw(junk, sizeof(junk));
    expect_closed(fd);
    close(fd);

    /* a header cut short */
    len = valid_frame(f);
    fd = send_raw(f, 10);
    expect_error(fd, IHSM_ERR_MALFORMED);
    /* the same connection still works for a good frame... */
    {
        uint32_t sid;
        assert_int_equal(dt_open_session(fd, "p", pin, &sid), IHSM_OK);
        assert_int_equal(dt_random(fd, sid, 8), IHSM_OK);
    }
    close(fd);

    /* truncated: the body length no longer matches */
    fd = send_raw(f, len - 3);
    expect_error(fd, IHSM_ERR_MALFORMED);
    close(fd);

    /* bytes after the last entry */
    memcpy(big, f, len);
    put32(big + 12, (uint32_t)(len + 5 - IHSM_FRAME_HDR_LEN));
    fd = send_raw(big, len + 5);
    expect_error(fd, IHSM_ERR_MALFORMED);
    close(fd);

    /* count 0 */
    len = valid_frame(f);
    put16(f + 8, 0);
    fd = send_raw(f, len);
    expect_error(fd, IHSM_ERR_MALFORMED);
    close(fd);

    /* count 300 */
    len = valid_frame(f);
    put16(f + 8, 300);
    fd = send_raw(f, len);
    expect_error(fd, IHSM_ERR_LIMIT_FRAME);
    close(fd);

    /* count 2, one entry */
    len = valid_frame(f);
    put16(f + 8, 2);
    fd = send_raw(f, len);
    expect_error(fd, IHSM_ERR_MALFORMED);
    close(fd);

    /* an entry whose payload length runs past the frame */
    len = valid_frame(f);
    put32(f + IHSM_FRAME_HDR_LEN + 16, 0xFFFFFFF0u);
    fd = send_raw(f, len);
    expect_error(fd, IHSM_ERR_MALFORMED);
    close(fd);

    /* version 2 */
    len = valid_frame(f);
    put16(f + 4, 2);
    fd = send_raw(f, len);
    expect_error(fd, IHSM_ERR_VERSION);
    close(fd);

    /* a completion frame sent as a request */
    len = valid_frame(f);
    put16(f + 6, IHSM_FRAME_COMPLETION);
    fd = send_raw(f, len);
    expect_error(fd, IHSM_ERR_MALFORMED);
    close(fd);

    /* over 128 KiB in one message */
    memset(big, 0xA5, sizeof(big));
    len = valid_frame(big);
    put32(big + 12, (uint32_t)(sizeof(big) - IHSM_FRAME_HDR_LEN));
    fd = send_raw(big, sizeof(big));
    expect_error(fd, IHSM_ERR_LIMIT_FRAME);
    close(fd);

    /* three strikes */
    len = valid_frame(f);
    fd = dt_connect(&dd);
    for (int i = 0; i < 3; i++)
        assert_int_equal(send(fd, f, len - 1, MSG_NOSIGNAL), (ssize_t)(len - 1));
    expect_error(fd, IHSM_ERR_MALFORMED);
    expect_error(fd, IHSM_ERR_MALFORMED);
    expect_error(fd, IHSM_ERR_MALFORMED); /* the third is answered, then... */
    expect_closed(fd);                    /* ...the channel closes */
    close(fd);

    /* a client that vanishes with a frame in flight */
    fd = dt_connect(&dd);
    {
        ihsm_wr w;
        ihsm_wr_init(&w);
        random_frame(&w, 1, 64, 0, 1024);
        assert_int_equal(ihsm_transport_send(fd, w.p, w.len), IHSM_OK);
        ihsm_wr_free(&w);
    }
    close(fd);

    atomic_store(&g.stop, 1);
    pthread_join(th, NULL);
    if (g.bad != 0)
        fprintf(stderr, "good client: %s\n", g.why);
    assert_int_equal(g.bad, 0);
    assert_true(g.ok > 0);

    /* the daemon is alive and well */
    assert_int_equal(kill(dd.pid, 0), 0);
    fd = dt_connect(&dd);
    assert_int_equal(dt_call(fd, IHSM_CMD_INFO, 0, NULL, 0, NULL, NULL), IHSM_OK);
    close(fd);
}

struct expect {
    uint16_t cmd;
    int status;
};

static void test_batch_answers_each_entry(void **state)
{
    (void)state;
    static uint8_t buf[IHSM_MAX_FRAME];
    ihsm_entry ents[IHSM_MAX_BATCH];
    struct expect want[64];
    int seen[64] = { 0 };
    uint32_t sid;
    size_t frames = 0, got = 0;
    ihsm_wr w;
    int fd = dt_connect(&dd);

    assert_int_equal(dt_open_session(fd, "p", pin, &sid), IHSM_OK);
    ihsm_wr_init(&w);
    ihsm_frame_begin(&w, IHSM_FRAME_REQUEST);
    for (unsigned i = 0; i < 64; i++) {
        size_t m;
        switch (i % 5) {
        case 0: /* fine */
            m = ihsm_frame_entry_begin(&w, 5000 + i, IHSM_CMD_RANDOM, 0, sid);
            ihsm_wr_u32(&w, 16);
            want[i] = (struct expect){ IHSM_CMD_RANDOM, IHSM_OK };
            break;
        case 1: /* a byte too many */
            m = ihsm_frame_entry_begin(&w, 5000 + i, IHSM_CMD_RANDOM, 0, sid);
            ihsm_wr_u32(&w, 16);
            ihsm_wr_raw(&w, "x", 1);
            want[i] = (struct expect){ IHSM_CMD_RANDOM, IHSM_ERR_MALFORMED };
            break;
        case 2:
            m = ihsm_frame_entry_begin(&w, 5000 + i, 0x7E, 0, sid);
            want[i] = (struct expect){ 0x7E, IHSM_ERR_UNKNOWN_COMMAND };
            break;
        case 3: /* a session that is not this connection's */
            m = ihsm_frame_entry_begin(&w, 5000 + i, IHSM_CMD_RANDOM, 0, sid + 1);
            ihsm_wr_u32(&w, 16);
            want[i] = (struct expect){ IHSM_CMD_RANDOM, IHSM_ERR_NO_SESSION };
            break;
        default:
            m = ihsm_frame_entry_begin(&w, 5000 + i, IHSM_CMD_INFO, 0, 0);
            want[i] = (struct expect){ IHSM_CMD_INFO, IHSM_OK };
            break;
        }
        ihsm_frame_entry_end(&w, m);
    }
    assert_int_equal(ihsm_frame_finish(&w), IHSM_OK);
    assert_int_equal(ihsm_transport_send(fd, w.p, w.len), IHSM_OK);
    ihsm_wr_free(&w);

    while (got < 64) {
        size_t n;
        assert_int_equal(dt_recv(fd, buf, ents, &n, 5000), IHSM_OK);
        frames++;
        for (size_t i = 0; i < n; i++) {
            uint64_t k = ents[i].id - 5000;
            assert_true(k < 64);
            assert_int_equal(seen[k], 0);
            seen[k] = 1;
            assert_int_equal(ents[i].cmd, want[k].cmd);
            assert_int_equal(ents[i].status, want[k].status);
            if (ents[i].status != IHSM_OK)
                assert_int_equal(ents[i].len, 0);
            else if (want[k].cmd == IHSM_CMD_RANDOM)
                assert_int_equal(ents[i].len, 4 + 16);
            got++;
        }
    }
    assert_int_equal(frames, 1); /* one completion frame for one request frame */
    close(fd);
}

static void test_large_answers_split(void **state)
{
    (void)state;
    static uint8_t buf[IHSM_MAX_FRAME];
    ihsm_entry ents[IHSM_MAX_BATCH];
    uint32_t sid;
    size_t got = 0, frames = 0;
    ihsm_wr w;
    int fd = dt_connect(&dd);

    assert_int_equal(dt_open_session(fd, "p", pin, &sid), IHSM_OK);
    ihsm_wr_init(&w);
    random_frame(&w, 1, 3, sid, 65536); /* 192 KiB of answers */
    assert_int_equal(ihsm_transport_send(fd, w.p, w.len), IHSM_OK);
    ihsm_wr_free(&w);
    while (got < 3) {
        size_t n;
        assert_int_equal(dt_recv(fd, buf, ents, &n, 5000), IHSM_OK);
        for (size_t i = 0; i < n; i++) {
            assert_int_equal(ents[i].status, IHSM_OK);
            assert_int_equal(ents[i].len, 4 + 65536);
        }
        got += n;
        frames++;
    }
    assert_int_equal(got, 3);
    assert_true(frames >= 2);
    /* over the RANDOM limit */
    assert_int_not_equal(dt_random(fd, sid, 65537), IHSM_OK);
    close(fd);
}

static void test_inflight_limit(void **state)
{
    (void)state;
    static uint8_t buf[IHSM_MAX_FRAME];
    ihsm_entry ents[IHSM_MAX_BATCH];
    uint32_t sid;
    size_t got = 0;
    ihsm_wr w;
    int fd = dt_connect(&dd);

    assert_int_equal(dt_open_session(fd, "p", pin, &sid), IHSM_OK);
    ihsm_wr_init(&w);
    random_frame(&w, 1, 101, sid, 8); /* --max-inflight 100 */
    assert_int_equal(ihsm_transport_send(fd, w.p, w.len), IHSM_OK);
    while (got < 101) {
        size_t n;
        assert_int_equal(dt_recv(fd, buf, ents, &n, 5000), IHSM_OK);
        for (size_t i = 0; i < n; i++)
            assert_int_equal(ents[i].status, IHSM_ERR_LIMIT_INFLIGHT);
        got += n;
    }
    random_frame(&w, 1, 100, sid, 8);
    assert_int_equal(ihsm_transport_send(fd, w.p, w.len), IHSM_OK);
    ihsm_wr_free(&w);
    got = 0;
    while (got < 100) {
        size_t n;
        assert_int_equal(dt_recv(fd, buf, ents, &n, 5000), IHSM_OK);
        for (size_t i = 0; i < n; i++)
            assert_int_equal(ents[i].status, IHSM_OK);
        got += n;
    }
    close(fd);
}

static void test_stats(void **state)
{
    (void)state;
    static const char *need[] = { "requests", "frames_in", "frames_out",
        "requests_per_frame_x100", "largest_batch", "sign", "derive", "aead", "random",
        "errors", "malformed_frames", "sessions_open", "keys_loaded", "connections",
        "uptime_s", "state" };
    uint64_t vals[16] = { 0 };
    int found[16] = { 0 };
    uint8_t *r;
    size_t rlen;
    ihsm_rd rd;
    uint32_t n;
    int fd = dt_connect(&dd);

    assert_int_equal(dt_call(fd, IHSM_CMD_STATS, 0, NULL, 0, &r, &rlen), IHSM_OK);
    ihsm_rd_init(&rd, r, rlen);
    n = ihsm_rd_u32(&rd);
    for (uint32_t i = 0; i < n; i++) {
        size_t len;
        const uint8_t *name = ihsm_rd_bytes(&rd, &len, 64);
        uint64_t v = ihsm_rd_u64(&rd);
        assert_false(rd.err);
        for (size_t k = 0; k < 16; k++) {
            if (strlen(need[k]) == len && memcmp(need[k], name, len) == 0) {
                found[k] = 1;
                vals[k] = v;
            }
        }
    }
    assert_int_equal(ihsm_rd_end(&rd), 0);
    free(r);
    for (size_t k = 0; k < 16; k++) {
        if (!found[k])
            fprintf(stderr, "STATS lacks %s\n", need[k]);
        assert_true(found[k]);
    }
    assert_true(vals[0] >= 100);       /* requests */
    assert_true(vals[1] >= 10);        /* frames_in */
    assert_true(vals[3] >= 100);       /* requests per frame x100 */
    assert_true(vals[4] >= 101);       /* largest batch */
    assert_true(vals[8] >= 100);       /* random */
    assert_true(vals[9] >= 100);       /* errors: the refused 101 */
    assert_true(vals[10] >= 10);       /* malformed frames */
    assert_true(vals[13] >= 1);        /* connections: this one */
    assert_int_equal(vals[15], 0);     /* operational */
    close(fd);
}

/* Well-framed requests with random commands, sessions and payloads: each
 * is answered exactly once, and the daemon keeps serving. */
static void test_random_payloads(void **state)
{
    (void)state;
    static const uint16_t cmds[] = { IHSM_CMD_INFO, IHSM_CMD_OPEN_SESSION,
        IHSM_CMD_INIT_PARTITION, IHSM_CMD_KEY_GENERATE, IHSM_CMD_KEY_IMPORT,
        IHSM_CMD_KEY_UNMASK, IHSM_CMD_KEY_MASK, IHSM_CMD_KEY_DELETE, IHSM_CMD_KEY_PUBLIC,
        IHSM_CMD_KEY_FIND, IHSM_CMD_KEY_RELEASE, IHSM_CMD_SIGN, IHSM_CMD_DERIVE,
        IHSM_CMD_AEAD_SEAL, IHSM_CMD_AEAD_OPEN, IHSM_CMD_RANDOM, IHSM_CMD_STATS,
        IHSM_CMD_AUDIT_VERIFY, IHSM_CMD_AUDIT_READ, 0x99 };
    static uint8_t buf[IHSM_MAX_FRAME];
    ihsm_entry ents[IHSM_MAX_BATCH];
    uint32_t sid;
    uint8_t rnd[4096];
    int fd = dt_connect(&dd);
    double t0 = dt_now();

    assert_int_equal(dt_open_session(fd, "p", pin, &sid), IHSM_OK);
    for (unsigned round = 0; round < 100 && dt_now() - t0 < 4.0; round++) {
        ihsm_wr w;
        int seen[16] = { 0 };
        size_t got = 0, off = 0;

        RAND_bytes(rnd, sizeof(rnd));
        ihsm_wr_init(&w);
        ihsm_frame_begin(&w, IHSM_FRAME_REQUEST);
        for (unsigned i = 0; i < 16; i++) {
            uint8_t r = rnd[off++];
            uint16_t cmd = cmds[r % (sizeof(cmds) / sizeof(cmds[0]))];
            size_t plen = rnd[off++] % 48, m;
            m = ihsm_frame_entry_begin(&w, 100 + i, cmd, 0, (r & 0x80) ? sid : rnd[off]);
            /* sometimes a plausible handle first, then noise */
            if (plen >= 4 && (r & 0x40))
                ihsm_wr_u32(&w, 0x00010001u);
            ihsm_wr_raw(&w, rnd + off, plen);
            off += plen;
            ihsm_frame_entry_end(&w, m);
        }
        assert_int_equal(ihsm_frame_finish(&w), IHSM_OK);
        assert_int_equal(ihsm_transport_send(fd, w.p, w.len), IHSM_OK);
        ihsm_wr_free(&w);
        while (got < 16) {
            size_t n;
            assert_int_equal(dt_recv(fd, buf, ents, &n, 5000), IHSM_OK);
            for (size_t i = 0; i < n; i++) {
                assert_true(ents[i].id >= 100 && ents[i].id < 116);
                assert_int_equal(seen[ents[i].id - 100], 0);
                seen[ents[i].id - 100] = 1;
            }
            got += n;
        }
    }
    close(fd);
    assert_int_equal(kill(dd.pid, 0), 0);
    fd = dt_connect(&dd);
    assert_int_equal(dt_open_session(fd, "p", pin, &sid), IHSM_OK);
    assert_int_equal(dt_random(fd, sid, 32), IHSM_OK);
    close(fd);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_garbage_while_serving),
        cmocka_unit_test(test_batch_answers_each_entry),
        cmocka_unit_test(test_large_answers_split),
        cmocka_unit_test(test_inflight_limit),
        cmocka_unit_test(test_random_payloads),
        cmocka_unit_test(test_stats),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
