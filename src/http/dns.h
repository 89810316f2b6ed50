/* dns.h - asynchronous name resolution with c-ares inside the libuv loop.
 * Never calls getaddrinfo(3). Numeric addresses resolve without a query.
 * Answers are cached for their TTL (capped), so a burst of forwards to one
 * webhook host costs one lookup. */
#ifndef WR_DNS_H
#define WR_DNS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <uv.h>
#include "log.h"

#define DNS_MAX_ADDRS 8

struct dns;
struct dns_query;

/* status: 0, or a negative errno (-ENOENT: no such name, -ETIMEDOUT,
 * -ECANCELED when the resolver is closing). addrs are IPv4 and IPv6 with the
 * port filled in; valid only during the callback. */
typedef void (*dns_cb)(void *ud, int status, const struct sockaddr_storage *addrs, size_t n);

struct dns *dns_new(uv_loop_t *loop, const struct logger *lg);
/* The callback is always called later from the loop (never from inside
 * dns_resolve), exactly once, unless the query is cancelled first. */
struct dns_query *dns_resolve(struct dns *d, const char *host, uint16_t port, dns_cb cb, void *ud);
/* Use these name servers ("127.0.0.1:5353,[::1]:53") instead of the
 * system's. For tests; returns 0 or -EINVAL. */
int dns_set_servers(struct dns *d, const char *csv);
/* Answers served from the cache so far (tests and metrics). */
unsigned long dns_cache_hits(const struct dns *d);

/* After this the callback is not called; memory is released by dns. */
void dns_cancel(struct dns_query *q);
/* Cancels what is pending (callbacks get -ECANCELED) and closes its handles;
 * the struct is freed once they are closed (the loop must run on), then cb
 * (may be NULL) is called. Closing twice is a bug (an assert says so). */
void dns_close(struct dns *d, void (*cb)(void *ud), void *ud);

#endif
