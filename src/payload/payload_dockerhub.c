/* payload_dockerhub.c - Docker Hub repository webhooks:
 * {"push_data":{"tag","pushed_at",...},"repository":{"repo_name",...},"callback_url"} */
#include <stdio.h>

#include <errno.h>

#include "payload_formats.h"

static bool detect(const struct jv *root, const struct payload_hints *hints)
{
    (void)hints;
    return jv_is_object(jv_get(root, "push_data")) &&
           jv_is_object(jv_get(root, "repository"));
}

static int parse(const struct jv *root, struct payload *out, struct buf *err)
{
    const char *repo = payload_require(root, "repository.repo_name", NULL, err);
    if (!repo) return -EINVAL;
    const char *tag = payload_str_at(root, "push_data.tag");
    if (!tag && jv_get(jv_get(root, "push_data"), "tag") &&
        !jv_is_null(jv_get(jv_get(root, "push_data"), "tag"))) {
        buf_puts(err, "push_data.tag must be a string");
        return -EINVAL;
    }
    struct push_event *ev = payload_add_event(out, payload_format_dockerhub.name);
    ev->registry = "docker.io";
    ev->repository = repo;
    ev->tag = tag && *tag ? tag : NULL;
    if (!ev->tag) payload_ignore(out, ev, "push without a tag");
    /* Docker Hub sends no event id; its redeliveries carry the same
     * pushed_at, which makes one. */
    char when[32] = "";
    const struct jv *at = jv_get(jv_get(root, "push_data"), "pushed_at");
    if (jv_is_number(at)) snprintf(when, sizeof when, "%.0f", jv_number(at));
    const char *parts[] = {repo, tag, when};
    ev->id = payload_synthetic_id(out, "dockerhub", parts, 3);
    return 0;
}

PAYLOAD_FORMAT(dockerhub, "Docker Hub {\"push_data\",\"repository\"}", detect, parse);
