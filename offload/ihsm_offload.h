/*
 * ihsm offload engine: the batched submission queue between a crypto caller
 * (the provider, ihsmctl, the load tools) and the device.
 *
 * Policy (docs/architecture.md, DESIGN.md): with nothing in flight a request
 * leaves at once; while requests are in flight new ones coalesce and leave
 * together with the next io_uring_enter (the one that reaps completions), when
 * the batch is full, or after delay_us. A blocked caller drives the ring
 * itself while waiting (reaping others' completions); a caller inside an
 * OpenSSL ASYNC job pauses the job with a wait fd and is resumed when its
 * completion arrives.
 *
 * Thread-safe, fork-safe (a child re-initialises lazily on first use),
 * reconnects after a device restart (requests in flight fail with
 * IHSM_ERR_DEVICE_GONE, later ones succeed). Every wait has a timeout.
 */
#ifndef IHSM_OFFLOAD_H
#define IHSM_OFFLOAD_H

#include <stddef.h>
#include <stdint.h>
#include "ihsm_codec.h"
#include "ihsm_proto.h"

typedef struct ihsm_queue ihsm_queue;
typedef struct ihsm_req ihsm_req;

typedef struct {
    const char *socket_path;     /* NULL: $IHSM_SOCKET, else IHSM_DEFAULT_SOCKET */
    const char *credential_path; /* NULL: $IHSM_CREDENTIAL; none at all: no session */
    unsigned batch_max;          /* requests per frame; 0: 64; capped at IHSM_MAX_BATCH */
    unsigned delay_us;           /* longest a request waits to coalesce; 0: default 50 */
    unsigned timeout_ms;         /* per request; 0: 10000 */
} ihsm_queue_config;

typedef struct {
    uint64_t requests;        /* submitted */
    uint64_t completions;     /* received */
    uint64_t frames_sent;
    uint64_t frames_received;
    uint64_t largest_batch;   /* most requests in one sent frame */
    uint64_t inflight;        /* now */
    uint64_t reconnects;
    uint64_t timeouts;
    uint64_t device_gone;     /* requests failed by a lost connection */
} ihsm_queue_stats;

/* Result of one request. data is owned by the result. */
typedef struct {
    int status;        /* IHSM_OK or enum ihsm_status */
    uint8_t *data;
    size_t len;
} ihsm_result;

/* Create a queue. Connects and opens the session lazily on first use, so it
 * is cheap in a process that forks before using it. Returns IHSM_OK or an
 * error status (bad config, unreadable credential file: IHSM_ERR_CREDENTIAL_FILE). */
int ihsm_queue_new(const ihsm_queue_config *cfg, ihsm_queue **out);
void ihsm_queue_free(ihsm_queue *q);
/* Connect and open the session now; returns the status (for early, clear
 * errors: "ihsmd is not running at PATH", "wrong credential"). */
int ihsm_queue_connect(ihsm_queue *q);
void ihsm_queue_get_stats(ihsm_queue *q, ihsm_queue_stats *st);
/* Human text for the last connection failure ("connect(/run/ihsm/ihsmd.sock): No such file"). */
const char *ihsm_queue_last_error(ihsm_queue *q);

/* One call: submit cmd with payload and wait (blocking, or pausing the
 * current OpenSSL ASYNC job). Returns res->status as well. Release the
 * result with ihsm_result_clear (it cleanses: results may hold secrets). */
int ihsm_queue_call(ihsm_queue *q, uint16_t cmd, const void *payload, size_t len,
                    ihsm_result *res);
void ihsm_result_clear(ihsm_result *res);

/* ---- many requests in flight from one thread (ihsmctl bench, tools) ---- */
ihsm_req *ihsm_req_new(ihsm_queue *q, uint16_t cmd);
/* The request's payload writer: fill it before submit. */
ihsm_wr *ihsm_req_payload(ihsm_req *r);
/* Queue the request (may send at once). Returns IHSM_OK or an error. */
int ihsm_req_submit(ihsm_req *r);
/* Nonzero once the completion (or a failure) has arrived. */
int ihsm_req_done(const ihsm_req *r);
/* Drive the queue: flush what is pending and reap completions, waiting up
 * to wait_ms for at least one (0: do not wait). Returns the number of
 * requests that completed in this call, or a negative status. */
int ihsm_queue_poll(ihsm_queue *q, int wait_ms);
/* Wait for this request (blocking or ASYNC pause) and move its result out. */
int ihsm_req_wait(ihsm_req *r, ihsm_result *res);
/* Free a request; a request still in flight is abandoned safely. */
void ihsm_req_free(ihsm_req *r);

/* Set by IHSM_DEBUG=1 (or the provider's debug parameter): one line per
 * notable event on stderr. */
extern int ihsm_debug;
void ihsm_debug_init(void); /* reads IHSM_DEBUG */
void ihsm_dbg(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
