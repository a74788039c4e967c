/*
 * A small strict JSON reader (RFC 8259) for the vector files: the whole
 * text must be one value; no comments, trailing commas, leading zeros,
 * bare control characters, invalid escapes or invalid UTF-8; duplicate
 * member names are refused (a vector with two "result"s would be
 * ambiguous). Nesting is bounded so hostile files cannot exhaust the stack.
 */
#include "wycheproof.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_DEPTH 64

typedef struct {
    const char *s, *end;
    const char *start;
    char *err;
    size_t errlen;
    int failed;
} parser;

static void fail(parser *p, const char *what)
{
    size_t line = 1, col = 1;
    const char *c;

    if (p->failed)
        return;
    p->failed = 1;
    for (c = p->start; c < p->s && c < p->end; c++) {
        if (*c == '\n') {
            line++;
            col = 1;
        } else {
            col++;
        }
    }
    snprintf(p->err, p->errlen, "line %zu, column %zu: %s", line, col, what);
}

static void skip_ws(parser *p)
{
    while (p->s < p->end && (*p->s == ' ' || *p->s == '\t' || *p->s == '\n' || *p->s == '\r'))
        p->s++;
}

static wp_json *node(wp_jtype t)
{
    wp_json *j = calloc(1, sizeof(*j));

    if (j != NULL)
        j->type = t;
    return j;
}

void wp_json_free(wp_json *j)
{
    size_t i;

    if (j == NULL)
        return;
    for (i = 0; i < j->n; i++) {
        wp_json_free(j->items[i]);
        if (j->keys != NULL)
            free(j->keys[i]);
    }
    free(j->items);
    free(j->keys);
    free(j->str);
    free(j);
}

/* A growing byte buffer for strings. */
typedef struct {
    char *p;
    size_t len, cap;
} buf;

static int buf_put(buf *b, const char *data, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 32;
        char *q;

        while (cap < b->len + n + 1)
            cap *= 2;
        if ((q = realloc(b->p, cap)) == NULL)
            return -1;
        b->p = q;
        b->cap = cap;
    }
    memcpy(b->p + b->len, data, n);
    b->len += n;
    b->p[b->len] = '\0';
    return 0;
}

static int put_utf8(buf *b, unsigned long cp)
{
    char u[4];
    size_t n;

    if (cp < 0x80) {
        u[0] = (char)cp;
        n = 1;
    } else if (cp < 0x800) {
        u[0] = (char)(0xC0 | (cp >> 6));
        u[1] = (char)(0x80 | (cp & 0x3F));
        n = 2;
    } else if (cp < 0x10000) {
        u[0] = (char)(0xE0 | (cp >> 12));
        u[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        u[2] = (char)(0x80 | (cp & 0x3F));
        n = 3;
    } else {
        u[0] = (char)(0xF0 | (cp >> 18));
        u[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
        u[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
        u[3] = (char)(0x80 | (cp & 0x3F));
        n = 4;
    }
    return buf_put(b, u, n);
}

static int hex4(parser *p, unsigned long *v)
{
    int i;

    *v = 0;
    if (p->end - p->s < 4) {
        fail(p, "truncated \\u escape");
        return -1;
    }
    for (i = 0; i < 4; i++) {
        char c = *p->s++;

        *v <<= 4;
        if (c >= '0' && c <= '9')
            *v |= (unsigned long)(c - '0');
        else if (c >= 'a' && c <= 'f')
            *v |= (unsigned long)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F')
            *v |= (unsigned long)(c - 'A' + 10);
        else {
            fail(p, "bad hex digit in \\u escape");
            return -1;
        }
    }
    return 0;
}

/* Length of a valid UTF-8 sequence starting at s (1..4), or 0. */
static size_t utf8_len(const unsigned char *s, const unsigned char *end)
{
    unsigned long cp;
    size_t n, i;

    if (s[0] < 0x80)
        return 1;
    if (s[0] >= 0xC2 && s[0] <= 0xDF) {
        n = 2;
        cp = s[0] & 0x1F;
    } else if (s[0] >= 0xE0 && s[0] <= 0xEF) {
        n = 3;
        cp = s[0] & 0x0F;
    } else if (s[0] >= 0xF0 && s[0] <= 0xF4) {
        n = 4;
        cp = s[0] & 0x07;
    } else {
        return 0;
    }
    if ((size_t)(end - s) < n)
        return 0;
    for (i = 1; i < n; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3F);
    }
    /* overlong forms, surrogates, beyond U+10FFFF */
    if ((n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) || cp > 0x10FFFF
        || (cp >= 0xD800 && cp <= 0xDFFF))
        return 0;
    return n;
}

/* p->s is just past the opening quote. */
static int parse_string(parser *p, char **out, size_t *outlen)
{
    buf b = { 0 };

    for (;;) {
        const char *run = p->s;
        size_t n;

        while (p->s < p->end && *p->s != '"' && *p->s != '\\'
               && (unsigned char)*p->s >= 0x20) {
            if ((n = utf8_len((const unsigned char *)p->s,
                              (const unsigned char *)p->end)) == 0) {
                fail(p, "invalid UTF-8 in a string");
                goto err;
            }
            p->s += n;
        }
        if (buf_put(&b, run, (size_t)(p->s - run)) != 0)
            goto nomem;
        if (p->s >= p->end) {
            fail(p, "unterminated string");
            goto err;
        }
        if ((unsigned char)*p->s < 0x20) {
            fail(p, "control character in a string (escape it)");
            goto err;
        }
        if (*p->s == '"') {
            p->s++;
            break;
        }
        /* an escape */
        p->s++;
        if (p->s >= p->end) {
            fail(p, "unterminated escape");
            goto err;
        }
        {
            char c = *p->s++, e;
            unsigned long cp, lo;

            switch (c) {
            case '"': e = '"'; break;
            case '\\': e = '\\'; break;
            case '/': e = '/'; break;
            case 'b': e = '\b'; break;
            case 'f': e = '\f'; break;
            case 'n': e = '\n'; break;
            case 'r': e = '\r'; break;
            case 't': e = '\t'; break;
            case 'u':
                if (hex4(p, &cp) != 0)
                    goto err;
                if (cp >= 0xDC00 && cp <= 0xDFFF) {
                    fail(p, "lone low surrogate in \\u escape");
                    goto err;
                }
                if (cp >= 0xD800 && cp <= 0xDBFF) {
                    if (p->end - p->s < 2 || p->s[0] != '\\' || p->s[1] != 'u') {
                        fail(p, "high surrogate without its low surrogate");
                        goto err;
                    }
                    p->s += 2;
                    if (hex4(p, &lo) != 0)
                        goto err;
                    if (lo < 0xDC00 || lo > 0xDFFF) {
                        fail(p, "high surrogate without its low surrogate");
                        goto err;
                    }
                    cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                }
                if (put_utf8(&b, cp) != 0)
                    goto nomem;
                continue;
            default:
                fail(p, "invalid escape in a string");
                goto err;
            }
            if (buf_put(&b, &e, 1) != 0)
                goto nomem;
        }
    }
    if (b.p == NULL && buf_put(&b, "", 0) != 0)
        goto nomem;
    *out = b.p;
    *outlen = b.len;
    return 0;
nomem:
    fail(p, "out of memory");
err:
    free(b.p);
    return -1;
}

static wp_json *parse_number(parser *p)
{
    const char *s = p->s;
    int frac = 0;
    char tmp[64];
    size_t n;
    wp_json *j;

    if (p->s < p->end && *p->s == '-')
        p->s++;
    if (p->s >= p->end || *p->s < '0' || *p->s > '9') {
        fail(p, "invalid number");
        return NULL;
    }
    if (*p->s == '0') {
        p->s++;
        if (p->s < p->end && *p->s >= '0' && *p->s <= '9') {
            fail(p, "leading zero in a number");
            return NULL;
        }
    } else {
        while (p->s < p->end && *p->s >= '0' && *p->s <= '9')
            p->s++;
    }
    if (p->s < p->end && *p->s == '.') {
        frac = 1;
        p->s++;
        if (p->s >= p->end || *p->s < '0' || *p->s > '9') {
            fail(p, "digits must follow the decimal point");
            return NULL;
        }
        while (p->s < p->end && *p->s >= '0' && *p->s <= '9')
            p->s++;
    }
    if (p->s < p->end && (*p->s == 'e' || *p->s == 'E')) {
        frac = 1;
        p->s++;
        if (p->s < p->end && (*p->s == '+' || *p->s == '-'))
            p->s++;
        if (p->s >= p->end || *p->s < '0' || *p->s > '9') {
            fail(p, "digits must follow the exponent");
            return NULL;
        }
        while (p->s < p->end && *p->s >= '0' && *p->s <= '9')
            p->s++;
    }
    n = (size_t)(p->s - s);
    if (n >= sizeof(tmp)) {
        fail(p, "number too long");
        return NULL;
    }
    memcpy(tmp, s, n);
    tmp[n] = '\0';
    if ((j = node(WP_JNUM)) == NULL) {
        fail(p, "out of memory");
        return NULL;
    }
    j->num = strtod(tmp, NULL);
    if (!frac) {
        errno = 0;
        j->ival = strtoll(tmp, NULL, 10);
        j->is_int = errno == 0;
    }
    return j;
}

static int literal(parser *p, const char *word)
{
    size_t n = strlen(word);

    if ((size_t)(p->end - p->s) < n || memcmp(p->s, word, n) != 0) {
        fail(p, "unexpected characters");
        return -1;
    }
    p->s += n;
    return 0;
}

static int append(wp_json *j, wp_json *item, char *key)
{
    wp_json **items = realloc(j->items, (j->n + 1) * sizeof(*items));
    char **keys;

    if (items == NULL)
        return -1;
    j->items = items;
    if (j->type == WP_JOBJ) {
        if ((keys = realloc(j->keys, (j->n + 1) * sizeof(*keys))) == NULL)
            return -1;
        j->keys = keys;
        keys[j->n] = key;
    }
    items[j->n++] = item;
    return 0;
}

static wp_json *parse_value(parser *p, int depth);

static wp_json *parse_container(parser *p, int depth, int obj)
{
    wp_json *j = node(obj ? WP_JOBJ : WP_JARR), *v;
    char close = obj ? '}' : ']';

    if (j == NULL) {
        fail(p, "out of memory");
        return NULL;
    }
    p->s++; /* the opening bracket */
    skip_ws(p);
    if (p->s < p->end && *p->s == close) {
        p->s++;
        return j;
    }
    for (;;) {
        char *key = NULL;
        size_t keylen, i;

        skip_ws(p);
        if (obj) {
            if (p->s >= p->end || *p->s != '"') {
                fail(p, "expected a member name in double quotes");
                goto err;
            }
            p->s++;
            if (parse_string(p, &key, &keylen) != 0)
                goto err;
            if (strlen(key) != keylen) {
                fail(p, "NUL in a member name");
                free(key);
                goto err;
            }
            for (i = 0; i < j->n; i++) {
                if (strcmp(j->keys[i], key) == 0) {
                    fail(p, "duplicate member name");
                    free(key);
                    goto err;
                }
            }
            skip_ws(p);
            if (p->s >= p->end || *p->s != ':') {
                fail(p, "expected ':' after a member name");
                free(key);
                goto err;
            }
            p->s++;
        }
        if ((v = parse_value(p, depth + 1)) == NULL) {
            free(key);
            goto err;
        }
        if (append(j, v, key) != 0) {
            wp_json_free(v);
            free(key);
            fail(p, "out of memory");
            goto err;
        }
        skip_ws(p);
        if (p->s < p->end && *p->s == ',') {
            p->s++;
            skip_ws(p);
            if (p->s < p->end && *p->s == close) {
                fail(p, "trailing comma");
                goto err;
            }
            continue;
        }
        if (p->s < p->end && *p->s == close) {
            p->s++;
            return j;
        }
        fail(p, obj ? "expected ',' or '}'" : "expected ',' or ']'");
        goto err;
    }
err:
    wp_json_free(j);
    return NULL;
}

static wp_json *parse_value(parser *p, int depth)
{
    wp_json *j;

    if (depth > MAX_DEPTH) {
        fail(p, "nested too deeply");
        return NULL;
    }
    skip_ws(p);
    if (p->s >= p->end) {
        fail(p, "unexpected end of text");
        return NULL;
    }
    switch (*p->s) {
    case '{':
        return parse_container(p, depth, 1);
    case '[':
        return parse_container(p, depth, 0);
    case '"':
        if ((j = node(WP_JSTR)) == NULL) {
            fail(p, "out of memory");
            return NULL;
        }
        p->s++;
        if (parse_string(p, &j->str, &j->len) != 0) {
            wp_json_free(j);
            return NULL;
        }
        return j;
    case 't':
    case 'f': {
        int truth = *p->s == 't';

        if (literal(p, truth ? "true" : "false") != 0)
            return NULL;
        if ((j = node(WP_JBOOL)) == NULL)
            fail(p, "out of memory");
        else
            j->boolean = truth;
        return j;
    }
    case 'n':
        if (literal(p, "null") != 0)
            return NULL;
        return node(WP_JNULL);
    default:
        return parse_number(p);
    }
}

wp_json *wp_json_parse(const char *text, size_t len, char *err, size_t errlen)
{
    parser p = { text, text + len, text, err, errlen, 0 };
    wp_json *j;

    if (len >= 3 && memcmp(text, "\xEF\xBB\xBF", 3) == 0) {
        fail(&p, "byte order mark (JSON text must not start with one)");
        return NULL;
    }
    if ((j = parse_value(&p, 0)) == NULL)
        return NULL;
    skip_ws(&p);
    if (p.s != p.end) {
        fail(&p, "text after the JSON value");
        wp_json_free(j);
        return NULL;
    }
    return j;
}

const wp_json *wp_json_get(const wp_json *obj, const char *key)
{
    size_t i;

    if (obj == NULL || obj->type != WP_JOBJ)
        return NULL;
    for (i = 0; i < obj->n; i++) {
        if (strcmp(obj->keys[i], key) == 0)
            return obj->items[i];
    }
    return NULL;
}

const char *wp_json_str(const wp_json *obj, const char *key)
{
    const wp_json *v = wp_json_get(obj, key);

    return v != NULL && v->type == WP_JSTR ? v->str : NULL;
}

int wp_json_int(const wp_json *obj, const char *key, long long *out)
{
    const wp_json *v = wp_json_get(obj, key);

    if (v == NULL || v->type != WP_JNUM || !v->is_int)
        return -1;
    *out = v->ival;
    return 0;
}

const wp_json *wp_json_arr(const wp_json *obj, const char *key)
{
    const wp_json *v = wp_json_get(obj, key);

    return v != NULL && v->type == WP_JARR ? v : NULL;
}
