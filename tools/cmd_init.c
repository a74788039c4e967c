/*
 * ihsmctl init: create a partition (INIT_PARTITION, no session) and write
 * its two credential files: the user's (TLS servers: sign, derive, AEAD)
 * and the crypto officer's (import, delete, zeroize). Each PIN exists only
 * in the device's verifier and in its 0600 file.
 */
#include "tools_common.h"

#include <errno.h>
#include <getopt.h>
#include <libgen.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <openssl/crypto.h>

#define MAX_UIDS 64

static const char help[] =
    "Usage: ihsmctl init --partition NAME --credential-out FILE\n"
    "                    [--officer-credential-out FILE2] [--allow-uid UID[,UID...]] [--force]\n"
    "\n"
    "Create partition NAME in the device and write its two credentials (partition\n"
    "name, PIN and role, mode 0600): the user credential to FILE, for the TLS\n"
    "servers (sign, key exchange, AEAD; point --credential / IHSM_CREDENTIAL or\n"
    "the provider's ihsm-credential at it), and the crypto-officer credential to\n"
    "FILE2, for managing keys (import, delete, zeroize, audit; point\n"
    "--officer-credential / IHSM_OFFICER_CREDENTIAL at it). Both may generate and\n"
    "list keys. Keep the officer credential away from the servers.\n"
    "\n"
    "  --partition NAME      1 to 64 characters of A-Z a-z 0-9 . _ -\n"
    "  --credential-out FILE where to write the user credential; never\n"
    "                        overwritten unless --force\n"
    "  --officer-credential-out FILE2\n"
    "                        where to write the officer credential (default\n"
    "                        FILE.officer)\n"
    "  --allow-uid LIST      uids allowed to open sessions (default: your uid)\n"
    "  --force               overwrite existing credential files\n"
    "\n"
    "Only ihsmd's own uid, root or an ihsmd --admin-uid may create partitions.\n";

static int parse_uids(const char *s, uint32_t *uids, uint32_t *n)
{
    char *copy = strdup(s), *save = NULL, *tok;
    int rc = 0;

    if (copy == NULL)
        return -1;
    *n = 0;
    for (tok = strtok_r(copy, ",", &save); tok != NULL; tok = strtok_r(NULL, ",", &save)) {
        long v;

        if (*n == MAX_UIDS || ihsm_tool_parse_long(tok, 0, 0xFFFFFFFEL, &v) != 0) {
            rc = -1;
            break;
        }
        uids[(*n)++] = (uint32_t)v;
    }
    free(copy);
    return rc == 0 && *n != 0 ? 0 : -1;
}

/* Fail before the partition exists if the credential cannot be written:
 * a partition whose PIN was lost is useless. */
static int check_writable(const ihsm_tool *t, const char *path, int force)
{
    char *copy;
    int ok;

    if (ihsm_tool_exists(path) && !force) {
        ihsm_tool_err(t, "%s already exists: refusing to overwrite a credential "
                      "(pass --force to replace it, or choose another file)", path);
        return -1;
    }
    copy = strdup(path);
    if (copy == NULL)
        return -1;
    ok = access(dirname(copy), W_OK) == 0;
    if (!ok)
        ihsm_tool_err(t, "cannot write the credential to %s: %s: choose a writable "
                      "--credential-out", path, strerror(errno));
    free(copy);
    return ok ? 0 : -1;
}

int ihsm_cmd_init(ihsm_tool *t, int argc, char **argv)
{
    static const struct option opts[] = {
        { "partition", required_argument, NULL, 'p' },
        { "credential-out", required_argument, NULL, 'o' },
        { "officer-credential-out", required_argument, NULL, 'O' },
        { "allow-uid", required_argument, NULL, 'u' },
        { "force", no_argument, NULL, 'f' },
        IHSM_TOOL_GLOBAL_OPTS,
        { NULL, 0, NULL, 0 },
    };
    const char *part = NULL, *out = NULL, *officer_out = NULL;
    char officer_default[4096];
    uint32_t uids[MAX_UIDS], n_uids = 0;
    ihsm_credential cred, officer;
    ihsm_result res;
    ihsm_wr w;
    ihsm_rd r;
    const uint8_t *pin, *officer_pin;
    size_t pin_len = 0, officer_len = 0;
    int c, force = 0, st, rc;

    while ((c = getopt_long(argc, argv, "+h", opts, NULL)) != -1) {
        switch (c) {
        case 'p': part = optarg; break;
        case 'o': out = optarg; break;
        case 'O': officer_out = optarg; break;
        case 'f': force = 1; break;
        case 'u':
            if (parse_uids(optarg, uids, &n_uids) != 0)
                return ihsm_tool_usage_err(t, "--allow-uid wants a comma-separated list "
                                           "of at most %d numeric uids, not '%s'",
                                           MAX_UIDS, optarg);
            break;
        case 'h': fputs(help, stdout); return IHSM_TOOL_OK;
        default:
            if (ihsm_tool_global_opt(t, c, optarg))
                break;
            return ihsm_tool_bad_option(t, argv);
        }
    }
    if ((rc = ihsm_tool_no_operands(t, argc, argv)) != IHSM_TOOL_OK)
        return rc;
    if (part == NULL)
        return ihsm_tool_usage_err(t, "--partition NAME is required");
    if (!ihsm_tool_valid_name(part))
        return ihsm_tool_usage_err(t, "partition name '%s' is invalid: use "
                                   IHSM_TOOL_NAME_RULE, part);
    if (out == NULL)
        return ihsm_tool_usage_err(t, "--credential-out FILE is required: the new "
                                   "partition's PIN is written there and nowhere else");
    if (n_uids == 0) {
        uids[0] = (uint32_t)getuid();
        n_uids = 1;
    }
    if (officer_out == NULL) {
        if ((size_t)snprintf(officer_default, sizeof(officer_default), "%s.officer", out)
            >= sizeof(officer_default))
            return ihsm_tool_usage_err(t, "--credential-out path is too long");
        officer_out = officer_default;
    }
    if (strcmp(officer_out, out) == 0)
        return ihsm_tool_usage_err(t, "--officer-credential-out must differ from "
                                   "--credential-out: the two roles have separate PINs");
    if (check_writable(t, out, force) != 0 || check_writable(t, officer_out, force) != 0)
        return IHSM_TOOL_FAIL;

    ihsm_wr_init(&w);
    ihsm_wr_bytes(&w, part, strlen(part));
    ihsm_wr_u32(&w, n_uids);
    for (uint32_t i = 0; i < n_uids; i++)
        ihsm_wr_u32(&w, uids[i]);
    st = ihsm_tool_call_direct(t, IHSM_CMD_INIT_PARTITION, &w, &res);
    ihsm_wr_free(&w);
    if (st == IHSM_ERR_CONNECT) /* already explained */
        return IHSM_TOOL_FAIL;
    if (st == IHSM_ERR_EXISTS) {
        ihsm_tool_direct_clear(&res);
        ihsm_tool_err(t, "partition '%s' already exists: use its credential file, or "
                      "choose another name", part);
        return IHSM_TOOL_FAIL;
    }
    if (st != IHSM_OK) {
        ihsm_tool_direct_clear(&res);
        return ihsm_tool_status_err(t, st, "cannot create partition '%s'", part);
    }
    ihsm_rd_init(&r, res.data, res.len);
    pin = ihsm_rd_bytes(&r, &pin_len, IHSM_PIN_LEN);
    officer_pin = ihsm_rd_bytes(&r, &officer_len, IHSM_PIN_LEN);
    if (ihsm_rd_end(&r) != 0 || pin_len != IHSM_PIN_LEN || officer_len != IHSM_PIN_LEN) {
        ihsm_tool_direct_clear(&res);
        ihsm_tool_err(t, "the device's answer to INIT_PARTITION is malformed: client "
                      "and ihsmd versions may differ");
        return IHSM_TOOL_FAIL;
    }
    memset(&cred, 0, sizeof(cred));
    snprintf(cred.partition, sizeof(cred.partition), "%s", part);
    memcpy(cred.pin, pin, IHSM_PIN_LEN);
    cred.role = IHSM_ROLE_USER;
    memset(&officer, 0, sizeof(officer));
    snprintf(officer.partition, sizeof(officer.partition), "%s", part);
    memcpy(officer.pin, officer_pin, IHSM_PIN_LEN);
    officer.role = IHSM_ROLE_OFFICER;
    ihsm_tool_direct_clear(&res);
    rc = IHSM_TOOL_OK;
    if (ihsm_credential_save(out, &cred, force) != 0) {
        ihsm_tool_err(t, "partition '%s' was created but its user credential could not be "
                      "written to %s: %s; the PIN is lost, so create a new partition",
                      part, out, strerror(errno));
        rc = IHSM_TOOL_FAIL;
    } else if (ihsm_credential_save(officer_out, &officer, force) != 0) {
        ihsm_tool_err(t, "partition '%s' was created but its crypto-officer credential could "
                      "not be written to %s: %s; without it no key can be imported, deleted "
                      "or zeroized, so create a new partition", part, officer_out,
                      strerror(errno));
        rc = IHSM_TOOL_FAIL;
    } else {
        printf("partition %s created; credential written to %s (mode 0600)\n"
               "crypto-officer credential written to %s (mode 0600): import, delete and "
               "zeroize use it (--officer-credential or IHSM_OFFICER_CREDENTIAL)\n",
               part, out, officer_out);
    }
    ihsm_credential_clear(&cred);
    ihsm_credential_clear(&officer);
    return rc;
}
