/* payload_dockerhub.c - Docker Hub repository webhooks:
 * {"push_data":{"tag","pushed_at",...},"repository":{"repo_name",...},"callback_url"} */
#include <stdio.h>

#include "payload_formats.h"

static bool detect(json_t *root, const struct payload_hints *hints)
{
    (void)hints;
    return json_is_object(json_object_get(root, "push_data")) &&
           json_is_object(json_object_get(root, "repository"));
}

static int parse(json_t *root, struct payload *out, struct buf *err)
{
    const char *repo = payload_require(root, "repository.repo_name", NULL, err);
    if (!repo) return -1;
    const char *tag = payload_str_at(root, "push_data.tag");
    if (!tag && json_object_get(json_object_get(root, "push_data"), "tag") &&
        !json_is_null(json_object_get(json_object_get(root, "push_data"), "tag"))) {
        buf_puts(err, "push_data.tag must be a string");
        return -1;
    }
    struct push_event *ev = payload_add_event(out, payload_format_dockerhub.name);
    ev->registry = xstrdup("docker.io");
    ev->repository = xstrdup(repo);
    ev->tag = tag && *tag ? xstrdup(tag) : NULL;
    if (!ev->tag) ev->ignored = xstrdup("push without a tag");
    /* Docker Hub sends no event id; its redeliveries carry the same
     * pushed_at, which makes one. */
    char when[32] = "";
    json_t *at = json_object_get(json_object_get(root, "push_data"), "pushed_at");
    if (json_is_number(at)) snprintf(when, sizeof when, "%.0f", json_number_value(at));
    const char *parts[] = {repo, tag, when};
    ev->id = payload_synthetic_id("dockerhub", parts, 3);
    return 0;
}

const struct payload_format payload_format_dockerhub = {
    .name = "dockerhub",
    .describe = "Docker Hub {\"push_data\",\"repository\"}",
    .detect = detect,
    .parse = parse,
};
