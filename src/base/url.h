/* url.h - parsing and redacting http(s) URLs. Pure functions, no I/O. */
#ifndef WR_URL_H
#define WR_URL_H

#include <stdbool.h>
#include <stdint.h>
#include "buf.h"

struct url {
    bool tls;            /* https */
    char *host;          /* lower-cased; IPv6 without brackets */
    uint16_t port;       /* explicit or the scheme's default */
    char *path;          /* path and query, starting with '/'; "/" when absent */
    char *authority;     /* what goes into the Host header, e.g. "host:8080" or "[::1]:80" */
};   /* host, path and authority are one allocation: free with url_free only */

/* Parses an absolute http:// or https:// URL. Userinfo is refused (a token
 * belongs in the path, where redaction hides it). Returns 0 or -EINVAL and,
 * when err is not NULL, a short reason. */
int url_parse(const char *s, struct url *u, const char **err);
void url_free(struct url *u);
/* dst becomes a copy of the parsed src, in one allocation as url_parse makes. */
void url_copy(struct url *dst, const struct url *src);

/* Appends s to out with its secrets hidden, as the SPEC's Logs section says:
 * scheme, host and port as written, then a path of "***" and "#" with the
 * first 8 hex digits of the SHA-256 of the whole string, e.g.
 * "https://portainer:9443", "/", "***", "#3f9a1c0e" for a Portainer webhook URL
 * on that host. A string url_parse refuses (userinfo, spaces, another
 * scheme, not a URL) shows none of its parts: "http://" or "https://" when it
 * starts with that scheme, then "***" and the "#" fingerprint. NULL or ""
 * appends nothing. */
void url_redact(struct buf *out, const char *s);

/* Appends s percent-encoded (RFC 3986 unreserved characters kept). */
void url_encode(struct buf *out, const char *s);

#endif
