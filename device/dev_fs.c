/*
 * The state directory's file discipline: names are checked before they
 * become paths, every write is temp file + fsync + rename + fsync of the
 * directory (a crash leaves the old file or the new one, never half), and
 * files are 0600 in 0700 directories.
 */
#include "dev.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <openssl/crypto.h>

int dev_name_valid(const uint8_t *p, size_t len)
{
    if (p == NULL || len == 0 || len > DEV_MAX_NAME || p[0] == '.')
        return 0;
    for (size_t i = 0; i < len; i++) {
        uint8_t ch = p[i];
        if (!((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z')
              || (ch >= '0' && ch <= '9') || ch == '.' || ch == '_' || ch == '-'))
            return 0;
    }
    return 1;
}

void dev_hex(char *out, const uint8_t *in, size_t n)
{
    static const char digits[] = "0123456789abcdef";

    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 15];
    }
    out[2 * n] = '\0';
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int dev_unhex(uint8_t *out, size_t n, const char *in)
{
    if (strlen(in) != 2 * n)
        return -1;
    for (size_t i = 0; i < n; i++) {
        int hi = hexval(in[2 * i]), lo = hexval(in[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return -1;
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    return 0;
}

int dev_path(char *out, size_t cap, const char *a, const char *b)
{
    int n = snprintf(out, cap, "%s/%s", a, b);

    return (n < 0 || (size_t)n >= cap) ? -ENAMETOOLONG : 0;
}

int dev_fsync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int r = 0;

    if (fd < 0)
        return -errno;
    if (fsync(fd) != 0)
        r = -errno;
    close(fd);
    return r;
}

int dev_mkdir(const char *path, mode_t mode)
{
    struct stat st;

    if (mkdir(path, mode) == 0)
        return 0;
    if (errno != EEXIST)
        return -errno;
    if (stat(path, &st) != 0)
        return -errno;
    return S_ISDIR(st.st_mode) ? 0 : -ENOTDIR;
}

static int write_all(int fd, const uint8_t *p, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

int dev_write_atomic(const char *dir, const char *name, const void *data,
                     size_t len, int exclusive)
{
    return dev_write_atomic_ex(dir, name, data, len, exclusive, 1);
}

int dev_write_atomic_ex(const char *dir, const char *name, const void *data,
                        size_t len, int exclusive, int sync)
{
    static atomic_uint seq;
    char tmp[4096], final[4096], tname[128];
    int fd, r;

    /* a leading dot: no valid name can collide with a temp file */
    snprintf(tname, sizeof(tname), ".tmp.%d.%u", (int)getpid(),
             atomic_fetch_add(&seq, 1));
    if (dev_path(tmp, sizeof(tmp), dir, tname) != 0
        || dev_path(final, sizeof(final), dir, name) != 0)
        return -ENAMETOOLONG;
    fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0)
        return -errno;
    r = write_all(fd, data, len);
    if (r == 0 && sync && fsync(fd) != 0)
        r = -errno;
    if (close(fd) != 0 && r == 0)
        r = -errno;
    if (r == 0) {
        if (exclusive) {
            /* link() fails if the name exists: no check-then-create race */
            if (link(tmp, final) != 0)
                r = -errno;
            unlink(tmp);
        } else if (rename(tmp, final) != 0) {
            r = -errno;
        }
    }
    if (r != 0) {
        unlink(tmp);
        return r;
    }
    return sync ? dev_fsync_dir(dir) : 0;
}

int dev_read_file(const char *path, size_t max, uint8_t **buf, size_t *len)
{
    struct stat st;
    uint8_t *p;
    size_t off = 0;
    int fd;

    *buf = NULL;
    *len = 0;
    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return -errno;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        int e = errno != 0 ? errno : EINVAL;
        close(fd);
        return -e;
    }
    if ((uint64_t)st.st_size > max) {
        close(fd);
        return -EFBIG;
    }
    p = OPENSSL_malloc((size_t)st.st_size + 1);
    if (p == NULL) {
        close(fd);
        return -ENOMEM;
    }
    while (off < (size_t)st.st_size) {
        ssize_t n = read(fd, p + off, (size_t)st.st_size - off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        off += (size_t)n;
    }
    close(fd);
    p[off] = '\0';
    *buf = p;
    *len = off;
    return 0;
}

void dev_free_file(uint8_t *buf, size_t len)
{
    if (buf != NULL)
        OPENSSL_clear_free(buf, len + 1);
}
