/*
 * Offload queue test fixture: a real ihsmd (tests/device's dt_* fixture) on
 * a fresh partition with its credential file, and the few device commands
 * the tests run through the queue under test.
 */
#ifndef IHSM_OFFTEST_H
#define IHSM_OFFTEST_H

#include <stddef.h>
#include <stdint.h>

#include "devtest.h"
#include "ihsm_offload.h"

struct ot {
    struct dt_daemon dd;
    char cred[400];
};

/* Start ihsmd, create partition "test", write its credential. 0 or -1. */
int ot_start(struct ot *t);
void ot_cleanup(struct ot *t);
/* SIGKILL and reap ihsmd (socket file removed), then start it again on the
 * same state directory and socket. */
void ot_kill9(struct ot *t);
int ot_restart_killed(struct ot *t);

ihsm_queue *ot_queue(const struct ot *t, unsigned timeout_ms, unsigned delay_us);

/* RANDOM n bytes; checks the answer holds exactly n. Returns the status
 * (IHSM_ERR_MALFORMED for a wrong answer). */
int ot_random(ihsm_queue *q, uint32_t n);
/* A RANDOM request for the ihsm_req_* interface (submitted). */
ihsm_req *ot_random_req(ihsm_queue *q, uint32_t n);

struct ot_key {
    uint32_t handle;
    uint8_t *blob; size_t blob_len;
    uint8_t *pub;  size_t pub_len;
};
int ot_keygen_p256(ihsm_queue *q, struct ot_key *k);
int ot_unmask(ihsm_queue *q, const struct ot_key *k, uint32_t *handle);
void ot_key_free(struct ot_key *k);
/* ECDSA over SHA-256(msg); the DER signature is malloc'd. */
int ot_sign(ihsm_queue *q, uint32_t handle, const uint8_t *msg, size_t len,
            uint8_t **sig, size_t *sig_len);

double ot_now(void);

#endif
