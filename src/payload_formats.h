/* payload_formats.h - what each payload_<format>.c provides to payload.c.
 * Adding a format: one payload_<name>.c defining a struct payload_format,
 * one line in payload.c's table, one test file. */
#ifndef WR_PAYLOAD_FORMATS_H
#define WR_PAYLOAD_FORMATS_H

#include <jansson.h>
#include <stdbool.h>
#include "payload.h"

struct payload_format {
    const char *name;       /* "distribution" */
    const char *describe;   /* for the "unknown payload format" message */
    bool (*detect)(json_t *root, const struct payload_hints *hints);
    /* Appends events to out; on a malformed body returns -EINVAL with a
     * message naming the event and the field. */
    int (*parse)(json_t *root, struct payload *out, struct buf *err);
};

extern const struct payload_format payload_format_distribution;

/* A string member: 0 with *out NULL when absent or null, -EINVAL when it is
 * present with another type. */
int payload_get_str(json_t *obj, const char *key, const char **out);
char *payload_dup(const char *s);

#endif
