/*
 * The two library contexts. "ihsm": the default provider and ihsm, loaded
 * from a config file we write into the scratch directory, because only the
 * config carries provider parameters in OpenSSL 3.0 (ihsm-route must name
 * derive and aead for those rows to reach the device). "base": the default
 * provider alone, the in-process baseline.
 */
#include <errno.h>
#include <stdarg.h>
#include <string.h>
#include <unistd.h>
#include <openssl/conf.h>
#include <openssl/err.h>
#include <openssl/provider.h>

#include "speed.h"

static int print_err(const char *str, size_t len, void *u)
{
    (void)u;
    fprintf(stderr, "  %.*s", (int)len, str);
    return 1;
}

void sp_ossl_err(const char *fmt, ...)
{
    va_list ap;

    fputs("ihsm-speed: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputs(ERR_peek_error() != 0 ? ":\n" : "\n", stderr);
    ERR_print_errors_cb(print_err, NULL);
}

/* A config value in double quotes: \ " and $ escaped. */
static void conf_str(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"' || *s == '\\' || *s == '$')
            fputc('\\', f);
        fputc(*s, f);
    }
    fputc('"', f);
}

static int write_conf(const char *path, const char *module, const struct sp_opts *o,
                      const struct sp_device *d)
{
    FILE *f = fopen(path, "w");

    if (f == NULL) {
        fprintf(stderr, "ihsm-speed: cannot write %s: %s\n", path, strerror(errno));
        return -1;
    }
    fputs("# written by ihsm-speed for its own library context\n"
          "openssl_conf = openssl_init\n"
          "[openssl_init]\n"
          "providers = provider_sect\n"
          "[provider_sect]\n"
          "default = default_sect\n"
          "ihsm = ihsm_sect\n"
          "[default_sect]\n"
          "activate = 1\n"
          "[ihsm_sect]\n"
          "module = ", f);
    conf_str(f, module);
    fputs("\nactivate = 1\nihsm-socket = ", f);
    conf_str(f, d->socket);
    fputs("\nihsm-credential = ", f);
    conf_str(f, d->credential);
    /* every record to the device: the provider's default keeps AEAD in
     * process (no size where the device won here), which is not what an
     * AEAD row measures */
    fputs("\nihsm-route = sign,derive,aead\nihsm-aead-min-size = 0\n", f);
    if (o->batch_size != 0)
        fprintf(f, "ihsm-batch-size = %u\n", o->batch_size);
    if (o->batch_delay_us != 0)
        fprintf(f, "ihsm-batch-delay-us = %u\n", o->batch_delay_us);
    if (fclose(f) != 0) {
        fprintf(stderr, "ihsm-speed: cannot write %s: %s\n", path, strerror(errno));
        return -1;
    }
    return 0;
}

int sp_libs_open(struct sp_libs *l, const struct sp_opts *o, const struct sp_device *d)
{
    char dir[4096], conf[256];

    memset(l, 0, sizeof(*l));
    if (o->provider_path != NULL) {
        snprintf(dir, sizeof(dir), "%s", o->provider_path);
    } else if (sp_exe_dir(dir, sizeof(dir)) == 0) {
        size_t n = strlen(dir);

        snprintf(dir + n, sizeof(dir) - n, "/../lib");
    } else {
        fprintf(stderr, "ihsm-speed: cannot find my own directory: give --provider-path\n");
        return -1;
    }
    if (snprintf(l->module, sizeof(l->module), "%s/ihsm.so", dir) >= (int)sizeof(l->module)) {
        fprintf(stderr, "ihsm-speed: --provider-path is too long\n");
        return -1;
    }
    if (access(l->module, R_OK) != 0) {
        fprintf(stderr, "ihsm-speed: no ihsm provider at %s (%s): build it (target ihsm), or "
                "give the directory holding ihsm.so with --provider-path\n", l->module,
                strerror(errno));
        return -1;
    }
    snprintf(conf, sizeof(conf), "%s/openssl.cnf", d->scratch);
    if (write_conf(conf, l->module, o, d) != 0)
        return -1;

    if ((l->ihsm = OSSL_LIB_CTX_new()) == NULL || (l->base = OSSL_LIB_CTX_new()) == NULL) {
        sp_ossl_err("cannot make a library context");
        return -1;
    }
    ERR_clear_error();
    if (!OSSL_LIB_CTX_load_config(l->ihsm, conf)
        || !OSSL_PROVIDER_available(l->ihsm, "ihsm")
        || !OSSL_PROVIDER_available(l->ihsm, "default")) {
        sp_ossl_err("cannot load the ihsm provider from %s", l->module);
        return -1;
    }
    if ((l->base_default = OSSL_PROVIDER_load(l->base, "default")) == NULL) {
        sp_ossl_err("cannot load OpenSSL's default provider for the baseline");
        return -1;
    }
    return 0;
}

void sp_libs_close(struct sp_libs *l)
{
    /* freeing a context unloads the providers its config loaded (and with
     * ihsm its queue); the one we loaded by hand we unload */
    OSSL_PROVIDER_unload(l->base_default);
    l->base_default = NULL;
    OSSL_LIB_CTX_free(l->ihsm);
    OSSL_LIB_CTX_free(l->base);
    l->ihsm = l->base = NULL;
}
