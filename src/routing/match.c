/* match.c - does a route want an event: references and tag globs (SPEC: Matching). */
#include "match.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

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
