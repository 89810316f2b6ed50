/* docker_host.c - DOCKER_HOST: one grammar, parsed once (see docker_host.h). */
#include "docker_host.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "buf.h"

static bool is_blank(char c)
{
    return c == ' ' || c == '\t';
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static bool is_name_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || is_digit(c) || c == '.' || c == '-' ||
           c == '_';
}

/* Decimal 1-65535, nothing else (strtol would take blanks, signs, "0x"). */
static bool parse_port(const char *s, uint16_t *out)
{
    unsigned long n = 0;
    size_t i = 0;
    for (; is_digit(s[i]); i++) {
        if (i == 5) return false;
        n = n * 10 + (unsigned long)(s[i] - '0');
    }
    if (i == 0 || s[i] != '\0' || n < 1 || n > 65535) return false;
    *out = (uint16_t)n;
    return true;
}

static int parse_unix(const char *path, struct http_endpoint *ep, const char **err)
{
    if (path[0] != '/') {
        *err = "unix:// needs an absolute socket path";
        return -EINVAL;
    }
    if (path[1] == '\0') {
        *err = "unix:///: \"/\" is not a socket path";
        return -EINVAL;
    }
    for (const char *p = path; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f) {
            *err = "unix://: control character in the socket path";
            return -EINVAL;
        }
    /* The list parser trims entries: a blank left at the end is a caller's
     * untrimmed entry, the very bug this module exists to prevent. */
    if (is_blank(path[strlen(path) - 1])) {
        *err = "unix://: the socket path ends in a blank";
        return -EINVAL;
    }
    ep->unix_path = xstrdup(path);
    return 0;
}

/* host:port; host a name, an IPv4 literal or a bracketed IPv6 literal. */
static int parse_tcp(const char *hp, struct http_endpoint *ep, const char **err)
{
    const char *host, *host_end, *colon;
    if (hp[0] == '[') {
        host = hp + 1;
        host_end = strchr(host, ']');
        if (!host_end || host_end == host) {
            *err = "tcp://: an IPv6 address goes in brackets, e.g. tcp://[::1]:2375";
            return -EINVAL;
        }
        for (const char *p = host; p < host_end; p++)
            if (!(is_name_char(*p) || *p == ':' || *p == '%')) {
                *err = "tcp://: not an IPv6 address between the brackets";
                return -EINVAL;
            }
        colon = host_end + 1;
        if (*colon != ':') {
            *err = "tcp:// needs host:port";
            return -EINVAL;
        }
    } else {
        host = hp;
        colon = strchr(hp, ':');
        host_end = colon;
        if (!colon || colon == hp) {
            *err = "tcp:// needs host:port";
            return -EINVAL;
        }
        for (const char *p = hp; p < colon; p++)
            if (!is_name_char(*p)) {
                *err = "tcp://: the host may hold letters, digits, '.', '-' and '_' (or be [IPv6])";
                return -EINVAL;
            }
    }
    if (!parse_port(colon + 1, &ep->port)) {
        *err = "tcp://: the port must be a number 1-65535, and nothing may follow it";
        return -EINVAL;
    }
    ep->host = xstrndup(host, (size_t)(host_end - host));
    return 0;
}

int docker_host_parse_entry(const char *s, struct http_endpoint *ep, const char **err)
{
    memset(ep, 0, sizeof *ep);
    if (strncmp(s, "unix://", 7) == 0) return parse_unix(s + 7, ep, err);
    if (strncmp(s, "tcp://", 6) == 0) return parse_tcp(s + 6, ep, err);
    *err = "expected unix:///path or tcp://host:port";
    return -EINVAL;
}

void docker_host_free(struct docker_host *h)
{
    free(h->text);
    h->text = NULL;
    http_endpoint_free(&h->ep);
}

void docker_host_list_free(struct docker_host *v, size_t n)
{
    for (size_t i = 0; i < n; i++) docker_host_free(&v[i]);
    free(v);
}

void docker_host_copy(struct docker_host *dst, const struct docker_host *src)
{
    memset(dst, 0, sizeof *dst);
    dst->text = xstrdup(src->text);
    dst->ep.unix_path = src->ep.unix_path ? xstrdup(src->ep.unix_path) : NULL;
    dst->ep.host = src->ep.host ? xstrdup(src->ep.host) : NULL;
    dst->ep.port = src->ep.port;
    dst->ep.tls = src->ep.tls;
}

/* One entry of the list: [p, p + n) with blanks around it dropped. */
static int parse_one(const char *p, size_t n, size_t index, struct docker_host *out, char *err, size_t errlen)
{
    while (n && is_blank(*p)) p++, n--;
    while (n && is_blank(p[n - 1])) n--;
    if (n == 0) {
        snprintf(err, errlen, "entry %zu is empty", index);
        return -EINVAL;
    }
    char *text = xstrndup(p, n);
    const char *why;
    if (docker_host_parse_entry(text, &out->ep, &why) < 0) {
        snprintf(err, errlen, "entry %zu: %s", index, why);
        free(text);
        return -EINVAL;
    }
    out->text = text;
    return 0;
}

int docker_host_parse_list(const char *s, struct docker_host **out, size_t *n, char *err, size_t errlen)
{
    struct docker_host *v = NULL;
    size_t count = 0;
    *out = NULL;
    *n = 0;
    for (const char *p = s;;) {
        size_t len = strcspn(p, ",");
        v = xrealloc(v, (count + 1) * sizeof *v);
        memset(&v[count], 0, sizeof v[count]);
        if (parse_one(p, len, count + 1, &v[count], err, errlen) < 0) {
            docker_host_list_free(v, count);
            return -EINVAL;
        }
        count++;
        for (size_t i = 0; i + 1 < count; i++)
            if (strcmp(v[i].text, v[count - 1].text) == 0) {
                snprintf(err, errlen, "entry %zu repeats entry %zu", count, i + 1);
                docker_host_list_free(v, count);
                return -EINVAL;
            }
        if (p[len] == '\0') break;
        p += len + 1;
    }
    *out = v;
    *n = count;
    return 0;
}

bool docker_host_in_clear(const struct http_endpoint *ep)
{
    if (ep->unix_path || ep->tls || !ep->host) return false;
    struct in_addr v4;
    struct in6_addr v6;
    if (inet_pton(AF_INET, ep->host, &v4) == 1) return (ntohl(v4.s_addr) >> 24) != 127;
    if (inet_pton(AF_INET6, ep->host, &v6) == 1) return !IN6_IS_ADDR_LOOPBACK(&v6);
    return strcasecmp(ep->host, "localhost") != 0;
}
