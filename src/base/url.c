/* url.c - http(s) URL parsing, redaction and percent-encoding.
 *
 * Character classes are spelled out in ASCII rather than taken from
 * <ctype.h>: isalnum() and tolower() follow the locale, and a URL's grammar
 * does not. */
#include "url.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "sha256.h"

static bool is_alpha(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool is_digit(unsigned char c)
{
    return c >= '0' && c <= '9';
}

static bool is_alnum(unsigned char c)
{
    return is_alpha(c) || is_digit(c);
}

/* Space, C0 controls and DEL: never valid in a URL, and a sign that the
 * string is not what it seems. */
static bool is_ctl_or_space(unsigned char c)
{
    return c <= 0x20 || c == 0x7f;
}

/* Characters of a registered name or IPv4 literal. '_' is not in RFC 3986's
 * reg-name without escaping, but Docker service and compose names use it
 * and resolvers accept it. */
static bool is_host_char(unsigned char c)
{
    return is_alnum(c) || c == '.' || c == '-' || c == '_';
}

void url_free(struct url *u)
{
    free(u->host);   /* the block that holds authority and path too */
    memset(u, 0, sizeof *u);
}

void url_copy(struct url *dst, const struct url *src)
{
    /* The block is "host\0authority\0path\0", in that order. */
    size_t len = (size_t)(src->path - src->host) + strlen(src->path) + 1;
    *dst = *src;
    dst->host = xmalloc(len);
    memcpy(dst->host, src->host, len);
    dst->authority = dst->host + (src->authority - src->host);
    dst->path = dst->host + (src->path - src->host);
}

static int fail(const char **err, const char *why)
{
    if (err) *err = why;
    return -EINVAL;
}

/* Reads a decimal port of 1-5 digits in [p, end). Returns 0 when invalid. */
static unsigned parse_port(const char *p, const char *end)
{
    size_t n = (size_t)(end - p);
    if (n == 0 || n > 5) return 0;
    unsigned v = 0;
    for (; p < end; p++) {
        if (!is_digit((unsigned char)*p)) return 0;
        v = v * 10 + (unsigned)(*p - '0');
    }
    return v <= 65535 ? v : 0;
}

/* What url_parse found, as spans of the string: nothing allocated yet, so
 * url_redact can check a URL without building one. */
struct url_spans {
    bool tls, v6;
    const char *host;          /* without brackets */
    size_t hlen;
    unsigned port;
    const char *tail;          /* path, query and fragment */
};

static int url_scan(const char *s, struct url_spans *out, const char **err)
{
    if (!s || !*s) return fail(err, "empty");
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (is_ctl_or_space(*p)) return fail(err, "contains spaces or control characters");
        /* Raw bytes above 0x7f would go into the request line unescaped. */
        if (*p >= 0x80) return fail(err, "contains non-ASCII characters (percent-encode them)");
    }

    bool tls;
    const char *rest;
    if (strncasecmp(s, "http://", 7) == 0) {
        tls = false;
        rest = s + 7;
    } else if (strncasecmp(s, "https://", 8) == 0) {
        tls = true;
        rest = s + 8;
    } else {
        return fail(err, "scheme must be http or https");
    }

    /* The authority ends at the first '/', '?' or '#' (RFC 3986 3.2). */
    size_t alen = strcspn(rest, "/?#");
    const char *tail = rest + alen;
    if (memchr(rest, '@', alen)) return fail(err, "user:password@ is not allowed (put the token in the path)");
    if (alen == 0) return fail(err, "host is missing");

    const char *host, *port = NULL;
    size_t hlen;
    bool v6 = false;
    if (rest[0] == '[') {
        const char *close = memchr(rest, ']', alen);
        if (!close) return fail(err, "unterminated [IPv6] host");
        host = rest + 1;
        hlen = (size_t)(close - host);
        v6 = true;
        if (close + 1 < tail) {
            if (close[1] != ':') return fail(err, "junk after [IPv6] host");
            port = close + 2;
        }
    } else {
        host = rest;
        const char *colon = memchr(rest, ':', alen);
        hlen = colon ? (size_t)(colon - rest) : alen;
        if (colon) port = colon + 1;
    }
    if (hlen == 0) return fail(err, "host is missing");
    if (v6) {
        /* Only a literal address may stand in brackets; zone ids ("%eth0")
         * are refused with the rest, since they mean nothing to a remote peer. */
        char tmp[INET6_ADDRSTRLEN + 1];
        unsigned char bin[16];
        if (hlen >= sizeof tmp) return fail(err, "invalid IPv6 address");
        memcpy(tmp, host, hlen);
        tmp[hlen] = '\0';
        if (inet_pton(AF_INET6, tmp, bin) != 1) return fail(err, "invalid IPv6 address");
    } else {
        for (size_t i = 0; i < hlen; i++)
            if (!is_host_char((unsigned char)host[i])) return fail(err, "host has invalid characters");
    }

    unsigned pnum = tls ? 443 : 80;
    if (port) {
        pnum = parse_port(port, tail);
        if (pnum == 0) return fail(err, "port must be 1-65535");
    }
    *out = (struct url_spans){.tls = tls, .v6 = v6, .host = host, .hlen = hlen, .port = pnum, .tail = tail};
    return 0;
}

int url_parse(const char *s, struct url *u, const char **err)
{
    memset(u, 0, sizeof *u);
    struct url_spans sp;
    int rc = url_scan(s, &sp, err);
    if (rc < 0) return rc;

    /* Everything is valid: only now allocate, so a failure leaves nothing to
     * free. One block, "host\0authority\0path\0": a forward parses its
     * target each time, and three allocations were most of that. */
    u->tls = sp.tls;
    u->port = (uint16_t)sp.port;
    size_t plen = strcspn(sp.tail, "#");   /* the fragment is client-side only and never sent */
    struct buf b;
    buf_init(&b);
    buf_reserve(&b, 2 * sp.hlen + plen + 16);
    buf_append_lower(&b, sp.host, sp.hlen);
    size_t authority = b.len + 1;
    buf_append(&b, "", 1);
    if (sp.v6) buf_putc(&b, '[');
    buf_append_lower(&b, sp.host, sp.hlen);
    if (sp.v6) buf_putc(&b, ']');
    /* "host:80" and "host" are the same origin; servers expect the short form. */
    if (sp.port != (sp.tls ? 443u : 80u)) {
        buf_putc(&b, ':');
        buf_put_uint(&b, sp.port);
    }
    size_t path = b.len + 1;
    buf_append(&b, "", 1);
    if (sp.tail[0] != '/') buf_putc(&b, '/');   /* "http://h" and "http://h?q" */
    buf_append(&b, sp.tail, plen);
    u->host = buf_steal(&b);
    u->authority = u->host + authority;
    u->path = u->host + path;
    if (err) *err = NULL;
    return 0;
}

/* Appends "#" and the first 8 lower-case hex digits of the SHA-256 of s:
 * enough to tell two targets on one host apart in a log, far too little to
 * recover anything from. */
static void put_fingerprint(struct buf *out, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    uint8_t md[SHA256_LEN];
    sha256(s, strlen(s), md);
    char fp[9] = {'#'};
    for (unsigned i = 0; i < 4; i++) {
        fp[1 + 2 * i] = hex[md[i] >> 4];
        fp[2 + 2 * i] = hex[md[i] & 15];
    }
    buf_append(out, fp, sizeof fp);
}

/* A webhook URL's secret may sit anywhere in its path (a Portainer id before
 * "/{tag}", a "/hooks/<token>/deploy" shape, an ntfy topic as the whole path)
 * or in its query, so no part after the authority is shown. Only a string
 * url_parse accepts is split at all: its authority then has no userinfo, no
 * spaces and only host characters and a port, so it is safe to print. */
void url_redact(struct buf *out, const char *s)
{
    if (!s || !*s) return;
    struct url_spans sp;
    if (url_scan(s, &sp, NULL) == 0) {
        const char *auth = strstr(s, "://") + 3;
        size_t slen = (size_t)(auth - s), alen = (size_t)(sp.tail - auth);
        buf_reserve(out, slen + alen + 4);
        buf_puts(out, sp.tls ? "https://" : "http://");
        buf_append_lower(out, auth, alen);
        buf_append(out, "/***", 4);
    } else {
        /* Malformed (a bad label value): nothing in it can be told apart
         * from a secret, not even a host. The scheme alone says which kind
         * of mistake it was. */
        if (strncasecmp(s, "http://", 7) == 0) buf_puts(out, "http://");
        else if (strncasecmp(s, "https://", 8) == 0) buf_puts(out, "https://");
        buf_puts(out, "***");
    }
    put_fingerprint(out, s);
}

void url_encode(struct buf *out, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (is_alnum(*p) || *p == '-' || *p == '.' || *p == '_' || *p == '~') {
            buf_putc(out, (char)*p);
        } else {
            char e[3] = {'%', hex[*p >> 4], hex[*p & 15]};
            buf_append(out, e, 3);
        }
    }
}
