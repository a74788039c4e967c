/*
 * Command dispatch: one table says, per command, whether it needs a session,
 * which session roles may run it, whether it is refused in the failed
 * state, and which handler runs it.
 *
 * Roles (docs/protocol.md): the user role (TLS servers) signs, derives,
 * seals and opens, and loads keys (unmask, find, session keys); the crypto
 * officer imports, deletes and zeroizes, and never touches a key's private
 * operations or unmasks one. Both generate and list keys. A refusal is
 * IHSM_ERR_PERMISSION, logged and audited.
 *
 * In the failed state every command that makes or uses a key or random
 * bytes answers IHSM_ERR_DEVICE_FAILED; INFO, STATS, SELF_TEST, sessions,
 * listing, release, delete and ZEROIZE still work so an operator can see
 * what happened and destroy the keys of a device that can no longer be
 * trusted.
 */
#include "dev.h"

#include <stdio.h>
#include <string.h>

#define NO_SESSION 0 /* runs without one */
#define SESSION    1 /* needs an open session of this connection */
#define OPTIONAL   2 /* the handler checks: a session if given, else the uid */

#define U (1u << IHSM_ROLE_USER)
#define O (1u << IHSM_ROLE_OFFICER)

struct cmd_def {
    dev_cmd_fn fn;
    uint8_t session; /* NO_SESSION, SESSION, OPTIONAL */
    uint8_t crypto;  /* refused in the failed state */
    uint8_t roles;   /* session roles allowed (U, O) */
};

static const struct cmd_def cmds[] = {
    [IHSM_CMD_INFO]           = { dev_cmd_info, NO_SESSION, 0, 0 },
    [IHSM_CMD_OPEN_SESSION]   = { dev_cmd_open_session, NO_SESSION, 0, 0 },
    [IHSM_CMD_CLOSE_SESSION]  = { dev_cmd_close_session, SESSION, 0, U | O },
    [IHSM_CMD_INIT_PARTITION] = { dev_cmd_init_partition, NO_SESSION, 1, 0 },
    [IHSM_CMD_KEY_GENERATE]   = { dev_cmd_key_generate, SESSION, 1, U | O },
    [IHSM_CMD_KEY_IMPORT]     = { dev_cmd_key_import, SESSION, 1, O },
    [IHSM_CMD_GET_IMPORT_KEY] = { dev_cmd_get_import_key, SESSION, 1, U | O },
    [IHSM_CMD_KEY_UNMASK]     = { dev_cmd_key_unmask, SESSION, 1, U },
    [IHSM_CMD_KEY_MASK]       = { dev_cmd_key_mask, SESSION, 1, U | O },
    [IHSM_CMD_KEY_DELETE]     = { dev_cmd_key_delete, SESSION, 0, O },
    [IHSM_CMD_KEY_PUBLIC]     = { dev_cmd_key_public, SESSION, 1, U | O },
    [IHSM_CMD_KEY_FIND]       = { dev_cmd_key_find, SESSION, 1, U },
    [IHSM_CMD_KEY_LIST]       = { dev_cmd_key_list, SESSION, 0, U | O },
    [IHSM_CMD_KEY_RELEASE]    = { dev_cmd_key_release, SESSION, 0, U | O },
    [IHSM_CMD_KEY_LOAD_SESSION] = { dev_cmd_key_load_session, SESSION, 1, U },
    [IHSM_CMD_SIGN]           = { dev_cmd_sign, SESSION, 1, U },
    [IHSM_CMD_DERIVE]         = { dev_cmd_derive, SESSION, 1, U },
    [IHSM_CMD_AEAD_SEAL]      = { dev_cmd_aead_seal, SESSION, 1, U },
    [IHSM_CMD_AEAD_OPEN]      = { dev_cmd_aead_open, SESSION, 1, U },
    [IHSM_CMD_RANDOM]         = { dev_cmd_random, SESSION, 1, U },
    [IHSM_CMD_SELF_TEST]      = { dev_cmd_self_test, NO_SESSION, 0, 0 },
    [IHSM_CMD_STATS]          = { dev_cmd_stats, NO_SESSION, 0, 0 },
    [IHSM_CMD_ZEROIZE]        = { dev_cmd_zeroize, SESSION, 0, O },
    /* an officer session, or no session from an admin uid (the handlers) */
    [IHSM_CMD_AUDIT_VERIFY]   = { dev_cmd_audit_verify, OPTIONAL, 0, O },
    [IHSM_CMD_AUDIT_READ]     = { dev_cmd_audit_read, NO_SESSION, 0, 0 },
};

static const char *role_name(uint32_t role)
{
    return role == IHSM_ROLE_OFFICER ? "officer" : "user";
}

/* A role refusal: one log line and an audit record naming command and role. */
static int refuse_role(struct ihsmd *d, struct dev_conn *conn, const ihsm_entry *e,
                       const struct dev_session *s)
{
    char what[64];
    size_t i;

    snprintf(what, sizeof(what), "%s_as_%s", ihsm_cmd_name(e->cmd), role_name(s->role));
    for (i = 0; what[i] != '\0'; i++)
        if (what[i] >= 'A' && what[i] <= 'Z')
            what[i] = (char)(what[i] - 'A' + 'a');
    dev_audit(d, conn, "permission_denied", s->part->name, NULL, 0, what);
    dev_log("partition %s: %s refused to the %s session of uid %ld pid %ld: %s",
            s->part->name, ihsm_cmd_name(e->cmd), role_name(s->role), (long)conn->uid,
            (long)conn->pid, s->role == IHSM_ROLE_OFFICER
                ? "the crypto officer may not use or unmask keys (use the user credential)"
                : "only the crypto officer may import, delete or zeroize (use the officer "
                  "credential)");
    return IHSM_ERR_PERMISSION;
}

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
    if (def->session == SESSION || (def->session == OPTIONAL && e->session != 0)) {
        c.sess = dev_session_get(d, conn, e->session);
        if (c.sess == NULL) {
            dev_debug("request %llu (%s): session %08x is not open on this connection",
                      (unsigned long long)e->id, ihsm_cmd_name(e->cmd), e->session);
            return IHSM_ERR_NO_SESSION;
        }
        if ((def->roles & (1u << c.sess->role)) == 0) {
            st = refuse_role(d, conn, e, c.sess);
            dev_session_put(c.sess);
            return st;
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
