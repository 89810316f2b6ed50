/* payload_generic.c - for CI jobs and anything else:
 * {"image":"host/ns/name:tag"} or {"repository":"ns/name","tag":"v1"}
 * (optional "registry", "digest", "id").
 *
 * "image" is an image reference and means what it means to Docker: without
 * a host ("redis:7", "team/app:1") it is on Docker Hub, so it matches a
 * docker.io label as well as a host-less one. "repository" names no
 * registry: without "registry" it stays host-less and matches host-less
 * labels only. An explicit "registry" says where the push was and wins over
 * the Docker Hub default. */
#include <errno.h>

#include "payload_formats.h"

static bool detect(const struct jv *root, const struct payload_hints *hints)
{
    (void)hints;
    return jv_is_string(jv_get(root, "image")) ||
           (jv_is_string(jv_get(root, "repository")) &&
            jv_is_string(jv_get(root, "tag")));
}

static int parse(const struct jv *root, struct payload *out, struct buf *err)
{
    const char *id, *registry, *digest;
    if (payload_get_str(root, "id", &id) < 0 || payload_get_str(root, "registry", &registry) < 0 ||
        payload_get_str(root, "digest", &digest) < 0) {
        buf_puts(err, "id, registry and digest must be strings");
        return -EINVAL;
    }
    struct push_event *ev;
    const char *image = payload_str_at(root, "image");
    if (image) {
        const char *host, *repo, *tag, *dig;
        if (payload_split_image(out, image, &host, &repo, &tag, &dig) < 0) {
            buf_puts(err, "image is not an image reference like registry.local:5000/team/app:tag");
            return -EINVAL;
        }
        ev = payload_add_event(out, payload_format_generic.name);
        /* payload_split_image finds the host by Docker's rule ('.' or ':'
         * in the first component, or "localhost"). */
        ev->registry = host ? host : registry ? registry : "docker.io";
        ev->repository = repo;
        ev->tag = tag;
        ev->digest = dig;
    } else {
        ev = payload_add_event(out, payload_format_generic.name);
        ev->repository = payload_str_at(root, "repository");
        const char *tag = payload_str_at(root, "tag");
        ev->tag = *tag ? tag : NULL;
    }
    if (registry && !ev->registry) ev->registry = registry;
    if (digest && !ev->digest) ev->digest = digest;
    ev->id = id;
    if (!ev->tag) payload_ignore(out, ev, "no tag given");
    return 0;
}

PAYLOAD_FORMAT(generic, "generic {\"image\":\"host/ns/name:tag\"} or {\"repository\",\"tag\"}", detect, parse);
