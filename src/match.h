/* match.h - repository normalisation and tag globs (SPEC: Matching). Pure. */
#ifndef WR_MATCH_H
#define WR_MATCH_H

#include <stdbool.h>
#include <stddef.h>

/* A repository reference split into registry host and path.
 * host is "" when the reference names none (matches any registry). */
struct repo_ref {
    char host[256];
    char path[512];
};

/* Canonical name for the registry host h (lower-cased; Docker Hub aliases
 * become "docker.io"). Writes "" for NULL/empty. Returns -EINVAL if too long. */
int registry_host_normalize(const char *h, char *out, size_t outlen);
bool registry_host_is_docker_hub(const char *host);

/* Parses "myapp", "team/myapp", "registry.local:5000/team/myapp",
 * "docker.io/nginx". The first component is a host when it contains '.' or
 * ':' or is "localhost". A Docker Hub single name gets "library/". The host
 * is case-insensitive (lower-cased); the path must be lower case, as
 * registries require. Returns 0 or -EINVAL (empty, bad characters, upper
 * case in the path, a tag or digest attached...). */
int repo_ref_parse(const char *s, struct repo_ref *out);

/* Builds the reference of a pushed event: registry host (may be NULL or "")
 * and repository path. */
int repo_ref_from_event(const char *registry, const char *repository, struct repo_ref *out);

/* Does a route's reference (from a label) match a pushed event's reference? */
bool repo_ref_match(const struct repo_ref *route, const struct repo_ref *event);

/* Tag globs: '*', '?', '[abc]', '[a-z]', '[!x]', and '\' to escape. */
bool tag_glob_valid(const char *glob);
bool tag_glob_match(const char *glob, const char *tag);

#endif
