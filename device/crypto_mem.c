/*
 * libcrypto's ordinary heap, wiped on free.
 *
 * Private keys live in OpenSSL's secure heap, which is cleansed on free. But
 * OpenSSL 3.0 also puts copies of key material in ordinary malloc memory on
 * its way and releases them with a plain OPENSSL_free: the PKCS#8 DER that
 * ASN1_item_i2d_bio writes for the PrivateKeyInfo encoder (every mask), the
 * DER the decoders read into a BUF_MEM (every unmask and import), the
 * ECPrivateKey octet string, BIGNUM temporaries of BN_CTXs that are not
 * secure. Freed, those bytes stay in the allocator's free lists until the
 * chunk is reused: a scan of ihsmd's memory (tests/device/zeroize_memory.sh)
 * found the private scalar of a deleted P-256 key 12 times and the private
 * exponent of a deleted RSA-2048 key whole, big-endian, in freed chunks of
 * the workers' malloc arenas.
 *
 * Rather than chase each call site inside OpenSSL, every block libcrypto
 * frees is zeroed first (malloc_usable_size gives its real size), and a
 * realloc that moves a block wipes the old one. The cost is a memset per
 * free: measured with `ihsmctl bench --op sign --inflight 64` on a 2-vCPU
 * VM, ECDSA P-256 went from ~40.9k to ~39.1k signatures/s (about 4%), RSA-2048
 * and RSA-3072 generation did not change measurably.
 *
 * CRYPTO_set_mem_functions works only before libcrypto's first allocation,
 * so ihsm_crypto_init calls this first thing, before OPENSSL_init_crypto.
 */
#include <malloc.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "crypto_internal.h"

static int wiping;

static void wipe_block(void *p)
{
    /* explicit_bzero: a memset the compiler may not drop before free */
    explicit_bzero(p, malloc_usable_size(p));
}

static void *wipe_malloc(size_t n, const char *file, int line)
{
    (void)file;
    (void)line;
    return malloc(n);
}

static void wipe_free(void *p, const char *file, int line)
{
    (void)file;
    (void)line;
    if (p == NULL)
        return;
    wipe_block(p);
    free(p);
}

static void *wipe_realloc(void *p, size_t n, const char *file, int line)
{
    size_t old;
    void *q;

    if (p == NULL)
        return wipe_malloc(n, file, line);
    if (n == 0) {
        wipe_free(p, file, line);
        return NULL;
    }
    old = malloc_usable_size(p);
    if (n <= old)
        return p; /* fits in place: nothing is left behind */
    /* never realloc(): a block it moves would be freed unwiped */
    if ((q = malloc(n)) == NULL)
        return NULL;
    memcpy(q, p, old);
    wipe_block(p);
    free(p);
    return q;
}

int ihsm_crypto_mem_init(void)
{
    if (wiping)
        return 1;
    wiping = CRYPTO_set_mem_functions(wipe_malloc, wipe_realloc, wipe_free);
    return wiping;
}

int ihsm_crypto_mem_wiping(void)
{
    return wiping;
}
