/* docker_host.h - the DOCKER_HOST grammar, in one place.
 *
 *   list  = entry *( "," entry )       blanks (space, tab) around an entry are dropped
 *   entry = "unix://" abs-path         "/" alone is not a socket; no control characters
 *         | "tcp://" host ":" port     host: a name, an IPv4 literal or "[" IPv6 "]";
 *                                      port: decimal 1-65535
 *
 * An empty entry (",," or a trailing comma) and an entry given twice are
 * errors: both are typos, and two watchers of one engine would fight over
 * its routes. Config validates with this parser and keeps what it returns;
 * the app starts one watcher per entry from it, so no other code splits or
 * trims the variable. */
#ifndef WR_DOCKER_HOST_H
#define WR_DOCKER_HOST_H

#include <stdbool.h>
#include <stddef.h>
#include "http_client.h"

struct docker_host {
    char *text;                 /* the entry, blanks trimmed: names the engine in logs, /ready, /routes */
    struct http_endpoint ep;    /* where to connect */
};

/* Parses the whole list. On success returns 0 and *out holds *n >= 1
 * entries (free with docker_host_list_free). Otherwise returns -EINVAL,
 * leaves *out NULL and writes a one-line reason to err, e.g.
 * "entry 2 is empty" or "entry 1: tcp:// needs host:port"; the reason never
 * repeats the value. Pure. */
int docker_host_parse_list(const char *s, struct docker_host **out, size_t *n, char *err, size_t errlen);
void docker_host_list_free(struct docker_host *v, size_t n);

/* One entry, already trimmed, e.g. "tcp://proxy:2375" -> endpoint.
 * Returns 0, or -EINVAL with *err a static reason. Pure. */
int docker_host_parse_entry(const char *entry, struct http_endpoint *ep, const char **err);

/* Whether what is sent to this engine crosses a network in clear: a
 * tcp:// entry whose host is not loopback (127.0.0.0/8, ::1, localhost).
 * Pure. */
bool docker_host_in_clear(const struct http_endpoint *ep);

/* Deep copy (text and endpoint); free with docker_host_free. */
void docker_host_copy(struct docker_host *dst, const struct docker_host *src);
void docker_host_free(struct docker_host *h);

#endif
