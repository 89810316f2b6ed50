/* payload_gitea.c - Gitea / Forgejo `package` events:
 * {"action":"created","package":{"type":"container","name","version",
 *  "owner":{"login"},"html_url"}} */
#include <string.h>

#include <errno.h>

#include "payload_formats.h"

static bool detect(const struct jv *root, const struct payload_hints *hints)
{
    if (hints && hints->gitea_event) return strcmp(hints->gitea_event, "package") == 0;
    const struct jv *p = jv_get(root, "package");
    return jv_is_object(p) && jv_is_string(jv_get(p, "type")) &&
           jv_is_string(jv_get(p, "version"));
}

static int parse(const struct jv *root, struct payload *out, struct buf *err)
{
    const struct jv *p = jv_get(root, "package");
    if (!jv_is_object(p)) {
        buf_puts(err, "package missing or not an object");
        return -EINVAL;
    }
    const char *action = payload_require(root, "action", NULL, err);
    const char *name = action ? payload_require(p, "name", "package", err) : NULL;
    const char *owner = name ? payload_require(p, "owner.login", "package", err) : NULL;
    const char *version = owner ? payload_require(p, "version", "package", err) : NULL;
    if (!version) return -EINVAL;
    const char *type = payload_str_at(p, "type");

    struct push_event *ev = payload_add_event(out, payload_format_gitea.name);
    struct buf repo;
    buf_init(&repo);
    buf_printf(&repo, "%s/%s", owner, name);
    ascii_lower_str(repo.data);
    ev->repository = payload_keep(out, &repo);
    ev->registry = payload_host_of(out, payload_str_at(p, "html_url"));
    /* A container version is either a tag or, untagged, a digest. */
    bool by_digest = strncmp(version, "sha256:", 7) == 0;
    ev->tag = by_digest ? NULL : version;
    ev->digest = by_digest ? version : NULL;
    const char *parts[] = {ev->repository, version, payload_str_at(p, "created_at")};
    ev->id = payload_synthetic_id(out, "gitea", parts, 3);

    if (strcmp(action, "created") != 0) payload_ignore(out, ev, "action is %s, not created", action);
    else if (!type || strcmp(type, "container") != 0)
        payload_ignore(out, ev, "package type is %s, not container", type ? type : "missing");
    else if (!ev->tag) payload_ignore(out, ev, "version without a tag");
    return 0;
}

PAYLOAD_FORMAT(gitea, "Gitea/Forgejo package event", detect, parse);
