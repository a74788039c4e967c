/*
 * Session-less device queries: stats, info, selftest. Each runs on a
 * connection of its own (ihsm_tool_call_direct), so they work without a
 * credential, e.g. for monitoring.
 */
#include "tools_common.h"

#include <getopt.h>
#include <string.h>

#define MAX_NAME 128
#define MAX_FIRMWARE 256

static const char stats_help[] =
    "Usage: ihsmctl stats [--json]\n"
    "\n"
    "Print every counter of the device, one per line. --json prints one object\n"
    "with every counter plus \"requests\", \"frames\" (request frames received) and\n"
    "\"requests_per_frame\" (how well clients batch, as counted by the device).\n"
    "Needs no credential.\n";

static const char info_help[] =
    "Usage: ihsmctl info [--json]\n"
    "\n"
    "Print the device's protocol version, state, serial, firmware and workers.\n";

static const char selftest_help[] =
    "Usage: ihsmctl selftest [--json]\n"
    "\n"
    "Run the device's known-answer self-tests now and print each result. Exit\n"
    "status 1 if any failed (the device then refuses crypto).\n";

/* --json and the global options: all these commands take. */
static int parse_json_only(ihsm_tool *t, int argc, char **argv, const char *help, int *json)
{
    static const struct option opts[] = {
        { "json", no_argument, NULL, 'j' },
        IHSM_TOOL_GLOBAL_OPTS,
        { NULL, 0, NULL, 0 },
    };
    int c;

    *json = 0;
    while ((c = getopt_long(argc, argv, "+h", opts, NULL)) != -1) {
        switch (c) {
        case 'j': *json = 1; break;
        case 'h': fputs(help, stdout); return -1;
        default:
            if (ihsm_tool_global_opt(t, c, optarg))
                break;
            return ihsm_tool_bad_option(t, argv);
        }
    }
    return ihsm_tool_no_operands(t, argc, argv);
}

static int direct(ihsm_tool *t, uint16_t cmd, ihsm_result *res)
{
    int st = ihsm_tool_call_direct(t, cmd, NULL, res);

    if (st == IHSM_OK)
        return IHSM_TOOL_OK;
    ihsm_tool_direct_clear(res);
    if (st == IHSM_ERR_CONNECT) /* already explained, with the socket */
        return IHSM_TOOL_FAIL;
    return ihsm_tool_status_err(t, st, "%s failed", ihsm_cmd_name(cmd));
}

static int malformed(ihsm_tool *t, uint16_t cmd, ihsm_result *res)
{
    ihsm_tool_direct_clear(res);
    ihsm_tool_err(t, "the device's answer to %s is malformed: client and ihsmd versions "
                  "may differ", ihsm_cmd_name(cmd));
    return IHSM_TOOL_FAIL;
}

static int name_is(const uint8_t *p, size_t len, const char *s)
{
    return strlen(s) == len && memcmp(p, s, len) == 0;
}

/* The batching counters, whatever the device calls them. */
typedef struct {
    uint64_t requests, frames;
    int have_req, have_frames;        /* found under any accepted name */
    int named_req, named_frames, named_rpf; /* the exact JSON keys exist */
} batch_counters;

static void note_counter(batch_counters *b, const uint8_t *nm, size_t len, uint64_t v)
{
    if (name_is(nm, len, "requests")) {
        b->requests = v;
        b->have_req = b->named_req = 1;
    } else if (!b->named_req && name_is(nm, len, "requests_in")) {
        b->requests = v;
        b->have_req = 1;
    }
    if (name_is(nm, len, "frames_in")) {
        b->frames = v;
        b->have_frames = 1;
    } else if (name_is(nm, len, "frames")) {
        if (!b->have_frames)
            b->frames = v;
        b->have_frames = b->named_frames = 1;
    }
    if (name_is(nm, len, "requests_per_frame"))
        b->named_rpf = 1;
}

int ihsm_cmd_stats(ihsm_tool *t, int argc, char **argv)
{
    batch_counters b = { 0 };
    ihsm_result res;
    ihsm_rd r;
    uint32_t n;
    double rpf;
    int json, rc;

    if ((rc = parse_json_only(t, argc, argv, stats_help, &json)) != IHSM_TOOL_OK)
        return rc < 0 ? IHSM_TOOL_OK : rc;
    if ((rc = direct(t, IHSM_CMD_STATS, &res)) != IHSM_TOOL_OK)
        return rc;
    /* First pass: validate everything and pick out the batching counters. */
    ihsm_rd_init(&r, res.data, res.len);
    n = ihsm_rd_u32(&r);
    for (uint32_t i = 0; i < n && !r.err; i++) {
        size_t len = 0;
        const uint8_t *nm = ihsm_rd_bytes(&r, &len, MAX_NAME);
        uint64_t v = ihsm_rd_u64(&r);

        if (!r.err)
            note_counter(&b, nm, len, v);
    }
    if (ihsm_rd_end(&r) != 0)
        return malformed(t, IHSM_CMD_STATS, &res);
    rpf = b.frames ? (double)b.requests / (double)b.frames : 0.0;

    ihsm_rd_init(&r, res.data, res.len);
    n = ihsm_rd_u32(&r);
    if (json)
        putchar('{');
    for (uint32_t i = 0; i < n; i++) {
        size_t len = 0;
        const char *nm = (const char *)ihsm_rd_bytes(&r, &len, MAX_NAME);
        uint64_t v = ihsm_rd_u64(&r);

        if (json) {
            fputs(i ? ",\n " : "\n ", stdout);
            ihsm_tool_json_str(stdout, nm, len);
            printf(": %llu", (unsigned long long)v);
        } else {
            printf("%-32.*s %llu\n", (int)len, nm, (unsigned long long)v);
        }
    }
    if (json) {
        /* Add only the keys the device did not name itself: no duplicates. */
        int first = n == 0;

        if (!b.named_req) {
            printf("%s\"requests\": %llu", first ? "\n " : ",\n ",
                   (unsigned long long)b.requests);
            first = 0;
        }
        if (!b.named_frames) {
            printf("%s\"frames\": %llu", first ? "\n " : ",\n ",
                   (unsigned long long)b.frames);
            first = 0;
        }
        if (!b.named_rpf)
            printf("%s\"requests_per_frame\": %.3f", first ? "\n " : ",\n ", rpf);
        fputs("\n}\n", stdout);
    } else if (!b.named_rpf) {
        printf("%-32s %.3f\n", "requests_per_frame", rpf);
    }
    ihsm_tool_direct_clear(&res);
    if (!b.have_req || !b.have_frames)
        ihsm_tool_err(t, "note: the device reports no %s counter, so requests_per_frame "
                      "is 0", !b.have_req ? "requests" : "frames_in");
    return IHSM_TOOL_OK;
}

int ihsm_cmd_info(ihsm_tool *t, int argc, char **argv)
{
    const uint8_t *serial, *fw;
    size_t serial_len = 0, fw_len = 0;
    uint32_t version, state, workers;
    ihsm_result res;
    ihsm_rd r;
    int json, rc;

    if ((rc = parse_json_only(t, argc, argv, info_help, &json)) != IHSM_TOOL_OK)
        return rc < 0 ? IHSM_TOOL_OK : rc;
    if ((rc = direct(t, IHSM_CMD_INFO, &res)) != IHSM_TOOL_OK)
        return rc;
    ihsm_rd_init(&r, res.data, res.len);
    version = ihsm_rd_u32(&r);
    state = ihsm_rd_u32(&r);
    serial = ihsm_rd_bytes(&r, &serial_len, 64);
    fw = ihsm_rd_bytes(&r, &fw_len, MAX_FIRMWARE);
    workers = ihsm_rd_u32(&r);
    if (ihsm_rd_end(&r) != 0)
        return malformed(t, IHSM_CMD_INFO, &res);
    if (json) {
        printf("{\"protocol_version\": %u, \"state\": \"%s\", \"serial\": \"", version,
               state == IHSM_STATE_OPERATIONAL ? "operational" : "failed");
        for (size_t i = 0; i < serial_len; i++)
            printf("%02x", serial[i]);
        fputs("\", \"firmware\": ", stdout);
        ihsm_tool_json_str(stdout, (const char *)fw, fw_len);
        printf(", \"workers\": %u, \"socket\": ", workers);
        ihsm_tool_json_str(stdout, t->socket_path, strlen(t->socket_path));
        fputs("}\n", stdout);
    } else {
        printf("socket            %s\n", t->socket_path);
        printf("protocol version  %u\n", version);
        printf("state             %s\n", state == IHSM_STATE_OPERATIONAL ? "operational"
                                         : "FAILED (self-test failure: the device refuses crypto)");
        fputs("serial            ", stdout);
        for (size_t i = 0; i < serial_len; i++)
            printf("%02x", serial[i]);
        printf("\nfirmware          %.*s\n", (int)fw_len, (const char *)fw);
        printf("workers           %u\n", workers);
    }
    ihsm_tool_direct_clear(&res);
    if (version != IHSM_PROTO_VERSION)
        ihsm_tool_err(t, "warning: the device speaks protocol %u, this ihsmctl %u",
                      version, IHSM_PROTO_VERSION);
    return IHSM_TOOL_OK;
}

int ihsm_cmd_selftest(ihsm_tool *t, int argc, char **argv)
{
    ihsm_result res;
    ihsm_rd r;
    uint32_t n, failed = 0;
    int json, rc;

    if ((rc = parse_json_only(t, argc, argv, selftest_help, &json)) != IHSM_TOOL_OK)
        return rc < 0 ? IHSM_TOOL_OK : rc;
    if ((rc = direct(t, IHSM_CMD_SELF_TEST, &res)) != IHSM_TOOL_OK)
        return rc;
    ihsm_rd_init(&r, res.data, res.len);
    n = ihsm_rd_u32(&r);
    for (uint32_t i = 0; i < n && !r.err; i++) {
        size_t len;
        (void)ihsm_rd_bytes(&r, &len, MAX_NAME);
        (void)ihsm_rd_u32(&r);
    }
    if (ihsm_rd_end(&r) != 0 || n == 0)
        return malformed(t, IHSM_CMD_SELF_TEST, &res);
    ihsm_rd_init(&r, res.data, res.len);
    n = ihsm_rd_u32(&r);
    if (json)
        putchar('{');
    for (uint32_t i = 0; i < n; i++) {
        size_t len = 0;
        const char *nm = (const char *)ihsm_rd_bytes(&r, &len, MAX_NAME);
        uint32_t passed = ihsm_rd_u32(&r);

        failed += !passed;
        if (json) {
            fputs(i ? ",\n " : "\n ", stdout);
            ihsm_tool_json_str(stdout, nm, len);
            printf(": %s", passed ? "true" : "false");
        } else {
            printf("%-32.*s %s\n", (int)len, nm, passed ? "pass" : "FAIL");
        }
    }
    if (json)
        fputs("\n}\n", stdout);
    else
        printf("%u of %u self-tests passed\n", n - failed, n);
    ihsm_tool_direct_clear(&res);
    if (failed) {
        ihsm_tool_err(t, "%u self-test%s failed: the device refuses crypto; see ihsmd's "
                      "log and restart it", failed, failed == 1 ? "" : "s");
        return IHSM_TOOL_FAIL;
    }
    return IHSM_TOOL_OK;
}
