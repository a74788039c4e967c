/* Names and sentences for protocol numbers: what users and logs see. */
#include "ihsm_proto.h"

#include <stddef.h>

struct status_text {
    int status;
    const char *name;
    const char *text;
};

static const struct status_text status_texts[] = {
    { IHSM_OK, "IHSM_OK", "success" },
    { IHSM_ERR_MALFORMED, "IHSM_ERR_MALFORMED",
      "the device could not decode the request (malformed frame or payload): client and ihsmd versions may differ" },
    { IHSM_ERR_VERSION, "IHSM_ERR_VERSION",
      "the device does not speak this protocol version: use matching ihsm and ihsmd builds" },
    { IHSM_ERR_UNKNOWN_COMMAND, "IHSM_ERR_UNKNOWN_COMMAND",
      "the device does not know this command: upgrade ihsmd" },
    { IHSM_ERR_NO_SESSION, "IHSM_ERR_NO_SESSION",
      "no open session: give a partition credential (--credential, IHSM_CREDENTIAL or ihsm-credential)" },
    { IHSM_ERR_AUTH, "IHSM_ERR_AUTH",
      "wrong partition credential: check the credential file written by `ihsmctl init`" },
    { IHSM_ERR_LOCKED, "IHSM_ERR_LOCKED",
      "partition locked after repeated wrong PINs: wait and retry with the right credential" },
    { IHSM_ERR_PERMISSION, "IHSM_ERR_PERMISSION",
      "permission denied: this uid is not allowed on the partition (ihsmctl init --allow-uid), or the "
      "session's role may not do this (sign, derive, AEAD and unmask need the user credential; import, "
      "delete and zeroize the crypto-officer credential, IHSM_OFFICER_CREDENTIAL)" },
    { IHSM_ERR_NO_PARTITION, "IHSM_ERR_NO_PARTITION",
      "no such partition: create it with `ihsmctl init --partition NAME`" },
    { IHSM_ERR_EXISTS, "IHSM_ERR_EXISTS", "the name is already taken: choose another or delete the old one" },
    { IHSM_ERR_BAD_HANDLE, "IHSM_ERR_BAD_HANDLE",
      "the key is not loaded in the device (was ihsmd restarted?): load it again from its key file" },
    { IHSM_ERR_NOT_FOUND, "IHSM_ERR_NOT_FOUND", "no key of that name in the partition: see `ihsmctl list`" },
    { IHSM_ERR_USAGE, "IHSM_ERR_USAGE", "the key's usage flags do not allow this operation" },
    { IHSM_ERR_UNSUPPORTED, "IHSM_ERR_UNSUPPORTED", "algorithm or parameter not supported by the device" },
    { IHSM_ERR_BAD_BLOB, "IHSM_ERR_BAD_BLOB",
      "masked key is corrupt or belongs to another partition or device: use the key file made for this partition" },
    { IHSM_ERR_BAD_INPUT, "IHSM_ERR_BAD_INPUT", "invalid input for this operation (bad length, point or parameter)" },
    { IHSM_ERR_LIMIT_FRAME, "IHSM_ERR_LIMIT_FRAME", "request too large for one frame (limit 128 KiB, 256 entries)" },
    { IHSM_ERR_LIMIT_KEYS, "IHSM_ERR_LIMIT_KEYS", "the device holds its maximum number of keys: release or delete some" },
    { IHSM_ERR_LIMIT_SESSIONS, "IHSM_ERR_LIMIT_SESSIONS", "the device has its maximum number of sessions open" },
    { IHSM_ERR_LIMIT_INFLIGHT, "IHSM_ERR_LIMIT_INFLIGHT", "too many requests in flight on this connection" },
    { IHSM_ERR_DEVICE_FAILED, "IHSM_ERR_DEVICE_FAILED",
      "the device failed its self-tests and refuses crypto: see ihsmd's log and restart it" },
    { IHSM_ERR_CRYPTO, "IHSM_ERR_CRYPTO", "the device's crypto operation failed" },
    { IHSM_ERR_AEAD_TAG, "IHSM_ERR_AEAD_TAG", "authentication failed: ciphertext, tag, IV or AAD altered" },
    { IHSM_ERR_SHUTTING_DOWN, "IHSM_ERR_SHUTTING_DOWN", "ihsmd is shutting down: retry once it is back" },
    { IHSM_ERR_STORAGE, "IHSM_ERR_STORAGE", "the device could not write its state directory: check disk space and permissions" },
    { IHSM_ERR_DEVICE_GONE, "IHSM_ERR_DEVICE_GONE",
      "the connection to ihsmd was lost (device restarted?): the request did not complete, retry it" },
    { IHSM_ERR_TIMEOUT, "IHSM_ERR_TIMEOUT", "ihsmd did not answer in time: check that it is running and not overloaded" },
    { IHSM_ERR_CONNECT, "IHSM_ERR_CONNECT",
      "cannot reach ihsmd: start it (ihsmd --state-dir DIR --socket PATH) or fix the socket path" },
    { IHSM_ERR_NOMEM, "IHSM_ERR_NOMEM", "out of memory" },
    { IHSM_ERR_CREDENTIAL_FILE, "IHSM_ERR_CREDENTIAL_FILE",
      "the partition credential file is missing or malformed: point to the file `ihsmctl init` wrote" },
};

static const struct status_text *find_status(int status)
{
    for (size_t i = 0; i < sizeof(status_texts) / sizeof(status_texts[0]); i++)
        if (status_texts[i].status == status)
            return &status_texts[i];
    return NULL;
}

const char *ihsm_status_str(int status)
{
    const struct status_text *t = find_status(status);
    return t != NULL ? t->text : "unknown device status";
}

const char *ihsm_status_name(int status)
{
    const struct status_text *t = find_status(status);
    return t != NULL ? t->name : "IHSM_ERR_UNKNOWN";
}

const char *ihsm_cmd_name(int cmd)
{
    switch (cmd) {
    case IHSM_CMD_INFO: return "INFO";
    case IHSM_CMD_OPEN_SESSION: return "OPEN_SESSION";
    case IHSM_CMD_CLOSE_SESSION: return "CLOSE_SESSION";
    case IHSM_CMD_INIT_PARTITION: return "INIT_PARTITION";
    case IHSM_CMD_KEY_GENERATE: return "KEY_GENERATE";
    case IHSM_CMD_KEY_IMPORT: return "KEY_IMPORT";
    case IHSM_CMD_GET_IMPORT_KEY: return "GET_IMPORT_KEY";
    case IHSM_CMD_KEY_UNMASK: return "KEY_UNMASK";
    case IHSM_CMD_KEY_MASK: return "KEY_MASK";
    case IHSM_CMD_KEY_DELETE: return "KEY_DELETE";
    case IHSM_CMD_KEY_PUBLIC: return "KEY_PUBLIC";
    case IHSM_CMD_KEY_FIND: return "KEY_FIND";
    case IHSM_CMD_KEY_LIST: return "KEY_LIST";
    case IHSM_CMD_KEY_RELEASE: return "KEY_RELEASE";
    case IHSM_CMD_KEY_LOAD_SESSION: return "KEY_LOAD_SESSION";
    case IHSM_CMD_SIGN: return "SIGN";
    case IHSM_CMD_DERIVE: return "DERIVE";
    case IHSM_CMD_AEAD_SEAL: return "AEAD_SEAL";
    case IHSM_CMD_AEAD_OPEN: return "AEAD_OPEN";
    case IHSM_CMD_RANDOM: return "RANDOM";
    case IHSM_CMD_SELF_TEST: return "SELF_TEST";
    case IHSM_CMD_STATS: return "STATS";
    case IHSM_CMD_ZEROIZE: return "ZEROIZE";
    case IHSM_CMD_AUDIT_VERIFY: return "AUDIT_VERIFY";
    case IHSM_CMD_AUDIT_READ: return "AUDIT_READ";
    default: return "UNKNOWN";
    }
}
