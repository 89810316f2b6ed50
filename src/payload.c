/* payload.c - webhook body -> push events: JSON parsing and format detection.
 * Each source format lives in its own payload_<format>.c. */
#include "payload.h"

#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
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
    for (size_t i = 0; i < p->n; i++) {
        struct push_event *ev = &p->events[i];
        free(ev->id);
        free(ev->registry);
        free(ev->repository);
        free(ev->tag);
        free(ev->digest);
        free(ev->ignored);
    }
    free(p->events);
    memset(p, 0, sizeof *p);
}

/* The formats, tried in order; the first whose detect() says yes parses. */
static const struct payload_format *const formats[] = {
    &payload_format_distribution,
};

int payload_parse(const char *body, size_t len, const struct payload_hints *hints,
                  struct payload *out, struct buf *err)
{
    memset(out, 0, sizeof *out);
    json_error_t jerr;
    json_t *root = json_loadb(body, len, 0, &jerr);
    if (!root) {
        buf_printf(err, "body is not valid JSON: %s (line %d, column %d)", jerr.text, jerr.line,
                   jerr.column);
        return -EINVAL;
    }
    int rc = -EINVAL;
    for (size_t i = 0; i < sizeof formats / sizeof formats[0]; i++) {
        if (!formats[i]->detect(root, hints)) continue;
        out->format = formats[i]->name;
        rc = formats[i]->parse(root, out, err);
        break;
    }
    if (!out->format) {
        buf_puts(err, "unknown payload format: expected one of:");
        for (size_t i = 0; i < sizeof formats / sizeof formats[0]; i++)
            buf_printf(err, "%s %s", i ? "," : "", formats[i]->describe);
    }
    json_decref(root);
    if (rc < 0) payload_free(out);
    return rc;
}

/* ---- helpers shared by the format parsers ------------------------------- */

int payload_get_str(json_t *obj, const char *key, const char **out)
{
    json_t *v = json_object_get(obj, key);
    *out = NULL;
    if (!v || json_is_null(v)) return 0;
    if (!json_is_string(v)) return -EINVAL;
    *out = json_string_value(v);
    return 0;
}

char *payload_dup(const char *s)
{
    return s ? xstrdup(s) : NULL;
}
