/* payload_harbor.c - Harbor webhooks, default format
 * {"type":"PUSH_ARTIFACT","occur_at","event_data":{"resources":[{"tag","digest","resource_url"}],
 *  "repository":{"repo_full_name",...}}}
 * and CloudEvents format {"specversion","id","type":"harbor.artifact.pushed","data":{same}}. */
#include <stdio.h>
#include <string.h>

#include <errno.h>

#include "payload_formats.h"

static bool is_cloudevent(const struct jv *root)
{
    return jv_is_string(jv_get(root, "specversion")) &&
           jv_is_object(jv_get(root, "data"));
}

static bool detect(const struct jv *root, const struct payload_hints *hints)
{
    (void)hints;
    const char *type = payload_str_at(root, "type");
    if (is_cloudevent(root)) return type && strncmp(type, "harbor.", 7) == 0;
    return type && jv_is_object(jv_get(root, "event_data"));
}

static int parse(const struct jv *root, struct payload *out, struct buf *err)
{
    bool ce = is_cloudevent(root);
    const char *type = payload_str_at(root, "type");
    const struct jv *data = jv_get(root, ce ? "data" : "event_data");
    bool push = ce ? strcmp(type, "harbor.artifact.pushed") == 0 : strcmp(type, "PUSH_ARTIFACT") == 0;
    const char *repo = payload_str_at(data, "repository.repo_full_name");
    const struct jv *resources = jv_get(data, "resources");
    if (push && !repo) {
        buf_printf(err, "%s.repository.repo_full_name missing or not a string", ce ? "data" : "event_data");
        return -EINVAL;
    }
    if (push && !jv_is_array(resources)) {
        buf_printf(err, "%s.resources missing or not an array", ce ? "data" : "event_data");
        return -EINVAL;
    }
    if (!push) {
        /* Scans, deletions, quota...: recognised, and not a redeploy. */
        struct push_event *ev = payload_add_event(out, payload_format_harbor.name);
        ev->repository = repo;
        ev->id = ce ? payload_str_at(root, "id") : NULL;
        payload_ignore(out, ev, "event type is %s, not a push", type);
        return 0;
    }
    char when[32] = "";
    const struct jv *at = jv_get(root, "occur_at");
    if (jv_is_number(at)) snprintf(when, sizeof when, "%.0f", jv_number(at));
    size_t i;
    const struct jv *r;
    for (i = 0; i < jv_size(resources) && (r = jv_at(resources, i)); i++) {
        char where[48];
        snprintf(where, sizeof where, "resource %zu", i + 1);
        if (!jv_is_object(r)) {
            buf_printf(err, "%s: not an object", where);
            return -EINVAL;
        }
        struct push_event *ev = payload_add_event(out, payload_format_harbor.name);
        const char *tag = payload_str_at(r, "tag");
        const char *digest = payload_str_at(r, "digest");
        ev->repository = repo;
        ev->tag = tag && *tag ? tag : NULL;
        ev->digest = digest;
        ev->registry = payload_host_of(out, payload_str_at(r, "resource_url"));
        if (!ev->tag) payload_ignore(out, ev, "push without a tag");
        const char *id = ce ? payload_str_at(root, "id") : NULL;
        const char *parts[] = {id ? id : when, repo, tag, digest};
        ev->id = payload_synthetic_id(out, "harbor", parts, 4);
    }
    return 0;
}

PAYLOAD_FORMAT(harbor, "Harbor {\"type\",\"event_data\"} or its CloudEvents form", detect, parse);
