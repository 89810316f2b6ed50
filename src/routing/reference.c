/* reference.c - the image reference grammar (see reference.h). */
#include "reference.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "buf.h"

bool reference_is_host(const char *s, size_t n)
{
    return memchr(s, '.', n) || memchr(s, ':', n) || (n == 9 && memcmp(s, "localhost", 9) == 0);
}

int reference_split(const char *s, size_t n, struct reference *out)
{
    memset(out, 0, sizeof *out);
    if (!s) return -EINVAL;
    const char *at = memchr(s, '@', n);
    if (at) {
        out->digest = (struct reference_span){at + 1, n - (size_t)(at + 1 - s)};
        if (!out->digest.n) out->digest.p = NULL;
        n = (size_t)(at - s);
    }
    const char *path = s;
    const char *slash = memchr(s, '/', n);
    if (slash && reference_is_host(s, (size_t)(slash - s))) {
        out->host = (struct reference_span){s, (size_t)(slash - s)};
        path = slash + 1;
        n -= out->host.n + 1;
    }
    /* A tag is a ':' after the last '/'. */
    const char *last_slash = NULL, *colon = NULL;
    for (size_t i = 0; i < n; i++) {
        if (path[i] == '/') last_slash = path + i;
        if (path[i] == ':') colon = path + i;
    }
    size_t pathlen = n;
    if (colon && (!last_slash || colon > last_slash)) {
        pathlen = (size_t)(colon - path);
        out->tag = (struct reference_span){colon + 1, n - pathlen - 1};
    }
    if (!pathlen) return -EINVAL;
    out->path = (struct reference_span){path, pathlen};
    return 0;
}

int reference_host_of(const char *s, struct reference_span *host)
{
    *host = (struct reference_span){NULL, 0};
    if (!s) return -EINVAL;
    const char *scheme = strstr(s, "://");
    const char *p = scheme ? scheme + 3 : s;
    size_t n = strcspn(p, "/?#");
    if (!n || (!scheme && !reference_is_host(p, n))) return -EINVAL;
    *host = (struct reference_span){p, n};
    return 0;
}

static const char *const docker_hub_aliases[] = {
    "docker.io", "index.docker.io", "registry-1.docker.io", "registry.hub.docker.com",
};

bool registry_host_is_docker_hub(const char *host)
{
    for (size_t i = 0; i < sizeof docker_hub_aliases / sizeof docker_hub_aliases[0]; i++)
        if (strcmp(host, docker_hub_aliases[i]) == 0) return true;
    return false;
}

int registry_host_normalize(const char *h, char *out, size_t outlen)
{
    if (!h) h = "";
    size_t n = strlen(h);
    if (n >= outlen) return -EINVAL;
    for (size_t i = 0; i <= n; i++) out[i] = ascii_lower(h[i]);
    if (registry_host_is_docker_hub(out)) snprintf(out, outlen, "docker.io");
    return 0;
}

/* Repository path components: lower-case alphanumerics separated by '.',
 * '_', '__' or '-' runs (the distribution grammar, slightly relaxed: upper
 * case is accepted here because some registries report it as pushed; a
 * label's path is held to lower case by repo_ref_parse). */
static bool path_valid(const char *p)
{
    if (!*p || *p == '/') return false;
    char prev = '/';
    for (; *p; p++) {
        unsigned char c = (unsigned char)*p;
        if (c == '/') {
            if (prev == '/' || !isalnum((unsigned char)prev)) return false;
        } else if (!isalnum(c) && c != '.' && c != '_' && c != '-') {
            return false;
        } else if (!isalnum(c) && prev == '/') {
            return false;
        }
        prev = (char)c;
    }
    return isalnum((unsigned char)prev);
}

static bool host_valid(const char *h)
{
    if (!*h) return false;
    for (; *h; h++) {
        unsigned char c = (unsigned char)*h;
        if (!isalnum(c) && c != '.' && c != '-' && c != ':' && c != '[' && c != ']') return false;
    }
    return true;
}

/* Fills out->path from path, adding "library/" for Docker Hub single names. */
static int set_path(struct repo_ref *out, const char *path, size_t n)
{
    bool hub = registry_host_is_docker_hub(out->host) && !memchr(path, '/', n);
    size_t pre = hub ? 8 : 0;   /* strlen("library/"); by hand: snprintf was a tenth of a push */
    if (pre + n >= sizeof out->path) return -EINVAL;
    memcpy(out->path, "library/", pre);
    memcpy(out->path + pre, path, n);
    out->path[pre + n] = '\0';
    return path_valid(out->path) ? 0 : -EINVAL;
}

int repo_ref_parse(const char *s, struct repo_ref *out)
{
    memset(out, 0, sizeof *out);
    if (!s) return -EINVAL;
    /* Labels are hand-written: forgive surrounding blanks. */
    while (*s == ' ' || *s == '\t') s++;
    size_t n = strlen(s);
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t')) n--;
    struct reference r;
    if (reference_split(s, n, &r) < 0) return -EINVAL;
    /* A tag or digest has no place in an image label: the tag glob is its
     * own label. Refusing it beats silently never matching. */
    if (r.tag.p || r.digest.p || memchr(s, '@', n)) return -EINVAL;
    if (r.host.p) {
        char host[256];
        if (r.host.n >= sizeof host) return -EINVAL;
        memcpy(host, r.host.p, r.host.n);
        host[r.host.n] = '\0';
        if (!host_valid(host)) return -EINVAL;
        if (registry_host_normalize(host, out->host, sizeof out->host) < 0) return -EINVAL;
    }
    const char *path = r.path.p;
    n = r.path.n;
    /* Registries refuse upper-case repository names, so such a label could
     * never match a push: malformed, not a route that silently stays dead. */
    for (size_t i = 0; i < n; i++)
        if (path[i] >= 'A' && path[i] <= 'Z') return -EINVAL;
    return set_path(out, path, n);
}

int repo_ref_from_event(const char *registry, const char *repository, struct repo_ref *out)
{
    /* Both fields are strings: clearing their 768 bytes was a sixth of the call. */
    out->host[0] = out->path[0] = '\0';
    if (!repository || !*repository) return -EINVAL;
    if (registry_host_normalize(registry, out->host, sizeof out->host) < 0) return -EINVAL;
    return set_path(out, repository, strlen(repository));
}

