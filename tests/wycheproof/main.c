/*
 * ihsm-wycheproof FILE.json [FILE.json ...]
 *
 * Runs Wycheproof vector files through the ihsm provider and ihsmd: private
 * keys are imported into the device, every operation goes through EVP with
 * the ihsm provider. Prints one line per failing vector and
 * "N passed, N failed[, N skipped]" per file. Exit 0 when nothing failed,
 * 1 when something did (or a file could not run), 77 when every vector had
 * to be skipped (nothing was tested), 2 for usage errors.
 */
#include "wycheproof.h"

#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <openssl/err.h>

static const struct {
    const char *schema;    /* file's "schema", without its version suffix */
    const char *group;     /* testGroups[].type, when a file has no "schema" */
    wp_schema_fn run;
} schemas[] = {
    { "rsassa_pkcs1_generate_schema", "RsassaPkcs1Generate", wp_run_rsa_sig_gen },
    { "ecdsa_verify_schema", "EcdsaVerify", wp_run_ecdsa_verify },
    { "ecdsa_p1363_verify_schema", "EcdsaP1363Verify", wp_run_ecdsa_verify },
    { "eddsa_verify_schema", "EddsaVerify", wp_run_eddsa_verify },
    { "rsassa_pss_verify_schema", "RsassaPssVerify", wp_run_rsa_pss_verify },
    { "ecdh_ecpoint_test_schema", "EcdhEcpointTest", wp_run_ecdh },
    { "xdh_test_schema", "XdhTest", wp_run_xdh },
    { "xdh_comp_schema", "XdhComp", wp_run_xdh },
    { "aead_test_schema", "AeadTest", wp_run_aead },
};

static const char usage[] =
    "Usage: ihsm-wycheproof [-v] FILE.json [FILE.json ...]\n"
    "\n"
    "Runs Wycheproof test vector files through the ihsm provider and ihsmd.\n"
    "Schemas: rsassa_pkcs1_generate, ecdsa_verify, ecdsa_p1363_verify,\n"
    "eddsa_verify, rsassa_pss_verify, ecdh_ecpoint_test, xdh_test/xdh_comp,\n"
    "aead_test (AES-GCM, ChaCha20-Poly1305).\n"
    "\n"
    "Device: IHSM_SOCKET and IHSM_CREDENTIAL (and IHSM_OFFICER_CREDENTIAL for key\n"
    "imports) when set; otherwise ihsmd from this program's directory is started\n"
    "in a scratch directory and stopped at the end (IHSM_KEEP_SCRATCH=1 keeps it).\n"
    "The provider is loaded from ../lib/ihsm.so.\n"
    "\n"
    "  -v, --verbose   also print a line for every vector that passed\n";

static pid_t own_ihsmd;

static void on_signal(int sig)
{
    if (own_ihsmd > 0)
        kill(own_ihsmd, SIGTERM);
    _exit(128 + sig);
}

/* "aead_test_schema_v1.json" matches "aead_test_schema". */
static int schema_is(const char *schema, const char *name)
{
    size_t n = strlen(name);

    return strncmp(schema, name, n) == 0 && (schema[n] == '.' || schema[n] == '_');
}

static wp_schema_fn find_schema(const wp_json *root, const char **label)
{
    const char *schema = wp_json_str(root, "schema");
    const wp_json *groups = wp_json_arr(root, "testGroups");
    const char *gtype = groups != NULL && groups->n > 0
                        ? wp_json_str(groups->items[0], "type") : NULL;
    size_t i;

    *label = schema != NULL ? schema : gtype != NULL ? gtype : "(none)";
    for (i = 0; i < sizeof(schemas) / sizeof(schemas[0]); i++) {
        if (schema != NULL ? schema_is(schema, schemas[i].schema)
                           : gtype != NULL && strcmp(gtype, schemas[i].group) == 0)
            return schemas[i].run;
    }
    return NULL;
}

/* 0 ran (counts in r), -1 the file could not run at all. */
static int run_file(wp_run *r, const char *path)
{
    char *text = NULL, err[256];
    const char *label;
    size_t len;
    wp_json *root;
    wp_schema_fn fn;
    int rc;

    if (wp_read_file(path, &text, &len) != 0) {
        printf("ERROR %s: cannot read it\n", path);
        return -1;
    }
    root = wp_json_parse(text, len, err, sizeof(err));
    free(text);
    if (root == NULL) {
        printf("ERROR %s: not valid JSON: %s\n", path, err);
        return -1;
    }
    if ((fn = find_schema(root, &label)) == NULL || wp_json_arr(root, "testGroups") == NULL) {
        printf("ERROR %s: schema %s is not one this runner knows (run with --help for the "
               "list)\n", path, label);
        wp_json_free(root);
        return -1;
    }
    wp_file_begin(r, path);
    rc = fn(r, root);
    wp_file_end(r);
    wp_json_free(root);
    return rc;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        { "verbose", no_argument, NULL, 'v' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    wp_run r;
    unsigned long passed = 0, failed = 0, skipped = 0;
    char libdir[sizeof(r.dev.bindir) + 8];
    int c, i, broken = 0, rc;

    memset(&r, 0, sizeof(r));
    while ((c = getopt_long(argc, argv, "vh", opts, NULL)) != -1) {
        switch (c) {
        case 'v':
            r.verbose = 1;
            break;
        case 'h':
            fputs(usage, stdout);
            return 0;
        default:
            fputs(usage, stderr);
            return 2;
        }
    }
    if (optind == argc) {
        fputs(usage, stderr);
        return 2;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    signal(SIGPIPE, SIG_IGN);
    if (wp_device_start(&r.dev) != 0) {
        wp_device_stop(&r.dev);
        return 1;
    }
    own_ihsmd = r.dev.pid;
    snprintf(libdir, sizeof(libdir), "%s/../lib", r.dev.bindir);
    if (wp_libctx_init(&r, libdir) != 0 || wp_import_init(&r) != 0) {
        rc = 1;
        goto end;
    }
    for (i = optind; i < argc; i++) {
        if (run_file(&r, argv[i]) != 0)
            broken++;
        passed += r.passed;
        failed += r.failed;
        skipped += r.skipped;
        ERR_clear_error();
    }
    if (argc - optind > 1) {
        if (skipped != 0)
            printf("total: %lu passed, %lu failed, %lu skipped\n", passed, failed, skipped);
        else
            printf("total: %lu passed, %lu failed\n", passed, failed);
    }
    if (failed != 0 || broken != 0)
        rc = 1;
    else if (passed == 0)
        rc = 77; /* every vector skipped: nothing was tested */
    else
        rc = 0;
end:
    wp_import_free(&r);
    wp_libctx_free(&r);
    wp_device_stop(&r.dev);
    own_ihsmd = 0;
    return rc;
}
