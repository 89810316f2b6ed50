/* registry_auth.h - registry credentials and challenges. Pure: no I/O
 * beyond reading the auth file once.
 *
 * Credentials come from a Docker config.json (REGISTRY_AUTH_FILE, mounted
 * read-only): "auths": {"<host>": {"auth": base64("user:pass")} or
 * {"username", "password"}}. "credsStore" / "credHelpers" name programs
 * that cannot run in the router's image: they are reported, never run.
 * Docker Hub's entries ("docker.io", "index.docker.io",
 * "https://index.docker.io/v1/", "registry-1.docker.io") all apply to
 * registry-1.docker.io. Credentials never reach a log line. */
#ifndef WR_REGISTRY_AUTH_H
#define WR_REGISTRY_AUTH_H

#include <stdbool.h>
#include <stddef.h>

struct registry_auth;

/* Reads and parses path. Returns NULL with a one-line reason in err (the
 * path named, never a secret) when the file cannot be read or is not a
 * Docker config.json. */
struct registry_auth *registry_auth_load(const char *path, char *err, size_t errlen);
/* Parses a config.json held in memory (tests). */
struct registry_auth *registry_auth_parse(const char *json, size_t len, char *err, size_t errlen);
void registry_auth_free(struct registry_auth *a);

/* The API host a registry name is reached at: "docker.io" and its aliases
 * -> "registry-1.docker.io"; others lower-cased as given. Writes into out. */
void registry_api_host(const char *registry, char *out, size_t outlen);

/* Credentials for an API host (see registry_api_host), or false. The
 * strings belong to a. */
bool registry_auth_lookup(const struct registry_auth *a, const char *api_host, const char **user,
                          const char **password);
/* Whether a credsStore / credHelpers entry covers this host: the caller
 * warns once that it cannot be used. */
bool registry_auth_needs_helper(const struct registry_auth *a, const char *api_host);

/* The value of an X-Registry-Auth header for the engine (base64url of
 * {"username","password","serveraddress"}), or NULL when a has no
 * credentials for the host. Caller frees. */
char *registry_auth_header(const struct registry_auth *a, const char *registry);

/* A WWW-Authenticate challenge: Bearer realm="…",service="…",scope="…" or
 * Basic realm="…". Strings are allocated in the struct (challenge_free). */
struct registry_challenge {
    bool bearer;          /* else basic */
    char *realm;
    char *service;        /* may be NULL */
    char *scope;          /* may be NULL */
};
/* Returns 0 or -EINVAL (not a Bearer or Basic challenge). Quoted strings
 * with escapes and blanks around '=' and ',' are accepted. */
int registry_challenge_parse(const char *header, struct registry_challenge *out);
void registry_challenge_free(struct registry_challenge *c);

#endif
