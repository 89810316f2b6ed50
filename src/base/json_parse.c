/* json_parse.c - a strict JSON reader that builds the document in an arena.
 *
 * Recursive descent over the bytes. Values of an array or object are first
 * collected on a work stack (on the C stack for the common small case), and
 * copied into the arena once their container closes, so every container
 * ends up as one contiguous array. Strings are decoded straight into the
 * arena. See json_parse.h for what is accepted. */
#include "json_parse.h"

#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"

#ifdef __SSE2__
#include <emmintrin.h>
#endif

struct jarena {
    struct jarena *next;
    size_t used, cap;
    bool borrowed;        /* the caller's memory (jdoc_parse_in): never freed */
    _Alignas(16) unsigned char data[];
};

#define LOCAL_STACK 64
#define TEXT_PAD 16        /* zero bytes after the copy: room for a 16-byte load */
#define MAX_NUMBER_TEXT 256

struct parser {
    const char *start, *cur, *end;   /* over the arena's copy of the text */
    struct jarena *arena;
    size_t next_chunk;
    struct jv *stack;             /* values of the open containers */
    size_t top, cap;
    const char *err;              /* first error, and where it happened */
    const char *err_at;
    struct jv local[LOCAL_STACK];
};

/* ---- memory ------------------------------------------------------------- */

static void *arena_alloc(struct parser *p, size_t n)
{
    n = (n + 15) & ~(size_t)15;
    struct jarena *a = p->arena;
    if (!a || a->cap - a->used < n) {
        size_t cap = n > p->next_chunk ? n : p->next_chunk;
        a = xmalloc(sizeof *a + cap);
        a->used = 0;
        a->cap = cap;
        a->borrowed = false;
        a->next = p->arena;
        p->arena = a;
        if (p->next_chunk < (1u << 20)) p->next_chunk *= 2;
    }
    void *r = a->data + a->used;
    a->used += n;
    return r;
}

static struct jv *push(struct parser *p)
{
    if (p->top == p->cap) {
        size_t cap = p->cap * 2;
        if (p->stack == p->local) {
            p->stack = xmalloc(cap * sizeof *p->stack);
            memcpy(p->stack, p->local, p->top * sizeof *p->stack);
        } else {
            p->stack = xrealloc(p->stack, cap * sizeof *p->stack);
        }
        p->cap = cap;
    }
    return &p->stack[p->top++];
}

/* Moves the top n values of the work stack into the arena. */
static struct jv *pop_into_arena(struct parser *p, size_t n)
{
    struct jv *items = NULL;
    if (n) {
        items = arena_alloc(p, n * sizeof *items);
        memcpy(items, &p->stack[p->top - n], n * sizeof *items);
        p->top -= n;
    }
    return items;
}

/* ---- lexing ------------------------------------------------------------- */

static int fail(struct parser *p, const char *what, const char *at)
{
    if (!p->err) {
        p->err = what;
        p->err_at = at;
    }
    return -1;
}

/* Through a local: a store to p->cur per byte (it is a char pointer, so
 * the compiler must assume it aliases) made this a tenth of a parse. The
 * zero padding after the text stops the loop at the end: NUL is not space. */
static inline void skip_ws(struct parser *p)
{
    const char *c = p->cur;
    if ((unsigned char)*c > ' ') return;   /* mostly: no white space at all */
    while ((unsigned char)*c <= ' ' && (*c == ' ' || *c == '\n' || *c == '\r' || *c == '\t')) c++;
    p->cur = c;
}

/* Length of the valid UTF-8 sequence at s (s[0] >= 0x80), or 0. */
static size_t utf8_len(const unsigned char *s, const unsigned char *end)
{
    unsigned char c = s[0];
    size_t n;
    unsigned char lo = 0x80, hi = 0xBF;   /* allowed range of the second byte */
    if (c >= 0xC2 && c <= 0xDF) n = 2;
    else if (c >= 0xE0 && c <= 0xEF) {
        n = 3;
        if (c == 0xE0) lo = 0xA0;         /* overlong */
        if (c == 0xED) hi = 0x9F;         /* surrogates */
    } else if (c >= 0xF0 && c <= 0xF4) {
        n = 4;
        if (c == 0xF0) lo = 0x90;         /* overlong */
        if (c == 0xF4) hi = 0x8F;         /* above U+10FFFF */
    } else {
        return 0;
    }
    if ((size_t)(end - s) < n || s[1] < lo || s[1] > hi) return 0;
    for (size_t i = 2; i < n; i++)
        if ((s[i] & 0xC0) != 0x80) return 0;
    return n;
}

static int hex4(const char *s, unsigned *out)
{
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        char c = s[i];
        v <<= 4;
        if (c >= '0' && c <= '9') v |= (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f') v |= (unsigned)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F') v |= (unsigned)(c - 'A' + 10);
        else return -1;
    }
    *out = v;
    return 0;
}

static char *put_utf8(char *d, unsigned cp)
{
    if (cp < 0x80) {
        *d++ = (char)cp;
    } else if (cp < 0x800) {
        *d++ = (char)(0xC0 | (cp >> 6));
        *d++ = (char)(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
        *d++ = (char)(0xE0 | (cp >> 12));
        *d++ = (char)(0x80 | ((cp >> 6) & 0x3F));
        *d++ = (char)(0x80 | (cp & 0x3F));
    } else {
        *d++ = (char)(0xF0 | (cp >> 18));
        *d++ = (char)(0x80 | ((cp >> 12) & 0x3F));
        *d++ = (char)(0x80 | ((cp >> 6) & 0x3F));
        *d++ = (char)(0x80 | (cp & 0x3F));
    }
    return d;
}

/* "\uXXXX" (with its pair when it is a high surrogate) at s, just past the
 * backslash-u; advances *s past it. */
static int unicode_escape(struct parser *p, const char **s, unsigned *cp)
{
    const char *at = *s - 2;
    if (p->end - *s < 4 || hex4(*s, cp) < 0) return fail(p, "invalid \\u escape", at);
    *s += 4;
    if (*cp >= 0xDC00 && *cp <= 0xDFFF) return fail(p, "invalid Unicode surrogate pair", at);
    if (*cp >= 0xD800 && *cp <= 0xDBFF) {
        unsigned lo;
        if (p->end - *s < 6 || (*s)[0] != '\\' || (*s)[1] != 'u' || hex4(*s + 2, &lo) < 0 ||
            lo < 0xDC00 || lo > 0xDFFF)
            return fail(p, "invalid Unicode surrogate pair", at);
        *cp = 0x10000 + ((*cp - 0xD800) << 10) + (lo - 0xDC00);
        *s += 6;
    }
    if (*cp == 0) return fail(p, "\\u0000 is not allowed in strings", at);
    return 0;
}

/* Skips bytes that need nothing done: printable ASCII other than the quote
 * and the backslash. Strings are most of a notification's bytes. */
static char *skip_plain(char *s, const char *end)
{
#ifdef __SSE2__
    /* 16 at a time; the padding after the text makes the last load safe
     * (the NUL padding stops the scan there). */
    const __m128i quote = _mm_set1_epi8('"'), bslash = _mm_set1_epi8('\\'), space = _mm_set1_epi8(0x20);
    while (s < end) {
        __m128i x = _mm_loadu_si128((const __m128i *)(const void *)s);
        /* signed: bytes >= 0x80 are negative, so "< 0x20" catches them too */
        __m128i special = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(x, quote), _mm_cmpeq_epi8(x, bslash)),
                                       _mm_cmplt_epi8(x, space));
        int mask = _mm_movemask_epi8(special);
        if (mask) {
            s += __builtin_ctz((unsigned)mask);
            return s < end ? s : (char *)end;
        }
        s += 16;
    }
    return (char *)end;
#else
    while (s < end && (unsigned char)(*s - 0x20) < 0x60 && *s != '"' && *s != '\\') s++;
    return s;
#endif
}

static void string_done(struct parser *p, struct jv *out, char *text, char *d, const char *s)
{
    *d = '\0';
    out->type = JV_STRING;
    out->is_int = false;
    out->n = (uint32_t)(d - text);
    out->u.str = text;
    p->cur = s + 1;
}

/* The rest of a string that is not plain: s is at its first byte that is
 * not plain ASCII. */
static __attribute__((noinline)) int parse_string_rest(struct parser *p, struct jv *out, char *s)
{
    const char *open = p->cur;
    char *text = (char *)p->cur + 1;
    char *d = s;
    const char *end = p->end;
    for (;;) {
        /* Runs of plain bytes are the common case: only move them once an
         * escape has made the output lag behind. */
        if (d == s) {
            s = d = skip_plain(s, end);
        } else {
            while (s < end && (unsigned char)(*s - 0x20) < 0x60 && *s != '"' && *s != '\\') *d++ = *s++;
        }
        if (s >= end) return fail(p, "unterminated string", open);
        unsigned char c = (unsigned char)*s;
        if (c == '"') break;
        if (c < 0x20) return fail(p, "control character in string", s);
        if (c >= 0x80) {
            size_t n = utf8_len((const unsigned char *)s, (const unsigned char *)end);
            if (!n) return fail(p, "invalid UTF-8 in string", s);
            memmove(d, s, n);
            d += n;
            s += n;
            continue;
        }
        /* a backslash */
        if (end - s < 2) return fail(p, "unterminated string", open);
        char e = s[1];
        const char *esc = s;
        s += 2;
        switch (e) {
        case '"': *d++ = '"'; break;
        case '\\': *d++ = '\\'; break;
        case '/': *d++ = '/'; break;
        case 'b': *d++ = '\b'; break;
        case 'f': *d++ = '\f'; break;
        case 'n': *d++ = '\n'; break;
        case 'r': *d++ = '\r'; break;
        case 't': *d++ = '\t'; break;
        case 'u': {
            unsigned cp = 0;
            const char *u = s;
            if (unicode_escape(p, &u, &cp) < 0) return -1;
            s = (char *)u;
            d = put_utf8(d, cp);
            break;
        }
        default:
            return fail(p, "invalid escape in string", esc);
        }
    }
    if ((size_t)(d - text) >= UINT32_MAX) return fail(p, "string too long", open);
    string_done(p, out, text, d, s);
    return 0;
}

/* p->cur is at the opening quote. The text is the parser's own copy, and
 * a decoded string is never longer than its source, so strings are decoded
 * in place and the closing quote becomes the terminating NUL. Most strings
 * are plain ASCII up to their quote: that case is inline in the callers. */
static inline __attribute__((always_inline)) int parse_string(struct parser *p, struct jv *out)
{
    char *text = (char *)p->cur + 1;
    char *s = skip_plain(text, p->end);
    if (s < p->end && *s == '"' && (size_t)(s - text) < UINT32_MAX) {
        string_done(p, out, text, s, s);
        return 0;
    }
    return parse_string_rest(p, out, s);
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static int parse_number(struct parser *p, struct jv *out)
{
    const char *s = p->cur, *e = s;
    if (e < p->end && *e == '-') e++;
    if (e >= p->end || !is_digit(*e)) return fail(p, "invalid number", s);
    if (*e == '0') e++;
    else while (e < p->end && is_digit(*e)) e++;
    bool is_int = true;
    if (e < p->end && *e == '.') {
        is_int = false;
        e++;
        if (e >= p->end || !is_digit(*e)) return fail(p, "invalid number", s);
        while (e < p->end && is_digit(*e)) e++;
    }
    if (e < p->end && (*e == 'e' || *e == 'E')) {
        is_int = false;
        e++;
        if (e < p->end && (*e == '+' || *e == '-')) e++;
        if (e >= p->end || !is_digit(*e)) return fail(p, "invalid number", s);
        while (e < p->end && is_digit(*e)) e++;
    }
    size_t n = (size_t)(e - s);
    if (n >= MAX_NUMBER_TEXT) return fail(p, "number too long", s);
    /* An integer of up to 18 digits cannot overflow int64: summed here,
     * strtoll was half of a small document's parse. */
    bool neg = *s == '-';
    if (is_int && n - neg <= 18) {
        long long v = 0;
        for (const char *c = s + neg; c < e; c++) v = v * 10 + (*c - '0');
        out->type = JV_NUMBER;
        out->n = 0;
        out->is_int = true;
        out->u.i = neg ? -v : v;
        p->cur = e;
        return 0;
    }
    char text[MAX_NUMBER_TEXT];
    memcpy(text, s, n);
    text[n] = '\0';
    out->type = JV_NUMBER;
    out->n = 0;
    out->is_int = false;
    errno = 0;
    if (is_int) {
        long long v = strtoll(text, NULL, 10);
        if (errno == 0) {
            out->is_int = true;
            out->u.i = v;
            p->cur = e;
            return 0;
        }
        errno = 0;   /* too big for int64: keep it as a double */
    }
    double d = strtod(text, NULL);
    if (errno == ERANGE && isinf(d)) return fail(p, "number out of range", s);
    out->u.num = d;
    p->cur = e;
    return 0;
}

static int parse_literal(struct parser *p, const char *word, size_t n, enum jv_type t, struct jv *out)
{
    if ((size_t)(p->end - p->cur) < n || memcmp(p->cur, word, n) != 0)
        return fail(p, "invalid token", p->cur);
    p->cur += n;
    out->type = (uint8_t)t;
    out->is_int = false;
    out->n = 0;
    out->u.i = 0;
    return 0;
}

/* ---- values ------------------------------------------------------------- */

static int parse_value(struct parser *p, struct jv *out, int depth);

static int parse_container(struct parser *p, struct jv *out, int depth, bool object)
{
    const char *open = p->cur;
    if (depth >= JSON_MAX_DEPTH) return fail(p, "too deeply nested", open);
    char close = object ? '}' : ']';
    size_t n = 0;
    p->cur++;
    skip_ws(p);
    if (p->cur < p->end && *p->cur == close) {
        p->cur++;
    } else {
        for (;;) {
            if (object) {
                skip_ws(p);
                if (p->cur >= p->end || *p->cur != '"') return fail(p, "string or '}' expected", p->cur);
                /* push() may move the stack: parse into a local, then store. */
                struct jv key;
                if (parse_string(p, &key) < 0) return -1;
                *push(p) = key;
                skip_ws(p);
                if (p->cur >= p->end || *p->cur != ':') return fail(p, "':' expected", p->cur);
                p->cur++;
            }
            struct jv v;
            if (parse_value(p, &v, depth + 1) < 0) return -1;
            *push(p) = v;
            n++;
            skip_ws(p);
            if (p->cur < p->end && *p->cur == ',') {
                p->cur++;
                continue;
            }
            if (p->cur < p->end && *p->cur == close) {
                p->cur++;
                break;
            }
            return fail(p, object ? "',' or '}' expected" : "',' or ']' expected", p->cur);
        }
    }
    if (n >= UINT32_MAX) return fail(p, "too many values", open);
    out->type = object ? JV_OBJECT : JV_ARRAY;
    out->is_int = false;
    out->n = (uint32_t)n;
    out->u.items = pop_into_arena(p, object ? 2 * n : n);
    return 0;
}

static int parse_value(struct parser *p, struct jv *out, int depth)
{
    skip_ws(p);
    if (p->cur >= p->end) return fail(p, "unexpected end of input", p->cur);
    switch (*p->cur) {
    case '{': return parse_container(p, out, depth, true);
    case '[': return parse_container(p, out, depth, false);
    case '"': return parse_string(p, out);
    case 't': return parse_literal(p, "true", 4, JV_TRUE, out);
    case 'f': return parse_literal(p, "false", 5, JV_FALSE, out);
    case 'n': return parse_literal(p, "null", 4, JV_NULL, out);
    default:
        if (*p->cur == '-' || is_digit(*p->cur)) return parse_number(p, out);
        return fail(p, "invalid token", p->cur);
    }
}

/* ---- the document ------------------------------------------------------- */

int jdoc_parse(struct jdoc *doc, const char *text, size_t len, char *err, size_t errlen)
{
    return jdoc_parse_in(doc, text, len, NULL, 0, err, errlen);
}

int jdoc_parse_in(struct jdoc *doc, const char *text, size_t len, void *mem, size_t memlen, char *err,
                  size_t errlen)
{
    /* Field by field: an initializer would clear the 1 KiB work stack too,
     * which a parse only ever reads where it wrote. */
    struct parser p;
    p.arena = NULL;
    /* The copy of the text takes about half of the first block: small
     * bodies have few values, and the rest usually holds them all. */
    p.next_chunk = len < 64 ? 256 : len < (1u << 17) ? 2 * len + 128 : (1u << 18);
    p.stack = p.local;
    p.top = 0;
    p.cap = LOCAL_STACK;
    p.err = p.err_at = NULL;
    /* The caller's memory is the first block: a request's document then
     * costs no malloc (a block of a few KiB is past glibc's per-thread
     * cache, so each was some 600 instructions to take and 400 to give back). */
    uintptr_t at = ((uintptr_t)mem + 15) & ~(uintptr_t)15;
    if (mem && (uintptr_t)mem + memlen > at + sizeof(struct jarena) + 64) {
        struct jarena *a = (struct jarena *)at;
        a->next = NULL;
        a->used = 0;
        a->cap = (uintptr_t)mem + memlen - at - sizeof *a;
        a->borrowed = true;
        p.arena = a;
    }
    doc->root = NULL;
    doc->arena = NULL;
    char *copy = arena_alloc(&p, len + TEXT_PAD);   /* strings are decoded in place */
    memcpy(copy, text, len);
    memset(copy + len, 0, TEXT_PAD);
    p.start = p.cur = copy;
    p.end = copy + len;

    struct jv root;
    int rc = 0;
    skip_ws(&p);
    if (p.cur >= p.end || (*p.cur != '{' && *p.cur != '[')) rc = fail(&p, "'[' or '{' expected", p.cur);
    else rc = parse_value(&p, &root, 0);
    if (rc == 0) {
        skip_ws(&p);
        if (p.cur != p.end) rc = fail(&p, "end of input expected", p.cur);
    }
    if (p.stack != p.local) free(p.stack);
    doc->arena = p.arena;
    if (rc < 0) {
        int line = 1, col = 1;
        for (const char *c = p.start; c < p.err_at; c++) {
            if (*c == '\n') {
                line++;
                col = 1;
            } else {
                col++;
            }
        }
        snprintf(err, errlen, "%s (line %d, column %d)", p.err, line, col);
        jdoc_free(doc);
        return -EINVAL;
    }
    doc->root = arena_alloc(&p, sizeof *doc->root);
    doc->arena = p.arena;
    *doc->root = root;
    return 0;
}

void *jdoc_alloc(struct jdoc *doc, size_t n)
{
    struct parser p = {.arena = doc->arena, .next_chunk = 256};
    void *r = arena_alloc(&p, n);
    doc->arena = p.arena;
    return r;
}

void jdoc_free(struct jdoc *doc)
{
    struct jarena *a = doc->arena;
    while (a) {
        struct jarena *next = a->next;
        if (!a->borrowed) free(a);
        a = next;
    }
    doc->arena = NULL;
    doc->root = NULL;
}

/* ---- access ------------------------------------------------------------- */

const struct jv *jv_getn(const struct jv *v, const char *key, size_t klen)
{
    if (!jv_is_object(v)) return NULL;
    /* From the last member back: a key given twice means its last value
     * (as most readers take it), and the first match found is that one. */
    for (uint32_t i = v->n; i-- > 0;) {
        const struct jv *k = &v->u.items[2 * i];
        /* The first byte before memcmp: most keys differ there, and a
         * call each was most of a lookup. (klen 0: both are NUL.) */
        if (k->n == klen && k->u.str[0] == key[0] && memcmp(k->u.str, key, klen) == 0) return &v->u.items[2 * i + 1];
    }
    return NULL;
}

size_t jv_size(const struct jv *v)
{
    return jv_is_array(v) ? v->n : 0;
}

const struct jv *jv_at(const struct jv *v, size_t i)
{
    return jv_is_array(v) && i < v->n ? &v->u.items[i] : NULL;
}

const char *jv_str(const struct jv *v)
{
    return jv_is_string(v) ? v->u.str : NULL;
}

double jv_number(const struct jv *v)
{
    if (!jv_is_number(v)) return 0;
    return v->is_int ? (double)v->u.i : v->u.num;
}

int64_t jv_integer(const struct jv *v)
{
    if (!jv_is_number(v)) return 0;
    return v->is_int ? v->u.i : (int64_t)v->u.num;
}
