/* payload.c - webhook body -> push events: JSON parsing and format detection.
 * Each source format lives in its own payload_<format>.c. */
#include "payload.h"

#include <errno.h>
#include "json_parse.h"
#include <stdlib.h>
#include <stdbool.h>
#include <string.h>

#include "payload_formats.h"

struct push_event *payload_add_event(struct payload *p, const char *format)
{
    p->events = xrealloc(p->events, (p->n + 1) * sizeof *p->events);
    struct push_event *ev = &p->events[p->n++];
    memset(ev, 0, sizeof *ev);
    ev->format = format;
    return ev;
}

void payload_free(struct payload *p)
{
    free(p->events);
    jdoc_free(&p->doc);
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
    memset(out, 0, sizeof *out);
    char jerr[160];
    if (jdoc_parse(&out->doc, body, len, jerr, sizeof jerr) < 0) {
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

int payload_get_str(const struct jv *obj, const char *key, const char **out)
{
    const struct jv *v = jv_get(obj, key);
    *out = NULL;
    if (!v || jv_is_null(v)) return 0;
    if (!jv_is_string(v)) return -EINVAL;
    *out = jv_str(v);
    return 0;
}

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

static bool looks_like_host(const char *s, size_t n)
{
    return memchr(s, '.', n) || memchr(s, ':', n) || (n == 9 && memcmp(s, "localhost", 9) == 0);
}

int payload_split_image(struct payload *p, const char *ref, const char **host, const char **repository,
                        const char **tag, const char **digest)
{
    *host = *repository = *tag = *digest = NULL;
    if (!ref || !*ref) return -EINVAL;
    const char *at = strchr(ref, '@');
    size_t n = at ? (size_t)(at - ref) : strlen(ref);
    const char *slash = memchr(ref, '/', n);
    const char *path = ref;
    size_t hostlen = 0;
    if (slash && looks_like_host(ref, (size_t)(slash - ref))) {
        hostlen = (size_t)(slash - ref);
        path = slash + 1;
        n -= hostlen + 1;
    }
    /* A tag is a ':' after the last '/'. */
    const char *last_slash = NULL, *colon = NULL;
    for (size_t i = 0; i < n; i++) {
        if (path[i] == '/') last_slash = path + i;
        if (path[i] == ':') colon = path + i;
    }
    size_t repolen = n;
    if (colon && (!last_slash || colon > last_slash)) repolen = (size_t)(colon - path);
    if (repolen == 0) return -EINVAL;
    if (repolen < n) *tag = payload_strndup(p, colon + 1, n - repolen - 1);
    if (hostlen) *host = payload_strndup(p, ref, hostlen);
    if (at && at[1]) *digest = payload_strdup(p, at + 1);
    *repository = payload_strndup(p, path, repolen);
    return 0;
}

const char *payload_host_of(struct payload *out, const char *s)
{
    if (!s) return NULL;
    const char *p = strstr(s, "://");
    p = p ? p + 3 : s;
    size_t n = strcspn(p, "/?#");
    if (!n || (!strstr(s, "://") && !looks_like_host(p, n))) return NULL;
    return payload_strndup(out, p, n);
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
