/* match.c - repository normalisation and tag globs (SPEC: Matching). */
#include "match.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

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
    for (size_t i = 0; i <= n; i++) out[i] = (char)tolower((unsigned char)h[i]);
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
    int w = snprintf(out->path, sizeof out->path, "%s%.*s", hub ? "library/" : "", (int)n, path);
    if (w < 0 || (size_t)w >= sizeof out->path) return -EINVAL;
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
    if (n == 0) return -EINVAL;

    const char *slash = memchr(s, '/', n);
    const char *path = s;
    if (slash) {
        size_t hl = (size_t)(slash - s);
        /* Docker's rule: the first component is a registry when it looks
         * like a host name (has a dot or a port) or is localhost. */
        if (memchr(s, '.', hl) || memchr(s, ':', hl) || (hl == 9 && !memcmp(s, "localhost", 9))) {
            char host[256];
            if (hl >= sizeof host) return -EINVAL;
            memcpy(host, s, hl);
            host[hl] = '\0';
            if (!host_valid(host)) return -EINVAL;
            if (registry_host_normalize(host, out->host, sizeof out->host) < 0) return -EINVAL;
            path = slash + 1;
            n -= hl + 1;
        }
    }
    /* A tag or digest has no place in an image label: the tag glob is its
     * own label. Refusing it beats silently never matching. */
    if (memchr(path, ':', n) || memchr(path, '@', n)) return -EINVAL;
    /* Registries refuse upper-case repository names, so such a label could
     * never match a push: malformed, not a route that silently stays dead. */
    for (size_t i = 0; i < n; i++)
        if (path[i] >= 'A' && path[i] <= 'Z') return -EINVAL;
    return set_path(out, path, n);
}

int repo_ref_from_event(const char *registry, const char *repository, struct repo_ref *out)
{
    memset(out, 0, sizeof *out);
    if (!repository || !*repository) return -EINVAL;
    if (registry_host_normalize(registry, out->host, sizeof out->host) < 0) return -EINVAL;
    return set_path(out, repository, strlen(repository));
}

bool repo_ref_match(const struct repo_ref *route, const struct repo_ref *event)
{
    if (route->host[0]) {
        /* A host-qualified label wants that registry and no other. */
        return strcmp(route->host, event->host) == 0 && strcmp(route->path, event->path) == 0;
    }
    if (strcmp(route->path, event->path) == 0) return true;
    /* "nginx" without a host also means Docker Hub's "library/nginx". */
    if (registry_host_is_docker_hub(event->host) && strncmp(event->path, "library/", 8) == 0)
        return strcmp(route->path, event->path + 8) == 0;
    return false;
}

/* Characters that may appear in a tag (the distribution grammar). */
static bool tag_char(unsigned char c)
{
    return isalnum(c) || c == '_' || c == '.' || c == '-';
}

/* Parses a bracket expression starting after '['. Returns the position after
 * ']' or NULL if it is malformed. When c is not NUL, *hit says if c is in it. */
static const char *bracket(const char *p, unsigned char c, bool *hit)
{
    bool neg = false, found = false, any = false;
    if (*p == '!' || *p == '^') {
        neg = true;
        p++;
    }
    while (*p && (*p != ']' || !any)) {
        unsigned char lo = (unsigned char)*p, hi;
        if (lo == '\\') {
            if (!*++p) return NULL;
            lo = (unsigned char)*p;
        }
        if (!tag_char(lo)) return NULL;
        hi = lo;
        if (p[1] == '-' && p[2] && p[2] != ']') {
            hi = (unsigned char)p[2];
            if (!tag_char(hi) || hi < lo) return NULL;
            p += 2;
        }
        if (c >= lo && c <= hi) found = true;
        any = true;
        p++;
    }
    if (*p != ']') return NULL;
    if (hit) *hit = found != neg;
    return p + 1;
}

bool tag_glob_valid(const char *glob)
{
    if (!glob || !*glob || strlen(glob) > 128) return false;
    for (const char *p = glob; *p;) {
        unsigned char c = (unsigned char)*p;
        if (c == '*' || c == '?') {
            p++;
        } else if (c == '[') {
            p = bracket(p + 1, 0, NULL);
            if (!p) return false;
        } else if (c == '\\') {
            if (!tag_char((unsigned char)p[1])) return false;
            p += 2;
        } else if (tag_char(c)) {
            p++;
        } else {
            return false;
        }
    }
    return true;
}

/* Iterative matcher with single-star backtracking: linear in practice and
 * immune to the exponential blow-up of naive recursion on "*a*a*a*b". */
bool tag_glob_match(const char *glob, const char *tag)
{
    const char *g = glob, *t = tag;
    const char *star_g = NULL, *star_t = NULL;
    while (*t) {
        bool step = false;
        if (*g == '*') {
            star_g = ++g;
            star_t = t;
            continue;
        }
        if (*g == '?') {
            step = true;
            g++;
        } else if (*g == '[') {
            bool hit = false;
            const char *next = bracket(g + 1, (unsigned char)*t, &hit);
            if (next && hit) {
                step = true;
                g = next;
            }
        } else if (*g == '\\' && g[1] == *t) {
            step = true;
            g += 2;
        } else if (*g && *g == *t) {
            step = true;
            g++;
        }
        if (step) {
            t++;
        } else if (star_g) {
            g = star_g;
            t = ++star_t;
        } else {
            return false;
        }
    }
    while (*g == '*') g++;
    return *g == '\0';
}
