/*
 * Small helpers: hex strings of the vector files, reading a file whole.
 */
#include "wycheproof.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int nibble(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int wp_hex(const char *hex, uint8_t **out, size_t *len)
{
    size_t n = strlen(hex), i;
    uint8_t *b;

    *out = NULL;
    *len = 0;
    if (n % 2 != 0)
        return -1;
    if ((b = malloc(n / 2 + 1)) == NULL)
        return -1;
    for (i = 0; i < n / 2; i++) {
        int hi = nibble(hex[2 * i]), lo = nibble(hex[2 * i + 1]);

        if (hi < 0 || lo < 0) {
            free(b);
            return -1;
        }
        b[i] = (uint8_t)(hi << 4 | lo);
    }
    *out = b;
    *len = n / 2;
    return 0;
}

int wp_hex_member(const wp_json *obj, const char *key, uint8_t **out, size_t *len)
{
    const char *s = wp_json_str(obj, key);

    *out = NULL;
    *len = 0;
    return s != NULL ? wp_hex(s, out, len) : -1;
}

int wp_read_file(const char *path, char **buf, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *b = NULL, *nb;
    size_t cap = 0, n = 0, got;

    *buf = NULL;
    *len = 0;
    if (f == NULL)
        return -1;
    do {
        if (n == cap) {
            cap = cap ? cap * 2 : 1 << 16;
            if (cap > (size_t)256 << 20 || (nb = realloc(b, cap + 1)) == NULL) {
                free(b);
                fclose(f);
                return -1;
            }
            b = nb;
        }
        got = fread(b + n, 1, cap - n, f);
        n += got;
    } while (got > 0);
    if (ferror(f)) {
        free(b);
        fclose(f);
        return -1;
    }
    fclose(f);
    b[n] = '\0';
    *buf = b;
    *len = n;
    return 0;
}

void wp_hexdump(char *dst, size_t dstlen, const uint8_t *p, size_t n)
{
    static const char digits[] = "0123456789abcdef";
    size_t i, o = 0;

    if (dstlen == 0)
        return;
    for (i = 0; i < n && o + 2 < dstlen; i++) {
        if (o + 6 >= dstlen && i + 1 < n) {
            memcpy(dst + o, "...", 3);
            o += 3;
            break;
        }
        dst[o++] = digits[p[i] >> 4];
        dst[o++] = digits[p[i] & 15];
    }
    if (p == NULL || n == 0) {
        snprintf(dst, dstlen, "(empty)");
        return;
    }
    dst[o] = '\0';
}
