/*
 * Partition credential files (0600), written by `ihsmctl init`:
 *
 *   # ihsm partition credential: keep secret
 *   partition = web
 *   pin = 64 hex digits
 *   role = user            (or officer; absent: user)
 *
 * `ihsmctl init` writes two: the user credential (TLS servers: sign,
 * derive, AEAD) and the crypto-officer credential (import, delete,
 * zeroize), each with its own PIN.
 */
#ifndef IHSM_CREDENTIAL_H
#define IHSM_CREDENTIAL_H

#include <stddef.h>
#include <stdint.h>
#include "ihsm_proto.h"

typedef struct {
    char partition[IHSM_MAX_PARTITION_NAME + 1];
    uint8_t pin[IHSM_PIN_LEN];
    uint32_t role; /* IHSM_ROLE_USER or IHSM_ROLE_OFFICER */
} ihsm_credential;

/* Path: explicit, else $IHSM_CREDENTIAL, else NULL. */
const char *ihsm_credential_path(const char *explicit_path);
/* Returns IHSM_OK or IHSM_ERR_CREDENTIAL_FILE; on error err (if non-NULL,
 * errlen bytes) gets a sentence naming the file and what is wrong with it. */
int ihsm_credential_load(const char *path, ihsm_credential *c, char *err, size_t errlen);
/* Writes with mode 0600 (O_EXCL unless overwrite). Returns 0 or -1/errno. */
int ihsm_credential_save(const char *path, const ihsm_credential *c, int overwrite);
void ihsm_credential_clear(ihsm_credential *c);

/* The officer credential's path: explicit, else $IHSM_OFFICER_CREDENTIAL,
 * else NULL. */
const char *ihsm_credential_officer_path(const char *explicit_path);
/* "user", "officer" (the file's spelling), or "unknown". */
const char *ihsm_credential_role_name(uint32_t role);

#endif
