/*
 * ihsmctl: manage an ihsm device: partitions, keys, signatures, AEAD,
 * statistics and load. Global options come before the command:
 *
 *   ihsmctl [--socket PATH] [--credential FILE] [--officer-credential FILE]
 *           COMMAND [options]
 *
 * Exit codes: 0 ok, 1 the operation failed, 2 the command line was wrong.
 */
#include "tools_common.h"

#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/err.h>
#include "ihsm_transport.h"

static const ihsm_tool_cmd commands[] = {
    { "init", ihsm_cmd_init, "create a partition and write its user and crypto-officer credentials" },
    { "keygen", ihsm_cmd_keygen, "generate a key in the device (stored by name and/or as a key file)" },
    { "import", ihsm_cmd_import, "import a PEM private key, wrapped to the device (BYOK)" },
    { "list", ihsm_cmd_list, "list the keys stored in the partition" },
    { "delete", ihsm_cmd_delete, "delete a stored key" },
    { "pubkey", ihsm_cmd_pubkey, "print a key's public key (PEM SubjectPublicKeyInfo)" },
    { "sign", ihsm_cmd_sign, "sign a file with a device key" },
    { "verify", ihsm_cmd_verify, "verify a signature against a device key's public key" },
    { "encrypt", ihsm_cmd_encrypt, "AEAD-encrypt a file with a device AES key" },
    { "decrypt", ihsm_cmd_decrypt, "AEAD-decrypt a file made by `ihsmctl encrypt`" },
    { "bench", ihsm_cmd_bench, "drive the offload queue with N requests in flight" },
    { "stats", ihsm_cmd_stats, "print the device's counters" },
    { "info", ihsm_cmd_info, "print the device's identity and state" },
    { "selftest", ihsm_cmd_selftest, "run the device's known-answer self-tests" },
    { "zeroize", ihsm_cmd_zeroize, "destroy every key of the partition" },
    { "audit", ihsm_cmd_audit, "verify the device's audit log (MAC chain) or show it" },
};
#define N_COMMANDS (sizeof(commands) / sizeof(commands[0]))

static void usage(FILE *f)
{
    fputs("Usage: ihsmctl [--socket PATH] [--credential FILE] [--officer-credential FILE]\n"
          "               COMMAND [options]\n"
          "\n"
          "Global options (before COMMAND):\n"
          "  --socket PATH       ihsmd's socket (default $IHSM_SOCKET, else "
          IHSM_DEFAULT_SOCKET ")\n"
          "  --credential FILE   partition credential written by `ihsmctl init`\n"
          "                      (default $IHSM_CREDENTIAL)\n"
          "  --officer-credential FILE\n"
          "                      the crypto-officer credential for import, delete,\n"
          "                      zeroize and audit (else an explicit --credential, else\n"
          "                      $IHSM_OFFICER_CREDENTIAL, else $IHSM_CREDENTIAL)\n"
          "  -h, --help          this text; `ihsmctl COMMAND --help` for a command\n"
          "\n"
          "Commands:\n", f);
    for (size_t i = 0; i < N_COMMANDS; i++)
        fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].summary);
    fputs("\nExit status: 0 success, 1 the operation failed, 2 usage error.\n"
          "IHSM_DEBUG=1 logs one line per queue event on stderr.\n", f);
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        { "socket", required_argument, NULL, 's' },
        { "credential", required_argument, NULL, 'c' },
        { "officer-credential", required_argument, NULL, 'o' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    const char *sock = NULL, *cred = NULL, *officer = NULL;
    ihsm_tool t;
    int c, rc;

    ihsm_debug_init();
    opterr = 0;
    /* "+": stop at the command; its options are its own. */
    while ((c = getopt_long(argc, argv, "+h", opts, NULL)) != -1) {
        switch (c) {
        case 's': sock = optarg; break;
        case 'c': cred = optarg; break;
        case 'o': officer = optarg; break;
        case 'h': usage(stdout); return IHSM_TOOL_OK;
        default:
            fprintf(stderr, "ihsmctl: unknown or incomplete global option '%s': "
                    "global options are --socket PATH, --credential FILE and "
                    "--officer-credential FILE, before the command\n", argv[optind - 1]);
            usage(stderr);
            return IHSM_TOOL_USAGE;
        }
    }
    if (optind >= argc) {
        fputs("ihsmctl: no command given\n", stderr);
        usage(stderr);
        return IHSM_TOOL_USAGE;
    }
    memset(&t, 0, sizeof(t));
    t.socket_path = ihsm_socket_path(sock);
    t.cred_path = ihsm_credential_path(cred);
    t.cred_explicit = cred != NULL && *cred != '\0';
    t.officer_path = officer;
    for (size_t i = 0; i < N_COMMANDS; i++) {
        int first = optind;

        if (strcmp(argv[first], commands[i].name) != 0)
            continue;
        t.cmd = commands[i].name;
        /* The command sees argv from its own name on and parses it with
         * getopt_long from scratch (optind 0 re-initialises GNU getopt). */
        optind = 0;
        opterr = 0;
        rc = commands[i].fn(&t, argc - first, argv + first);
        ihsm_tool_close(&t);
        if (fflush(stdout) != 0 && rc == IHSM_TOOL_OK) {
            perror("ihsmctl: writing standard output");
            rc = IHSM_TOOL_FAIL;
        }
        return rc;
    }
    fprintf(stderr, "ihsmctl: unknown command '%s'\n", argv[optind]);
    usage(stderr);
    return IHSM_TOOL_USAGE;
}
