/*
 * Command line. Every mistake exits 2 with one sentence that names the
 * option, the value and what would be accepted.
 */
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "speed.h"

static const char usage_text[] =
    "usage: ihsm-speed [--alg LIST] [--mode sync|async] [--threads T] [--depth D]\n"
    "                  [--seconds S] [--warmup S] [--json] [--quiet] [--provider-path DIR]\n"
    "\n"
    "Crypto operations through the ihsm provider against OpenSSL's default provider,\n"
    "interleaved in slices within one run; prints ops/s, latency, ratio and CPU ratio.\n"
    "\n"
    "  --alg LIST          comma list of rows (default: all):\n"
    "                      rsa-2048 rsa-3072 ecdsa-p256 ecdsa-p384 ed25519 (sign)\n"
    "                      x25519 ecdh-p256 (derive)\n"
    "                      aes-256-gcm-64|-1k|-16k chacha20-poly1305-64|-1k|-16k (seal)\n"
    "  --mode sync|async   sync: T threads each running operations in a loop;\n"
    "                      async: D OpenSSL ASYNC jobs in flight on one thread (default)\n"
    "  --threads T         sync threads, 1-256 (default 1; implies --mode sync)\n"
    "  --depth D           async jobs in flight, 1-256 (default 64; implies --mode async)\n"
    "  --seconds S         measured seconds per side and row (default 5), in slices that\n"
    "                      alternate ihsm and baseline\n"
    "  --warmup S          unmeasured seconds per side before measuring (default 1)\n"
    "  --json              one JSON object per row per line on stdout\n"
    "  --quiet             no progress line on stderr\n"
    "  --provider-path DIR directory holding ihsm.so (default: ../lib next to this binary)\n"
    "  --batch-size N      the provider's ihsm-batch-size, 1-256 (default: the provider's)\n"
    "  --batch-delay-us N  the provider's ihsm-batch-delay-us, 1-100000 (default: the\n"
    "                      provider's)\n"
    "\n"
    "The device: IHSM_SOCKET and IHSM_CREDENTIAL when both are set, else ihsm-speed\n"
    "starts its own ihsmd (next to this binary) in a scratch directory.\n"
    "Exit status: 0 ran (rows the provider lacks are skipped), 1 failed, 2 usage.\n";

static void usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

static void usage_error(const char *fmt, ...)
{
    va_list ap;

    fputs("ihsm-speed: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputs("\n(ihsm-speed --help lists the options)\n", stderr);
    exit(SP_EXIT_USAGE);
}

static unsigned parse_uint(const char *opt, const char *v, unsigned lo, unsigned hi)
{
    char *end;
    unsigned long n;

    errno = 0;
    n = strtoul(v, &end, 10);
    if (*v == '\0' || *v == '-' || *v == '+' || *end != '\0' || errno != 0)
        usage_error("%s '%s' is not a whole number: use %u to %u", opt, v, lo, hi);
    if (n < lo || n > hi)
        usage_error("%s %s is out of range: use %u to %u", opt, v, lo, hi);
    return (unsigned)n;
}

static double parse_seconds(const char *opt, const char *v, double lo, double hi, int zero_ok)
{
    char *end;
    double d;

    errno = 0;
    d = strtod(v, &end);
    if (*v == '\0' || *end != '\0' || errno != 0 || d != d)
        usage_error("%s '%s' is not a number of seconds", opt, v);
    if (d < lo || d > hi || (!zero_ok && d == 0))
        usage_error("%s %s is out of range: use %s%g to %g seconds", opt, v,
                    zero_ok ? "" : "more than ", lo, hi);
    return d;
}

static void all_names(char *buf, size_t cap)
{
    size_t off = 0;

    buf[0] = '\0';
    for (size_t i = 0; i < sp_nrows && off < cap; i++)
        off += (size_t)snprintf(buf + off, cap - off, "%s%s", i ? ", " : "", sp_rows[i].name);
}

/* --alg a,b,c: each name once, in the order given. */
static void parse_algs(struct sp_opts *o, const char *list)
{
    char *copy = strdup(list), *save = NULL, *tok;
    char names[512];

    if (copy == NULL)
        usage_error("out of memory");
    o->nrows = 0;
    for (tok = strtok_r(copy, ",", &save); tok != NULL; tok = strtok_r(NULL, ",", &save)) {
        const struct sp_row *r;
        size_t j;

        while (*tok == ' ')
            tok++;
        if (*tok == '\0')
            continue;
        if ((r = sp_row_find(tok)) == NULL) {
            all_names(names, sizeof(names));
            usage_error("unknown --alg '%s': use one of %s (or a comma list of them)", tok,
                        names);
        }
        for (j = 0; j < o->nrows && o->rows[j] != r; j++)
            ;
        if (j == o->nrows && o->nrows < sizeof(o->rows) / sizeof(o->rows[0]))
            o->rows[o->nrows++] = r;
    }
    free(copy);
    if (o->nrows == 0)
        usage_error("--alg '%s' names no row: use a comma list such as ecdsa-p256,rsa-2048",
                    list);
}

void sp_opts_parse(struct sp_opts *o, int argc, char **argv)
{
    static const struct option lopts[] = {
        { "alg", required_argument, NULL, 'a' },
        { "mode", required_argument, NULL, 'm' },
        { "threads", required_argument, NULL, 't' },
        { "depth", required_argument, NULL, 'd' },
        { "seconds", required_argument, NULL, 's' },
        { "warmup", required_argument, NULL, 'w' },
        { "json", no_argument, NULL, 'j' },
        { "quiet", no_argument, NULL, 'q' },
        { "provider-path", required_argument, NULL, 'p' },
        { "batch-size", required_argument, NULL, 'b' },
        { "batch-delay-us", required_argument, NULL, 'D' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    int c, mode_given = 0, threads_given = 0, depth_given = 0;

    memset(o, 0, sizeof(*o));
    o->mode = SP_MODE_ASYNC;
    o->threads = 1;
    o->depth = 64;
    o->seconds = 5;
    o->warmup = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "+:h", lopts, NULL)) != -1) {
        switch (c) {
        case 'a': parse_algs(o, optarg); break;
        case 'm':
            if (strcmp(optarg, "sync") == 0)
                o->mode = SP_MODE_SYNC;
            else if (strcmp(optarg, "async") == 0)
                o->mode = SP_MODE_ASYNC;
            else
                usage_error("unknown --mode '%s': use 'sync' or 'async'", optarg);
            mode_given = 1;
            break;
        case 't':
            o->threads = parse_uint("--threads", optarg, 1, SP_MAX_THREADS);
            threads_given = 1;
            break;
        case 'd':
            o->depth = parse_uint("--depth", optarg, 1, SP_MAX_DEPTH);
            depth_given = 1;
            break;
        case 's': o->seconds = parse_seconds("--seconds", optarg, 0, SP_MAX_SECONDS, 0); break;
        case 'w': o->warmup = parse_seconds("--warmup", optarg, 0, SP_MAX_WARMUP, 1); break;
        case 'j': o->json = 1; break;
        case 'q': o->quiet = 1; break;
        case 'p':
            if (*optarg == '\0')
                usage_error("--provider-path is empty: give the directory holding ihsm.so");
            o->provider_path = optarg;
            break;
        case 'b': o->batch_size = parse_uint("--batch-size", optarg, 1, 256); break;
        case 'D': o->batch_delay_us = parse_uint("--batch-delay-us", optarg, 1, 100000); break;
        case 'h':
            fputs(usage_text, stdout);
            exit(SP_EXIT_OK);
        case ':':
            usage_error("%s needs a value", argv[optind - 1]);
        default:
            if (optopt != 0)
                usage_error("unknown option '-%c'", optopt);
            usage_error("unknown option '%s'", argv[optind - 1]);
        }
    }
    if (optind < argc)
        usage_error("unexpected argument '%s': every setting is an option", argv[optind]);
    if (!mode_given) {
        if (threads_given && depth_given)
            usage_error("--threads is for --mode sync and --depth for --mode async: give one, "
                        "or say --mode");
        if (threads_given)
            o->mode = SP_MODE_SYNC;
    } else if (o->mode == SP_MODE_SYNC && depth_given) {
        usage_error("--depth is for --mode async (sync mode runs --threads threads)");
    } else if (o->mode == SP_MODE_ASYNC && threads_given) {
        usage_error("--threads is for --mode sync (async mode runs --depth jobs on one thread)");
    }
    if (o->nrows == 0)
        for (size_t i = 0; i < sp_nrows; i++)
            o->rows[o->nrows++] = &sp_rows[i];
}
