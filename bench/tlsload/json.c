/*
 * The machine-readable result: one JSON object on one line, so scripts and
 * the scenario runner can read a run with one json.loads().
 */
#include <inttypes.h>
#include <stdio.h>

#include "tlsload.h"

static void jstr(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;

        if (ch == '"' || ch == '\\')
            fprintf(f, "\\%c", ch);
        else if (ch < 0x20 || ch == 0x7f)
            fprintf(f, "\\u%04x", ch);
        else
            fputc(ch, f);
    }
    fputc('"', f);
}

static void jkey_str(FILE *f, const char *k, const char *v)
{
    fprintf(f, ",\"%s\":", k);
    jstr(f, v);
}

static void jkey_num(FILE *f, const char *k, double v)
{
    fprintf(f, ",\"%s\":%.3f", k, v);
}

static void jkey_u64(FILE *f, const char *k, uint64_t v)
{
    fprintf(f, ",\"%s\":%" PRIu64, k, v);
}

void tl_report_json(FILE *f, const struct tl_run *r, const struct tl_result *res)
{
    const struct tl_opts *o = r->o;
    const struct tl_stats *st = &res->st;
    const struct tl_hist *h = &st->lat;
    int have = atomic_load(&r->have_params);
    const char *req = o->tls_version == TLS1_2_VERSION ? "1.2"
                      : o->tls_version == TLS1_3_VERSION ? "1.3" : "any";

    fputs("{\"mode\":", f);
    jstr(f, o->mode_name);
    jkey_str(f, "target", o->connect);
    jkey_str(f, "address", o->addr_str);
    jkey_str(f, "tls", have ? r->tls_version : req);
    jkey_str(f, "tls_requested", req);
    jkey_str(f, "cipher", have ? r->cipher : "");
    jkey_str(f, "group", have ? r->group : "");
    jkey_str(f, "sigalg", have ? r->peer_sig : "");
    jkey_u64(f, "concurrency", o->concurrency);
    jkey_u64(f, "threads", o->threads);
    if (o->mode == TL_MODE_H2)
        jkey_u64(f, "streams", o->streams);
    jkey_num(f, "duration_s", res->duration_s);
    jkey_u64(f, r->ops->unit, st->ok);
    jkey_num(f, "per_s", res->duration_s > 0 ? (double)st->ok / res->duration_s : 0);
    jkey_num(f, "p50_us", (double)tl_hist_quantile(h, 0.50) / 1000.0);
    jkey_num(f, "p90_us", (double)tl_hist_quantile(h, 0.90) / 1000.0);
    jkey_num(f, "p99_us", (double)tl_hist_quantile(h, 0.99) / 1000.0);
    jkey_num(f, "max_us", (double)h->max_ns / 1000.0);
    jkey_num(f, "mean_us", h->count ? (double)h->sum_ns / (double)h->count / 1000.0 : 0);
    jkey_u64(f, "errors", tl_stats_errors(st));
    fputs(",\"errors_by_kind\":{", f);
    for (unsigned k = 0; k < TL_ERR__COUNT; k++)
        fprintf(f, "%s\"%s\":%" PRIu64, k ? "," : "", tl_err_names[k], st->errors[k]);
    fputs("},\"last_errors\":{", f);
    for (unsigned k = 0, n = 0; k < TL_ERR__COUNT; k++) {
        const char *last = "";

        if (st->errors[k] == 0)
            continue;
        for (unsigned i = 0; i < r->nworkers && last[0] == '\0'; i++)
            last = r->workers[i].last_err[k];
        fprintf(f, "%s\"%s\":", n++ ? "," : "", tl_err_names[k]);
        jstr(f, last);
    }
    fputc('}', f);
    jkey_u64(f, "connections", st->connections);
    jkey_u64(f, "bytes_in", st->bytes_in);
    jkey_u64(f, "bytes_out", st->bytes_out);
    if (o->mode == TL_MODE_H2) {
        jkey_u64(f, "body_bytes", st->body_bytes);
        fputs(",\"per_connection\":[", f);
        for (unsigned i = 0; i < res->nconns; i++)
            fprintf(f, "%s%" PRIu64, i ? "," : "", res->per_conn[i]);
        fputc(']', f);
    }
    jkey_num(f, "cpu_s_client", res->cpu_s);
    jkey_num(f, "cpu_user_s", res->cpu_user_s);
    jkey_num(f, "cpu_sys_s", res->cpu_sys_s);
    jkey_num(f, "cpu_us_per_op", st->ok ? res->cpu_s * 1e6 / (double)st->ok : 0);
    fprintf(f, ",\"interrupted\":%s}\n", res->interrupted ? "true" : "false");
}
