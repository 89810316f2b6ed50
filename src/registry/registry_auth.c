/* registry_auth.c - Docker config.json credentials and WWW-Authenticate
 * challenges (see registry_auth.h). Pure apart from reading the file.
 *
 * Error messages name the file and the entry (a host is not a secret), never
 * a value: jansson's own message is not used either, since it quotes the
 * text near the error, which may be a piece of a password. */
#include "registry_auth.h"

#include <errno.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "buf.h"
#include "reference.h"

#define DOCKER_HUB_API "registry-1.docker.io"
#define AUTH_FILE_MAX (4 * 1024 * 1024)

struct cred {
    char *host;       /* API host */
    char *user;
    char *password;
};

struct registry_auth {
    struct cred *creds;
    size_t ncreds;
    bool creds_store;     /* "credsStore": every host without inline credentials */
    char **helpers;       /* "credHelpers" keys, as API hosts */
    size_t nhelpers;
};

static void put_err(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void put_err(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || !errlen) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* ---- host names ----------------------------------------------------------- */

void registry_api_host(const char *registry, char *out, size_t outlen)
{
    if (!outlen) return;
    const char *s = registry ? registry : "";
    /* config.json keys may be URLs: "https://reg:5000/v1/" -> "reg:5000". */
    const char *scheme = strstr(s, "://");
    if (scheme) s = scheme + 3;
    size_t n = strcspn(s, "/");
    char host[256];
    if (n >= sizeof host) n = sizeof host - 1;
    for (size_t i = 0; i < n; i++) host[i] = ascii_lower(s[i]);
    host[n] = '\0';
    /* No host, or one of Docker Hub's names (reference.c knows them). */
    snprintf(out, outlen, "%s", !host[0] || registry_host_is_docker_hub(host) ? DOCKER_HUB_API : host);
}

/* ---- base64 ----------------------------------------------------------------- */

static int b64_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+' || c == '-') return 62;
    if (c == '/' || c == '_') return 63;
    return -1;
}

/* Standard or URL alphabet, padding optional. Returns the decoded bytes
 * (NUL-terminated; caller frees) or NULL when s is not base64. */
static char *b64_decode(const char *s, size_t *outlen)
{
    size_t n = strlen(s);
    while (n && s[n - 1] == '=') n--;
    if (n % 4 == 1) return NULL;
    char *out = xmalloc(n / 4 * 3 + 3);
    size_t o = 0;
    unsigned acc = 0;
    int bits = 0;
    for (size_t i = 0; i < n; i++) {
        int v = b64_value((unsigned char)s[i]);
        if (v < 0) {
            free(out);
            return NULL;
        }
        acc = (acc << 6) | (unsigned)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (char)((acc >> bits) & 0xff);
        }
    }
    out[o] = '\0';
    *outlen = o;
    return out;
}

/* base64url with padding, as Go's base64.URLEncoding (the engine's decoder). */
static char *b64url_encode(const char *s, size_t n)
{
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    char *out = xmalloc((n + 2) / 3 * 4 + 1);
    size_t o = 0;
    for (size_t i = 0; i < n; i += 3) {
        unsigned v = (unsigned char)s[i] << 16;
        if (i + 1 < n) v |= (unsigned char)s[i + 1] << 8;
        if (i + 2 < n) v |= (unsigned char)s[i + 2];
        out[o++] = tab[(v >> 18) & 63];
        out[o++] = tab[(v >> 12) & 63];
        out[o++] = i + 1 < n ? tab[(v >> 6) & 63] : '=';
        out[o++] = i + 2 < n ? tab[v & 63] : '=';
    }
    out[o] = '\0';
    return out;
}

/* ---- config.json ------------------------------------------------------------ */

void registry_auth_free(struct registry_auth *a)
{
    if (!a) return;
    for (size_t i = 0; i < a->ncreds; i++) {
        free(a->creds[i].host);
        free(a->creds[i].user);
        if (a->creds[i].password) {
            /* Not left lying in freed memory. */
            memset(a->creds[i].password, 0, strlen(a->creds[i].password));
            free(a->creds[i].password);
        }
    }
    free(a->creds);
    for (size_t i = 0; i < a->nhelpers; i++) free(a->helpers[i]);
    free(a->helpers);
    free(a);
}

static void wipe_free(char *s, size_t n)
{
    if (!s) return;
    memset(s, 0, n);
    free(s);
}

/* One auths entry. Returns 0 (added, or nothing to add), or -EINVAL with err set. */
static int add_entry(struct registry_auth *a, const char *what, const char *key, json_t *entry,
                     char *err, size_t errlen)
{
    char host[256];
    registry_api_host(key, host, sizeof host);
    if (!json_is_object(entry)) {
        put_err(err, errlen, "%s: auths entry \"%s\" is not an object", what, host);
        return -EINVAL;
    }
    json_t *auth = json_object_get(entry, "auth");
    json_t *user = json_object_get(entry, "username");
    json_t *pass = json_object_get(entry, "password");
    char *u = NULL, *p = NULL;
    if (auth && !json_is_null(auth) && !(json_is_string(auth) && json_string_length(auth) == 0)) {
        if (!json_is_string(auth)) {
            put_err(err, errlen, "%s: auths entry \"%s\": \"auth\" is not a string", what, host);
            return -EINVAL;
        }
        size_t n;
        char *plain = b64_decode(json_string_value(auth), &n);
        if (!plain) {
            put_err(err, errlen, "%s: auths entry \"%s\": \"auth\" is not valid base64", what, host);
            return -EINVAL;
        }
        char *colon = memchr(plain, ':', n);
        if (!colon || memchr(plain, '\0', n)) {
            wipe_free(plain, n);
            put_err(err, errlen, "%s: auths entry \"%s\": \"auth\" is not base64 of user:password", what,
                    host);
            return -EINVAL;
        }
        u = xstrndup(plain, (size_t)(colon - plain));
        p = xstrdup(colon + 1);
        wipe_free(plain, n);
    } else if (user || pass) {
        if (!json_is_string(user) || !json_is_string(pass)) {
            put_err(err, errlen, "%s: auths entry \"%s\": \"username\" and \"password\" must both be strings",
                    what, host);
            return -EINVAL;
        }
        u = xstrdup(json_string_value(user));
        p = xstrdup(json_string_value(pass));
    } else {
        /* {} (what docker login leaves next to a credsStore) or only an
         * identitytoken: nothing usable here. */
        return 0;
    }
    if (!*u) {
        free(u);
        wipe_free(p, strlen(p));
        put_err(err, errlen, "%s: auths entry \"%s\" has an empty user name", what, host);
        return -EINVAL;
    }
    /* Several keys can name one host (docker.io and the v1 URL): the first wins. */
    for (size_t i = 0; i < a->ncreds; i++)
        if (strcmp(a->creds[i].host, host) == 0) {
            free(u);
            wipe_free(p, strlen(p));
            return 0;
        }
    a->creds = xrealloc(a->creds, (a->ncreds + 1) * sizeof *a->creds);
    a->creds[a->ncreds++] = (struct cred){.host = xstrdup(host), .user = u, .password = p};
    return 0;
}

static struct registry_auth *parse_named(const char *json, size_t len, const char *what, char *err,
                                         size_t errlen)
{
    json_error_t je;
    /* Duplicate keys are taken as Docker's own parser takes them (the last
     * one counts), not refused. */
    json_t *root = json_loadb(json, len, 0, &je);
    if (!root) {
        put_err(err, errlen, "%s: not valid JSON (line %d, column %d)", what, je.line, je.column);
        return NULL;
    }
    struct registry_auth *a = xcalloc(1, sizeof *a);
    const char *bad = NULL;
    json_t *auths = json_object_get(root, "auths");
    json_t *store = json_object_get(root, "credsStore");
    json_t *helpers = json_object_get(root, "credHelpers");
    if (!json_is_object(root)) bad = "is not a JSON object";
    else if (auths && !json_is_object(auths)) bad = "\"auths\" is not an object";
    else if (store && !json_is_string(store)) bad = "\"credsStore\" is not a string";
    else if (helpers && !json_is_object(helpers)) bad = "\"credHelpers\" is not an object";
    if (bad) {
        put_err(err, errlen, "%s: %s", what, bad);
        goto fail;
    }
    a->creds_store = store && json_string_length(store) > 0;
    const char *key;
    json_t *v;
    json_object_foreach(auths, key, v) {
        if (add_entry(a, what, key, v, err, errlen) < 0) goto fail;
    }
    json_object_foreach(helpers, key, v) {
        char host[256];
        registry_api_host(key, host, sizeof host);
        a->helpers = xrealloc(a->helpers, (a->nhelpers + 1) * sizeof *a->helpers);
        a->helpers[a->nhelpers++] = xstrdup(host);
    }
    json_decref(root);
    return a;
fail:
    json_decref(root);
    registry_auth_free(a);
    return NULL;
}

struct registry_auth *registry_auth_parse(const char *json, size_t len, char *err, size_t errlen)
{
    return parse_named(json, len, "config.json", err, errlen);
}

struct registry_auth *registry_auth_load(const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        put_err(err, errlen, "registry auth file %s: %s", path, strerror(errno));
        return NULL;
    }
    struct buf b;
    buf_init(&b);
    char chunk[8192];
    size_t n;
    bool too_big = false;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) {
        if (b.len + n > AUTH_FILE_MAX) {
            too_big = true;
            break;
        }
        buf_append(&b, chunk, n);
    }
    bool failed = ferror(f);
    fclose(f);
    struct registry_auth *a = NULL;
    char what[512];
    snprintf(what, sizeof what, "registry auth file %s", path);
    if (failed) put_err(err, errlen, "%s: read error", what);
    else if (too_big) put_err(err, errlen, "%s: larger than %d bytes", what, AUTH_FILE_MAX);
    else a = parse_named(buf_cstr(&b), b.len, what, err, errlen);
    if (b.data) memset(b.data, 0, b.len);
    buf_free(&b);
    return a;
}

bool registry_auth_lookup(const struct registry_auth *a, const char *api_host, const char **user,
                          const char **password)
{
    if (!a || !api_host) return false;
    char host[256];
    registry_api_host(api_host, host, sizeof host);
    for (size_t i = 0; i < a->ncreds; i++)
        if (strcmp(a->creds[i].host, host) == 0) {
            if (user) *user = a->creds[i].user;
            if (password) *password = a->creds[i].password;
            return true;
        }
    return false;
}

bool registry_auth_needs_helper(const struct registry_auth *a, const char *api_host)
{
    if (!a || !api_host) return false;
    char host[256];
    registry_api_host(api_host, host, sizeof host);
    for (size_t i = 0; i < a->nhelpers; i++)
        if (strcmp(a->helpers[i], host) == 0) return true;
    /* credsStore holds every host's credentials; inline ones still work here. */
    return a->creds_store && !registry_auth_lookup(a, host, NULL, NULL);
}

char *registry_auth_header(const struct registry_auth *a, const char *registry)
{
    char host[256];
    registry_api_host(registry, host, sizeof host);
    const char *user, *password;
    if (!registry_auth_lookup(a, host, &user, &password)) return NULL;
    /* The engine's own name for Docker Hub. */
    const char *server = strcmp(host, DOCKER_HUB_API) == 0 ? "docker.io" : host;
    json_t *o = json_pack("{s:s, s:s, s:s}", "username", user, "password", password, "serveraddress", server);
    if (!o) return NULL;   /* not UTF-8 */
    char *js = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    if (!js) return NULL;
    char *out = b64url_encode(js, strlen(js));
    wipe_free(js, strlen(js));
    return out;
}

/* ---- WWW-Authenticate --------------------------------------------------------- */

static bool is_blank(char c)
{
    return c == ' ' || c == '\t';
}

static bool is_tchar(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c && strchr("!#$%&'*+-.^_`|~", c));
}

/* A quoted-string (escapes undone) or a token at *p; advances *p. */
static char *param_value(const char **p)
{
    const char *s = *p;
    struct buf b;
    buf_init(&b);
    if (*s == '"') {
        s++;
        while (*s && *s != '"') {
            if (*s == '\\' && s[1]) s++;
            buf_putc(&b, *s++);
        }
        if (*s != '"') {
            buf_free(&b);
            return NULL;
        }
        s++;
    } else {
        while (*s && !is_blank(*s) && *s != ',') buf_putc(&b, *s++);
    }
    *p = s;
    char *v = buf_steal(&b);
    return v ? v : xstrdup("");
}

int registry_challenge_parse(const char *header, struct registry_challenge *out)
{
    memset(out, 0, sizeof *out);
    if (!header) return -EINVAL;
    const char *p = header;
    while (is_blank(*p)) p++;
    size_t n = 0;
    while (is_tchar(p[n])) n++;
    if (n == 6 && strncasecmp(p, "Bearer", 6) == 0) out->bearer = true;
    else if (!(n == 5 && strncasecmp(p, "Basic", 5) == 0)) return -EINVAL;
    p += n;
    if (*p && !is_blank(*p)) return -EINVAL;
    for (;;) {
        while (is_blank(*p) || *p == ',') p++;
        if (!*p) break;
        const char *key = p;
        while (is_tchar(*p)) p++;
        size_t klen = (size_t)(p - key);
        while (is_blank(*p)) p++;
        if (!klen || *p != '=') goto bad;
        p++;
        while (is_blank(*p)) p++;
        char *v = param_value(&p);
        if (!v) goto bad;
        char **slot = NULL;
        if (klen == 5 && strncasecmp(key, "realm", 5) == 0) slot = &out->realm;
        else if (klen == 7 && strncasecmp(key, "service", 7) == 0) slot = &out->service;
        else if (klen == 5 && strncasecmp(key, "scope", 5) == 0) slot = &out->scope;
        if (slot) {
            free(*slot);
            *slot = v;
        } else {
            free(v);   /* error="insufficient_scope" and the like */
        }
        while (is_blank(*p)) p++;
        if (*p && *p != ',') goto bad;
    }
    if (out->bearer && (!out->realm || !*out->realm)) goto bad;
    if (!out->realm) out->realm = xstrdup("");
    return 0;
bad:
    registry_challenge_free(out);
    return -EINVAL;
}

void registry_challenge_free(struct registry_challenge *c)
{
    if (!c) return;
    free(c->realm);
    free(c->service);
    free(c->scope);
    memset(c, 0, sizeof *c);
}
