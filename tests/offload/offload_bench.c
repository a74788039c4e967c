/*
 * offload_bench: what the queue does under each way of calling it, against
 * a running ihsmd ($IHSM_SOCKET, $IHSM_CREDENTIAL). Not a test: it prints.
 *
 *   offload_bench [--op random|sign] [--seconds S] MODE N
 *     inflight N   one thread keeps N requests in flight (ihsm_req_* + poll)
 *     threads N    N threads making blocking ihsm_queue_call()s
 *     async N      N OpenSSL ASYNC jobs on one thread, resumed on wait fds
 *
 * Prints requests per frame and wall-clock microseconds per request.
 */
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/async.h>
#include <openssl/rand.h>

#include "offtest.h"

static ihsm_queue *Q;
static int op_sign;
static uint32_t handle;
static double end_at;
static atomic_long ops, errors;

static void fill(ihsm_wr *w)
{
    if (op_sign) {
        uint8_t md[32];

        RAND_bytes(md, sizeof(md));
        ihsm_wr_u32(w, handle);
        ihsm_wr_u32(w, IHSM_SIG_ECDSA);
        ihsm_wr_u32(w, IHSM_MD_SHA256);
        ihsm_wr_u32(w, IHSM_MD_NONE);
        ihsm_wr_u32(w, 0);
        ihsm_wr_bytes(w, md, sizeof(md));
    } else {
        ihsm_wr_u32(w, 32);
    }
}

static int one_call(void)
{
    ihsm_result res;
    ihsm_wr w;
    int st;

    ihsm_wr_init(&w);
    fill(&w);
    st = ihsm_queue_call(Q, op_sign ? IHSM_CMD_SIGN : IHSM_CMD_RANDOM, w.p, w.len, &res);
    ihsm_result_clear(&res);
    ihsm_wr_free(&w);
    atomic_fetch_add(st == IHSM_OK ? &ops : &errors, 1);
    return st;
}

static ihsm_req *submit(void)
{
    ihsm_req *r = ihsm_req_new(Q, op_sign ? IHSM_CMD_SIGN : IHSM_CMD_RANDOM);

    fill(ihsm_req_payload(r));
    if (ihsm_req_submit(r) != IHSM_OK) {
        ihsm_req_free(r);
        return NULL;
    }
    return r;
}

static void run_inflight(int n)
{
    ihsm_req **r = calloc((size_t)n, sizeof(*r));
    int live = n;

    for (int i = 0; i < n; i++)
        r[i] = submit();
    while (live > 0) {
        ihsm_queue_poll(Q, 100);
        for (int i = 0; i < n; i++) {
            ihsm_result res;

            if (r[i] == NULL || !ihsm_req_done(r[i]))
                continue;
            atomic_fetch_add(ihsm_req_wait(r[i], &res) == IHSM_OK ? &ops : &errors, 1);
            ihsm_result_clear(&res);
            ihsm_req_free(r[i]);
            r[i] = ot_now() < end_at ? submit() : NULL;
            live -= r[i] == NULL;
        }
    }
    free(r);
}

static void *thread_main(void *arg)
{
    while (ot_now() < end_at)
        one_call();
    return NULL;
}

static void run_threads(int n)
{
    pthread_t *th = calloc((size_t)n, sizeof(*th));

    for (int i = 0; i < n; i++)
        pthread_create(&th[i], NULL, thread_main, NULL);
    for (int i = 0; i < n; i++)
        pthread_join(th[i], NULL);
    free(th);
}

static int job_main(void *arg)
{
    while (ot_now() < end_at)
        one_call();
    return 0;
}

static void run_async(int n)
{
    ASYNC_JOB **job = calloc((size_t)n, sizeof(*job));
    ASYNC_WAIT_CTX **ctx = calloc((size_t)n, sizeof(*ctx));
    struct pollfd *pfd = calloc((size_t)n, sizeof(*pfd));
    int *who = calloc((size_t)n, sizeof(*who)), left = 0, ret;

    ASYNC_init_thread((size_t)n, (size_t)n);
    for (int i = 0; i < n; i++) {
        ctx[i] = ASYNC_WAIT_CTX_new();
        if (ASYNC_start_job(&job[i], ctx[i], &ret, job_main, NULL, 0) == ASYNC_PAUSE)
            left++;
        else
            job[i] = NULL;
    }
    while (left > 0) {
        int m = 0;

        for (int i = 0; i < n; i++) {
            size_t k = 1;

            if (job[i] == NULL)
                continue;
            ASYNC_WAIT_CTX_get_all_fds(ctx[i], &pfd[m].fd, &k);
            pfd[m].events = POLLIN;
            who[m++] = i;
        }
        if (poll(pfd, (nfds_t)m, 5000) <= 0) {
            fprintf(stderr, "no job resumed for 5 s\n");
            break;
        }
        for (int k = 0; k < m; k++) {
            int i = who[k];

            if ((pfd[k].revents & POLLIN)
                && ASYNC_start_job(&job[i], ctx[i], &ret, job_main, NULL, 0) == ASYNC_FINISH) {
                job[i] = NULL;
                left--;
            }
        }
    }
    for (int i = 0; i < n; i++)
        ASYNC_WAIT_CTX_free(ctx[i]);
    ASYNC_cleanup_thread();
    free(job);
    free(ctx);
    free(pfd);
    free(who);
}

int main(int argc, char **argv)
{
    double seconds = 2, t0, wall;
    ihsm_queue_stats a, b;
    struct ot_key k;
    const char *mode;
    int n, i = 1;

    for (; i + 1 < argc && argv[i][0] == '-'; i += 2) {
        if (strcmp(argv[i], "--op") == 0)
            op_sign = strcmp(argv[i + 1], "sign") == 0;
        else if (strcmp(argv[i], "--seconds") == 0)
            seconds = atof(argv[i + 1]);
    }
    if (argc - i != 2) {
        fprintf(stderr, "usage: offload_bench [--op random|sign] [--seconds S] "
                        "inflight|threads|async N\n");
        return 2;
    }
    mode = argv[i];
    n = atoi(argv[i + 1]);
    if (ihsm_queue_new(NULL, &Q) != IHSM_OK || ihsm_queue_connect(Q) != IHSM_OK) {
        fprintf(stderr, "cannot connect: %s\n", Q != NULL ? ihsm_queue_last_error(Q) : "?");
        return 1;
    }
    if (op_sign) {
        if (ot_keygen_p256(Q, &k) != IHSM_OK)
            return 1;
        handle = k.handle;
        ot_key_free(&k);
    }
    ihsm_queue_get_stats(Q, &a);
    t0 = ot_now();
    end_at = t0 + seconds;
    if (strcmp(mode, "inflight") == 0)
        run_inflight(n);
    else if (strcmp(mode, "threads") == 0)
        run_threads(n);
    else
        run_async(n);
    wall = ot_now() - t0;
    ihsm_queue_get_stats(Q, &b);
    printf("%s %s %d: %ld ops in %.2f s, %.2f us/op, %.2f requests/frame (largest %llu), "
           "%ld errors\n", op_sign ? "sign" : "random", mode, n, atomic_load(&ops), wall,
           wall * 1e6 / (double)atomic_load(&ops),
           (double)(b.requests - a.requests) / (double)(b.frames_sent - a.frames_sent),
           (unsigned long long)b.largest_batch, atomic_load(&errors));
    ihsm_queue_free(Q);
    return 0;
}
