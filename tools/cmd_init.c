/*
 * ihsmctl init: create a partition (INIT_PARTITION, no session) and write
 * its credential file. The PIN exists only in the device's verifier and in
 * that 0600 file.
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
    "Usage: ihsmctl init --partition NAME --credential-out FILE [--allow-uid UID[,UID...]] [--force]\n"
    "\n"
    "Create partition NAME in the device and write its credential (partition\n"
    "name and PIN, mode 0600) to FILE. Point --credential / IHSM_CREDENTIAL or\n"
    "the provider's ihsm-credential at that file.\n"
    "\n"
    "  --partition NAME      1 to 64 characters of A-Z a-z 0-9 . _ -\n"
    "  --credential-out FILE where to write the credential; never overwritten\n"
    "                        unless --force\n"
    "  --allow-uid LIST      uids allowed to open sessions (default: your uid)\n"
    "  --force               overwrite an existing credential file\n"
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
        { "allow-uid", required_argument, NULL, 'u' },
        { "force", no_argument, NULL, 'f' },
        IHSM_TOOL_GLOBAL_OPTS,
        { NULL, 0, NULL, 0 },
    };
    const char *part = NULL, *out = NULL;
    uint32_t uids[MAX_UIDS], n_uids = 0;
    ihsm_credential cred;
    ihsm_result res;
    ihsm_wr w;
    ihsm_rd r;
    const uint8_t *pin;
    size_t pin_len = 0;
    int c, force = 0, st, rc;

    while ((c = getopt_long(argc, argv, "+h", opts, NULL)) != -1) {
        switch (c) {
        case 'p': part = optarg; break;
        case 'o': out = optarg; break;
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
    if (check_writable(t, out, force) != 0)
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
    if (ihsm_rd_end(&r) != 0 || pin_len != IHSM_PIN_LEN) {
        ihsm_tool_direct_clear(&res);
        ihsm_tool_err(t, "the device's answer to INIT_PARTITION is malformed: client "
                      "and ihsmd versions may differ");
        return IHSM_TOOL_FAIL;
    }
    memset(&cred, 0, sizeof(cred));
    snprintf(cred.partition, sizeof(cred.partition), "%s", part);
    memcpy(cred.pin, pin, IHSM_PIN_LEN);
    cred.role = IHSM_ROLE_USER;
    ihsm_tool_direct_clear(&res);
    rc = IHSM_TOOL_OK;
    if (ihsm_credential_save(out, &cred, force) != 0) {
        ihsm_tool_err(t, "partition '%s' was created but its credential could not be "
                      "written to %s: %s; the PIN is lost, so create a new partition",
                      part, out, strerror(errno));
        rc = IHSM_TOOL_FAIL;
    } else {
        printf("partition %s created; credential written to %s (mode 0600)\n", part, out);
    }
    ihsm_credential_clear(&cred);
    return rc;
}
