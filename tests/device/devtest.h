/*
 * Test fixture for ihsmd: runs the real daemon ($IHSM_BUILD_DIR/bin/ihsmd)
 * in a mktemp -d scratch directory and talks to it with the driver-shim
 * codec and transport, one request per frame unless a test builds its own.
 */
#ifndef IHSM_DEVTEST_H
#define IHSM_DEVTEST_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "ihsm_codec.h"
#include "ihsm_proto.h"

#define DT_TIMEOUT_MS 10000

struct dt_daemon {
    char scratch[256];
    char state[320];
    char sock[320];
    char log[320];
    const char *extra[16]; /* extra ihsmd arguments, NULL-terminated */
    const char *env[8];    /* extra NAME=VALUE for ihsmd, NULL-terminated */
    pid_t pid;
};

/* Make the scratch dir (first call) and start ihsmd; waits until the socket
 * answers. Returns 0, or -1 (the log is printed). exit(77) if ihsmd was not
 * built. */
int dt_start(struct dt_daemon *dd);
/* SIGTERM and wait: the exit status (0..255), 128+sig if killed, -1 if it
 * had to be killed after the timeout. */
int dt_stop(struct dt_daemon *dd);
int dt_restart(struct dt_daemon *dd);
void dt_cleanup(struct dt_daemon *dd); /* stop if running, rm -rf scratch */
void dt_print_log(const struct dt_daemon *dd);
/* 1 if the log contains s. */
int dt_log_contains(const struct dt_daemon *dd, const char *s);

int dt_connect(const struct dt_daemon *dd);

/* One request, one completion. Returns the completion's status (>= 0), or
 * -IHSM_ERR_DEVICE_GONE / -IHSM_ERR_TIMEOUT / -IHSM_ERR_MALFORMED when the
 * channel failed. The payload (if resp != NULL) is malloc'd into *resp. */
int dt_call(int fd, uint16_t cmd, uint32_t session, const void *payload,
            size_t len, uint8_t **resp, size_t *resp_len);
/* Receive one frame; returns its decoded entries (count in *n) pointing into
 * buf (cap IHSM_MAX_FRAME). IHSM_OK or a negative transport status. */
int dt_recv(int fd, uint8_t *buf, ihsm_entry *ents, size_t *n, int timeout_ms);

/* Protocol helpers (status returned). */
/* INIT_PARTITION: pin gets the user PIN; officer_pin (if not NULL) the
 * crypto officer's. */
int dt_init_partition(int fd, const char *name, const uint32_t *uids, uint32_t n,
                      uint8_t pin[IHSM_PIN_LEN]);
int dt_init_partition2(int fd, const char *name, const uint32_t *uids, uint32_t n,
                       uint8_t pin[IHSM_PIN_LEN], uint8_t officer_pin[IHSM_PIN_LEN]);
/* A user session; dt_open_session_role for IHSM_ROLE_OFFICER. */
int dt_open_session(int fd, const char *name, const uint8_t *pin, uint32_t *sid);
int dt_open_session_role(int fd, const char *name, const uint8_t *pin, uint32_t role,
                         uint32_t *sid);
int dt_random(int fd, uint32_t sid, uint32_t n);
struct dt_key {
    uint32_t handle;
    uint8_t *blob; size_t blob_len;
    uint8_t *pub;  size_t pub_len;
};
int dt_keygen(int fd, uint32_t sid, uint32_t type, uint32_t bits, uint32_t flags,
              const char *label, struct dt_key *k);
void dt_key_free(struct dt_key *k);
/* SIGN: ECDSA/PKCS1 over SHA-256 of msg (Ed25519: msg itself); the signature
 * is malloc'd. */
int dt_sign(int fd, uint32_t sid, uint32_t handle, uint32_t scheme,
            const uint8_t *msg, size_t len, uint8_t **sig, size_t *sig_len);
/* 1 if sig verifies under the SPKI DER with OpenSSL (default provider). */
int dt_verify(const uint8_t *spki, size_t spki_len, uint32_t scheme,
              const uint8_t *msg, size_t len, const uint8_t *sig, size_t sig_len);

/* Request payload builders. */
void dt_wr_str(ihsm_wr *w, const char *s);

double dt_now(void); /* monotonic seconds */
int dt_file_mode(const char *path); /* st_mode & 07777, or -1 */
int dt_exists(const char *path);
char *dt_read_text(const char *path); /* malloc'd, NUL-terminated; NULL if absent */

#endif
