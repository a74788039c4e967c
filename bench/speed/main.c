/*
 * ihsm-speed: for each row, the ihsm provider (keys and operations in
 * ihsmd, through the batched queue) against OpenSSL's default provider in
 * process, in one run. main() finds or starts the device, makes the two
 * library contexts, runs the rows and prints them.
 */
#include <signal.h>
#include <string.h>
#include <openssl/crypto.h>

#include "speed.h"

static void on_signal(int sig)
{
    (void)sig;
    atomic_store(&sp_interrupted, 1);
}

int main(int argc, char **argv)
{
    struct sp_opts o;
    struct sp_device dev;
    struct sp_libs libs;
    struct sigaction sa;
    int rc = SP_EXIT_OK, have_dev = 0, have_libs = 0;

    /* Both contexts are our own; keep OPENSSL_CONF (which may load ihsm for
     * some server) out of this process. */
    OPENSSL_init_crypto(OPENSSL_INIT_NO_LOAD_CONFIG, NULL);
    sp_opts_parse(&o, argc, argv);

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    if (sp_device_open(&dev) != 0) {
        rc = SP_EXIT_FAIL;
        goto out;
    }
    have_dev = 1;
    if (sp_libs_open(&libs, &o, &dev) != 0) {
        rc = SP_EXIT_FAIL;
        goto out;
    }
    have_libs = 1;
    if (!o.json)
        sp_report_header(stdout, &o);
    for (size_t i = 0; i < o.nrows && !atomic_load(&sp_interrupted); i++) {
        struct sp_result res;
        int skipped = 0;

        if (sp_bench_row(&o, &libs, &dev, o.rows[i], &res, &skipped) != SP_EXIT_OK) {
            rc = SP_EXIT_FAIL;
            break;
        }
        if (skipped)
            continue;
        if (o.json)
            sp_report_json(stdout, &res);
        else
            sp_report_row(stdout, &o, &res);
    }
    if (atomic_load(&sp_interrupted))
        rc = SP_EXIT_FAIL;
out:
    if (have_libs)
        sp_libs_close(&libs);
    if (have_dev || dev.scratch[0] != '\0')
        sp_device_close(&dev);
    return rc;
}
