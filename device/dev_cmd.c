/*
 * Command dispatch: one table says, per command, whether it needs a session
 * and whether it is refused in the failed state, and which handler runs it.
 *
 * In the failed state every command that makes or uses a key or random
 * bytes answers IHSM_ERR_DEVICE_FAILED; INFO, STATS, SELF_TEST, sessions,
 * listing, release, delete and ZEROIZE still work so an operator can see
 * what happened and destroy the keys of a device that can no longer be
 * trusted.
 */
#include "dev.h"

#include <string.h>

struct cmd_def {
    dev_cmd_fn fn;
    uint8_t session; /* needs an open session of this connection */
    uint8_t crypto;  /* refused in the failed state */
};

static const struct cmd_def cmds[] = {
    [IHSM_CMD_INFO]           = { dev_cmd_info, 0, 0 },
    [IHSM_CMD_OPEN_SESSION]   = { dev_cmd_open_session, 0, 0 },
    [IHSM_CMD_CLOSE_SESSION]  = { dev_cmd_close_session, 1, 0 },
    [IHSM_CMD_INIT_PARTITION] = { dev_cmd_init_partition, 0, 1 },
    [IHSM_CMD_KEY_GENERATE]   = { dev_cmd_key_generate, 1, 1 },
    [IHSM_CMD_KEY_IMPORT]     = { dev_cmd_key_import, 1, 1 },
    [IHSM_CMD_GET_IMPORT_KEY] = { dev_cmd_get_import_key, 1, 1 },
    [IHSM_CMD_KEY_UNMASK]     = { dev_cmd_key_unmask, 1, 1 },
    [IHSM_CMD_KEY_MASK]       = { dev_cmd_key_mask, 1, 1 },
    [IHSM_CMD_KEY_DELETE]     = { dev_cmd_key_delete, 1, 0 },
    [IHSM_CMD_KEY_PUBLIC]     = { dev_cmd_key_public, 1, 1 },
    [IHSM_CMD_KEY_FIND]       = { dev_cmd_key_find, 1, 1 },
    [IHSM_CMD_KEY_LIST]       = { dev_cmd_key_list, 1, 0 },
    [IHSM_CMD_KEY_RELEASE]    = { dev_cmd_key_release, 1, 0 },
    [IHSM_CMD_KEY_LOAD_SESSION] = { dev_cmd_key_load_session, 1, 1 },
    [IHSM_CMD_SIGN]           = { dev_cmd_sign, 1, 1 },
    [IHSM_CMD_DERIVE]         = { dev_cmd_derive, 1, 1 },
    [IHSM_CMD_AEAD_SEAL]      = { dev_cmd_aead_seal, 1, 1 },
    [IHSM_CMD_AEAD_OPEN]      = { dev_cmd_aead_open, 1, 1 },
    [IHSM_CMD_RANDOM]         = { dev_cmd_random, 1, 1 },
    [IHSM_CMD_SELF_TEST]      = { dev_cmd_self_test, 0, 0 },
    [IHSM_CMD_STATS]          = { dev_cmd_stats, 0, 0 },
    [IHSM_CMD_ZEROIZE]        = { dev_cmd_zeroize, 1, 0 },
};

int dev_cmd_execute(struct ihsmd *d, struct dev_conn *conn, const ihsm_entry *e,
                    ihsm_wr *out)
{
    const struct cmd_def *def = NULL;
    struct dev_ctx c;
    ihsm_rd rd;
    int st;

    atomic_fetch_add_explicit(&d->stats.requests, 1, memory_order_relaxed);
    if (e->cmd < sizeof(cmds) / sizeof(cmds[0]) && cmds[e->cmd].fn != NULL)
        def = &cmds[e->cmd];
    if (def == NULL) {
        dev_debug("request %llu: unknown command 0x%x", (unsigned long long)e->id, e->cmd);
        return IHSM_ERR_UNKNOWN_COMMAND;
    }
    if (atomic_load(&d->stopping) && e->cmd == IHSM_CMD_OPEN_SESSION)
        return IHSM_ERR_SHUTTING_DOWN;
    if (def->crypto && dev_failed(d))
        return IHSM_ERR_DEVICE_FAILED;

    memset(&c, 0, sizeof(c));
    c.d = d;
    c.conn = conn;
    c.e = e;
    c.out = out;
    ihsm_rd_init(&rd, e->payload, e->len);
    c.rd = &rd;
    if (def->session) {
        c.sess = dev_session_get(d, conn, e->session);
        if (c.sess == NULL) {
            dev_debug("request %llu (%s): session %08x is not open on this connection",
                      (unsigned long long)e->id, ihsm_cmd_name(e->cmd), e->session);
            return IHSM_ERR_NO_SESSION;
        }
    }
    st = def->fn(&c);
    if (st == IHSM_OK && out->err)
        st = IHSM_ERR_LIMIT_FRAME;
    if (st != IHSM_OK) {
        ihsm_wr_reset(out); /* an error completion carries no payload */
        dev_debug("request %llu (%s) from pid %ld: %s", (unsigned long long)e->id,
                  ihsm_cmd_name(e->cmd), (long)conn->pid, ihsm_status_name(st));
    }
    dev_session_put(c.sess);
    return st;
}
