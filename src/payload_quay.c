/* payload_quay.c - Quay repository push notifications:
 * {"repository":"ns/name","docker_url":"quay.io/ns/name","updated_tags":["latest",...]} */
#include <stdlib.h>

#include "payload_formats.h"

static bool detect(const struct jv *root, const struct payload_hints *hints)
{
    (void)hints;
    return jv_is_array(jv_get(root, "updated_tags"));
}

static int parse(const struct jv *root, struct payload *out, struct buf *err)
{
    const char *repo = payload_require(root, "repository", NULL, err);
    if (!repo) return -1;
    char *host = payload_host_of(payload_str_at(root, "docker_url"));
    const struct jv *tags = jv_get(root, "updated_tags");
    size_t i;
    const struct jv *t;
    for (i = 0; i < jv_size(tags) && (t = jv_at(tags, i)); i++) {
        if (!jv_is_string(t)) {
            buf_printf(err, "updated_tags[%zu] is not a string", i);
            free(host);
            return -1;
        }
        struct push_event *ev = payload_add_event(out, payload_format_quay.name);
        ev->repository = xstrdup(repo);
        ev->registry = payload_dup(host);
        ev->tag = xstrdup(jv_str(t));
        /* Quay sends no id; without one a redelivery cannot be told apart
         * from a new push of the same tag, so none is made up. */
    }
    free(host);
    return 0;
}

const struct payload_format payload_format_quay = {
    .name = "quay",
    .describe = "Quay {\"repository\",\"updated_tags\"}",
    .detect = detect,
    .parse = parse,
};
