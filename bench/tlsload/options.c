/*
 * Command line: mode, options, and the target safety rule (loopback only
 * unless --allow-remote). Every refusal exits 2 with one sentence that says
 * what was wrong, followed by the usage.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tlsload.h"

void tl_usage(FILE *f)
{
    fputs(
"usage: ihsm-tlsload handshake --connect HOST:PORT [options]\n"
"       ihsm-tlsload h2 --connect HOST:PORT [--streams S] [--path P] [options]\n"
"\n"
"modes:\n"
"  handshake            every connection is a new full TLS handshake (no\n"
"                       resumption); with --request PATH one HTTP/1.1 GET follows\n"
"  h2                   HTTP/2 GETs over long-lived TLS connections (ALPN h2)\n"
"\n"
"target and TLS:\n"
"  --connect HOST:PORT  server to load ([::1]:PORT for IPv6); must resolve to\n"
"                       127.0.0.0/8 or ::1 unless --allow-remote\n"
"  --allow-remote       allow a target that is not on this machine\n"
"  --sni NAME           server name to send (default: HOST when it is a name)\n"
"  --tls 1.2|1.3        offer only this protocol version (default: both)\n"
"  --groups LIST        key exchange groups, e.g. X25519:P-256\n"
"  --sigalgs LIST       signature algorithms, e.g. ECDSA+SHA256:RSA-PSS+SHA256\n"
"  --ciphers LIST       TLS 1.2 cipher list (OpenSSL syntax)\n"
"  --ciphersuites LIST  TLS 1.3 cipher suites\n"
"  --cafile FILE        verify the server certificate and name against FILE\n"
"  --insecure           do not verify the certificate (the default)\n"
"\n"
"load:\n"
"  --concurrency C      connections open at once (default 1)\n"
"  --threads N          worker threads, each with its own epoll loop (default 1)\n"
"  --duration S         seconds to measure (default 10, or until --count; max 3600)\n"
"  --count N            stop after N handshakes (h2: requests) were attempted\n"
"  --rate R             handshake: start at most R handshakes per second\n"
"  --warmup S           run S seconds unmeasured first\n"
"  --timeout S          give up on a handshake or request after S seconds (default 10)\n"
"  --request PATH       handshake: GET PATH after the handshake, expect status 200\n"
"  --streams S          h2: concurrent streams per connection (default 1)\n"
"  --path PATH          h2: path to GET (default /)\n"
"\n"
"output:\n"
"  --json               one JSON object on one line on stdout\n"
"  --quiet              no progress line on stderr\n"
"  -h, --help           this text\n"
"\n"
"exit: 0 ran, 1 could not run (nothing listens, every attempt failed), 2 usage\n",
        f);
}

static void __attribute__((noreturn, format(printf, 1, 2)))
usage_error(const char *fmt, ...)
{
    va_list ap;

    fputs("ihsm-tlsload: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputs("\n\n", stderr);
    tl_usage(stderr);
    exit(TL_EXIT_USAGE);
}

static uint64_t parse_uint(const char *opt, const char *s, uint64_t min, uint64_t max)
{
    char *end;
    unsigned long long v;

    errno = 0;
    if (s[0] < '0' || s[0] > '9')
        usage_error("--%s wants a whole number, not '%s'", opt, s);
    v = strtoull(s, &end, 10);
    if (errno != 0 || *end != '\0')
        usage_error("--%s wants a whole number, not '%s'", opt, s);
    if (v < min || v > max)
        usage_error("--%s %s is out of range: use %llu to %llu", opt, s,
                    (unsigned long long)min, (unsigned long long)max);
    return v;
}

static double parse_pos_double(const char *opt, const char *s)
{
    char *end;
    double v;

    errno = 0;
    v = strtod(s, &end);
    if (errno != 0 || *end != '\0' || end == s || !(v > 0) || v > 1e9)
        usage_error("--%s wants a positive number, not '%s'", opt, s);
    return v;
}

enum {
    O_CONNECT = 256, O_SNI, O_TLS, O_GROUPS, O_SIGALGS, O_CIPHERS, O_SUITES,
    O_CAFILE, O_INSECURE, O_CONC, O_THREADS, O_DURATION, O_COUNT, O_RATE,
    O_WARMUP, O_TIMEOUT, O_REQUEST, O_STREAMS, O_PATH, O_JSON, O_QUIET,
    O_REMOTE,
};

static const struct option longopts[] = {
    {"connect", required_argument, NULL, O_CONNECT},
    {"sni", required_argument, NULL, O_SNI},
    {"tls", required_argument, NULL, O_TLS},
    {"groups", required_argument, NULL, O_GROUPS},
    {"sigalgs", required_argument, NULL, O_SIGALGS},
    {"ciphers", required_argument, NULL, O_CIPHERS},
    {"ciphersuites", required_argument, NULL, O_SUITES},
    {"cafile", required_argument, NULL, O_CAFILE},
    {"insecure", no_argument, NULL, O_INSECURE},
    {"concurrency", required_argument, NULL, O_CONC},
    {"threads", required_argument, NULL, O_THREADS},
    {"duration", required_argument, NULL, O_DURATION},
    {"count", required_argument, NULL, O_COUNT},
    {"rate", required_argument, NULL, O_RATE},
    {"warmup", required_argument, NULL, O_WARMUP},
    {"timeout", required_argument, NULL, O_TIMEOUT},
    {"request", required_argument, NULL, O_REQUEST},
    {"streams", required_argument, NULL, O_STREAMS},
    {"path", required_argument, NULL, O_PATH},
    {"json", no_argument, NULL, O_JSON},
    {"quiet", no_argument, NULL, O_QUIET},
    {"allow-remote", no_argument, NULL, O_REMOTE},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

static void check_path(const char *opt, const char *p)
{
    if (p[0] != '/')
        usage_error("--%s wants a path starting with '/', not '%s'", opt, p);
    for (const char *q = p; *q; q++)
        if ((unsigned char)*q <= ' ' || *q == 0x7f)
            usage_error("--%s must not contain spaces or control characters", opt);
    if (strlen(p) > 1024)
        usage_error("--%s is longer than 1024 bytes", opt);
}

void tl_opts_parse(struct tl_opts *o, int argc, char **argv)
{
    int have_duration = 0, have_count = 0, c;
    const char *mode;

    memset(o, 0, sizeof(*o));
    o->concurrency = 1;
    o->threads = 1;
    o->streams = 1;
    o->timeout_s = 10;
    o->path = "/";

    if (argc < 2)
        usage_error("missing mode: use 'handshake' or 'h2'");
    mode = argv[1];
    if (strcmp(mode, "-h") == 0 || strcmp(mode, "--help") == 0) {
        tl_usage(stdout);
        exit(TL_EXIT_OK);
    }
    if (strcmp(mode, "handshake") == 0)
        o->mode = TL_MODE_HANDSHAKE;
    else if (strcmp(mode, "h2") == 0)
        o->mode = TL_MODE_H2;
    else
        usage_error("unknown mode '%s': use 'handshake' or 'h2'", mode);
    o->mode_name = mode;

    opterr = 0;
    optind = 2;
    while ((c = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
        switch (c) {
        case O_CONNECT: o->connect = optarg; break;
        case O_SNI:
            if (optarg[0] == '\0' || strlen(optarg) > 255)
                usage_error("--sni wants a host name of 1 to 255 bytes");
            o->sni = optarg;
            break;
        case O_TLS:
            if (strcmp(optarg, "1.2") == 0)
                o->tls_version = TLS1_2_VERSION;
            else if (strcmp(optarg, "1.3") == 0)
                o->tls_version = TLS1_3_VERSION;
            else
                usage_error("--tls wants 1.2 or 1.3, not '%s'", optarg);
            break;
        case O_GROUPS: o->groups = optarg; break;
        case O_SIGALGS: o->sigalgs = optarg; break;
        case O_CIPHERS: o->ciphers = optarg; break;
        case O_SUITES: o->ciphersuites = optarg; break;
        case O_CAFILE: o->cafile = optarg; break;
        case O_INSECURE: o->insecure = 1; break;
        case O_CONC:
            o->concurrency = (unsigned)parse_uint("concurrency", optarg, 1, TL_MAX_CONCURRENCY);
            break;
        case O_THREADS:
            o->threads = (unsigned)parse_uint("threads", optarg, 1, TL_MAX_THREADS);
            break;
        case O_DURATION:
            o->duration_s = (unsigned)parse_uint("duration", optarg, 0, TL_MAX_DURATION_S);
            have_duration = 1;
            break;
        case O_COUNT:
            o->count = parse_uint("count", optarg, 0, TL_MAX_COUNT);
            have_count = 1;
            break;
        case O_RATE: o->rate = parse_pos_double("rate", optarg); break;
        case O_WARMUP:
            o->warmup_s = (unsigned)parse_uint("warmup", optarg, 0, TL_MAX_DURATION_S);
            break;
        case O_TIMEOUT:
            o->timeout_s = (unsigned)parse_uint("timeout", optarg, 1, TL_MAX_DURATION_S);
            break;
        case O_REQUEST: check_path("request", optarg); o->request = optarg; break;
        case O_STREAMS:
            o->streams = (unsigned)parse_uint("streams", optarg, 1, TL_MAX_STREAMS);
            break;
        case O_PATH: check_path("path", optarg); o->path = optarg; break;
        case O_JSON: o->json = 1; break;
        case O_QUIET: o->quiet = 1; break;
        case O_REMOTE: o->allow_remote = 1; break;
        case 'h': tl_usage(stdout); exit(TL_EXIT_OK);
        case ':': usage_error("%s needs a value", argv[optind - 1]);
        default: usage_error("unknown option '%s'", argv[optind - 1]);
        }
    }
    if (optind < argc)
        usage_error("unexpected argument '%s'", argv[optind]);

    if (o->connect == NULL)
        usage_error("missing --connect HOST:PORT (the TLS server to load)");
    if (have_count && have_duration && o->count == 0 && o->duration_s == 0)
        usage_error("--count and --duration are both 0: give a --duration in seconds or a --count");
    if (!have_count && have_duration && o->duration_s == 0)
        usage_error("--duration 0 without --count would never stop: give a --count");
    if (have_count && !have_duration && o->count == 0)
        usage_error("--count 0 without --duration would never stop: give a --duration");
    if (!have_duration && !have_count)
        o->duration_s = 10;
    /* --count alone: run until the count is reached, within the hard cap */
    if (o->cafile && o->insecure)
        usage_error("--cafile and --insecure contradict each other: give one");
    if (o->threads > o->concurrency)
        usage_error("--threads %u is more than --concurrency %u: each thread needs a connection",
                    o->threads, o->concurrency);
    if (o->mode == TL_MODE_H2) {
        if (o->request)
            usage_error("--request is for handshake mode; h2 mode takes --path");
        if (o->rate > 0)
            usage_error("--rate is for handshake mode");
    } else {
        if (o->streams != 1)
            usage_error("--streams is for h2 mode");
        if (strcmp(o->path, "/") != 0)
            usage_error("--path is for h2 mode; handshake mode takes --request");
    }
}

static int is_loopback(const struct sockaddr *sa)
{
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
        return (ntohl(in->sin_addr.s_addr) >> 24) == 127;
    }
    if (sa->sa_family == AF_INET6) {
        const struct in6_addr *a = &((const struct sockaddr_in6 *)sa)->sin6_addr;
        if (IN6_IS_ADDR_LOOPBACK(a))
            return 1;
        return IN6_IS_ADDR_V4MAPPED(a) && a->s6_addr[12] == 127;
    }
    return 0;
}

static int is_numeric_host(const char *h)
{
    unsigned char buf[sizeof(struct in6_addr)];

    return inet_pton(AF_INET, h, buf) == 1 || inet_pton(AF_INET6, h, buf) == 1;
}

void tl_opts_resolve(struct tl_opts *o)
{
    static char authority[300];
    const char *s = o->connect, *colon;
    struct addrinfo hints, *res = NULL;
    size_t hl;
    int rc;

    if (s[0] == '[') {
        const char *rb = strchr(s, ']');
        if (rb == NULL || rb[1] != ':')
            usage_error("--connect '%s': write an IPv6 target as [ADDR]:PORT", s);
        hl = (size_t)(rb - s - 1);
        s++;
        colon = rb + 1;
    } else {
        colon = strrchr(s, ':');
        if (colon == NULL)
            usage_error("--connect '%s' has no port: write HOST:PORT", s);
        hl = (size_t)(colon - s);
        if (memchr(s, ':', hl) != NULL)
            usage_error("--connect '%s': write an IPv6 target as [ADDR]:PORT", o->connect);
    }
    if (hl == 0 || hl >= sizeof(o->host))
        usage_error("--connect '%s' has no usable host", o->connect);
    memcpy(o->host, s, hl);
    o->host[hl] = '\0';
    parse_uint("connect port", colon + 1, 1, 65535);
    snprintf(o->port, sizeof(o->port), "%s", colon + 1);

    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV;
    rc = getaddrinfo(o->host, o->port, &hints, &res);
    if (rc != 0 || res == NULL) {
        fprintf(stderr, "ihsm-tlsload: cannot resolve '%s': %s\n", o->host, gai_strerror(rc));
        exit(TL_EXIT_USAGE);
    }
    memcpy(&o->addr, res->ai_addr, res->ai_addrlen);
    o->addrlen = res->ai_addrlen;
    freeaddrinfo(res);
    if (o->addr.ss_family == AF_INET)
        inet_ntop(AF_INET, &((struct sockaddr_in *)&o->addr)->sin_addr, o->addr_str,
                  sizeof(o->addr_str));
    else
        inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&o->addr)->sin6_addr, o->addr_str,
                  sizeof(o->addr_str));

    if (!o->allow_remote && !is_loopback((struct sockaddr *)&o->addr)) {
        fprintf(stderr,
                "ihsm-tlsload: refusing to load %s (%s): not a loopback address. "
                "Load only servers you run; pass --allow-remote to target a host "
                "that is yours.\n",
                o->connect, o->addr_str);
        exit(TL_EXIT_USAGE);
    }
    if (o->sni == NULL && !is_numeric_host(o->host))
        o->sni = o->host;
    if (o->sni != NULL) {
        snprintf(authority, sizeof(authority), "%s:%s", o->sni, o->port);
        o->authority = authority;
    } else {
        o->authority = o->connect;
    }
}
