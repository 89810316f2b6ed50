/* payload_distribution.c - the CNCF distribution registry's notification
 * envelope {"events":[...]} (also what GitLab's registry sends), and ACR's
 * single event of the same shape.
 *
 * Only manifest pushes with a tag are pushes worth a redeploy. A docker push
 * also notifies every blob upload and the HEAD/GET checks around them, which
 * is most of the traffic: those are recognised and ignored cheaply. */
#include <errno.h>
#include <string.h>

#include "payload_formats.h"

static bool detect(const struct jv *root, const struct payload_hints *hints)
{
    (void)hints;
    return jv_is_object(root) && jv_is_array(jv_get(root, "events"));
}

static bool is_manifest_type(const char *media_type)
{
    return media_type && (strstr(media_type, "manifest") || strstr(media_type, "image.index"));
}

static int parse_event(const struct jv *e, size_t i, const char *format, struct payload *out, struct buf *err)
{
    const char *id, *action, *repo, *tag, *digest, *media, *turl, *host = NULL;
    const struct jv *target = jv_get(e, "target");
    const struct jv *request = jv_get(e, "request");

    if (!jv_is_object(e)) {
        buf_printf(err, "event %zu: not an object", i + 1);
        return -EINVAL;
    }
    if (payload_get_str(e, "action", &action) < 0 || !action) {
        buf_printf(err, "event %zu: action missing or not a string", i + 1);
        return -EINVAL;
    }
    if (!jv_is_object(target)) {
        buf_printf(err, "event %zu: target missing or not an object", i + 1);
        return -EINVAL;
    }
    if (payload_get_str(target, "repository", &repo) < 0 || !repo || !*repo) {
        buf_printf(err, "event %zu: target.repository missing or not a string", i + 1);
        return -EINVAL;
    }
    if (payload_get_str(e, "id", &id) < 0 || payload_get_str(target, "tag", &tag) < 0 ||
        payload_get_str(target, "digest", &digest) < 0 ||
        payload_get_str(target, "mediaType", &media) < 0 ||
        payload_get_str(target, "url", &turl) < 0 ||
        (jv_is_object(request) && payload_get_str(request, "host", &host) < 0)) {
        buf_printf(err, "event %zu: id, target.tag, target.digest, target.mediaType, "
                        "target.url and request.host must be strings", i + 1);
        return -EINVAL;
    }

    struct push_event *ev = payload_add_event(out, format);
    ev->id = id;
    ev->repository = repo;
    ev->tag = tag && *tag ? tag : NULL;
    ev->digest = digest;
    /* request.host is the name the pusher used for the registry: that is
     * what a host-qualified label is written with. */
    ev->registry = host && *host ? host : payload_host_of(out, turl);

    if (strcmp(action, "push") != 0) payload_ignore(out, ev, "action is %s, not push", action);
    else if (!ev->tag) payload_ignore(out, ev, is_manifest_type(media) ? "manifest push without a tag" : "blob push");
    return 0;
}

static int parse(const struct jv *root, struct payload *out, struct buf *err)
{
    const struct jv *events = jv_get(root, "events");
    size_t i;
    const struct jv *e;
    for (i = 0; i < jv_size(events) && (e = jv_at(events, i)); i++) {
        if (parse_event(e, i, payload_format_distribution.name, out, err) < 0) return -EINVAL;
    }
    return 0;
}

PAYLOAD_FORMAT(distribution, "distribution envelope {\"events\":[...]}", detect, parse);

/* Azure Container Registry posts one distribution-shaped event per request,
 * without the {"events":[...]} envelope. */
static bool detect_acr(const struct jv *root, const struct payload_hints *hints)
{
    (void)hints;
    return jv_is_object(root) && jv_is_string(jv_get(root, "action")) &&
           jv_is_object(jv_get(root, "target"));
}

static int parse_acr(const struct jv *root, struct payload *out, struct buf *err)
{
    return parse_event(root, 0, payload_format_acr.name, out, err);
}

PAYLOAD_FORMAT(acr, "Azure Container Registry event {\"action\",\"target\"}", detect_acr, parse_acr);
