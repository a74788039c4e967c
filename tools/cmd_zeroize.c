/*
 * ihsmctl zeroize: destroy every key of the session's partition, in the
 * device's memory and on disk. Irreversible, so it insists on --yes.
 */
#include "tools_common.h"

#include <getopt.h>

static const char help[] =
    "Usage: ihsmctl zeroize --yes\n"
    "\n"
    "Destroy every key of the partition named in the credential: the keys\n"
    "stored in it and every key loaded in the device's memory. The partition\n"
    "gets a new id, so masked key files made before no longer load anywhere\n"
    "(IHSM_ERR_BAD_BLOB). There is no undo. The partition and its credentials\n"
    "stay, empty.\n"
    "\n"
    "Zeroizing is the crypto officer's: the credential is --officer-credential,\n"
    "else --credential, else $IHSM_OFFICER_CREDENTIAL, else $IHSM_CREDENTIAL.\n";

int ihsm_cmd_zeroize(ihsm_tool *t, int argc, char **argv)
{
    static const struct option opts[] = {
        { "yes", no_argument, NULL, 'y' },
        IHSM_TOOL_GLOBAL_OPTS,
        { NULL, 0, NULL, 0 },
    };
    ihsm_result res;
    int c, yes = 0, st, rc;

    while ((c = getopt_long(argc, argv, "+h", opts, NULL)) != -1) {
        switch (c) {
        case 'y': yes = 1; break;
        case 'h': fputs(help, stdout); return IHSM_TOOL_OK;
        default:
            if (ihsm_tool_global_opt(t, c, optarg))
                break;
            return ihsm_tool_bad_option(t, argv);
        }
    }
    if ((rc = ihsm_tool_no_operands(t, argc, argv)) != IHSM_TOOL_OK)
        return rc;
    ihsm_tool_use_officer(t); /* zeroizing is the crypto officer's */
    if (!yes)
        return ihsm_tool_usage_err(t, "refusing to zeroize without --yes: it destroys "
                                   "every key of the partition in %s, irreversibly",
                                   t->cred_path != NULL ? t->cred_path : "the credential");
    if (ihsm_tool_queue(t, &rc) == NULL)
        return rc;
    st = ihsm_tool_call(t, IHSM_CMD_ZEROIZE, NULL, &res);
    ihsm_result_clear(&res);
    if (st != IHSM_OK)
        return ihsm_tool_status_err(t, st, "cannot zeroize partition '%s'", t->partition);
    printf("partition %s zeroized: every key destroyed; key files made before no longer "
           "load\n", t->partition);
    return IHSM_TOOL_OK;
}
