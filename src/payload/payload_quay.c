/* payload_quay.c - Quay repository push notifications:
 * {"repository":"ns/name","docker_url":"quay.io/ns/name","updated_tags":["latest",...]} */
#include <errno.h>

#include "payload_formats.h"

static bool detect(const struct jv *root, const struct payload_hints *hints)
{
    (void)hints;
    return jv_is_array(jv_get(root, "updated_tags"));
}

static int parse(const struct jv *root, struct payload *out, struct buf *err)
{
    const char *repo = payload_require(root, "repository", NULL, err);
    if (!repo) return -EINVAL;
    const char *host = payload_host_of(out, payload_str_at(root, "docker_url"));
    const struct jv *tags = jv_get(root, "updated_tags");
    size_t i;
    const struct jv *t;
    for (i = 0; i < jv_size(tags) && (t = jv_at(tags, i)); i++) {
        if (!jv_is_string(t)) {
            buf_printf(err, "updated_tags[%zu] is not a string", i);
            return -EINVAL;
        }
        struct push_event *ev = payload_add_event(out, payload_format_quay.name);
        ev->repository = repo;
        ev->registry = host;
        ev->tag = jv_str(t);
        /* Quay sends no id; without one a redelivery cannot be told apart
         * from a new push of the same tag, so none is made up. */
    }
    return 0;
}

PAYLOAD_FORMAT(quay, "Quay {\"repository\",\"updated_tags\"}", detect, parse);
