/* url.c - http(s) URL parsing, redaction and percent-encoding. */
#include "url.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

void url_free(struct url *u)
{
    free(u->host);
    free(u->path);
    free(u->authority);
    memset(u, 0, sizeof *u);
}

static int fail(const char **err, const char *why)
{
    if (err) *err = why;
    return -EINVAL;
}

int url_parse(const char *s, struct url *u, const char **err)
{
    memset(u, 0, sizeof *u);
    if (!s) return fail(err, "empty");
    for (const char *p = s; *p; p++)
        if ((unsigned char)*p <= 0x20 || *p == 0x7f) return fail(err, "contains spaces or control characters");

    const char *rest;
    if (strncasecmp(s, "http://", 7) == 0) {
        rest = s + 7;
    } else if (strncasecmp(s, "https://", 8) == 0) {
        rest = s + 8;
        u->tls = true;
    } else {
        return fail(err, "scheme must be http or https");
    }
    size_t alen = strcspn(rest, "/?#");
    const char *tail = rest + alen;
    if (memchr(rest, '@', alen)) return fail(err, "user:password@ is not allowed (put the token in the path)");
    if (alen == 0) return fail(err, "host is missing");

    const char *host = rest, *port = NULL;
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
        const char *colon = memchr(rest, ':', alen);
        hlen = colon ? (size_t)(colon - rest) : alen;
        if (colon) port = colon + 1;
    }
    if (hlen == 0) return fail(err, "host is missing");
    for (size_t i = 0; i < hlen; i++) {
        unsigned char c = (unsigned char)host[i];
        if (!(isalnum(c) || c == '.' || c == '-' || c == '_' || (v6 && c == ':')))
            return fail(err, "host has invalid characters");
    }

    unsigned long pnum = u->tls ? 443 : 80;
    bool explicit_port = false;
    if (port) {
        size_t plen = (size_t)(tail - port);
        if (plen == 0 || plen > 5) return fail(err, "port must be 1-65535");
        pnum = 0;
        for (size_t i = 0; i < plen; i++) {
            if (!isdigit((unsigned char)port[i])) return fail(err, "port must be 1-65535");
            pnum = pnum * 10 + (unsigned long)(port[i] - '0');
        }
        if (pnum == 0 || pnum > 65535) return fail(err, "port must be 1-65535");
        explicit_port = pnum != (u->tls ? 443UL : 80UL);
    }

    u->host = xstrndup(host, hlen);
    for (char *p = u->host; *p; p++) *p = (char)tolower((unsigned char)*p);
    u->port = (uint16_t)pnum;

    struct buf b;
    buf_init(&b);
    buf_printf(&b, v6 ? "[%s]" : "%s", u->host);
    if (explicit_port) buf_printf(&b, ":%lu", pnum);
    u->authority = buf_steal(&b);

    size_t plen = strcspn(tail, "#");   /* the fragment is never sent */
    if (plen == 0 || tail[0] != '/') {
        buf_putc(&b, '/');
        buf_append(&b, tail, plen);
    } else {
        buf_append(&b, tail, plen);
    }
    u->path = buf_steal(&b);
    if (err) *err = NULL;
    return 0;
}

void url_redact(struct buf *out, const char *s)
{
    if (!s || !*s) return;
    const char *scheme_end = strstr(s, "://");
    if (!scheme_end) {
        /* Not a URL: nothing in it can be shown safely. */
        buf_puts(out, "***");
        return;
    }
    const char *auth = scheme_end + 3;
    size_t alen = strcspn(auth, "/?#");
    buf_append(out, s, (size_t)(auth - s));
    const char *at = memchr(auth, '@', alen);
    if (at) {
        buf_puts(out, "***@");
        buf_append(out, at + 1, (size_t)(auth + alen - at - 1));
    } else {
        buf_append(out, auth, alen);
    }
    const char *path = auth + alen;
    size_t plen = strcspn(path, "?#");
    /* Hide the last non-empty path segment; keep a trailing slash. */
    size_t end = plen;
    while (end > 0 && path[end - 1] == '/') end--;
    size_t seg = end;
    while (seg > 0 && path[seg - 1] != '/') seg--;
    if (end > seg) {
        buf_append(out, path, seg);
        buf_puts(out, "***");
        buf_append(out, path + end, plen - end);
    } else {
        buf_append(out, path, plen);
    }
    const char *q = path + plen;
    if (*q == '?') {
        buf_puts(out, "?***");
        q += strcspn(q, "#");
    }
    if (*q == '#') buf_puts(out, "#***");
}

void url_encode(struct buf *out, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (isalnum(*p) || *p == '-' || *p == '.' || *p == '_' || *p == '~') {
            buf_putc(out, (char)*p);
        } else {
            char e[3] = {'%', hex[*p >> 4], hex[*p & 15]};
            buf_append(out, e, 3);
        }
    }
}
