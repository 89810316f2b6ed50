/* json.c - JSON string escaping. */
#include "json.h"

#include <stdint.h>
#include <string.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define JSON_SWAR 1
/* The high bit of each byte of the 8 at p that cannot go out as it is (a
 * control byte, the quote, the backslash, anything >= 0x80); the lowest set
 * one is exact, those above it may be false (a borrow), which is all the
 * callers read. Most strings written (keys, tags, names) are under 16 bytes:
 * a word at a time instead of a byte. */
static inline uint64_t special8(const unsigned char *p)
{
    const uint64_t ones = 0x0101010101010101ULL, high = ones << 7;
    uint64_t x;
    memcpy(&x, p, sizeof x);
    uint64_t q = x ^ (ones * '"'), b = x ^ (ones * '\\');
    return (((q - ones) & ~q) | ((b - ones) & ~b) | (x - ones * 0x20) | x) & high;
}
#endif

/* Bytes at p that go out as they are: printable ASCII other than the quote
 * and the backslash, the bulk of every string written. */
static size_t plain_run(const unsigned char *p, size_t n)
{
    size_t i = 0;
#ifdef __SSE2__
    const __m128i quote = _mm_set1_epi8('"'), bslash = _mm_set1_epi8('\\'), space = _mm_set1_epi8(0x20);
    for (; i + 16 <= n; i += 16) {
        __m128i x = _mm_loadu_si128((const __m128i *)(const void *)(p + i));
        /* signed: bytes >= 0x80 are negative, so "< 0x20" catches them too */
        __m128i special = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(x, quote), _mm_cmpeq_epi8(x, bslash)),
                                       _mm_cmplt_epi8(x, space));
        int mask = _mm_movemask_epi8(special);
        if (mask) return i + (size_t)__builtin_ctz((unsigned)mask);
    }
#endif
#ifdef JSON_SWAR
    for (; i + 8 <= n; i += 8) {
        uint64_t m = special8(p + i);
        if (m) return i + (size_t)__builtin_ctzll(m) / 8;
    }
    if (i < n && n >= 8) {
        /* The last 8 bytes, less the ones before i (plain, already read). */
        uint64_t m = special8(p + n - 8) >> (8 * (8 - (n - i)));
        return m ? i + (size_t)__builtin_ctzll(m) / 8 : n;
    }
#endif
    while (i < n && p[i] >= 0x20 && p[i] < 0x80 && p[i] != '"' && p[i] != '\\') i++;
    return i;
}

/* Length of the valid UTF-8 sequence starting at s (at most n bytes), or 0. */
static size_t utf8_seq_len(const unsigned char *s, size_t n)
{
    unsigned char c = s[0];
    size_t len;
    unsigned int cp;
    if (c < 0x80) return 1;
    if (c >= 0xc2 && c <= 0xdf) { len = 2; cp = c & 0x1f; }
    else if (c >= 0xe0 && c <= 0xef) { len = 3; cp = c & 0x0f; }
    else if (c >= 0xf0 && c <= 0xf4) { len = 4; cp = c & 0x07; }
    else return 0;
    if (len > n) return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80) return 0;
        cp = (cp << 6) | (s[i] & 0x3f);
    }
    /* Reject overlong forms, surrogates and values past U+10FFFF. */
    if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
        (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return len;
}

void json_put_strn(struct buf *b, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *p = (const unsigned char *)s;
    size_t i = plain_run(p, n);
    if (i == n) {   /* nothing to escape, by far the common case: one copy */
        buf_reserve(b, n + 2);
        char *d = b->data + b->len;
        d[0] = '"';
        if (n) memcpy(d + 1, s, n);
        d[n + 1] = '"';
        d[n + 2] = '\0';
        b->len += n + 2;
        return;
    }
    buf_reserve(b, n + 2);
    buf_putc(b, '"');
    buf_append(b, p, i);
    while (i < n) {
        /* Copy plain ASCII in one go: it is by far the common case. */
        size_t run = i + plain_run(p + i, n - i);
        if (run > i) {
            buf_append(b, p + i, run - i);
            i = run;
            continue;
        }
        unsigned char c = p[i];
        if (c == '"') { buf_puts(b, "\\\""); i++; }
        else if (c == '\\') { buf_puts(b, "\\\\"); i++; }
        else if (c == '\n') { buf_puts(b, "\\n"); i++; }
        else if (c == '\r') { buf_puts(b, "\\r"); i++; }
        else if (c == '\t') { buf_puts(b, "\\t"); i++; }
        else if (c < 0x20) {
            char esc[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
            buf_append(b, esc, sizeof esc);
            i++;
        } else {
            size_t len = utf8_seq_len(p + i, n - i);
            if (len == 0) {
                buf_puts(b, "\\ufffd");
                i++;
            } else {
                buf_append(b, p + i, len);
                i += len;
            }
        }
    }
    buf_putc(b, '"');
}

void json_put_str(struct buf *b, const char *s)
{
    if (!s) {
        buf_puts(b, "null");
        return;
    }
    json_put_strn(b, s, strlen(s));
}

void json_put_members(struct buf *b, const char *const *kv, int *first)
{
    for (; kv[0]; kv += 2) json_put_member(b, kv[0], kv[1], first);
}
