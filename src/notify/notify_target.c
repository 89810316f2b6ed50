/* notify_target.c - target URLs and NOTIFY_* variables (see notify_target.h).
 *
 * A URL is split by hand rather than with url_parse: the shoutrrr forms put
 * tokens in the user information and ids in the host, which url_parse
 * (rightly, for webhook URLs) refuses. What a target finally sends to is
 * always checked with url_parse. */
#include "notify_target.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "buf.h"
#include "url.h"

static const char *const kind_names[NK_COUNT] = {
    "discord", "slack", "teams", "ntfy", "gotify", "telegram", "pushover", "matrix", "github", "generic",
};
static const char *const outcome_names[NO_COUNT] = {"push", "delivered", "deployed", "unconfirmed", "failed"};

const char *notify_kind_name(enum notify_kind k)
{
    return kind_names[k];
}

const char *notify_outcome_name(enum notify_outcome_kind o)
{
    return outcome_names[o];
}

int notify_kind_parse(const char *s)
{
    for (int k = 0; k < NK_COUNT; k++)
        if (strcasecmp(s, kind_names[k]) == 0) return k;
    return -1;
}

int notify_on_parse(const char *s)
{
    unsigned on = 0;
    const char *p = s;
    while (*p) {
        size_t n = strcspn(p, ",");
        const char *w = p;
        size_t wn = n;
        while (wn && (*w == ' ' || *w == '\t')) w++, wn--;
        while (wn && (w[wn - 1] == ' ' || w[wn - 1] == '\t')) wn--;
        if (wn) {
            int found = -1;
            for (int o = 0; o < NO_COUNT; o++)
                if (strlen(outcome_names[o]) == wn && strncasecmp(w, outcome_names[o], wn) == 0) found = o;
            if (found < 0) return -1;
            on |= NOTIFY_ON(found);
        }
        p += n + (p[n] == ',');
    }
    return on ? (int)on : -1;
}

/* ---- splitting a URL ------------------------------------------------------ */

struct split {
    char scheme[24];    /* lower case, without "+http(s)" */
    char via[8];        /* "http" or "https" for "<kind>+http(s)://", else "" */
    bool has_user;
    char *user, *pass;  /* percent-decoded; pass NULL when there is no ':' */
    char *hostport;     /* as written */
    char *host;         /* without the port, lower case */
    char *path;         /* "" or starting with '/' */
    char *query;        /* without '?', NULL when absent */
};

static void split_free(struct split *s)
{
    free_n(6, s->user, s->pass, s->hostport, s->host, s->path, s->query);
    memset(s, 0, sizeof *s);
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

static char *pct_decode(const char *s, size_t n)
{
    struct buf b;
    buf_init(&b);
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '%' && i + 2 < n && hexval(s[i + 1]) >= 0 && hexval(s[i + 2]) >= 0) {
            buf_putc(&b, (char)(hexval(s[i + 1]) * 16 + hexval(s[i + 2])));
            i += 2;
        } else {
            buf_putc(&b, s[i]);
        }
    }
    if (!b.data) return xstrdup("");
    return buf_steal(&b);
}

static int split_url(const char *url, struct split *s, char *err, size_t errlen)
{
    memset(s, 0, sizeof *s);
    if (!url) {
        snprintf(err, errlen, "is empty");
        return -EINVAL;
    }
    for (const unsigned char *p = (const unsigned char *)url; *p; p++)
        if (*p <= 0x20 || *p == 0x7f) {
            snprintf(err, errlen, "contains a blank or control character");
            return -EINVAL;
        }
    const char *sep = strstr(url, "://");
    size_t slen = sep ? (size_t)(sep - url) : 0;
    if (!sep || slen == 0 || slen >= sizeof s->scheme + sizeof s->via) {
        snprintf(err, errlen, "not a URL (scheme://...)");
        return -EINVAL;
    }
    char scheme[40];
    for (size_t i = 0; i < slen; i++) {
        char c = url[i];
        scheme[i] = ascii_lower(c);
    }
    scheme[slen] = '\0';
    char *plus = strchr(scheme, '+');
    if (plus) {
        *plus = '\0';
        if (strcmp(plus + 1, "http") != 0 && strcmp(plus + 1, "https") != 0) {
            snprintf(err, errlen, "a <kind>+ URL must go on with http:// or https://");
            return -EINVAL;
        }
        snprintf(s->via, sizeof s->via, "%s", plus + 1);
    }
    size_t sn = strlen(scheme);
    if (sn >= sizeof s->scheme) {
        snprintf(err, errlen, "unknown URL scheme");
        return -EINVAL;
    }
    memcpy(s->scheme, scheme, sn + 1);
    const char *a = sep + 3;
    size_t alen = strcspn(a, "/?#");
    const char *at = NULL;
    for (size_t i = 0; i < alen; i++)
        if (a[i] == '@') at = a + i;
    const char *hp = a;
    if (at) {
        s->has_user = true;
        const char *colon = memchr(a, ':', (size_t)(at - a));
        s->user = pct_decode(a, (size_t)((colon ? colon : at) - a));
        if (colon) s->pass = pct_decode(colon + 1, (size_t)(at - colon - 1));
        hp = at + 1;
    }
    s->hostport = xstrndup(hp, (size_t)(a + alen - hp));
    size_t hlen = strlen(s->hostport);
    if (s->hostport[0] == '[') {
        const char *rb = strchr(s->hostport, ']');
        hlen = rb ? (size_t)(rb - s->hostport) + 1 : hlen;
    } else {
        const char *colon = strchr(s->hostport, ':');
        if (colon) hlen = (size_t)(colon - s->hostport);
    }
    s->host = ascii_lower_str(xstrndup(s->hostport, hlen));
    const char *rest = a + alen;
    size_t plen = strcspn(rest, "?#");
    s->path = xstrndup(rest, plen);
    if (rest[plen] == '?') {
        const char *q = rest + plen + 1;
        s->query = xstrndup(q, strcspn(q, "#"));
    }
    return 0;
}

/* The value of key in a query string, percent-decoded, or NULL. */
static char *query_get(const char *query, const char *key)
{
    if (!query) return NULL;
    size_t klen = strlen(key);
    for (const char *p = query; *p;) {
        size_t n = strcspn(p, "&");
        const char *eq = memchr(p, '=', n);
        size_t kn = eq ? (size_t)(eq - p) : n;
        if (kn == klen && strncasecmp(p, key, klen) == 0)
            return eq ? pct_decode(eq + 1, n - kn - 1) : xstrdup("");
        p += n + (p[n] == '&');
    }
    return NULL;
}

static bool query_yes(const char *query, const char *key)
{
    char *v = query_get(query, key);
    bool yes = v && (strcasecmp(v, "yes") == 0 || strcasecmp(v, "true") == 0 || strcmp(v, "1") == 0);
    free(v);
    return yes;
}

static bool host_is(const char *host, const char *domain)
{
    size_t h = strlen(host), d = strlen(domain);
    return h == d ? strcmp(host, domain) == 0
                  : h > d && host[h - d - 1] == '.' && strcmp(host + h - d, domain) == 0;
}

/* ---- targets -------------------------------------------------------------- */

void notify_target_free(struct notify_target *t)
{
    if (!t) return;
    free_n(7, t->name, t->url, t->basic, t->token, t->param, t->headers, t->display);
    template_free(t->text);
    template_free(t->title);
    template_free(t->body);
    memset(t, 0, sizeof *t);
}

static void fingerprint(struct buf *out, const char *url)
{
    /* url_redact ends with "#" and 8 hex digits of the SHA-256 of the whole
     * string: the one fingerprint of the program. */
    struct buf r;
    buf_init(&r);
    url_redact(&r, url);
    const char *hash = strrchr(buf_cstr(&r), '#');
    buf_puts(out, hash ? hash : "#");
    buf_free(&r);
}

void notify_display(struct buf *out, const char *kind, const char *url)
{
    buf_puts(out, kind ? kind : "notify");
    buf_putc(out, ' ');
    struct notify_target t;
    char err[8];
    if (url && notify_target_from_url(url, kind ? notify_kind_parse(kind) : -1, &t, err, sizeof err) == 0) {
        buf_puts(out, strchr(t.display, ' ') + 1);
        notify_target_free(&t);
        return;
    }
    buf_puts(out, "*** ");
    fingerprint(out, url ? url : "");
}

/* "kind host[:port] #fp" from the final URL. */
static void set_display(struct notify_target *t, const char *original)
{
    struct buf b;
    buf_init(&b);
    struct url u;
    buf_puts(&b, kind_names[t->kind]);
    buf_putc(&b, ' ');
    if (url_parse(t->url, &u, NULL) == 0) {
        buf_puts(&b, u.authority);
        url_free(&u);
    } else {
        buf_puts(&b, "***");
    }
    buf_putc(&b, ' ');
    fingerprint(&b, original);
    free(t->display);
    t->display = buf_steal(&b);
}

static int fail(char *err, size_t errlen, const char *msg)
{
    snprintf(err, errlen, "%s", msg);
    return -EINVAL;
}

/* A shoutrrr URL (or generic://) to the service's own https URL and the
 * token parts. s->scheme names the kind. */
static int from_shoutrrr(struct split *s, struct notify_target *t, struct buf *url, char *err, size_t errlen)
{
    const char *user = s->user ? s->user : "", *pass = s->pass;
    switch (t->kind) {
    case NK_DISCORD:   /* discord://<token>@<id> */
        if (!s->has_user || !*user || !*s->host)
            return fail(err, errlen, "discord:// needs the form discord://<token>@<webhook id>");
        buf_printf(url, "https://discord.com/api/webhooks/%s/%s", s->hostport, user);
        return 0;
    case NK_SLACK: {   /* slack://hook:<a-b-c>@webhook, or slack://<a>/<b>/<c> */
        if (s->has_user && strcmp(user, "hook") == 0 && pass && *pass) {
            buf_puts(url, "https://hooks.slack.com/services/");
            for (const char *p = pass; *p; p++) buf_putc(url, *p == '-' ? '/' : *p);
            return 0;
        }
        if (!s->has_user && *s->host && strlen(s->path) > 1) {
            buf_printf(url, "https://hooks.slack.com/services/%s%s", s->hostport, s->path);
            return 0;
        }
        return fail(err, errlen, "slack:// needs a webhook: slack://hook:<a-b-c>@webhook (bot tokens are not "
                                 "supported)");
    }
    case NK_TEAMS:
        return fail(err, errlen, "teams:// is an Office 365 connector, which Microsoft retired; use the URL of a "
                                 "Power Automate Workflows webhook");
    case NK_NTFY: {    /* ntfy://[user:pass@]host/<topic> */
        if (!*s->host || strlen(s->path) < 2) return fail(err, errlen, "ntfy:// needs a host and a topic");
        char *scheme = query_get(s->query, "scheme");
        buf_printf(url, "%s://%s%s", scheme && strcasecmp(scheme, "http") == 0 ? "http" : "https", s->hostport,
                   s->path);
        free(scheme);
        if (s->has_user) {
            t->basic = xstrdup(user);
            if (pass) {
                free(t->basic);
                struct buf b;
                buf_init(&b);
                buf_printf(&b, "%s:%s", user, pass);
                t->basic = buf_steal(&b);
            }
        }
        return 0;
    }
    case NK_GOTIFY: {  /* gotify://host[:port][/path]/<apptoken> */
        const char *slash = strrchr(s->path, '/');
        if (!*s->host || !slash || !slash[1]) return fail(err, errlen, "gotify:// needs a host and an app token");
        t->token = xstrdup(slash + 1);
        bool plain = query_yes(s->query, "disabletls");
        buf_printf(url, "%s://%s%.*s", plain ? "http" : "https", s->hostport, (int)(slash - s->path), s->path);
        return 0;
    }
    case NK_TELEGRAM: {   /* telegram://<bottoken>@telegram?chats=<id>[,<id>] */
        if (!s->has_user || !*user) return fail(err, errlen, "telegram:// needs the form "
                                                             "telegram://<bot token>@telegram?chats=<id>");
        struct buf tok;
        buf_init(&tok);
        buf_printf(&tok, "%s%s%s", user, pass ? ":" : "", pass ? pass : "");
        t->token = buf_steal(&tok);
        t->param = query_get(s->query, "chats");
        if (!t->param) t->param = query_get(s->query, "channels");
        buf_printf(url, "https://api.telegram.org/bot%s", t->token);
        return 0;
    }
    case NK_PUSHOVER:   /* pushover://shoutrrr:<apptoken>@<userkey> */
        if (!pass || !*pass || !*s->host)
            return fail(err, errlen, "pushover:// needs the form pushover://shoutrrr:<app token>@<user key>");
        t->token = xstrdup(pass);
        t->param = xstrdup(s->hostport);
        buf_puts(url, "https://api.pushover.net/1/messages.json");
        return 0;
    case NK_MATRIX: {   /* matrix://:<accesstoken>@host[:port]/?rooms=<!room:server> */
        if (!*s->host) return fail(err, errlen, "matrix:// needs a homeserver host");
        if (pass && *pass) t->token = xstrdup(pass);
        t->param = query_get(s->query, "rooms");
        if (!t->param) t->param = query_get(s->query, "room");
        bool plain = query_yes(s->query, "disabletls");
        buf_printf(url, "%s://%s", plain ? "http" : "https", s->hostport);
        return 0;
    }
    case NK_GITHUB:   /* github://<token>@<owner>/<repo> */
        if (!s->has_user || !*s->host || strlen(s->path) < 2 || strchr(s->path + 1, '/'))
            return fail(err, errlen, "github:// needs the form github://<token>@<owner>/<repo>");
        t->token = xstrdup(pass && *pass ? pass : user);
        buf_printf(url, "https://api.github.com/repos/%s%s/dispatches", s->hostport, s->path);
        return 0;
    case NK_GENERIC: {   /* generic://host/path: https, or http with ?disabletls=yes */
        bool plain = query_yes(s->query, "disabletls");
        buf_printf(url, "%s://%s%s", plain ? "http" : "https", s->hostport, s->path);
        if (s->has_user) {
            struct buf b;
            buf_init(&b);
            buf_printf(&b, "%s%s%s", user, pass ? ":" : "", pass ? pass : "");
            t->basic = buf_steal(&b);
        }
        return 0;
    }
    case NK_COUNT:
        break;
    }
    return fail(err, errlen, "unknown kind");
}

/* The kind of an https URL copied from a service. */
static enum notify_kind recognise(const struct split *s)
{
    if ((host_is(s->host, "discord.com") || host_is(s->host, "discordapp.com")) &&
        strncmp(s->path, "/api/webhooks/", 14) == 0)
        return NK_DISCORD;
    if (strcmp(s->host, "hooks.slack.com") == 0) return NK_SLACK;
    if (host_is(s->host, "logic.azure.com") || host_is(s->host, "powerplatform.com") ||
        host_is(s->host, "powerautomate.com"))
        return NK_TEAMS;
    if (strcmp(s->host, "ntfy.sh") == 0) return NK_NTFY;
    if (strcmp(s->host, "api.github.com") == 0 && strncmp(s->path, "/repos/", 7) == 0) return NK_GITHUB;
    return NK_GENERIC;
}

/* An http(s) URL used as it is ("<kind>+http(s)://", or an https URL):
 * user information becomes Basic auth; the parameters some kinds carry in
 * the query (telegram chats, matrix rooms, pushover user and token) are
 * taken out of it. */
static void from_direct(struct split *s, const char *scheme, struct notify_target *t, struct buf *url)
{
    if (s->has_user) {
        struct buf b;
        buf_init(&b);
        buf_printf(&b, "%s%s%s", s->user, s->pass ? ":" : "", s->pass ? s->pass : "");
        t->basic = buf_steal(&b);
    }
    bool keep_query = true;
    if (t->kind == NK_TELEGRAM) {
        t->param = query_get(s->query, "chats");
        keep_query = false;
    } else if (t->kind == NK_MATRIX) {
        t->param = query_get(s->query, "rooms");
        keep_query = false;
    } else if (t->kind == NK_PUSHOVER) {
        t->param = query_get(s->query, "user");
        t->token = query_get(s->query, "token");
        keep_query = false;
    }
    buf_printf(url, "%s://%s%s", scheme, s->hostport, s->path);
    if (keep_query && s->query) buf_printf(url, "?%s", s->query);
}

int notify_target_from_url(const char *in, int kind, struct notify_target *t, char *err, size_t errlen)
{
    memset(t, 0, sizeof *t);
    struct split s;
    if (split_url(in, &s, err, errlen) < 0) return -EINVAL;
    struct buf url;
    buf_init(&url);
    int rc = 0;
    bool http = strcmp(s.scheme, "http") == 0 || strcmp(s.scheme, "https") == 0;
    if (s.via[0]) {
        int k = strcmp(s.scheme, "generic") == 0 ? NK_GENERIC : notify_kind_parse(s.scheme);
        if (k < 0) rc = fail(err, errlen, "unknown kind before +http(s)://");
        else if (kind >= 0 && kind != k) rc = fail(err, errlen, "the URL's kind differs from the _KIND given");
        else {
            t->kind = (enum notify_kind)k;
            from_direct(&s, s.via, t, &url);
        }
    } else if (http) {
        t->kind = kind >= 0 ? (enum notify_kind)kind : recognise(&s);
        from_direct(&s, s.scheme, t, &url);
    } else {
        int k = notify_kind_parse(s.scheme);
        if (k < 0) rc = fail(err, errlen, "unknown URL scheme (a kind such as discord://, or http(s)://)");
        else if (kind >= 0 && kind != k) rc = fail(err, errlen, "the URL's kind differs from the _KIND given");
        else {
            t->kind = (enum notify_kind)k;
            rc = from_shoutrrr(&s, t, &url, err, errlen);
        }
    }
    split_free(&s);
    if (rc == 0) {
        t->url = buf_steal(&url);
        struct url u;
        const char *why = NULL;
        if (url_parse(t->url, &u, &why) < 0) {
            snprintf(err, errlen, "not a usable URL: %s", why ? why : "malformed");
            rc = -EINVAL;
        } else {
            url_free(&u);
            set_display(t, in);
        }
    }
    buf_free(&url);
    if (rc < 0) notify_target_free(t);
    return rc;
}

/* What each kind still needs once the environment is read. */
static const char *missing(const struct notify_target *t)
{
    switch (t->kind) {
    case NK_GITHUB: return t->token ? NULL : "a github target needs a token (in the URL or NOTIFY_<NAME>_TOKEN)";
    case NK_GOTIFY: return t->token ? NULL : "a gotify target needs an app token (in the URL or NOTIFY_<NAME>_TOKEN)";
    case NK_MATRIX:
        if (!t->token) return "a matrix target needs an access token (in the URL or NOTIFY_<NAME>_TOKEN)";
        return t->param && *t->param ? NULL : "a matrix target needs ?rooms=<!room:server> in its URL";
    case NK_TELEGRAM: return t->param && *t->param ? NULL : "a telegram target needs ?chats=<id> in its URL";
    case NK_PUSHOVER:
        return t->token && t->param && *t->token && *t->param ? NULL
               : "a pushover target needs an app token and a user key";
    default: return NULL;
    }
}

/* ---- the environment ------------------------------------------------------ */

enum field { F_URL, F_URL_FILE, F_KIND, F_TOKEN, F_TOKEN_FILE, F_ON, F_TEMPLATE, F_TITLE, F_HEADERS, F_COUNT };
/* Longer suffixes first: _URL_FILE must not be read as a target named X_URL. */
static const struct {
    const char *suffix;
    enum field f;
} suffixes[] = {
    {"_URL_FILE", F_URL_FILE}, {"_TOKEN_FILE", F_TOKEN_FILE}, {"_URL", F_URL}, {"_KIND", F_KIND},
    {"_TOKEN", F_TOKEN}, {"_ON", F_ON}, {"_TEMPLATE", F_TEMPLATE}, {"_TITLE", F_TITLE}, {"_HEADERS", F_HEADERS},
};

struct pending {
    char name[128];
    const char *v[F_COUNT];
};

static int read_secret_file(const char *path, char **out)
{
    FILE *fp = fopen(path, "rb");
    if (!fp) return -errno;
    char data[8192];
    size_t n = fread(data, 1, sizeof data - 1, fp);
    fclose(fp);
    while (n && (data[n - 1] == '\n' || data[n - 1] == '\r' || data[n - 1] == ' ')) n--;
    *out = xstrndup(data, n);
    return 0;
}

/* "Name: value" lines to raw header lines; refuses what would break the request. */
static int parse_headers(const char *v, char **out)
{
    struct buf b;
    buf_init(&b);
    for (const char *p = v; *p;) {
        size_t n = strcspn(p, "\n");
        size_t len = n;
        if (len && p[len - 1] == '\r') len--;
        const char *colon = memchr(p, ':', len);
        bool blank = strspn(p, " \t\r") >= n;
        if (!blank) {
            if (!colon || colon == p) goto bad;
            for (const char *c = p; c < colon; c++)
                if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') || *c == '-'))
                    goto bad;
            for (const char *c = colon + 1; c < p + len; c++)
                if ((unsigned char)*c < 0x20 && *c != '\t') goto bad;
            const char *val = colon + 1;
            while (val < p + len && (*val == ' ' || *val == '\t')) val++;
            buf_printf(&b, "%.*s: %.*s\r\n", (int)(colon - p), p, (int)(p + len - val), val);
        }
        p += n + (p[n] == '\n');
    }
    *out = b.data ? buf_steal(&b) : NULL;
    return 0;
bad:
    buf_free(&b);
    return -EINVAL;
}

void notify_config_free(struct notify_config *c)
{
    for (size_t i = 0; i < c->n; i++) notify_target_free(&c->targets[i]);
    free(c->targets);
    c->targets = NULL;
    c->n = 0;
}

const struct notify_target *notify_config_find(const struct notify_config *c, const char *name, size_t len)
{
    for (size_t i = 0; i < c->n; i++)
        if (strlen(c->targets[i].name) == len && strncasecmp(c->targets[i].name, name, len) == 0)
            return &c->targets[i];
    return NULL;
}

static int target_error(char *err, size_t errlen, const char *name, const char *field, const char *why)
{
    snprintf(err, errlen, "NOTIFY_%s%s: %s", name, field, why);
    return -EINVAL;
}

static int build_target(const struct pending *p, struct notify_target *t, char *err, size_t errlen)
{
    const char *n = p->name;
    if (p->v[F_URL] && p->v[F_URL_FILE]) return target_error(err, errlen, n, "_URL", "set together with _URL_FILE; give one");
    if (p->v[F_TOKEN] && p->v[F_TOKEN_FILE])
        return target_error(err, errlen, n, "_TOKEN", "set together with _TOKEN_FILE; give one");
    if (!p->v[F_URL] && !p->v[F_URL_FILE])
        return target_error(err, errlen, n, "_URL", "is missing (required for every NOTIFY_<NAME>_* target)");
    int kind = -1;
    if (p->v[F_KIND] && (kind = notify_kind_parse(p->v[F_KIND])) < 0)
        return target_error(err, errlen, n, "_KIND", "expected discord, slack, teams, ntfy, gotify, telegram, "
                                                     "pushover, matrix, github or generic");
    char *url = NULL, *token = NULL;
    char why[256];
    int rc = 0;
    if (p->v[F_URL_FILE] && (rc = read_secret_file(p->v[F_URL_FILE], &url)) < 0) {
        snprintf(why, sizeof why, "cannot read the file: %s", strerror(-rc));
        return target_error(err, errlen, n, "_URL_FILE", why);
    }
    if (p->v[F_TOKEN_FILE] && (rc = read_secret_file(p->v[F_TOKEN_FILE], &token)) < 0) {
        free(url);
        snprintf(why, sizeof why, "cannot read the file: %s", strerror(-rc));
        return target_error(err, errlen, n, "_TOKEN_FILE", why);
    }
    if (p->v[F_TOKEN]) token = xstrdup(p->v[F_TOKEN]);
    const char *u = url ? url : p->v[F_URL];
    if (notify_target_from_url(u, kind, t, why, sizeof why) < 0) {
        free_n(2, url, token);
        return target_error(err, errlen, n, p->v[F_URL_FILE] ? "_URL_FILE" : "_URL", why);
    }
    free(url);
    if (strchr(t->url, '{')) {   /* placeholders in the URL: known ones only */
        struct template *ut = template_compile(t->url, why, sizeof why);
        if (!ut) {
            free(token);
            return target_error(err, errlen, n, p->v[F_URL_FILE] ? "_URL_FILE" : "_URL", why);
        }
        template_free(ut);
    }
    if (token) {
        if (!*token) {
            free(token);
            return target_error(err, errlen, n, "_TOKEN", "set but empty");
        }
        free(t->token);
        t->token = token;
    }
    t->name = ascii_lower_str(xstrdup(n));
    const char *need = missing(t);
    if (need) return target_error(err, errlen, n, "_URL", need);
    if (p->v[F_ON]) {
        int on = notify_on_parse(p->v[F_ON]);
        if (on < 0) return target_error(err, errlen, n, "_ON", "expected a comma-separated list of push, "
                                                                "delivered, deployed, unconfirmed, failed");
        t->on = (unsigned)on;
    }
    if (p->v[F_TEMPLATE]) {
        struct template *tp = template_compile(p->v[F_TEMPLATE], why, sizeof why);
        if (!tp) return target_error(err, errlen, n, "_TEMPLATE", why);
        if (t->kind == NK_GENERIC) t->body = tp;
        else t->text = tp;
    }
    if (p->v[F_TITLE] && !(t->title = template_compile(p->v[F_TITLE], why, sizeof why)))
        return target_error(err, errlen, n, "_TITLE", why);
    if (p->v[F_HEADERS]) {
        if (t->kind != NK_GENERIC) return target_error(err, errlen, n, "_HEADERS", "only for generic targets");
        if (parse_headers(p->v[F_HEADERS], &t->headers) < 0)
            return target_error(err, errlen, n, "_HEADERS", "expected one \"Name: value\" per line");
    }
    return 0;
}

int notify_config_parse(char *const *envp, struct notify_config *c, char *err, size_t errlen)
{
    memset(c, 0, sizeof *c);
    struct pending *p = NULL;
    size_t np = 0;
    int rc = 0;
    for (char *const *e = envp; e && *e && rc == 0; e++) {
        if (strncmp(*e, "NOTIFY_", 7) != 0) continue;
        const char *eq = strchr(*e, '=');
        if (!eq) continue;
        const char *name = *e + 7;
        size_t klen = (size_t)(eq - name);
        int which = -1;
        size_t nlen = 0;
        for (size_t i = 0; i < sizeof suffixes / sizeof suffixes[0] && which < 0; i++) {
            size_t sl = strlen(suffixes[i].suffix);
            if (klen > sl && strncmp(name + klen - sl, suffixes[i].suffix, sl) == 0) {
                which = (int)suffixes[i].f;
                nlen = klen - sl;
            }
        }
        bool name_ok = which >= 0 && nlen < sizeof p->name;
        for (size_t i = 0; name_ok && i < nlen; i++) {
            char ch = name[i];
            name_ok = (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '_';
        }
        if (!name_ok) {
            snprintf(err, errlen, "%.*s: not a notification setting; expected NOTIFY_<NAME>_URL (or _URL_FILE, "
                     "_KIND, _TOKEN, _TOKEN_FILE, _ON, _TEMPLATE, _TITLE, _HEADERS) with <NAME> of A-Z 0-9 _",
                     (int)(eq - *e > 80 ? 80 : eq - *e), *e);
            rc = -EINVAL;
            break;
        }
        size_t k;
        for (k = 0; k < np; k++)
            if (strlen(p[k].name) == nlen && strncmp(p[k].name, name, nlen) == 0) break;
        if (k == np) {
            p = xrealloc(p, (np + 1) * sizeof *p);
            memset(&p[np], 0, sizeof p[np]);
            memcpy(p[np].name, name, nlen);
            np++;
        }
        if (!p[k].v[which]) p[k].v[which] = eq + 1;   /* like getenv(): the first one counts */
    }
    if (rc == 0 && np) c->targets = xcalloc(np, sizeof *c->targets);
    for (size_t k = 0; k < np && rc == 0; k++) {
        rc = build_target(&p[k], &c->targets[k], err, errlen);
        c->n = k + 1;   /* freed by notify_config_free, also half-built */
    }
    free(p);
    if (rc < 0) notify_config_free(c);
    return rc;
}
