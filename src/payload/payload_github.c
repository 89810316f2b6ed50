/* payload_github.c - GitHub Packages (GHCR): the `registry_package` and
 * `package` webhook events. A container version published with a tag is a
 * push: {"action":"published","registry_package"|"package":{"name",
 * "namespace"|"owner","package_type","package_version":{"container_metadata":
 * {"tag":{"name","digest"}},"package_url"}}} */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <errno.h>

#include "payload_formats.h"

static const struct jv *package_of(const struct jv *root)
{
    const struct jv *p = jv_get(root, "registry_package");
    return jv_is_object(p) ? p : jv_get(root, "package");
}

static bool detect(const struct jv *root, const struct payload_hints *hints)
{
    /* Gitea sends X-GitHub-Event too, for compatibility: its own header wins. */
    if (hints && hints->gitea_event) return false;
    if (hints && hints->github_event)
        return !strcmp(hints->github_event, "registry_package") || !strcmp(hints->github_event, "package");
    const struct jv *p = package_of(root);
    /* GitHub's package objects have package_version; Gitea's do not. */
    return jv_is_object(p) && jv_is_object(jv_get(p, "package_version"));
}


static int parse(const struct jv *root, struct payload *out, struct buf *err)
{
    const struct jv *p = package_of(root);
    if (!jv_is_object(p)) {
        buf_puts(err, "registry_package (or package) missing or not an object");
        return -EINVAL;
    }
    const char *action = payload_require(root, "action", NULL, err);
    const char *name = action ? payload_require(p, "name", "package", err) : NULL;
    if (!name) return -EINVAL;
    const char *owner = payload_str_at(p, "namespace");
    if (!owner) owner = payload_str_at(p, "owner.login");
    if (!owner) {
        buf_puts(err, "package: namespace (or owner.login) missing or not a string");
        return -EINVAL;
    }
    const char *type = payload_str_at(p, "package_type");
    if (!type) type = payload_str_at(p, "ecosystem");
    const char *tag = payload_str_at(p, "package_version.container_metadata.tag.name");
    const char *digest = payload_str_at(p, "package_version.container_metadata.tag.digest");
    if (!digest) digest = payload_str_at(p, "package_version.version");

    struct push_event *ev = payload_add_event(out, payload_format_github.name);
    /* GHCR paths are lower case, while GitHub keeps the owner's spelling. */
    struct buf repo;
    buf_init(&repo);
    buf_printf(&repo, "%s/%s", owner, name);
    ascii_lower_str(repo.data);
    ev->repository = payload_keep(out, &repo);
    ev->registry = payload_host_of(out, payload_str_at(p, "package_version.package_url"));
    if (!ev->registry) ev->registry = "ghcr.io";
    ev->tag = tag && *tag ? tag : NULL;
    ev->digest = digest;
    const struct jv *vid = jv_get(jv_get(p, "package_version"), "id");
    char idbuf[32] = "";
    if (jv_is_integer(vid)) snprintf(idbuf, sizeof idbuf, "%lld", (long long)jv_integer(vid));
    const char *parts[] = {idbuf, ev->repository, tag};
    ev->id = payload_synthetic_id(out, "github", parts, 3);

    if (strcmp(action, "published") != 0) payload_ignore(out, ev, "action is %s, not published", action);
    else if (type && strcasecmp(type, "container") != 0 && strcasecmp(type, "docker") != 0)
        payload_ignore(out, ev, "package type is %s, not container", type);
    else if (!ev->tag) payload_ignore(out, ev, "version without a tag");
    return 0;
}

PAYLOAD_FORMAT(github, "GitHub registry_package/package event", detect, parse);
