/* payload.c - webhook body -> push events: JSON parsing and format detection.
 * Each source format lives in its own payload_<format>.c. */
#include "payload.h"

#include <errno.h>
#include <stdarg.h>
#include "json_parse.h"
#include <stdlib.h>
#include <stdbool.h>
#include <string.h>

#include "payload_formats.h"
#include "reference.h"

struct push_event *payload_add_event(struct payload *p, const char *format)
{
    /* In the document's memory, which payload_free frees as one: most
     * requests carry one event, and its own malloc and free were a tenth of
     * reading one. Doubling; a grown array leaves its old copy there. */
    if (p->n == p->cap) {
        size_t cap = p->cap ? 2 * p->cap : 4;
        struct push_event *events = jdoc_alloc(&p->doc, cap * sizeof *events);
        if (p->n) memcpy(events, p->events, p->n * sizeof *events);
        p->events = events;
        p->cap = cap;
    }
    struct push_event *ev = &p->events[p->n++];
    memset(ev, 0, sizeof *ev);
    ev->format = format;
    return ev;
}

void payload_free(struct payload *p)
{
    jdoc_free(&p->doc);   /* the events with it */
    memset(p, 0, sizeof *p);
}

/* The formats, tried in order; the first whose detect() says yes parses. */
/* Most specific shapes first: generic matches loosely and goes last. */
static const struct payload_format *const formats[] = {
    &payload_format_github,  &payload_format_gitea,  &payload_format_distribution,
    &payload_format_acr,     &payload_format_dockerhub, &payload_format_harbor,
    &payload_format_quay,    &payload_format_generic,
};

int payload_parse(const char *body, size_t len, const struct payload_hints *hints,
                  struct payload *out, struct buf *err)
{
    return payload_parse_in(body, len, hints, NULL, 0, out, err);
}

int payload_parse_in(const char *body, size_t len, const struct payload_hints *hints, void *mem, size_t memlen,
                     struct payload *out, struct buf *err)
{
    memset(out, 0, sizeof *out);
    char jerr[160];
    if (jdoc_parse_in(&out->doc, body, len, mem, memlen, jerr, sizeof jerr) < 0) {
        buf_printf(err, "body is not valid JSON: %s", jerr);
        return -EINVAL;
    }
    const struct jv *root = out->doc.root;
    int rc = -EINVAL;
    for (size_t i = 0; i < sizeof formats / sizeof formats[0]; i++) {
        if (!formats[i]->detect(root, hints)) continue;
        out->format = formats[i]->name;
        rc = formats[i]->parse(root, out, err) < 0 ? -EINVAL : 0;
        break;
    }
    if (!out->format) {
        buf_puts(err, "unknown payload format: expected one of");
        for (size_t i = 0; i < sizeof formats / sizeof formats[0]; i++)
            buf_printf(err, "%s %s", i ? ";" : ":", formats[i]->describe);
    }
    if (rc < 0) payload_free(out);
    return rc;
}

/* ---- helpers shared by the format parsers ------------------------------- */

const char *payload_strndup(struct payload *p, const char *s, size_t n)
{
    char *d = jdoc_alloc(&p->doc, n + 1);
    memcpy(d, s, n);
    d[n] = '\0';
    return d;
}

const char *payload_keep(struct payload *p, struct buf *b)
{
    const char *s = payload_strndup(p, b->data ? b->data : "", b->len);
    buf_free(b);
    return s;
}

const char *payload_str_at(const struct jv *root, const char *path)
{
    const struct jv *cur = root;
    const char *p = path;
    while (cur && *p) {
        size_t n = strcspn(p, ".");
        char key[64];
        if (n >= sizeof key || !jv_is_object(cur)) return NULL;
        memcpy(key, p, n);
        key[n] = '\0';
        cur = jv_get(cur, key);
        p += n + (p[n] == '.');
    }
    return jv_is_string(cur) ? jv_str(cur) : NULL;
}

const char *payload_require(const struct jv *root, const char *path, const char *where, struct buf *err)
{
    const char *v = payload_str_at(root, path);
    if (!v || !*v) buf_printf(err, "%s%s%s missing or not a string", where ? where : "", where ? ": " : "", path);
    return v && *v ? v : NULL;
}

static const char *span_dup(struct payload *p, struct reference_span sp)
{
    return sp.p ? payload_strndup(p, sp.p, sp.n) : NULL;
}

int payload_split_image(struct payload *p, const char *ref, const char **host, const char **repository,
                        const char **tag, const char **digest)
{
    *host = *repository = *tag = *digest = NULL;
    struct reference r;
    if (!ref || reference_split(ref, strlen(ref), &r) < 0) return -EINVAL;
    *host = span_dup(p, r.host);
    *repository = span_dup(p, r.path);
    *tag = span_dup(p, r.tag);
    *digest = span_dup(p, r.digest);
    return 0;
}

const char *payload_host_of(struct payload *out, const char *s)
{
    struct reference_span host;
    return reference_host_of(s, &host) == 0 ? span_dup(out, host) : NULL;
}

void payload_ignore(struct payload *p, struct push_event *ev, const char *fmt, ...)
{
    if (!strchr(fmt, '%')) {
        ev->ignored = fmt;
        return;
    }
    /* Only %s, and without printf: this runs for every pull notification,
     * the bulk of a registry's traffic, where vsnprintf alone cost ~10 %
     * of the request. */
    struct buf b;
    buf_init(&b);
    va_list ap;
    va_start(ap, fmt);
    for (const char *f = fmt; *f;) {
        const char *pct = strstr(f, "%s");
        size_t run = pct ? (size_t)(pct - f) : strlen(f);
        buf_append(&b, f, run);
        f += run;
        if (!pct) break;
        const char *arg = va_arg(ap, const char *);
        buf_puts(&b, arg ? arg : "(null)");
        f += 2;
    }
    va_end(ap);
    ev->ignored = payload_keep(p, &b);
}

const char *payload_synthetic_id(struct payload *out, const char *format, const char *const *parts, size_t n)
{
    struct buf b;
    buf_init(&b);
    buf_puts(&b, format);
    for (size_t i = 0; i < n; i++) {
        buf_putc(&b, ':');
        buf_puts(&b, parts[i] ? parts[i] : "");
    }
    return payload_keep(out, &b);
}
