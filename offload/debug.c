/* IHSM_DEBUG=1: one line per notable event on stderr, tagged with the pid
 * and thread so interleaved workers and forked children stay readable. */
#include "ihsm_offload.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

int ihsm_debug;

void ihsm_debug_init(void)
{
    const char *v = getenv("IHSM_DEBUG");

    if (v != NULL && *v != '\0' && strcmp(v, "0") != 0)
        ihsm_debug = 1;
}

void ihsm_dbg(const char *fmt, ...)
{
    char line[1024];
    struct timespec ts;
    va_list ap;
    int n;

    if (!ihsm_debug)
        return;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    n = snprintf(line, sizeof(line), "ihsm[%ld/%ld] %ld.%06ld ", (long)getpid(),
                 (long)syscall(SYS_gettid), (long)ts.tv_sec, ts.tv_nsec / 1000);
    va_start(ap, fmt);
    if (n > 0 && (size_t)n < sizeof(line))
        vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
    va_end(ap);
    /* one write per line: lines from threads and children do not mix */
    n = (int)strnlen(line, sizeof(line) - 2);
    line[n++] = '\n';
    if (write(STDERR_FILENO, line, (size_t)n) < 0)
        return;
}
