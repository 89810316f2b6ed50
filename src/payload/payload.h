/* payload.h - turning a webhook body into push events.
 *
 * payload.c detects the format and dispatches to one payload_<format>.c per
 * source; each produces the same struct push_event. Pure: no I/O. */
#ifndef WR_PAYLOAD_H
#define WR_PAYLOAD_H

#include <stddef.h>
#include "buf.h"
#include "event.h"
#include "json_parse.h"

/* The events' strings live in the payload's document (or are static):
 * valid until payload_free. */
struct payload {
    const char *format;
    struct push_event *events;   /* payload_add_event's: in doc's memory */
    size_t n, cap;
    struct jdoc doc;      /* the parsed body; owns every string of the events, and the events */
};

/* Header values that help detection; any may be NULL. */
struct payload_hints {
    const char *content_type;
    const char *github_event;
    const char *gitea_event;
    const char *gitlab_event;
};

/* Returns 0, or -EINVAL with a message in err (e.g. "body is not valid JSON:
 * ...", "unknown payload format: ..."). out is always safe to payload_free. */
int payload_parse(const char *body, size_t len, const struct payload_hints *hints,
                  struct payload *out, struct buf *err);
/* The same, the document kept in mem (memlen bytes) while it fits: mem
 * must outlive out (payload_free leaves it alone). */
int payload_parse_in(const char *body, size_t len, const struct payload_hints *hints, void *mem, size_t memlen,
                     struct payload *out, struct buf *err);
void payload_free(struct payload *p);

/* Helpers for the per-format parsers. */
struct push_event *payload_add_event(struct payload *p, const char *format);

#endif
