/* registry.c - the registry API client (see registry.h).
 *
 * One registry request (a digest, or a whole tag list) is a small state
 * machine over http_client calls: send; on 401 read the challenge, get a
 * token (Bearer) or take the Basic credentials, send once more; on a HEAD
 * answer without Docker-Content-Digest send a GET and hash the body; on a
 * tags page with a Link rel="next" send for the next page. Tokens are
 * cached per (API host, scope); a host that asked for Basic once gets its
 * credentials up front afterwards; a 429 pauses its host. All of it has one
 * deadline (timeout_ms), token fetches included.
 *
 * Secrets: the Authorization value lives in the request only; error lines
 * name the host, repository and status, never a header. */
#include "registry.h"

#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "buf.h"
#include "strset.h"
#include "url.h"

#define DEFAULT_TIMEOUT_MS 30000
#define DEFAULT_PAUSE_MS 60000
#define DEFAULT_TOKEN_SECS 60
#define MAX_MANIFEST (4 * 1024 * 1024)
#define MAX_TAGS_PAGE (8 * 1024 * 1024)
#define MAX_TOKEN_BODY (256 * 1024)
#define MAX_PAGES 1000
#define DEFAULT_MAX_TAGS 100000
#define DEFAULT_MAX_TAGS_BYTES (16 * 1024 * 1024)
/* Requests in flight to one registry at most (so connections to it, with
 * keep-alive); more wait in order. A thousand watches firing in one turn
 * must not open a thousand connections. */
#define HOST_CONCURRENCY 4

static const char ACCEPT_MANIFESTS[] =
    "Accept: application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, "
    "application/vnd.docker.distribution.manifest.list.v2+json, "
    "application/vnd.docker.distribution.manifest.v2+json\r\n";

struct token {
    struct token *next;
    char *host;
    char *scope;
    char *value;
    uint64_t expires_ms;     /* loop time */
};

/* What the client remembers of one API host. */
struct host_state {
    bool helper_warned;      /* the credential-helper warn, once */
    struct host_state *next;
    char *host;
    uint64_t paused_until;   /* loop time; 0 = not paused */
    bool basic;              /* answered a Basic challenge: send credentials up front */
    bool plain_http;         /* a loopback host that answered plain HTTP to TLS: use http */
    char *realm, *service;   /* its last Bearer challenge: tokens are fetched up front */
    unsigned inflight;       /* requests holding one of its HOST_CONCURRENCY slots */
};

struct stat_entry {
    struct stat_entry *next;
    char *registry;
    const char *outcome;
    unsigned long n;
};

struct registry_client {
    uv_loop_t *loop;
    struct http_client *http;
    const struct logger *log;
    const struct registry_auth *auth;
    char *insecure;
    uint64_t timeout_ms;
    size_t max_tags, max_tags_bytes;
    struct token *tokens;
    struct host_state *hosts;
    struct stat_entry *stats;
    struct registry_req *reqs;   /* every request not yet finished, oldest first */
    struct registry_req *reqs_tail;
    size_t queued;               /* of them, waiting for a slot of their host */
    /* Results decided inside registry_get_*, and queued requests whose host
     * has a free slot again: handled from the loop. */
    uv_timer_t deliver;
    bool closing;
    struct close_cb closed;
};

enum req_kind { REQ_MANIFEST, REQ_TAGS };
enum req_phase { PH_API, PH_TOKEN };

struct registry_req {
    struct registry_client *c;
    struct registry_req *prev, *next;
    enum req_kind kind;
    registry_cb cb;
    void *ud;
    char *registry;          /* as given, for stats */
    char host[256];          /* API host[:port] */
    struct host_state *hs;
    bool queued;             /* waits for a slot of hs */
    bool has_slot;
    bool in_dispatch;        /* being started: a result now is given from the loop */
    /* Token fetches for one (host, scope) are merged: the first one sent
     * leads, the others wait for its token (or its error). */
    struct registry_req *token_leader;   /* the request whose token fetch this one waits for */
    unsigned nwaiters;                   /* requests waiting for this one's token fetch */
    bool wake;                           /* its leader got the token: go on from the loop */
    char *repository, *tag;
    char *scope;             /* repository:<name>:pull */
    struct url ep;           /* where the API is */
    uint64_t deadline;       /* loop time */

    enum req_phase phase;
    char *path;              /* the API request target (the tags page to get) */
    bool use_get;            /* the HEAD answer had no digest */
    char *authz;             /* "Bearer …" / "Basic …" for the API, or NULL */
    bool fresh_auth;         /* authz was got by this request: a 401 now is a refusal */
    int pages_n;
    struct http_call *call;
    char cause[160];         /* http_client's errbuf */

    /* From the last API answer's head. */
    char *h_digest, *h_ctype, *h_www, *h_link, *h_retry;

    struct buf tags_buf;     /* tag strings, NUL-separated */
    size_t ntags;
    size_t tags_bytes;       /* JSON of every page so far */
    struct strset pages;     /* the tag-list pages fetched: a next link back to one is a loop */

    bool pending;            /* result decided; waits for the deliver timer */
    struct registry_result res;
    char *error;
    char *digest;
    char *media_type;
    const char **tags;
};

/* ---- small helpers ----------------------------------------------------------- */

static uint64_t now_ms(const struct registry_client *c)
{
    return uv_now(c->loop);
}

static void set_str(char **slot, const char *v)
{
    free(*slot);
    *slot = xstrdup_or_null(v);
}

static struct host_state *host_get(struct registry_client *c, const char *host)
{
    for (struct host_state *h = c->hosts; h; h = h->next)
        if (strcmp(h->host, host) == 0) return h;
    struct host_state *h = xcalloc(1, sizeof *h);
    h->host = xstrdup(host);
    h->next = c->hosts;
    c->hosts = h;
    return h;
}

static void count(struct registry_client *c, const char *registry, const char *outcome)
{
    for (struct stat_entry *s = c->stats; s; s = s->next)
        if (s->outcome == outcome && strcmp(s->registry, registry) == 0) {
            s->n++;
            return;
        }
    struct stat_entry *s = xcalloc(1, sizeof *s);
    s->registry = xstrdup(registry);
    s->outcome = outcome;
    s->n = 1;
    s->next = c->stats;
    c->stats = s;
}

static const char *outcome_of(int err)
{
    switch (err) {
    case 0: return "ok";
    case -EACCES: return "auth_error";
    case -ENOENT: return "not_found";
    case -EAGAIN: return "rate_limited";
    default: return "error";
    }
}

/* Whether host[:port] is listed in INSECURE_REGISTRIES (exact, case-insensitive). */
static bool is_insecure(const char *list, const char *host)
{
    if (!list) return false;
    size_t n = strlen(host);
    for (const char *p = list; *p;) {
        while (*p == ',' || *p == ' ') p++;
        size_t len = strcspn(p, ", ");
        if (len == n && strncasecmp(p, host, n) == 0) return true;
        p += len;
    }
    return false;
}

bool registry_host_is_loopback(const char *host)
{
    char name[64];
    const char *end;
    if (host[0] == '[') {
        host++;
        end = strchr(host, ']');
        if (!end) return false;
    } else {
        end = strchr(host, ':');
        /* More than one colon: an IPv6 literal without brackets, no port. */
        if (end && strchr(end + 1, ':')) end = NULL;
        if (!end) end = host + strlen(host);
    }
    if ((size_t)(end - host) >= sizeof name) return false;
    snprintf(name, sizeof name, "%.*s", (int)(end - host), host);
    if (strcasecmp(name, "localhost") == 0) return true;
    struct in_addr a4;
    struct in6_addr a6;
    if (inet_pton(AF_INET, name, &a4) == 1) return (ntohl(a4.s_addr) >> 24) == 127;
    return inet_pton(AF_INET6, name, &a6) == 1 && IN6_IS_ADDR_LOOPBACK(&a6);
}

/* OpenSSL's words for a TLS client that got an HTTP answer. */
static bool answered_plain_http(const char *cause)
{
    return strstr(cause, "wrong version number") || strstr(cause, "packet length too long");
}

static bool name_ok(const char *s, const char *extra)
{
    if (!s || !*s) return false;
    for (const char *p = s; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              strchr(extra, *p)))
            return false;
    return true;
}

/* A RateLimit-Limit / -Remaining value: "100;w=21600" -> 100; -1 if none. */
static long ratelimit_value(const char *v)
{
    if (!v) return -1;
    while (*v == ' ') v++;
    if (*v < '0' || *v > '9') return -1;
    long n = 0;
    for (; *v >= '0' && *v <= '9'; v++)
        if (n < 1000000000L) n = n * 10 + (*v - '0');
    return n;
}

static char *base64(const char *s, size_t n)
{
    char *out = xmalloc(4 * ((n + 2) / 3) + 1);
    EVP_EncodeBlock((unsigned char *)out, (const unsigned char *)s, (int)n);
    return out;
}

static void wipe_free(char *s)
{
    if (!s) return;
    memset(s, 0, strlen(s));
    free(s);
}

/* "Basic <base64 of user:password>", for an Authorization header; the
 * caller frees it with wipe_free (it is a credential). */
static char *basic_credentials(const char *user, const char *password)
{
    struct buf up;
    buf_init(&up);
    buf_printf(&up, "%s:%s", user, password);
    char *enc = base64(up.data, up.len);
    memset(up.data, 0, up.len);
    buf_reset(&up);
    buf_printf(&up, "Basic %s", enc);
    wipe_free(enc);
    return buf_steal(&up);
}

/* ---- tokens ----------------------------------------------------------------- */

static struct token *token_find(struct registry_client *c, const char *host, const char *scope)
{
    for (struct token *t = c->tokens; t; t = t->next)
        if (strcmp(t->host, host) == 0 && strcmp(t->scope, scope) == 0) return t;
    return NULL;
}

static void token_drop(struct registry_client *c, const char *host, const char *scope)
{
    for (struct token **pp = &c->tokens; *pp; pp = &(*pp)->next)
        if (strcmp((*pp)->host, host) == 0 && strcmp((*pp)->scope, scope) == 0) {
            struct token *t = *pp;
            *pp = t->next;
            free(t->host);
            free(t->scope);
            wipe_free(t->value);
            free(t);
            return;
        }
}

static void token_put(struct registry_client *c, const char *host, const char *scope, const char *value,
                      long long secs)
{
    token_drop(c, host, scope);
    struct token *t = xcalloc(1, sizeof *t);
    t->host = xstrdup(host);
    t->scope = xstrdup(scope);
    t->value = xstrdup(value);
    /* Used until a tenth of its life before it runs out: a request sent
     * just before expiry would be refused on arrival. */
    uint64_t life = (uint64_t)secs * 1000;
    t->expires_ms = now_ms(c) + life - life / 10;
    t->next = c->tokens;
    c->tokens = t;
}

/* ---- finishing -------------------------------------------------------------- */

static void on_deliver(uv_timer_t *t);
static void dispatch(struct registry_req *r);
static void send_api(struct registry_req *r);

static void req_free(struct registry_req *r)
{
    free(r->registry);
    free(r->repository);
    free(r->tag);
    free(r->scope);
    url_free(&r->ep);
    free(r->path);
    wipe_free(r->authz);
    buf_free(&r->tags_buf);
    strset_free(&r->pages);
    free_n(10, r->h_digest, r->h_ctype, r->h_www, r->h_link, r->h_retry, r->error, r->digest, r->media_type,
           (void *)r->tags, r);
}

static void wake_waiters(struct registry_req *r, int err, const char *error);

static void req_unlink(struct registry_req *r)
{
    struct registry_client *c = r->c;
    if (r->token_leader) {
        r->token_leader->nwaiters--;
        r->token_leader = NULL;
    }
    /* Cancelled while others waited for its token: they fetch their own. */
    if (r->nwaiters) wake_waiters(r, 0, NULL);
    if (r->prev) r->prev->next = r->next;
    else c->reqs = r->next;
    if (r->next) r->next->prev = r->prev;
    else c->reqs_tail = r->prev;
    r->prev = r->next = NULL;
    if (r->queued) c->queued--;
    r->queued = false;
    if (r->has_slot) {
        r->has_slot = false;
        r->hs->inflight--;
        /* Its slot can start a waiting one, from the loop (not from here:
         * we may be inside a callback chain). */
        if (c->queued && !c->closing) uv_timer_start(&c->deliver, on_deliver, 0, 0);
    }
}

/* Hands the result over and frees the request. The callback may close the
 * client or start other requests; nothing here touches c after it. */
static void fill_result(struct registry_req *r)
{
    r->res.error = r->res.err ? r->error : NULL;
    r->res.digest = r->digest;
    r->res.media_type = r->media_type;
    if (r->kind == REQ_TAGS && r->res.err == 0) {
        r->tags = xcalloc(r->ntags + 1, sizeof *r->tags);
        const char *p = r->tags_buf.data;
        for (size_t i = 0; i < r->ntags; i++) {
            r->tags[i] = p;
            p += strlen(p) + 1;
        }
        r->res.tags = r->tags;
        r->res.ntags = r->ntags;
    }
}

static void req_deliver(struct registry_req *r)
{
    req_unlink(r);
    fill_result(r);
    r->cb(r->ud, &r->res);
    req_free(r);
}

static void finish(struct registry_req *r, int err, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void finish(struct registry_req *r, int err, const char *fmt, ...)
{
    r->call = NULL;
    r->res.err = err;
    if (err && fmt) {
        struct buf b;
        buf_init(&b);
        va_list ap;
        va_start(ap, fmt);
        buf_vprintf(&b, fmt, ap);
        va_end(ap);
        r->error = buf_steal(&b);
    }
    /* A token fetch that failed fails those waiting for it alike (the same
     * host and scope, so the same repository and credentials). */
    if (r->nwaiters) wake_waiters(r, err, r->error);
    if (r->in_dispatch) {
        /* Decided while registry_get_* (or the queue) starts it: the
         * callback must not run from in there. on_deliver counts it. */
        r->pending = true;
        uv_timer_start(&r->c->deliver, on_deliver, 0, 0);
        return;
    }
    count(r->c, r->host, outcome_of(err));
    req_deliver(r);
}

static void on_deliver(uv_timer_t *t)
{
    struct registry_client *c = t->data;
    /* Only those pending now: a callback may start (and queue) new ones. */
    struct registry_req *first = NULL, **tail = &first;
    for (struct registry_req *r = c->reqs, *next; r; r = next) {
        next = r->next;
        if (r->pending) {
            req_unlink(r);
            *tail = r;
            tail = &r->next;
        }
    }
    while (first && !c->closing) {
        struct registry_req *r = first;
        first = r->next;
        r->next = NULL;
        count(c, r->host, outcome_of(r->res.err));
        fill_result(r);
        r->cb(r->ud, &r->res);
        req_free(r);
    }
    while (first) {   /* the client was closed by a callback: no more callbacks */
        struct registry_req *r = first;
        first = r->next;
        req_free(r);
    }
    /* Requests whose leader got their token: on, with it from the cache.
     * Started like dispatch: never a callback from inside. */
    for (struct registry_req *r = c->reqs; r && !c->closing; r = r->next) {
        if (!r->wake) continue;
        r->wake = false;
        r->in_dispatch = true;
        send_api(r);
        r->in_dispatch = false;
    }
    /* Queued requests whose host has a free slot, oldest first. dispatch
     * never calls back from inside, so the list stays as it is meanwhile
     * (apart from the request dispatched). */
    for (struct registry_req *r = c->reqs, *next; r && c->queued && !c->closing; r = next) {
        next = r->next;
        if (r->queued && r->hs->inflight < HOST_CONCURRENCY) dispatch(r);
    }
}

/* r's token fetch ended: with a token (err 0) its waiters go on from the
 * loop (a waiter of a cancelled leader then fetches its own); else they end
 * with its error. */
static void wake_waiters(struct registry_req *r, int err, const char *error)
{
    struct registry_client *c = r->c;
    for (struct registry_req *w = c->reqs; w && r->nwaiters; w = w->next) {
        if (w->token_leader != r) continue;
        w->token_leader = NULL;
        r->nwaiters--;
        if (err) {
            w->pending = true;
            w->res.err = err;
            w->res.status = r->res.status;
            set_str(&w->error, error);
        } else {
            w->wake = true;
        }
    }
    r->nwaiters = 0;
    if (!c->closing) uv_timer_start(&c->deliver, on_deliver, 0, 0);
}

/* A result decided inside registry_get_*: given from the loop, never from
 * inside the call. */
static void finish_later(struct registry_req *r, int err, const char *error)
{
    r->pending = true;
    r->res.err = err;
    r->error = xstrdup(error);
    uv_timer_start(&r->c->deliver, on_deliver, 0, 0);
}

/* ---- sending ---------------------------------------------------------------- */

static void send_api(struct registry_req *r);
static int set_endpoint(struct registry_req *r);
static void send_token(struct registry_req *r, const struct registry_challenge *ch);

static uint64_t time_left(struct registry_req *r)
{
    uint64_t now = now_ms(r->c);
    return r->deadline > now ? r->deadline - now : 0;
}

static void clear_head(struct registry_req *r)
{
    set_str(&r->h_digest, NULL);
    set_str(&r->h_ctype, NULL);
    set_str(&r->h_www, NULL);
    set_str(&r->h_link, NULL);
    set_str(&r->h_retry, NULL);
}

static void on_api_head(void *ud, int status, const char *(*get)(void *, const char *), void *ctx)
{
    struct registry_req *r = ud;
    (void)status;
    clear_head(r);
    set_str(&r->h_digest, get(ctx, "docker-content-digest"));
    set_str(&r->h_ctype, get(ctx, "content-type"));
    set_str(&r->h_www, get(ctx, "www-authenticate"));
    set_str(&r->h_link, get(ctx, "link"));
    set_str(&r->h_retry, get(ctx, "retry-after"));
    long limit = ratelimit_value(get(ctx, "ratelimit-limit"));
    long remaining = ratelimit_value(get(ctx, "ratelimit-remaining"));
    if (limit >= 0) r->res.ratelimit_limit = limit;
    if (remaining >= 0) r->res.ratelimit_remaining = remaining;
}

static void on_api_done(void *ud, int err, int status, const char *body, size_t len);

static bool start_call(struct registry_req *r, const struct url *u, const char *method, const char *headers,
                       size_t max_body, void (*head)(void *, int, const char *(*)(void *, const char *), void *),
                       void (*done)(void *, int, int, const char *, size_t))
{
    uint64_t left = time_left(r);
    if (!left) {
        finish(r, -ETIMEDOUT, "%s: no complete answer within %llu ms", r->host,
               (unsigned long long)r->c->timeout_ms);
        return false;
    }
    struct http_endpoint ep = {.host = u->host, .port = u->port, .tls = u->tls};
    r->cause[0] = '\0';
    struct http_client_opts o = {
        .method = method, .host_header = u->authority, .path = u->path, .headers = headers,
        .connect_timeout_ms = left, .total_timeout_ms = left, .errbuf = r->cause, .errbuf_len = sizeof r->cause,
        .on_head = head, .max_body = max_body, .keep_alive = true, .on_done = done, .ud = r,
    };
    r->call = http_client_request(r->c->http, &ep, &o);
    return true;
}

static void send_api(struct registry_req *r)
{
    struct registry_client *c = r->c;
    r->phase = PH_API;
    struct host_state *hs = host_get(c, r->host);
    if (!r->authz && hs->realm && !r->fresh_auth) {
        struct token *t = token_find(c, r->host, r->scope);
        if (!t || t->expires_ms <= now_ms(c)) {
            /* A Bearer host without a live token for this scope: the 401
             * would only repeat the challenge we know. */
            struct registry_challenge ch = {.bearer = true, .realm = hs->realm, .service = hs->service};
            send_token(r, &ch);
            return;
        }
    }
    if (!r->authz) {
        /* What worked before for this host and scope, sent up front. */
        struct token *t = token_find(c, r->host, r->scope);
        const char *user, *password;
        if (t && t->expires_ms > now_ms(c)) {
            struct buf b;
            buf_init(&b);
            buf_printf(&b, "Bearer %s", t->value);
            r->authz = buf_steal(&b);
        } else if (hs->basic && registry_auth_lookup(c->auth, r->host, &user, &password)) {
            r->authz = basic_credentials(user, password);
        }
    }
    struct buf h;
    buf_init(&h);
    if (r->kind == REQ_MANIFEST) buf_puts(&h, ACCEPT_MANIFESTS);
    else buf_puts(&h, "Accept: application/json\r\n");
    if (r->authz) buf_printf(&h, "Authorization: %s\r\n", r->authz);
    struct url u = r->ep;
    u.path = r->path;
    const char *method = r->kind == REQ_MANIFEST && !r->use_get ? "HEAD" : "GET";
    start_call(r, &u, method, buf_cstr(&h), r->kind == REQ_MANIFEST ? MAX_MANIFEST : MAX_TAGS_PAGE,
               on_api_head, on_api_done);
    if (h.data) memset(h.data, 0, h.len);
    buf_free(&h);
}

/* "<host> refused the credentials for <repo> (HTTP 401)" and friends. */
static void finish_refused(struct registry_req *r, int status, bool token_server)
{
    const char *user;
    bool creds = registry_auth_lookup(r->c->auth, r->host, &user, NULL);
    if (creds)
        finish(r, -EACCES, "%s refused the credentials for %s (HTTP %d%s)", r->host, r->repository, status,
               token_server ? " from its token server" : "");
    else
        finish(r, -EACCES, "%s refused anonymous access to %s (HTTP %d%s; no credentials for it in "
                           "REGISTRY_AUTH_FILE)",
               r->host, r->repository, status, token_server ? " from its token server" : "");
}

/* A 401: get what the challenge asks for, once. */
static void on_unauthorized(struct registry_req *r, int status)
{
    struct registry_client *c = r->c;
    if (r->fresh_auth) {
        finish_refused(r, status, false);
        return;
    }
    /* What was sent up front (a cached token, remembered Basic) is stale. */
    token_drop(c, r->host, r->scope);
    wipe_free(r->authz);
    r->authz = NULL;
    struct registry_challenge ch;
    if (registry_challenge_parse(r->h_www, &ch) < 0) {
        finish(r, -EACCES, "%s answered HTTP %d for %s without a usable WWW-Authenticate challenge", r->host,
               status, r->repository);
        return;
    }
    struct host_state *hs = host_get(c, r->host);
    if (ch.bearer) {
        set_str(&hs->realm, ch.realm);
        set_str(&hs->service, ch.service);
        hs->basic = false;
        send_token(r, &ch);
        registry_challenge_free(&ch);
        return;
    }
    registry_challenge_free(&ch);
    const char *user, *password;
    if (!registry_auth_lookup(c->auth, r->host, &user, &password)) {
        finish_refused(r, status, false);
        return;
    }
    hs->basic = true;
    set_str(&hs->realm, NULL);
    r->fresh_auth = true;
    send_api(r);   /* builds the Basic header from the credentials */
}

/* The tags of one page, appended; returns false if the body is not a tag list. */
static bool take_tags(struct registry_req *r, const char *body, size_t len)
{
    json_t *root = json_loadb(body, len, 0, NULL);
    json_t *tags = json_object_get(root, "tags");
    bool ok = json_is_object(root) && (json_is_array(tags) || json_is_null(tags) || !tags);
    size_t i;
    json_t *t;
    json_array_foreach(tags, i, t) {
        if (!json_is_string(t)) continue;
        buf_append(&r->tags_buf, json_string_value(t), json_string_length(t) + 1);
        r->ntags++;
    }
    json_decref(root);
    return ok;
}

/* The target of Link: </v2/...?n=..&last=..>; rel="next", or NULL. */
static char *next_page(const char *link)
{
    if (!link) return NULL;
    const char *lt = strchr(link, '<'), *gt = lt ? strchr(lt, '>') : NULL;
    if (!gt || !strstr(gt, "next")) return NULL;
    const char *s = lt + 1;
    const char *scheme = strstr(s, "://");
    if (scheme && scheme < gt) {
        s = strchr(scheme + 3, '/');
        if (!s || s > gt) return NULL;
    }
    if (strncmp(s, "/v2/", 4) != 0) return NULL;
    for (const char *p = s; p < gt; p++)
        if ((unsigned char)*p <= 0x20 || *p == 0x7f) return NULL;
    return xstrndup(s, (size_t)(gt - s));
}

static void sha256_digest(const char *body, size_t len, char out[72])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned n = 0;
    EVP_Digest(body, len, md, &n, EVP_sha256(), NULL);
    strcpy(out, "sha256:");
    for (unsigned i = 0; i < n && i < 32; i++) snprintf(out + 7 + 2 * i, 3, "%02x", md[i]);
}

/* "sha256:" and 64 lower-case hex digits: anything else in
 * Docker-Content-Digest is not taken (a digest is an event id and goes
 * into a forward URL and a pull reference). */
static bool digest_valid(const char *d)
{
    if (!d || strncmp(d, "sha256:", 7) != 0) return false;
    size_t n = strspn(d + 7, "0123456789abcdef");
    return n == 64 && d[7 + n] == '\0';
}

static void on_success(struct registry_req *r, const char *body, size_t len)
{
    if (r->kind == REQ_TAGS) {
        if (!take_tags(r, body, len)) {
            finish(r, -EPROTO, "%s: the tag list of %s is not JSON with a \"tags\" array", r->host, r->repository);
            return;
        }
        /* The whole list is capped, not only each page: a thousand pages
         * of 8 MiB would otherwise be taken. */
        r->tags_bytes += len;
        if (r->ntags > r->c->max_tags || r->tags_bytes > r->c->max_tags_bytes) {
            finish(r, -E2BIG, "%s: the tag list of %s is longer than %zu tags or %zu bytes: watch one tag instead "
                   "(an exact tag label, or a glob that accepts the object's own tag)",
                   r->host, r->repository, r->c->max_tags, r->c->max_tags_bytes);
            return;
        }
        strset_add(&r->pages, r->path);
        char *next = next_page(r->h_link);
        if (next && strset_has(&r->pages, next)) {
            finish(r, -ELOOP, "%s: the tag list of %s links back to a page it already gave: stopped", r->host,
                   r->repository);
            free(next);
            return;
        }
        if (next && ++r->pages_n < MAX_PAGES) {
            free(r->path);
            r->path = next;
            send_api(r);
            return;
        }
        free(next);
        finish(r, 0, NULL);
        return;
    }
    const char *d = r->h_digest;
    char computed[72];
    if (!digest_valid(d)) {
        if (!r->use_get) {
            /* No (usable) digest in the head: the body's hash is the digest. */
            r->use_get = true;
            send_api(r);
            return;
        }
        sha256_digest(body, len, computed);
        d = computed;
    }
    set_str(&r->digest, d);
    if (r->h_ctype) {
        size_t n = strcspn(r->h_ctype, ";");
        while (n && r->h_ctype[n - 1] == ' ') n--;
        free(r->media_type);
        r->media_type = xstrndup(r->h_ctype, n);
    }
    finish(r, 0, NULL);
}

static void on_api_done(void *ud, int err, int status, const char *body, size_t len)
{
    struct registry_req *r = ud;
    struct registry_client *c = r->c;
    r->call = NULL;
    r->res.status = status;
    if (err && r->ep.tls && answered_plain_http(r->cause)) {
        /* Docker's rule for loopback registries: https first, then plain
         * http. Anywhere else, plain http is the operator's decision. */
        if (!registry_host_is_loopback(r->host)) {
            finish(r, err, "%s: the registry answered plain HTTP: add it to INSECURE_REGISTRIES (%s)", r->host,
                   r->cause);
            return;
        }
        r->hs->plain_http = true;
        if (set_endpoint(r) < 0) return;
        send_api(r);
        return;
    }
    if (err) {
        finish(r, err, "%s: %s", r->host, r->cause[0] ? r->cause : http_client_strerror(err));
        return;
    }
    if (status >= 200 && status < 300) {
        on_success(r, body, len);
    } else if (status == 401) {
        on_unauthorized(r, status);
    } else if (status == 403) {
        finish_refused(r, status, false);
    } else if (status == 404) {
        if (r->kind == REQ_MANIFEST)
            finish(r, -ENOENT, "%s has no %s:%s (HTTP 404)", r->host, r->repository, r->tag);
        else
            finish(r, -ENOENT, "%s has no repository %s (HTTP 404)", r->host, r->repository);
    } else if (status == 429) {
        long long ms = http_retry_after_ms(r->h_retry, (long long)time(NULL));
        if (ms <= 0) ms = DEFAULT_PAUSE_MS;
        host_get(c, r->host)->paused_until = now_ms(c) + (uint64_t)ms;
        r->res.retry_after_ms = (uint64_t)ms;
        finish(r, -EAGAIN, "%s: rate limited (HTTP 429), paused for %lld s", r->host, (ms + 999) / 1000);
    } else {
        finish(r, -EIO, "%s answered HTTP %d for %s", r->host, status, r->repository);
    }
}

/* ---- the token flow ------------------------------------------------------- */

static void on_token_done(void *ud, int err, int status, const char *body, size_t len)
{
    struct registry_req *r = ud;
    r->call = NULL;
    if (err) {
        finish(r, err, "%s: token server: %s", r->host, r->cause[0] ? r->cause : http_client_strerror(err));
        return;
    }
    if (status == 401 || status == 403) {
        r->res.status = status;
        finish_refused(r, status, true);
        return;
    }
    if (status < 200 || status >= 300) {
        r->res.status = status;
        finish(r, -EIO, "%s: token server answered HTTP %d", r->host, status);
        return;
    }
    json_t *root = json_loadb(body, len, 0, NULL);
    json_t *tok = json_object_get(root, "token");
    if (!json_is_string(tok) || !json_string_length(tok)) tok = json_object_get(root, "access_token");
    json_t *exp = json_object_get(root, "expires_in");
    long long secs = json_is_integer(exp) ? json_integer_value(exp) : DEFAULT_TOKEN_SECS;
    if (secs <= 0 || secs > 86400 * 365) secs = DEFAULT_TOKEN_SECS;
    if (!json_is_string(tok) || !json_string_length(tok) || strpbrk(json_string_value(tok), "\r\n")) {
        json_decref(root);
        finish(r, -EPROTO, "%s: token server answered without a token", r->host);
        return;
    }
    LOG(r->c->log, LOG_DEBUG, "registry token fetched", F_STR("registry", r->host), F_STR("scope", r->scope),
        F_INT("expires_in", secs));
    token_put(r->c, r->host, r->scope, json_string_value(tok), secs);
    if (r->nwaiters) wake_waiters(r, 0, NULL);
    struct buf b;
    buf_init(&b);
    buf_printf(&b, "Bearer %s", json_string_value(tok));
    json_decref(root);
    wipe_free(r->authz);
    r->authz = buf_steal(&b);
    r->fresh_auth = true;
    send_api(r);
}

/* A token fetch in flight for r's host and scope, or NULL. */
static struct registry_req *token_fetch_of(struct registry_req *r)
{
    for (struct registry_req *q = r->c->reqs; q; q = q->next)
        if (q != r && q->phase == PH_TOKEN && q->call && strcmp(q->host, r->host) == 0 &&
            strcmp(q->scope, r->scope) == 0)
            return q;
    return NULL;
}

/* GET realm?service=…&scope=…, with Basic credentials when there are some. */
static void send_token(struct registry_req *r, const struct registry_challenge *ch)
{
    struct registry_req *leader = token_fetch_of(r);
    if (leader) {
        /* Its token will do for this one too: wait for it. */
        r->phase = PH_TOKEN;
        r->token_leader = leader;
        leader->nwaiters++;
        return;
    }
    struct url realm;
    const char *why = NULL;
    if (url_parse(ch->realm, &realm, &why) < 0) {
        finish(r, -EPROTO, "%s: the token realm of its challenge is not an http(s) URL", r->host);
        return;
    }
    /* Credentials go over plain http only where the operator allowed it. */
    if (!realm.tls && r->ep.tls && !is_insecure(r->c->insecure, realm.authority)) {
        url_free(&realm);
        finish(r, -EPROTO, "%s: its token realm is plain http and not in INSECURE_REGISTRIES", r->host);
        return;
    }
    /* A plain-http registry's challenge can be rewritten by anyone on the
     * path: its credentials go to a realm on the registry's own host only.
     * (An anonymous token request carries nothing to steal.) */
    const char *user, *password;
    bool creds = registry_auth_lookup(r->c->auth, r->host, &user, &password);
    if (creds && !r->ep.tls && strcasecmp(realm.host, r->ep.host) != 0) {
        finish(r, -EPROTO, "%s: plain-http registry names a token realm on another host (%s): its credentials "
               "are not sent there", r->host, realm.authority);
        url_free(&realm);
        return;
    }
    struct buf path;
    buf_init(&path);
    buf_puts(&path, realm.path);
    char sep = strchr(realm.path, '?') ? '&' : '?';
    if (ch->service) {
        buf_printf(&path, "%cservice=", sep);
        url_encode(&path, ch->service);
        sep = '&';
    }
    buf_printf(&path, "%cscope=", sep);
    url_encode(&path, r->scope);
    if (ch->scope && strcmp(ch->scope, r->scope) != 0) {
        buf_puts(&path, "&scope=");
        url_encode(&path, ch->scope);
    }
    struct url token = realm;   /* realm's strings, with the query added to its path */
    token.path = path.data;

    struct buf h;
    buf_init(&h);
    buf_puts(&h, "Accept: application/json\r\n");
    if (creds) {
        char *basic = basic_credentials(user, password);
        buf_printf(&h, "Authorization: %s\r\n", basic);
        wipe_free(basic);
    }
    r->phase = PH_TOKEN;
    start_call(r, &token, "GET", buf_cstr(&h), MAX_TOKEN_BODY, NULL, on_token_done);
    if (h.data) memset(h.data, 0, h.len);
    buf_free(&h);
    buf_free(&path);
    url_free(&realm);
}

/* Starts a request that may go now: its host is not paused, a slot is free. */
static void dispatch(struct registry_req *r)
{
    struct registry_client *c = r->c;
    struct host_state *hs = r->hs;
    if (r->queued) {
        r->queued = false;
        c->queued--;
    }
    uint64_t now = now_ms(c);
    if (hs->paused_until > now) {
        r->res.retry_after_ms = hs->paused_until - now;
        char msg[320];
        snprintf(msg, sizeof msg, "%s: rate limited (HTTP 429), paused for %llu s more", r->host,
                 (unsigned long long)((r->res.retry_after_ms + 999) / 1000));
        finish_later(r, -EAGAIN, msg);
        return;
    }
    hs->inflight++;
    r->has_slot = true;
    /* The deadline runs from here, not from a wait in the queue. */
    r->deadline = now + c->timeout_ms;
    r->in_dispatch = true;
    send_api(r);
    r->in_dispatch = false;
}

/* ---- public ------------------------------------------------------------------ */

struct registry_client *registry_client_new(uv_loop_t *loop, const struct registry_client_opts *opts)
{
    struct registry_client *c = xcalloc(1, sizeof *c);
    c->loop = loop;
    c->http = opts->http;
    c->log = opts->log;
    c->auth = opts->auth;
    c->insecure = xstrdup_or_null(opts->insecure);
    c->timeout_ms = opts->timeout_ms ? opts->timeout_ms : DEFAULT_TIMEOUT_MS;
    c->max_tags = opts->max_tags ? opts->max_tags : DEFAULT_MAX_TAGS;
    c->max_tags_bytes = opts->max_tags_bytes ? opts->max_tags_bytes : DEFAULT_MAX_TAGS_BYTES;
    uv_timer_init(loop, &c->deliver);
    c->deliver.data = c;
    return c;
}

/* Where r's API is: plain http for the hosts in INSECURE_REGISTRIES and
 * for a loopback host that answered plain HTTP to TLS before. Returns 0,
 * or -EINVAL with r finished (from the loop). */
static int set_endpoint(struct registry_req *r)
{
    bool plain = is_insecure(r->c->insecure, r->host) || r->hs->plain_http;
    struct buf u;
    buf_init(&u);
    buf_printf(&u, "%s://%s/", plain ? "http" : "https", r->host);
    url_free(&r->ep);
    const char *why;
    int rc = url_parse(buf_cstr(&u), &r->ep, &why);
    buf_free(&u);
    if (rc < 0) {
        char msg[320];
        snprintf(msg, sizeof msg, "%s: not a registry host name", r->host);
        finish_later(r, -EINVAL, msg);
        return -EINVAL;
    }
    return 0;
}

static struct registry_req *req_new(struct registry_client *c, enum req_kind kind, const char *registry,
                                    const char *repository, const char *tag, registry_cb cb, void *ud)
{
    if (c->closing) return NULL;   /* its deliver timer is closing: nothing could come back */
    struct registry_req *r = xcalloc(1, sizeof *r);
    r->c = c;
    r->kind = kind;
    r->cb = cb;
    r->ud = ud;
    r->registry = xstrdup(registry ? registry : "");
    registry_api_host(r->registry, r->host, sizeof r->host);
    r->repository = xstrdup(repository ? repository : "");
    r->tag = xstrdup_or_null(tag);
    r->res.ratelimit_limit = r->res.ratelimit_remaining = -1;
    buf_init(&r->tags_buf);
    /* Appended: queued requests go in order. */
    r->prev = c->reqs_tail;
    if (c->reqs_tail) c->reqs_tail->next = r;
    else c->reqs = r;
    c->reqs_tail = r;

    if (!name_ok(r->repository, "._-/") || (kind == REQ_MANIFEST && !name_ok(r->tag, "._-"))) {
        finish_later(r, -EINVAL, "invalid repository or tag name");
        return r;
    }
    r->hs = host_get(c, r->host);
    if (!r->hs->helper_warned && registry_auth_needs_helper(c->auth, r->host)) {
        /* A credsStore / credHelpers program cannot run in the router's
         * image: say so once, then go on anonymously. */
        LOG(c->log, LOG_WARN, "REGISTRY_AUTH_FILE names a credential helper for this registry, which the "
            "router cannot run: put the credentials in \"auths\" instead", F_STR("registry", r->host));
        r->hs->helper_warned = true;
    }
    if (set_endpoint(r) < 0) return r;
    struct buf s;
    buf_init(&s);
    buf_printf(&s, "repository:%s:pull", r->repository);
    r->scope = buf_steal(&s);
    struct buf p;
    buf_init(&p);
    if (kind == REQ_MANIFEST) buf_printf(&p, "/v2/%s/manifests/%s", r->repository, r->tag);
    else buf_printf(&p, "/v2/%s/tags/list", r->repository);
    r->path = buf_steal(&p);
    if (r->hs->inflight < HOST_CONCURRENCY) {
        dispatch(r);
    } else {
        r->queued = true;
        c->queued++;
    }
    return r;
}

struct registry_req *registry_get_digest(struct registry_client *c, const char *registry,
                                         const char *repository, const char *tag, registry_cb cb, void *ud)
{
    return req_new(c, REQ_MANIFEST, registry, repository, tag, cb, ud);
}

struct registry_req *registry_get_tags(struct registry_client *c, const char *registry,
                                       const char *repository, registry_cb cb, void *ud)
{
    return req_new(c, REQ_TAGS, registry, repository, NULL, cb, ud);
}

void registry_req_cancel(struct registry_req *r)
{
    if (!r) return;
    if (r->call) http_call_cancel(r->call);
    r->call = NULL;
    req_unlink(r);
    req_free(r);
}

void registry_client_stats(const struct registry_client *c, registry_stat_fn fn, void *ud)
{
    for (const struct stat_entry *s = c->stats; s; s = s->next) fn(ud, s->registry, s->outcome, s->n);
}

unsigned long registry_client_connections(const struct registry_client *c)
{
    return http_client_connections_opened(c->http);
}

static void on_closed(uv_handle_t *h)
{
    struct registry_client *c = h->data;
    struct close_cb closed = c->closed;
    while (c->tokens) {
        struct token *t = c->tokens;
        c->tokens = t->next;
        free(t->host);
        free(t->scope);
        wipe_free(t->value);
        free(t);
    }
    for (struct host_state *hs = c->hosts, *next; hs; hs = next) {
        next = hs->next;
        free_n(4, hs->host, hs->realm, hs->service, hs);
    }
    for (struct stat_entry *s = c->stats, *next; s; s = next) {
        next = s->next;
        free_n(2, s->registry, s);
    }
    free(c->insecure);
    free(c);
    close_cb_call(closed);
}

void registry_client_close(struct registry_client *c, void (*cb)(void *ud), void *ud)
{
    if (CLOSE_BEGIN(c, cb, ud)) return;
    while (c->reqs) registry_req_cancel(c->reqs);
    uv_timer_stop(&c->deliver);
    uv_close((uv_handle_t *)&c->deliver, on_closed);
}
