/* payload_formats.h - what each payload_<format>.c provides to payload.c.
 * Adding a format: one payload_<name>.c defining a struct payload_format,
 * one line in payload.c's table, one test file. */
#ifndef WR_PAYLOAD_FORMATS_H
#define WR_PAYLOAD_FORMATS_H

#include <errno.h>
#include <stdbool.h>
#include <string.h>

#include "json_parse.h"
#include "payload.h"

struct payload_format {
    const char *name;       /* "distribution" */
    const char *describe;   /* for the "unknown payload format" message */
    bool (*detect)(const struct jv *root, const struct payload_hints *hints);
    /* Appends events to out; on a malformed body returns -EINVAL with a
     * message naming the event and the field. */
    int (*parse)(const struct jv *root, struct payload *out, struct buf *err);
};

/* Defines payload_format_<id>, named "<id>". */
#define PAYLOAD_FORMAT(id, description, detect_fn, parse_fn)                                        \
    const struct payload_format payload_format_##id = {                                            \
        .name = #id, .describe = (description), .detect = (detect_fn), .parse = (parse_fn)}

extern const struct payload_format payload_format_distribution;
extern const struct payload_format payload_format_acr;
extern const struct payload_format payload_format_dockerhub;
extern const struct payload_format payload_format_harbor;
extern const struct payload_format payload_format_github;
extern const struct payload_format payload_format_gitea;
extern const struct payload_format payload_format_quay;
extern const struct payload_format payload_format_generic;

/* A string member: 0 with *out NULL when absent or null, -EINVAL when it is
 * present with another type. Inline: keys are literals, their length folds. */
static inline int payload_get_str(const struct jv *obj, const char *key, const char **out)
{
    const struct jv *v = jv_get(obj, key);
    *out = NULL;
    if (!v || jv_is_null(v)) return 0;
    if (!jv_is_string(v)) return -EINVAL;
    *out = v->u.str;
    return 0;
}

/* Strings an event needs beyond the body's own values (which it can point
 * at directly) are made in the payload's document, freed with it. */
const char *payload_strndup(struct payload *p, const char *s, size_t n);
static inline const char *payload_strdup(struct payload *p, const char *s)
{
    return s ? payload_strndup(p, s, strlen(s)) : NULL;
}
/* Moves a built string into the payload (b is freed). */
const char *payload_keep(struct payload *p, struct buf *b);

/* The string at a dotted path ("event_data.repository.repo_full_name"), or
 * NULL when any step is missing or not of the right type. */
const char *payload_str_at(const struct jv *root, const char *path);

/* Like payload_str_at for a field the format cannot do without: when it is
 * missing, writes "<where>: <path> missing or not a string" to err (where
 * may be NULL) and returns NULL. */
const char *payload_require(const struct jv *root, const char *path, const char *where, struct buf *err);

/* Splits an image reference "host:5000/ns/name:tag@sha256:..." into its
 * parts (in p, or NULL). The host is the first component when it looks like
 * one (has '.' or ':', or is localhost). Returns 0 or -EINVAL. */
int payload_split_image(struct payload *p, const char *ref, const char **host, const char **repository,
                        const char **tag, const char **digest);

/* The host part of "https://host:port/..." or "host/ns/name" (in p), or NULL. */
const char *payload_host_of(struct payload *p, const char *url_or_ref);

/* Marks ev as recognised but not a push to route, and says why. A reason
 * without '%' is kept as it is (a static string, no allocation: the noise
 * path of blob pushes stays cheap); otherwise its %s are filled in (the
 * only conversion it knows) into p. */
void payload_ignore(struct payload *p, struct push_event *ev, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* A synthetic event id for sources that send none, so redeliveries of the
 * same push can still be recognised: "<format>:<part>:<part>...". */
const char *payload_synthetic_id(struct payload *p, const char *format, const char *const *parts, size_t n);

#endif
