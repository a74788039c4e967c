/*
 * The device's random generator: our library context's private DRBG with a
 * continuous health test in the spirit of SP 800-90B 4.4 / FIPS 140-2's
 * CRNGT: every 16-byte block is compared with the block generated just
 * before it; a repeat means the generator is stuck, and the device fails.
 */
#include <pthread.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "crypto_internal.h"

#define BLOCK 16
#define MAX_RANDOM 65536

static pthread_mutex_t health_lock = PTHREAD_MUTEX_INITIALIZER;
static uint8_t last_block[BLOCK];
static int have_last;

/* Generate whole blocks into buf (nblocks * BLOCK bytes) and test them. */
static int generate_blocks(uint8_t *buf, size_t nblocks)
{
    int repeat = 0;

    if (RAND_priv_bytes_ex(ihsm_crypto_libctx(), buf, nblocks * BLOCK, 0) <= 0) {
        ihsm_crypto_drop_errors("random");
        return IHSM_ERR_CRYPTO;
    }
    /* the lock orders the blocks of all threads into one stream, so each
     * block is compared with the one generated just before it */
    pthread_mutex_lock(&health_lock);
    /* testing the failed state: a stuck generator repeats its last block */
    if (have_last && ihsm_crypto_forced("RNG-CONTINUOUS"))
        memcpy(buf, last_block, BLOCK);
    for (size_t i = 0; i < nblocks; i++) {
        const uint8_t *b = buf + i * BLOCK;

        if (have_last && CRYPTO_memcmp(b, last_block, BLOCK) == 0)
            repeat = 1;
        memcpy(last_block, b, BLOCK);
        have_last = 1;
    }
    pthread_mutex_unlock(&health_lock);
    if (repeat) {
        OPENSSL_cleanse(buf, nblocks * BLOCK);
        ihsm_crypto_set_failed("continuous random number generator test");
        return IHSM_ERR_DEVICE_FAILED;
    }
    return IHSM_OK;
}

int ihsm_crypto_rand(uint8_t *buf, size_t n)
{
    uint8_t tail[BLOCK];
    size_t whole = n / BLOCK;
    int st = IHSM_OK;

    if (ihsm_crypto_failed())
        return IHSM_ERR_DEVICE_FAILED;
    if (whole != 0)
        st = generate_blocks(buf, whole);
    /* a short tail still comes from a whole tested block */
    if (st == IHSM_OK && n % BLOCK != 0) {
        st = generate_blocks(tail, 1);
        if (st == IHSM_OK)
            memcpy(buf + whole * BLOCK, tail, n % BLOCK);
        OPENSSL_cleanse(tail, sizeof(tail));
    }
    if (st != IHSM_OK)
        OPENSSL_cleanse(buf, n);
    return st;
}

int ihsm_random_bytes(uint8_t *buf, size_t n)
{
    return ihsm_crypto_rand(buf, n);
}

int ihsm_op_random(ihsm_rd *args, ihsm_wr *out)
{
    uint32_t n = ihsm_rd_u32(args);
    size_t mark, start;
    uint8_t *dst;
    int st;

    if (ihsm_crypto_failed())
        return IHSM_ERR_DEVICE_FAILED;
    if (ihsm_rd_end(args) != 0)
        return IHSM_ERR_MALFORMED;
    if (n < 1 || n > MAX_RANDOM)
        return IHSM_ERR_BAD_INPUT;
    start = out->len;
    mark = ihsm_wr_bytes_begin(out);
    if ((dst = ihsm_wr_reserve(out, n)) == NULL)
        return ihsm_crypto_wr_status(out);
    st = ihsm_crypto_rand(dst, n);
    ihsm_crypto_debug("random %u bytes: %s", n, ihsm_status_name(st));
    if (st != IHSM_OK) {
        out->len = start;
        return st;
    }
    ihsm_wr_bytes_end(out, mark);
    return ihsm_crypto_wr_status(out);
}
