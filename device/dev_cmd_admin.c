/*
 * Device and session commands: INFO, OPEN_SESSION, CLOSE_SESSION,
 * INIT_PARTITION, SELF_TEST, STATS.
 *
 * OPEN_SESSION's role is the one the PIN is for: a partition has a user PIN
 * (the TLS servers': sign, derive, AEAD) and a crypto-officer PIN (import,
 * delete, zeroize); dev_cmd.c enforces what each role may do.
 */
#include "dev.h"

#include <string.h>
#include <openssl/crypto.h>

int dev_cmd_info(struct dev_ctx *c)
{
    if (ihsm_rd_end(c->rd) != 0)
        return IHSM_ERR_MALFORMED;
    ihsm_wr_u32(c->out, IHSM_PROTO_VERSION);
    ihsm_wr_u32(c->out, dev_failed(c->d) ? IHSM_STATE_FAILED : IHSM_STATE_OPERATIONAL);
    ihsm_wr_bytes(c->out, c->d->serial, sizeof(c->d->serial));
    ihsm_wr_bytes(c->out, IHSMD_FIRMWARE, strlen(IHSMD_FIRMWARE));
    ihsm_wr_u32(c->out, c->d->cfg.workers);
    return IHSM_OK;
}

int dev_cmd_open_session(struct dev_ctx *c)
{
    struct dev_partition *p;
    const uint8_t *name, *pin;
    size_t name_len, pin_len;
    uint32_t role, id;
    int st;

    name = ihsm_rd_bytes(c->rd, &name_len, IHSM_MAX_LABEL);
    pin = ihsm_rd_bytes(c->rd, &pin_len, IHSM_PIN_LEN);
    role = ihsm_rd_u32(c->rd);
    if (ihsm_rd_end(c->rd) != 0)
        return IHSM_ERR_MALFORMED;
    if ((role != IHSM_ROLE_USER && role != IHSM_ROLE_OFFICER) || pin_len != IHSM_PIN_LEN)
        return IHSM_ERR_BAD_INPUT;
    st = dev_partition_get(c->d, name, name_len, &p);
    if (st != IHSM_OK)
        return st;
    if (!dev_partition_allows(p, c->conn->uid)) {
        dev_audit(c->d, c->conn, "login", p->name, NULL, 0, "uid_not_allowed");
        dev_log("partition %s: uid %ld (pid %ld) is not allowed to open sessions",
                p->name, (long)c->conn->uid, (long)c->conn->pid);
        return IHSM_ERR_PERMISSION;
    }
    st = dev_partition_login(c->d, p, c->conn, pin, pin_len, role);
    if (st != IHSM_OK)
        return st;
    st = dev_session_open(c->d, c->conn, p, role, &id);
    if (st != IHSM_OK) {
        dev_log("partition %s: session refused for pid %ld: %s", p->name,
                (long)c->conn->pid, ihsm_status_name(st));
        return st;
    }
    dev_audit(c->d, c->conn, "session_open", p->name, NULL, 0,
              role == IHSM_ROLE_OFFICER ? "ok_officer" : "ok_user");
    dev_debug("%s session %08x opened on partition %s by uid %ld pid %ld",
              role == IHSM_ROLE_OFFICER ? "officer" : "user", id, p->name,
              (long)c->conn->uid, (long)c->conn->pid);
    ihsm_wr_u32(c->out, id);
    return IHSM_OK;
}

int dev_cmd_close_session(struct dev_ctx *c)
{
    if (ihsm_rd_end(c->rd) != 0)
        return IHSM_ERR_MALFORMED;
    return dev_session_close(c->d, c->conn, c->sess->id);
}

int dev_may_admin(const struct ihsmd *d, uid_t uid)
{
    if (uid == 0 || uid == d->own_uid)
        return 1;
    for (size_t i = 0; i < d->cfg.n_admins; i++)
        if (d->cfg.admin_uids[i] == uid)
            return 1;
    return 0;
}

int dev_cmd_init_partition(struct dev_ctx *c)
{
    uint32_t uids[DEV_MAX_UIDS], n;
    uint8_t pin[IHSM_PIN_LEN], officer_pin[IHSM_PIN_LEN];
    const uint8_t *name;
    size_t name_len;
    char pname[DEV_MAX_NAME + 1];
    int st;

    name = ihsm_rd_bytes(c->rd, &name_len, IHSM_MAX_LABEL);
    n = ihsm_rd_u32(c->rd);
    if (c->rd->err || n > DEV_MAX_UIDS)
        return IHSM_ERR_MALFORMED;
    for (uint32_t i = 0; i < n; i++)
        uids[i] = ihsm_rd_u32(c->rd);
    if (ihsm_rd_end(c->rd) != 0)
        return IHSM_ERR_MALFORMED;
    if (!dev_may_admin(c->d, c->conn->uid)) {
        dev_audit(c->d, c->conn, "init_partition", NULL, name, name_len, "permission_denied");
        dev_log("INIT_PARTITION refused to uid %ld: not root, ihsmd's uid or an --admin-uid",
                (long)c->conn->uid);
        return IHSM_ERR_PERMISSION;
    }
    if (!dev_name_valid(name, name_len))
        return IHSM_ERR_BAD_INPUT;
    if (n == 0) {
        uids[0] = (uint32_t)c->conn->uid;
        n = 1;
    }
    memcpy(pname, name, name_len);
    pname[name_len] = '\0';
    st = dev_partition_create(c->d, name, name_len, uids, n, pin, officer_pin);
    dev_audit(c->d, c->conn, "init_partition", pname, NULL, 0,
              st == IHSM_OK ? "ok" : ihsm_status_name(st));
    if (st != IHSM_OK)
        return st;
    dev_log("partition %s created by uid %ld (%u allowed uids)", pname,
            (long)c->conn->uid, n);
    ihsm_wr_bytes(c->out, pin, sizeof(pin));
    ihsm_wr_bytes(c->out, officer_pin, sizeof(officer_pin));
    OPENSSL_cleanse(pin, sizeof(pin));
    OPENSSL_cleanse(officer_pin, sizeof(officer_pin));
    return IHSM_OK;
}

int dev_cmd_self_test(struct dev_ctx *c)
{
    int st;

    if (ihsm_rd_end(c->rd) != 0)
        return IHSM_ERR_MALFORMED;
    st = ihsm_crypto_selftest(c->out);
    if (st != IHSM_OK) {
        dev_log("SELF_TEST failed: the device refuses crypto until restarted");
        return IHSM_ERR_DEVICE_FAILED;
    }
    return IHSM_OK;
}

int dev_cmd_stats(struct dev_ctx *c)
{
    if (ihsm_rd_end(c->rd) != 0)
        return IHSM_ERR_MALFORMED;
    return dev_stats_write(c->d, c->out);
}
