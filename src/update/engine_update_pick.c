/* engine_update_pick.c - what an update installs (see engine_update_pick.h).
 *
 * The push event names a repository and maybe a registry; the object names
 * its own. A host-less label matches a push of that repository on any
 * registry (that is what routes are for), but what is installed is always
 * pulled from the object's own registry and repository: otherwise one
 * unauthenticated webhook naming another host would run that host's image
 * with this container's secrets and volumes. */
#include "engine_update_pick.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "match.h"
#include "reference.h"

#define VERSION_PARTS 8

/* The reason, for an info line. */
#define SAY(...) snprintf(why, whylen, __VA_ARGS__)

static bool is_image_id(const char *s)
{
    if (!strncmp(s, "sha256:", 7)) s += 7;
    size_t n = strspn(s, "0123456789abcdef");
    return n == 64 && !s[n];
}

/* A span as a string into out (truncated to fit: our buffers are larger
 * than any valid reference part). */
static void span_str(char *out, size_t n, struct reference_span sp)
{
    snprintf(out, n, "%.*s", (int)sp.n, sp.p ? sp.p : "");
}

static bool has_wildcard(const char *glob)
{
    return strpbrk(glob, "*?[") != NULL;
}

int engine_update_pick(const char *own_image, const char *tag_label, const char *ev_registry,
                       const char *ev_repository, const char *ev_tag, const char *ev_digest,
                       struct engine_pick *out, char *why, size_t whylen)
{
    memset(out, 0, sizeof *out);
    struct reference r;
    if (!own_image || !*own_image || is_image_id(own_image) ||
        reference_split(own_image, strlen(own_image), &r) < 0) {
        SAY("its image reference %s names no repository to pull from", own_image ? own_image : "(none)");
        return -EINVAL;
    }
    char host[256], path[512], own_tag[256];
    span_str(host, sizeof host, r.host);
    span_str(path, sizeof path, r.path);
    span_str(own_tag, sizeof own_tag, r.tag);
    struct repo_ref own, ev;
    if (repo_ref_from_event(host[0] ? host : "docker.io", path, &own) < 0) {
        SAY("its image reference %s cannot be read", own_image);
        return -EINVAL;
    }
    if (!ev_repository || !ev_tag || repo_ref_from_event(ev_registry, ev_repository, &ev) < 0) {
        SAY("the push names no repository or tag");
        return 1;
    }
    if (strcmp(own.path, ev.path) != 0) {
        SAY("the push is of %s, it runs %s", ev.path, own.path);
        return 1;
    }
    if (ev.host[0] && strcmp(own.host, ev.host) != 0) {
        /* Same repository name, another registry: never installed. */
        SAY("the push comes from registry %s, its image from %s", ev.host, own.host);
        return 1;
    }
    /* Its own tag: the reference's, Docker's "latest" when it names none,
     * none at all when it is pinned by digest only. */
    if (!r.tag.p && !r.digest.p) snprintf(own_tag, sizeof own_tag, "latest");
    bool own_has_tag = own_tag[0] != '\0';
    if (!tag_label || !*tag_label) {
        if (!own_has_tag) {
            SAY("it runs a digest, not a tag: set a tag label to follow %s", ev_tag);
            return 1;
        }
        if (strcmp(own_tag, ev_tag) != 0) {
            SAY("tag %s is not the one it runs (%s); a tag label follows others", ev_tag, own_tag);
            return 1;
        }
    } else {
        if (!tag_glob_match(tag_label, ev_tag)) {
            SAY("tag %s is not accepted by its tag label %s", ev_tag, tag_label);
            return 1;
        }
        bool comparable;
        if (own_has_tag && has_wildcard(tag_label) && engine_version_cmp(ev_tag, own_tag, &comparable) < 0 &&
            comparable) {
            SAY("tag %s is an older version than the one it runs (%s): no downgrades", ev_tag, own_tag);
            return 1;
        }
    }
    /* The engine's spelling of the repository: the reference's own. */
    if (r.host.p) snprintf(out->repo, sizeof out->repo, "%s/%s", host, path);
    else snprintf(out->repo, sizeof out->repo, "%s", path);
    snprintf(out->tag, sizeof out->tag, "%s", ev_tag);
    snprintf(out->digest, sizeof out->digest, "%s", ev_digest ? ev_digest : "");
    snprintf(out->host, sizeof out->host, "%s", own.host);
    snprintf(out->path, sizeof out->path, "%s", own.path);
    why[0] = '\0';
    return 0;
}

bool engine_pick_pulled(const struct engine_pick *p, json_t *repo_digests)
{
    size_t i;
    json_t *e;
    json_array_foreach(repo_digests, i, e) {
        const char *s = json_string_value(e);
        const char *at = s ? strchr(s, '@') : NULL;
        if (!at || !p->digest[0] || strcmp(at + 1, p->digest) != 0) continue;
        struct reference r;
        if (reference_split(s, (size_t)(at - s), &r) < 0) continue;
        char host[256], path[512];
        span_str(host, sizeof host, r.host);
        span_str(path, sizeof path, r.path);
        struct repo_ref ref;
        if (repo_ref_from_event(host[0] ? host : "docker.io", path, &ref) == 0 && !strcmp(ref.host, p->host) &&
            !strcmp(ref.path, p->path))
            return true;
    }
    return false;
}

/* "v1.2.3-rc1": the numbers into parts (missing ones 0), *pre the suffix
 * after '-' ("" for none). False when s is not a version. */
static bool parse_version(const char *s, unsigned long parts[VERSION_PARTS], const char **pre)
{
    memset(parts, 0, sizeof(unsigned long) * VERSION_PARTS);
    if (*s == 'v' || *s == 'V') s++;
    size_t i = 0;
    for (;;) {
        if (*s < '0' || *s > '9' || i == VERSION_PARTS) return false;
        char *end;
        parts[i++] = strtoul(s, &end, 10);
        s = end;
        if (*s != '.') break;
        s++;
    }
    if (*s && *s != '-' && *s != '+') return false;
    *pre = *s == '-' ? s + 1 : "";
    return true;
}

int engine_version_cmp(const char *a, const char *b, bool *comparable)
{
    unsigned long pa[VERSION_PARTS], pb[VERSION_PARTS];
    const char *ra, *rb;
    *comparable = parse_version(a, pa, &ra) && parse_version(b, pb, &rb);
    if (!*comparable) return 0;
    for (size_t i = 0; i < VERSION_PARTS; i++)
        if (pa[i] != pb[i]) return pa[i] < pb[i] ? -1 : 1;
    /* A pre-release comes before its release. */
    if (!*ra != !*rb) return *ra ? -1 : 1;
    int c = strcmp(ra, rb);
    return (c > 0) - (c < 0);
}

/* Docker's durations are nanoseconds; 0 or absent means its default. */
static uint64_t ns_ms(json_t *hc, const char *key, uint64_t dflt_ms)
{
    json_int_t v = json_integer_value(json_object_get(hc, key));
    return v > 0 ? (uint64_t)v / 1000000 : dflt_ms;
}

uint64_t engine_update_health_wait_ms(json_t *hc, uint64_t floor_ms)
{
    if (!json_is_object(hc)) return floor_ms;
    json_int_t retries = json_integer_value(json_object_get(hc, "Retries"));
    uint64_t wait = ns_ms(hc, "StartPeriod", 0) + ns_ms(hc, "Interval", 30000) * (uint64_t)(retries > 0 ? retries : 3) +
                    ns_ms(hc, "Timeout", 30000);
    return wait > floor_ms ? wait : floor_ms;
}
