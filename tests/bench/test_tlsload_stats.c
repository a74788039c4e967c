/*
 * The latency histogram: quantiles within the promised 1.6% of the exact
 * order statistic, merging, and the edges (empty, one sample, huge values).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "tlsload.h"

static struct tl_hist h1, h2;

static void assert_close(uint64_t got, uint64_t want)
{
    double err = got > want ? (double)(got - want) : (double)(want - got);

    if (err > 0.016 * (double)want + 1)
        fail_msg("quantile %llu is not within 1.6%% of %llu", (unsigned long long)got,
                 (unsigned long long)want);
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

    return x < y ? -1 : x > y;
}

static void test_quantiles_match_sorted_samples(void **state)
{
    enum { N = 20000 };
    static uint64_t v[N];
    const double qs[] = {0.01, 0.5, 0.9, 0.99, 0.999};
    uint64_t x = 88172645463325252ULL;

    (void)state;
    memset(&h1, 0, sizeof(h1));
    for (int i = 0; i < N; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17; /* xorshift: spread over 1 us..16 ms */
        v[i] = 1000 + x % 16000000;
        tl_hist_add(&h1, v[i]);
    }
    qsort(v, N, sizeof(v[0]), cmp_u64);
    for (size_t i = 0; i < sizeof(qs) / sizeof(qs[0]); i++)
        assert_close(tl_hist_quantile(&h1, qs[i]), v[(size_t)(qs[i] * N + 0.999999) - 1]);
    assert_int_equal(h1.count, N);
    assert_int_equal(h1.min_ns, v[0]);
    assert_int_equal(h1.max_ns, v[N - 1]);
    assert_int_equal(tl_hist_quantile(&h1, 1.0), v[N - 1]);
}

static void test_small_values_exact(void **state)
{
    (void)state;
    memset(&h1, 0, sizeof(h1));
    for (uint64_t i = 1; i <= 100; i++)
        tl_hist_add(&h1, i);
    assert_int_equal(tl_hist_quantile(&h1, 0.5), 50);
    assert_int_equal(tl_hist_quantile(&h1, 0.99), 99);
}

static void test_empty_and_single(void **state)
{
    (void)state;
    memset(&h1, 0, sizeof(h1));
    assert_int_equal(tl_hist_quantile(&h1, 0.5), 0);
    tl_hist_add(&h1, 123456789);
    assert_int_equal(tl_hist_quantile(&h1, 0.5), 123456789);
    assert_int_equal(tl_hist_quantile(&h1, 0.99), 123456789);
}

static void test_huge_values_clamp(void **state)
{
    (void)state;
    memset(&h1, 0, sizeof(h1));
    tl_hist_add(&h1, UINT64_MAX / 2);
    tl_hist_add(&h1, 1ULL << 50);
    assert_int_equal(h1.count, 2);
    assert_true(tl_hist_quantile(&h1, 0.5) > 0);
}

static void test_merge(void **state)
{
    struct tl_stats a, b;

    (void)state;
    memset(&h1, 0, sizeof(h1));
    memset(&h2, 0, sizeof(h2));
    for (uint64_t i = 0; i < 1000; i++)
        tl_hist_add(i % 2 ? &h1 : &h2, 1000000 + i * 1000);
    tl_hist_merge(&h1, &h2);
    assert_int_equal(h1.count, 1000);
    assert_int_equal(h1.min_ns, 1000000);
    assert_int_equal(h1.max_ns, 1000000 + 999 * 1000);
    assert_close(tl_hist_quantile(&h1, 0.5), 1000000 + 499 * 1000);

    memset(&a, 0, sizeof(a));
    memset(&b, 0, sizeof(b));
    a.ok = 3;
    a.errors[TL_ERR_HTTP] = 2;
    b.ok = 4;
    b.errors[TL_ERR_HTTP] = 1;
    b.errors[TL_ERR_CONNECT] = 5;
    tl_stats_merge(&a, &b);
    assert_int_equal(a.ok, 7);
    assert_int_equal(tl_stats_errors(&a), 8);
    assert_string_equal(tl_err_names[TL_ERR_HANDSHAKE], "handshake");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_quantiles_match_sorted_samples),
        cmocka_unit_test(test_small_values_exact),
        cmocka_unit_test(test_empty_and_single),
        cmocka_unit_test(test_huge_values_clamp),
        cmocka_unit_test(test_merge),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
