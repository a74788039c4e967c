/*
 * Output: a table on stdout (or one JSON object per row per line with
 * --json), and a progress line on stderr that --quiet silences. On a
 * terminal the progress line is rewritten in place; otherwise (logs, CI)
 * it is printed at most once a second so a log stays readable.
 */
#include <stdarg.h>
#include <string.h>
#include <unistd.h>

#include "speed.h"

#define LOG_PROGRESS_EVERY_NS 1000000000ull

static int progress_shown;
static uint64_t progress_last_ns;

void sp_progress(const struct sp_opts *o, const char *fmt, ...)
{
    static int tty = -1;
    char line[160];
    uint64_t now = sp_now_ns();
    va_list ap;

    if (o->quiet)
        return;
    if (tty < 0)
        tty = isatty(2);
    if (!tty && progress_last_ns != 0 && now - progress_last_ns < LOG_PROGRESS_EVERY_NS)
        return;
    progress_last_ns = now;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    if (tty) {
        fprintf(stderr, "\r\033[K%s", line);
        progress_shown = 1;
    } else {
        fprintf(stderr, "ihsm-speed: %s\n", line);
    }
    fflush(stderr);
}

void sp_progress_end(const struct sp_opts *o)
{
    if (progress_shown) {
        fputs("\r\033[K", stderr);
        fflush(stderr);
        progress_shown = 0;
    }
}

void sp_report_skip(const struct sp_opts *o, const struct sp_row *row, const char *missing)
{
    sp_progress_end(o);
    /* stdout carries rows with every field under --json: say it on stderr there */
    fprintf(o->json ? stderr : stdout, "%-22s unavailable: the ihsm provider has no %s (skipped)\n",
            row->name, missing);
}

void sp_report_header(FILE *f, const struct sp_opts *o)
{
    fprintf(f, "%-22s %-6s %-5s %3s %5s %11s %8s %8s %11s %6s %9s %9s\n", "alg", "op", "mode",
            "thr", "depth", "ihsm op/s", "p50 us", "p99 us", "default/s", "ratio", "cpu_ratio",
            "req/frame");
}

static void num_or_dash(FILE *f, int width, int prec, double v)
{
    if (v < 0)
        fprintf(f, " %*s", width, "-");
    else
        fprintf(f, " %*.*f", width, prec, v);
}

void sp_report_row(FILE *f, const struct sp_opts *o, const struct sp_result *r)
{
    fprintf(f, "%-22s %-6s %-5s %3u %5u %11.0f %8.1f %8.1f %11.0f %6.3f", r->row->name,
            sp_op_name(r->row->kind), r->mode == SP_MODE_SYNC ? "sync" : "async", r->threads,
            r->depth, r->ops_per_s, r->p50_us, r->p99_us, r->base_ops_per_s, r->ratio);
    num_or_dash(f, 9, 3, r->cpu_ratio);
    num_or_dash(f, 9, 1, r->requests_per_frame);
    fputc('\n', f);
    fflush(f);
}

static void jnum(FILE *f, const char *k, double v, int prec)
{
    if (v < 0)
        fprintf(f, ",\"%s\":null", k);
    else
        fprintf(f, ",\"%s\":%.*f", k, prec, v);
}

static void ju(FILE *f, const char *k, unsigned long long v)
{
    fprintf(f, ",\"%s\":%llu", k, v);
}

/* Names and numbers only: no value here needs string escaping. */
void sp_report_json(FILE *f, const struct sp_result *r)
{
    fprintf(f, "{\"alg\":\"%s\",\"op\":\"%s\",\"mode\":\"%s\"", r->row->name,
            sp_op_name(r->row->kind), r->mode == SP_MODE_SYNC ? "sync" : "async");
    ju(f, "threads", r->threads);
    ju(f, "depth", r->depth);
    if (r->row->size != 0)
        ju(f, "bytes", r->row->size);
    jnum(f, "ops_per_s", r->ops_per_s, 1);
    jnum(f, "p50_us", r->p50_us, 2);
    jnum(f, "p99_us", r->p99_us, 2);
    jnum(f, "baseline_ops_per_s", r->base_ops_per_s, 1);
    jnum(f, "ratio", r->ratio, 4);
    jnum(f, "cpu_s_caller", r->cpu_caller_s, 3);
    jnum(f, "cpu_s_device", r->cpu_device_s, 3);
    jnum(f, "cpu_ratio", r->cpu_ratio, 4);
    jnum(f, "baseline_cpu_s", r->base_cpu_s, 3);
    /* the same CPU time per operation: where an ihsm operation's cost goes */
    jnum(f, "cpu_us_per_op_caller", r->ops ? r->cpu_caller_s * 1e6 / (double)r->ops : -1, 2);
    jnum(f, "cpu_us_per_op_device",
         r->ops && r->cpu_device_s >= 0 ? r->cpu_device_s * 1e6 / (double)r->ops : -1, 2);
    jnum(f, "baseline_cpu_us_per_op",
         r->base_ops ? r->base_cpu_s * 1e6 / (double)r->base_ops : -1, 2);
    ju(f, "baseline_threads", r->base_threads);
    ju(f, "baseline_depth", r->base_depth);
    jnum(f, "baseline_p50_us", r->base_p50_us, 2);
    jnum(f, "baseline_p99_us", r->base_p99_us, 2);
    ju(f, "ops", r->ops);
    ju(f, "baseline_ops", r->base_ops);
    jnum(f, "seconds", r->seconds_each, 3);
    ju(f, "slices", r->slices);
    ju(f, "device_ops", r->device_ops);
    if (r->device_counter < 0)
        fprintf(f, ",\"device_counter\":null");
    else
        ju(f, "device_counter", (unsigned long long)r->device_counter);
    fprintf(f, ",\"device_counter_name\":\"%s\"", sp_device_counter(r->row->kind));
    jnum(f, "requests_per_frame", r->requests_per_frame, 2);
    ju(f, "ncpu", r->ncpu);
    jnum(f, "loadavg1", r->loadavg1, 2);
    fprintf(f, ",\"verified\":%s}\n", r->verified ? "true" : "false");
    fflush(f);
}
