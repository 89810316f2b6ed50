/* buf.h - a growable byte buffer, always NUL-terminated.
 *
 * Memory exhaustion aborts the process (see xmalloc): a daemon that cannot
 * allocate a few hundred bytes cannot do anything useful, and failing loudly
 * keeps every caller free of error paths that would never be tested. */
#ifndef WR_BUF_H
#define WR_BUF_H

#include <assert.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

struct buf {
    char *data;   /* NULL until the first append; then always NUL-terminated */
    size_t len;
    size_t cap;
};

void *xmalloc(size_t n);
void *xcalloc(size_t n, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
char *xstrdup_or_null(const char *s);   /* NULL stays NULL */
void free_n(size_t n, ...);             /* free() of n pointers (any may be NULL) */

/* What an async close calls once the part is freed (libuv's uv_close
 * shape): kept by the part, called after its memory went. */
struct close_cb {
    void (*fn)(void *ud);
    void *ud;
};
static inline void close_cb_call(struct close_cb c)
{
    if (c.fn) c.fn(c.ud);
}
/* The one close behaviour of every x_close(x, cb, ud): NULL is nothing to
 * close (cb is called at once); a second close is a bug. Through the macro,
 * for a part with members `bool closing` and `struct close_cb closed`:
 *     if (CLOSE_BEGIN(x, cb, ud)) return;
 * Returns true when there is nothing more to do (x was NULL). */
static inline bool close_cb_begin(const void *x, bool *closing, struct close_cb *saved, void (*cb)(void *ud),
                                  void *ud)
{
    if (!x) {
        if (cb) cb(ud);
        return true;
    }
    assert(!*closing && "closed twice");
    *closing = true;
    *saved = (struct close_cb){cb, ud};
    return false;
}
/* The end of a close: the part's memory goes, then the callback it kept
 * (closed is a copy, taken before the free). */
static inline void close_cb_free(void *part, struct close_cb closed)
{
    free(part);
    close_cb_call(closed);
}
#define CLOSE_BEGIN(x, cb, ud) close_cb_begin((x), (x) ? &(x)->closing : NULL, (x) ? &(x)->closed : NULL, (cb), (ud))

/* FNV-1a, the one string hash of the program: hash_str(HASH_INIT, s), or
 * chained over several strings (each result seeds the next). */
#define HASH_INIT ((size_t)1469598103934665603ULL)
size_t hash_str(size_t h, const char *s);

void buf_init(struct buf *b);
void buf_free(struct buf *b);
void buf_reset(struct buf *b);                 /* len = 0, keeps memory */
void buf_grow(struct buf *b, size_t extra);    /* buf_reserve's slow path */
/* Room for extra more bytes and the NUL. Inline: the room is nearly always
 * there already, and a call each time was a fifth of writing a short string. */
static inline void buf_reserve(struct buf *b, size_t extra)
{
    if (b->len + extra + 1 > b->cap) buf_grow(b, extra);
}

/* The appends are inline: most add a few bytes where there is room already
 * (a call each was a tenth of a push's instructions), and buf_puts of a
 * literal then needs no strlen. */
static inline void buf_append(struct buf *b, const void *p, size_t n)
{
    if (b->len + n + 1 > b->cap) buf_grow(b, n);
    if (n) memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
}

static inline void buf_puts(struct buf *b, const char *s)
{
    buf_append(b, s, strlen(s));
}

static inline void buf_putc(struct buf *b, char c)
{
    if (b->len + 2 > b->cap) buf_grow(b, 1);
    b->data[b->len++] = c;
    b->data[b->len] = '\0';
}
/* A-Z lower-cased, nothing else: host names and schemes are ASCII, and
 * tolower() follows the locale. */
static inline char ascii_lower(char c)
{
    return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

/* s lower-cased in place by ascii_lower; returns s. */
static inline char *ascii_lower_str(char *s)
{
    for (char *p = s; *p; p++) *p = ascii_lower(*p);
    return s;
}

/* Appends n bytes of s, lower-cased by ascii_lower. */
static inline void buf_append_lower(struct buf *b, const char *s, size_t n)
{
    buf_reserve(b, n);
    char *d = b->data + b->len;
    for (size_t i = 0; i < n; i++) d[i] = ascii_lower(s[i]);
    b->len += n;
    b->data[b->len] = '\0';
}
void buf_put_uint(struct buf *b, unsigned long long v);   /* decimal, without printf */
void buf_put_int(struct buf *b, long long v);
void buf_printf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void buf_vprintf(struct buf *b, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));
void buf_consume(struct buf *b, size_t n);     /* drop the first n bytes */
const char *buf_cstr(const struct buf *b);     /* "" when empty */
char *buf_steal(struct buf *b);                /* caller frees; b is reset to empty */

#endif
