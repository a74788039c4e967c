/*
 * What a person reads: the progress line on stderr (once a second, redrawn
 * in place on a terminal, one line each otherwise) and the summary.
 */
#include <inttypes.h>
#include <stdio.h>
#include <unistd.h>

#include "tlsload.h"

static const char *requested_tls(const struct tl_opts *o)
{
    return o->tls_version == TLS1_2_VERSION ? "1.2" : o->tls_version == TLS1_3_VERSION ? "1.3" : "any";
}

void tl_report_progress(struct tl_run *r, uint64_t now, int final)
{
    static uint64_t last_ok, last_ns;
    static int printed, tty = -1;
    uint64_t ok = 0, err = 0;
    double dt, elapsed;
    char line[160];

    if (r->o->quiet)
        return;
    if (tty < 0)
        tty = isatty(STDERR_FILENO);
    if (final) {
        if (printed && tty)
            fputc('\n', stderr);
        return;
    }
    for (unsigned i = 0; i < r->nworkers; i++) {
        ok += atomic_load_explicit(&r->workers[i].prog_ok, memory_order_relaxed);
        err += atomic_load_explicit(&r->workers[i].prog_err, memory_order_relaxed);
    }
    if (last_ns == 0)
        last_ns = r->t0_ns;
    dt = (double)(now - last_ns) / 1e9;
    if (now < r->measure_ns) {
        snprintf(line, sizeof(line), "ihsm-tlsload: warming up, %.0f s left",
                 (double)(r->measure_ns - now) / 1e9);
    } else {
        elapsed = (double)(now - r->measure_ns) / 1e9;
        snprintf(line, sizeof(line), "ihsm-tlsload: %5.0f s %12" PRIu64 " %s %10.0f/s %8" PRIu64 " errors",
                 elapsed, ok, r->ops->unit, dt > 0 ? (double)(ok - last_ok) / dt : 0.0, err);
    }
    last_ok = ok;
    last_ns = now;
    if (tty)
        fprintf(stderr, "\r%s\033[K", line);
    else
        fprintf(stderr, "%s\n", line);
    fflush(stderr);
    printed = 1;
}

static double us(uint64_t ns)
{
    return (double)ns / 1000.0;
}

void tl_report_human(FILE *f, const struct tl_run *r, const struct tl_result *res)
{
    const struct tl_opts *o = r->o;
    const struct tl_stats *st = &res->st;
    const struct tl_hist *h = &st->lat;
    uint64_t errs = tl_stats_errors(st);
    double per_s = res->duration_s > 0 ? (double)st->ok / res->duration_s : 0;

    fprintf(f, "ihsm-tlsload %s %s (%s): %.2f s, concurrency %u", o->mode_name, o->connect,
            o->addr_str, res->duration_s, o->concurrency);
    if (o->mode == TL_MODE_H2)
        fprintf(f, " x %u streams", o->streams);
    fprintf(f, ", %u thread%s%s\n", o->threads, o->threads == 1 ? "" : "s",
            res->interrupted ? " (interrupted)" : "");
    if (atomic_load(&r->have_params))
        fprintf(f, "  tls          %s %s %s %s\n", r->tls_version, r->cipher, r->group,
                r->peer_sig);
    else
        fprintf(f, "  tls          %s requested, no handshake completed\n", requested_tls(o));
    fprintf(f, "  %-12s %" PRIu64 " (%.1f/s)\n", r->ops->unit, st->ok, per_s);
    if (h->count > 0)
        fprintf(f, "  latency      p50 %.1f us  p90 %.1f us  p99 %.1f us  max %.1f us  mean %.1f us\n",
                us(tl_hist_quantile(h, 0.50)), us(tl_hist_quantile(h, 0.90)),
                us(tl_hist_quantile(h, 0.99)), us(h->max_ns), us(h->sum_ns / h->count));
    fprintf(f, "  errors       %" PRIu64 "\n", errs);
    for (unsigned k = 0; k < TL_ERR__COUNT; k++) {
        const char *last = "";

        if (st->errors[k] == 0)
            continue;
        for (unsigned i = 0; i < r->nworkers && last[0] == '\0'; i++)
            last = r->workers[i].last_err[k];
        fprintf(f, "    %-10s %" PRIu64 "  (last: %s)\n", tl_err_names[k], st->errors[k], last);
    }
    fprintf(f, "  connections  %" PRIu64 "\n", st->connections);
    fprintf(f, "  bytes        in %" PRIu64 "  out %" PRIu64, st->bytes_in, st->bytes_out);
    if (o->mode == TL_MODE_H2)
        fprintf(f, "  body %" PRIu64, st->body_bytes);
    fputc('\n', f);
    fprintf(f, "  client cpu   %.3f s (user %.3f, system %.3f)", res->cpu_s, res->cpu_user_s,
            res->cpu_sys_s);
    if (st->ok > 0)
        fprintf(f, ", %.1f us per %s", res->cpu_s * 1e6 / (double)st->ok,
                o->mode == TL_MODE_H2 ? "request" : "handshake");
    fputc('\n', f);
}
