/* reference.h - the image reference grammar, in one place (SPEC: Matching).
 *
 * Splitting "host:5000/ns/name:tag@sha256:..." into its parts, Docker's
 * rule for when the first component is a registry host, and the
 * normalised (host, path) pair that routes and events are compared by.
 * Payload parsers, labels, the registry watcher and the updater all read
 * references through here. Pure: no I/O, no allocation. */
#ifndef WR_REFERENCE_H
#define WR_REFERENCE_H

#include <stdbool.h>
#include <stddef.h>

/* A piece of the input: p is NULL (n 0) when the part is absent. */
struct reference_span {
    const char *p;
    size_t n;
};

struct reference {
    struct reference_span host;     /* "registry.local:5000"; absent for "team/app" */
    struct reference_span path;     /* "team/app" (never empty) */
    struct reference_span tag;      /* after a ':' past the last '/' */
    struct reference_span digest;   /* after '@' */
};

/* Docker's rule: the first component of a reference names a registry when
 * it has a '.' or a ':' (a port), or is "localhost". */
bool reference_is_host(const char *s, size_t n);

/* Splits the n bytes at s. Returns 0, or -EINVAL when there is no path. */
int reference_split(const char *s, size_t n, struct reference *out);

/* The "host[:port]" of "scheme://host:port/..." or, without a scheme, the
 * first component of a reference when it is a host ("ghcr.io/o/n:1" ->
 * "ghcr.io"). Returns 0, or -EINVAL when there is none. */
int reference_host_of(const char *url_or_ref, struct reference_span *host);

/* A repository reference normalised for matching: registry host and path.
 * host is "" when the reference names none (matches any registry). */
struct repo_ref {
    char host[256];
    char path[512];
};

/* Canonical name for the registry host h (lower-cased; Docker Hub aliases
 * become "docker.io"). Writes "" for NULL/empty. Returns -EINVAL if too long. */
int registry_host_normalize(const char *h, char *out, size_t outlen);
bool registry_host_is_docker_hub(const char *host);

/* Parses a label's "myapp", "team/myapp", "registry.local:5000/team/myapp",
 * "docker.io/nginx". A Docker Hub single name gets "library/". The host is
 * case-insensitive (lower-cased); the path must be lower case, as
 * registries require. Returns 0 or -EINVAL (empty, bad characters, upper
 * case in the path, a tag or digest attached...). */
int repo_ref_parse(const char *s, struct repo_ref *out);

/* The reference of a pushed event: registry host (may be NULL or "") and
 * repository path (upper case tolerated: some registries report it). */
int repo_ref_from_event(const char *registry, const char *repository, struct repo_ref *out);

#endif
