/*
 * Verdicts. A vector's "result" says what must happen: valid (succeed with
 * the expected output), invalid (be refused), acceptable (either, but an
 * output, if any, must be the expected one). One line per failing vector,
 * skip reasons grouped with their tcIds, and the counts per file.
 */
#include "wycheproof.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_SKIP_IDS 12

struct wp_skip {
    wp_skip *next;
    char *reason;
    unsigned long count;
    long long ids[MAX_SKIP_IDS];
};

void wp_outcome_set(wp_outcome *o, enum wp_got got, const char *fmt, ...)
{
    va_list ap;

    o->got = got;
    va_start(ap, fmt);
    vsnprintf(o->detail, sizeof(o->detail), fmt, ap);
    va_end(ap);
}

void wp_outcome_key_refused(wp_outcome *o, int device_limit, const char *why)
{
    /* A key the device does not hold (IHSM_ERR_UNSUPPORTED) means the vector
     * cannot run here, whatever its result: refusing the key tested nothing
     * the vector is about. Any other refusal (permission, bad input, the
     * provider not loading it) is a refusal, which fails a valid vector. */
    wp_outcome_set(o, device_limit ? WP_GOT_SKIP : WP_GOT_REFUSED, "%s", why);
}

static const char *got_name(enum wp_got g)
{
    switch (g) {
    case WP_GOT_OK:
        return "accepted";
    case WP_GOT_WRONG:
        return "a wrong result";
    case WP_GOT_REFUSED:
        return "refused";
    case WP_GOT_SKIP:
        return "skipped";
    }
    return "?";
}

static void flags_str(const wp_json *test, char *buf, size_t len)
{
    const wp_json *f = wp_json_arr(test, "flags");
    size_t i, o = 0;

    buf[0] = '\0';
    for (i = 0; f != NULL && i < f->n && o + 2 < len; i++) {
        if (f->items[i]->type != WP_JSTR)
            continue;
        o += (size_t)snprintf(buf + o, len - o, "%s%s", o ? "," : "", f->items[i]->str);
    }
}

static void add_skip(wp_run *r, long long id, const char *reason)
{
    wp_skip *s, **tail = &r->skips;

    for (s = r->skips; s != NULL; s = s->next) {
        if (strcmp(s->reason, reason) == 0)
            break;
        tail = &s->next;
    }
    if (s == NULL) {
        if ((s = calloc(1, sizeof(*s))) == NULL || (s->reason = strdup(reason)) == NULL) {
            free(s);
            return;
        }
        *tail = s;
    }
    if (s->count < MAX_SKIP_IDS)
        s->ids[s->count] = id;
    s->count++;
}

int wp_report(wp_run *r, const wp_json *group, const wp_json *test, const wp_outcome *o)
{
    const char *result = wp_json_str(test, "result");
    const char *comment = wp_json_str(test, "comment");
    long long id = -1;
    char flags[256];
    int pass;

    (void)group;
    wp_json_int(test, "tcId", &id);
    if (o->got == WP_GOT_SKIP) {
        r->skipped++;
        add_skip(r, id, o->detail);
        return 0;
    }
    if (result == NULL) {
        pass = 0;
    } else if (strcmp(result, "valid") == 0) {
        pass = o->got == WP_GOT_OK;
    } else if (strcmp(result, "invalid") == 0) {
        pass = o->got == WP_GOT_REFUSED;
    } else if (strcmp(result, "acceptable") == 0) {
        pass = o->got == WP_GOT_OK || o->got == WP_GOT_REFUSED;
    } else {
        pass = 0;
    }
    flags_str(test, flags, sizeof(flags));
    if (pass) {
        r->passed++;
        if (r->verbose)
            printf("ok   tcId %lld (%s) [%s] %s: %s%s%s\n", id, comment ? comment : "", flags,
                   result, got_name(o->got), o->detail[0] ? ": " : "", o->detail);
        return 1;
    }
    r->failed++;
    printf("FAIL %s tcId %lld (%s) [%s]: expected %s, got %s%s%s\n", r->file, id,
           comment ? comment : "", flags, result ? result : "(no result field)",
           got_name(o->got), o->detail[0] ? ": " : "", o->detail);
    return 0;
}

void wp_file_begin(wp_run *r, const char *file)
{
    r->file = file;
    r->passed = r->failed = r->skipped = 0;
    r->skips = NULL;
}

void wp_file_end(wp_run *r)
{
    const char *base = strrchr(r->file, '/');
    wp_skip *s, *next;
    unsigned long i;

    base = base != NULL ? base + 1 : r->file;
    for (s = r->skips; s != NULL; s = next) {
        next = s->next;
        printf("skipped %lu in %s: %s (tcId", s->count, base, s->reason);
        for (i = 0; i < s->count && i < MAX_SKIP_IDS; i++)
            printf("%s %lld", i ? "," : "", s->ids[i]);
        printf("%s)\n", s->count > MAX_SKIP_IDS ? ", ..." : "");
        free(s->reason);
        free(s);
    }
    r->skips = NULL;
    if (r->skipped != 0)
        printf("%s: %lu passed, %lu failed, %lu skipped\n", base, r->passed, r->failed,
               r->skipped);
    else
        printf("%s: %lu passed, %lu failed\n", base, r->passed, r->failed);
    fflush(stdout);
}
