/* The registry client against a fake registry on loopback (a pthread
 * server speaking keep-alive HTTP/1.1): token flows, Basic, token cache and
 * expiry, refusals, 404, 429 pauses, the GET fallback, tag pagination,
 * connection reuse and cancellation. */
#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>
#include <cmocka.h>

#include "dns.h"
#include "registry.h"

/* ---- the fake registry ------------------------------------------------------ */

#define MANIFEST_BODY "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.index.v1+json\",\"manifests\":[]}"
/* sha256 of MANIFEST_BODY, as the registry would name it */
#define DIGEST_A "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"

enum fake_auth { FA_NONE, FA_BEARER, FA_BASIC };

struct fake {
    int lfd, port;
    int wake[2];
    pthread_t th;
    pthread_mutex_t mu;
    /* set by the test before requests */
    enum fake_auth auth;
    const char *basic;           /* expected "Basic …" (registry or token server), NULL: anonymous ok */
    int expires_in;              /* token lifetime; 0: leave expires_in out */
    bool reject_all;             /* every API request 401s, even with a valid token */
    bool omit_digest;
    const char *bad_digest;      /* sent as Docker-Content-Digest instead of DIGEST_A */
    bool rate_limit;             /* answer 429 Retry-After: 2 */
    bool hang;                   /* never answer */
    bool loop_next;              /* the last tags page links back to the second */
    bool hang_token;             /* token requests get no answer */
    const char *realm;           /* the Bearer realm to announce; NULL: /token here */
    /* seen */
    int connections;
    int api_requests;
    int token_requests;
    int tokens_issued;
    char last_token_authz[512];
    char last_scope[256];
    char last_method[8];
    char last_accept[512];
};

static void send_resp(int fd, int status, const char *extra, const char *body, bool head)
{
    char buf[8192];
    size_t blen = body ? strlen(body) : 0;
    int n = snprintf(buf, sizeof buf, "HTTP/1.1 %d X\r\n%sContent-Length: %zu\r\n\r\n%s", status, extra ? extra : "",
                     blen, head || !body ? "" : body);
    send(fd, buf, (size_t)n, MSG_NOSIGNAL);
}

static const char *hdr(const char *req, const char *name, char *out, size_t outlen)
{
    out[0] = '\0';
    size_t n = strlen(name);
    for (const char *p = strstr(req, "\r\n"); p && p[2]; p = strstr(p + 2, "\r\n")) {
        if (strncasecmp(p + 2, name, n) == 0 && p[2 + n] == ':') {
            const char *v = p + 3 + n;
            while (*v == ' ') v++;
            size_t len = strcspn(v, "\r\n");
            snprintf(out, outlen, "%.*s", (int)len, v);
            return out;
        }
    }
    return NULL;
}

/* Answers one request head; called with f->mu held. */
static void answer(struct fake *f, int fd, const char *req)
{
    char method[8] = "", path[1024] = "", authz[512], accept[512];
    sscanf(req, "%7s %1023s", method, path);
    hdr(req, "Authorization", authz, sizeof authz);
    if (f->hang) return;
    if (strncmp(path, "/token", 6) == 0) {
        f->token_requests++;
        if (f->hang_token) return;
        snprintf(f->last_token_authz, sizeof f->last_token_authz, "%s", authz);
        const char *sc = strstr(path, "scope=");
        snprintf(f->last_scope, sizeof f->last_scope, "%s", sc ? sc + 6 : "");
        if (f->basic && strcmp(authz, f->basic) != 0) {
            send_resp(fd, 401, NULL, "{\"details\":\"bad creds\"}", false);
            return;
        }
        char body[128];
        f->tokens_issued++;
        if (f->expires_in)
            snprintf(body, sizeof body, "{\"token\":\"tok-%d\",\"expires_in\":%d}", f->tokens_issued, f->expires_in);
        else
            snprintf(body, sizeof body, "{\"access_token\":\"tok-%d\"}", f->tokens_issued);
        send_resp(fd, 200, "Content-Type: application/json\r\n", body, false);
        return;
    }
    f->api_requests++;
    snprintf(f->last_method, sizeof f->last_method, "%s", method);
    snprintf(f->last_accept, sizeof f->last_accept, "%s", hdr(req, "Accept", accept, sizeof accept) ? accept : "");
    bool head = strcmp(method, "HEAD") == 0;
    if (f->rate_limit) {
        send_resp(fd, 429, "Retry-After: 2\r\n", "{}", head);
        return;
    }
    char want[64];
    snprintf(want, sizeof want, "Bearer tok-%d", f->tokens_issued);
    bool authorized = f->auth == FA_NONE || (f->auth == FA_BEARER && f->tokens_issued && strcmp(authz, want) == 0) ||
                      (f->auth == FA_BASIC && f->basic && strcmp(authz, f->basic) == 0);
    if (f->reject_all || !authorized) {
        char ch[512];
        if (f->auth == FA_BASIC)
            snprintf(ch, sizeof ch, "WWW-Authenticate: Basic realm=\"fake\"\r\n");
        else if (f->realm)
            snprintf(ch, sizeof ch, "WWW-Authenticate: Bearer realm=\"%s\",service=\"fake\"\r\n", f->realm);
        else
            snprintf(ch, sizeof ch,
                     "WWW-Authenticate: Bearer realm=\"http://127.0.0.1:%d/token\",service=\"fake\","
                     "scope=\"repository:team/app:pull\"\r\n",
                     f->port);
        send_resp(fd, 401, ch, "{\"errors\":[]}", head);
        return;
    }
    if (strcmp(path, "/v2/team/app/manifests/v1") == 0) {
        char extra[512];
        char dig[256] = "";
        if (!f->omit_digest)
            snprintf(dig, sizeof dig, "Docker-Content-Digest: %s\r\n", f->bad_digest ? f->bad_digest : DIGEST_A);
        snprintf(extra, sizeof extra,
                 "Content-Type: application/vnd.oci.image.index.v1+json\r\n%s"
                 "RateLimit-Limit: 100;w=21600\r\nRateLimit-Remaining: 76;w=21600\r\n",
                 dig);
        send_resp(fd, 200, extra, MANIFEST_BODY, head);
    } else if (strcmp(path, "/v2/team/app/tags/list") == 0) {
        send_resp(fd, 200, "Link: </v2/team/app/tags/list?n=2&last=b>; rel=\"next\"\r\n",
                  "{\"name\":\"team/app\",\"tags\":[\"a\",\"b\"]}", false);
    } else if (strcmp(path, "/v2/team/app/tags/list?n=2&last=b") == 0) {
        send_resp(fd, 200, "Link: <http://127.0.0.1/v2/team/app/tags/list?n=2&last=d>; rel=\"next\"\r\n",
                  "{\"name\":\"team/app\",\"tags\":[\"c\",\"d\"]}", false);
    } else if (strcmp(path, "/v2/team/app/tags/list?n=2&last=d") == 0) {
        send_resp(fd, 200, f->loop_next ? "Link: </v2/team/app/tags/list?n=2&last=b>; rel=\"next\"\r\n" : NULL,
                  "{\"name\":\"team/app\",\"tags\":[\"v1\"]}", false);
    } else {
        send_resp(fd, 404, NULL, "{\"errors\":[{\"code\":\"MANIFEST_UNKNOWN\"}]}", head);
    }
}

#define MAX_CONNS 16

static void *fake_main(void *arg)
{
    struct fake *f = arg;
    struct pollfd pf[MAX_CONNS + 2];
    char bufs[MAX_CONNS][4096];
    size_t lens[MAX_CONNS];
    int conns[MAX_CONNS];
    int nconns = 0;
    for (;;) {
        /* A connection accepted below was not polled this round: no revents. */
        memset(pf, 0, sizeof pf);
        pf[0] = (struct pollfd){.fd = f->lfd, .events = POLLIN};
        pf[1] = (struct pollfd){.fd = f->wake[0], .events = POLLIN};
        for (int i = 0; i < nconns; i++) pf[2 + i] = (struct pollfd){.fd = conns[i], .events = POLLIN};
        if (poll(pf, (nfds_t)(2 + nconns), -1) < 0) continue;
        if (pf[1].revents) break;
        if (pf[0].revents && nconns < MAX_CONNS) {
            int fd = accept(f->lfd, NULL, NULL);
            if (fd >= 0) {
                pthread_mutex_lock(&f->mu);
                f->connections++;
                pthread_mutex_unlock(&f->mu);
                lens[nconns] = 0;
                conns[nconns++] = fd;
            }
        }
        for (int i = 0; i < nconns; i++) {
            if (!pf[2 + i].revents) continue;
            ssize_t got = recv(conns[i], bufs[i] + lens[i], sizeof bufs[i] - lens[i] - 1, 0);
            if (got <= 0) {
                close(conns[i]);
                conns[i] = conns[--nconns];
                lens[i] = lens[nconns];
                memcpy(bufs[i], bufs[nconns], lens[i]);
                i--;
                continue;
            }
            if (lens[i] == 0 && (unsigned char)bufs[i][0] == 0x16) {
                /* A TLS ClientHello to this plain server: answer as an HTTP
                 * server does (Go's, the registry's), then close. */
                const char bad[] = "HTTP/1.0 400 Bad Request\r\n\r\nClient sent an HTTP request to an HTTPS server.\n";
                if (send(conns[i], bad, sizeof bad - 1, MSG_NOSIGNAL) < 0) { /* closed below all the same */ }
                shutdown(conns[i], SHUT_WR);
            }
            lens[i] += (size_t)got;
            bufs[i][lens[i]] = '\0';
            char *end;
            while ((end = strstr(bufs[i], "\r\n\r\n"))) {
                end[2] = '\0';
                pthread_mutex_lock(&f->mu);
                answer(f, conns[i], bufs[i]);
                pthread_mutex_unlock(&f->mu);
                size_t used = (size_t)(end + 4 - bufs[i]);
                memmove(bufs[i], end + 4, lens[i] - used + 1);
                lens[i] -= used;
            }
        }
    }
    for (int i = 0; i < nconns; i++) close(conns[i]);
    return NULL;
}

static void fake_start(struct fake *f)
{
    memset(f, 0, sizeof *f);
    pthread_mutex_init(&f->mu, NULL);
    f->lfd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET};
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    bind(f->lfd, (struct sockaddr *)&sa, sizeof sa);
    socklen_t len = sizeof sa;
    getsockname(f->lfd, (struct sockaddr *)&sa, &len);
    f->port = ntohs(sa.sin_port);
    listen(f->lfd, 16);
    assert_int_equal(pipe(f->wake), 0);
    pthread_create(&f->th, NULL, fake_main, f);
}

static void fake_stop(struct fake *f)
{
    assert_int_equal(write(f->wake[1], "x", 1), 1);
    pthread_join(f->th, NULL);
    close(f->wake[0]);
    close(f->wake[1]);
    close(f->lfd);
    pthread_mutex_destroy(&f->mu);
}

static int fake_get(struct fake *f, const int *field)
{
    pthread_mutex_lock(&f->mu);
    int v = *field;
    pthread_mutex_unlock(&f->mu);
    return v;
}

/* ---- the client side ------------------------------------------------------------ */

struct fx {
    uv_loop_t loop;
    struct logger lg;
    struct dns *dns;
    struct http_client *http;
    struct registry_auth *auth;
    struct registry_client *rc;
    struct fake f;
    char host[64];
    char insecure[128];
};

struct got {
    int done;
    int err;
    int status;
    char error[512];
    char digest[128];
    char media_type[128];
    char tags[256];
    size_t ntags;
    uint64_t retry_after_ms;
    long rl_limit, rl_remaining;
};

static void on_result(void *ud, const struct registry_result *r)
{
    struct got *g = ud;
    g->done++;
    g->err = r->err;
    g->status = r->status;
    snprintf(g->error, sizeof g->error, "%s", r->error ? r->error : "");
    snprintf(g->digest, sizeof g->digest, "%s", r->digest ? r->digest : "");
    snprintf(g->media_type, sizeof g->media_type, "%s", r->media_type ? r->media_type : "");
    g->tags[0] = '\0';
    for (size_t i = 0; i < r->ntags; i++) {
        strcat(g->tags, r->tags[i]);
        strcat(g->tags, ",");
    }
    g->ntags = r->ntags;
    g->retry_after_ms = r->retry_after_ms;
    g->rl_limit = r->ratelimit_limit;
    g->rl_remaining = r->ratelimit_remaining;
}

static void fx_start(struct fx *x, const char *config_json)
{
    memset(x, 0, sizeof *x);
    fake_start(&x->f);
    uv_loop_init(&x->loop);
    logger_init(&x->lg, LOG_ERROR, LOG_FORMAT_JSON, 2);
    x->dns = dns_new(&x->loop, &x->lg);
    x->http = http_client_new(&x->loop, x->dns, &x->lg);
    const char *why;
    assert_int_equal(http_client_tls_setup(x->http, NULL, false, &why), 0);
    snprintf(x->host, sizeof x->host, "127.0.0.1:%d", x->f.port);
    snprintf(x->insecure, sizeof x->insecure, "other:1, %s", x->host);
    if (config_json) {
        /* HOST in config_json stands for the fake's host:port. */
        char json[512], err[256];
        const char *at = strstr(config_json, "HOST");
        assert_non_null(at);
        snprintf(json, sizeof json, "%.*s%s%s", (int)(at - config_json), config_json, x->host, at + 4);
        x->auth = registry_auth_parse(json, strlen(json), err, sizeof err);
        assert_non_null(x->auth);
    }
    struct registry_client_opts o = {.http = x->http, .log = &x->lg, .auth = x->auth, .insecure = x->insecure,
                                     .timeout_ms = 3000};
    x->rc = registry_client_new(&x->loop, &o);
}

static int g_closed;
static void on_client_closed(void *ud)
{
    (void)ud;
    g_closed++;
}

static void fx_finish(struct fx *x)
{
    g_closed = 0;
    registry_client_close(x->rc, on_client_closed, NULL);
    http_client_close(x->http, NULL, NULL);
    dns_close(x->dns, NULL, NULL);
    uv_run(&x->loop, UV_RUN_DEFAULT);
    assert_int_equal(g_closed, 1);
    assert_int_equal(uv_loop_close(&x->loop), 0);
    registry_auth_free(x->auth);
    fake_stop(&x->f);
}

/* NOWAIT turns: UV_RUN_ONCE would also wait in poll for the next timer
 * (the pool's sweep, seconds away) after a result came from a timer. */
static void run_until(struct fx *x, const struct got *g)
{
    for (int i = 0; i < 5000 && !g->done; i++) {
        uv_run(&x->loop, UV_RUN_NOWAIT);
        if (!g->done) usleep(1000);
    }
    assert_int_equal(g->done, 1);
}

static struct got digest(struct fx *x, const char *repo, const char *tag)
{
    struct got g;
    memset(&g, 0, sizeof g);
    registry_get_digest(x->rc, x->host, repo, tag, on_result, &g);
    assert_int_equal(g.done, 0);   /* never from inside the call */
    run_until(x, &g);
    return g;
}

struct stat_seen {
    char text[512];
};

static void on_stat(void *ud, const char *registry, const char *outcome, unsigned long n)
{
    struct stat_seen *s = ud;
    (void)registry;
    char line[64];
    snprintf(line, sizeof line, "%s=%lu;", outcome, n);
    strcat(s->text, line);
}

static bool has_stat(struct fx *x, const char *what)
{
    struct stat_seen s = {""};
    registry_client_stats(x->rc, on_stat, &s);
    return strstr(s.text, what) != NULL;
}

/* ---- tests --------------------------------------------------------------------- */

static void test_anonymous_token_flow(void **s)
{
    (void)s;
    struct fx x;
    fx_start(&x, NULL);
    x.f.auth = FA_BEARER;
    x.f.expires_in = 300;
    struct got g = digest(&x, "team/app", "v1");
    assert_int_equal(g.err, 0);
    assert_string_equal(g.digest, DIGEST_A);
    assert_string_equal(g.media_type, "application/vnd.oci.image.index.v1+json");
    assert_int_equal(g.rl_limit, 100);
    assert_int_equal(g.rl_remaining, 76);
    assert_int_equal(x.f.token_requests, 1);
    assert_string_equal(x.f.last_token_authz, "");   /* anonymous: no credentials sent */
    assert_string_equal(x.f.last_scope, "repository%3Ateam%2Fapp%3Apull");
    assert_string_equal(x.f.last_method, "HEAD");
    assert_non_null(strstr(x.f.last_accept, "application/vnd.oci.image.index.v1+json"));
    assert_non_null(strstr(x.f.last_accept, "application/vnd.oci.image.manifest.v1+json"));
    assert_non_null(strstr(x.f.last_accept, "application/vnd.docker.distribution.manifest.list.v2+json"));
    assert_non_null(strstr(x.f.last_accept, "application/vnd.docker.distribution.manifest.v2+json"));
    assert_int_equal(x.f.api_requests, 2);   /* 401, then with the token */

    /* Cached: the next request goes out with the token at once. */
    g = digest(&x, "team/app", "v1");
    assert_int_equal(g.err, 0);
    assert_int_equal(x.f.token_requests, 1);
    assert_int_equal(x.f.api_requests, 3);
    /* Keep-alive: the token endpoint and the API share one connection. */
    assert_int_equal(fake_get(&x.f, &x.f.connections), 1);
    assert_true(has_stat(&x, "ok=2;"));
    fx_finish(&x);
}

static void test_credentialed_token_flow(void **s)
{
    (void)s;
    struct fx x;
    /* YWxpY2U6cHc= is alice:pw */
    fx_start(&x, "{\"auths\":{\"http://HOST\":{\"auth\":\"YWxpY2U6cHc=\"}}}");
    x.f.auth = FA_BEARER;
    x.f.basic = "Basic YWxpY2U6cHc=";
    x.f.expires_in = 300;
    struct got g = digest(&x, "team/app", "v1");
    assert_int_equal(g.err, 0);
    assert_string_equal(g.digest, DIGEST_A);
    assert_string_equal(x.f.last_token_authz, "Basic YWxpY2U6cHc=");
    fx_finish(&x);

    /* Wrong credentials: the token server refuses them. */
    fx_start(&x, "{\"auths\":{\"HOST\":{\"username\":\"alice\",\"password\":\"wrong-pw\"}}}");
    x.f.auth = FA_BEARER;
    x.f.basic = "Basic YWxpY2U6cHc=";
    g = digest(&x, "team/app", "v1");
    assert_int_equal(g.err, -EACCES);
    char want[256];
    snprintf(want, sizeof want, "%s refused the credentials for team/app (HTTP 401 from its token server)", x.host);
    assert_string_equal(g.error, want);
    assert_null(strstr(g.error, "wrong-pw"));
    assert_true(has_stat(&x, "auth_error=1;"));
    fx_finish(&x);
}

static void test_basic_challenge(void **s)
{
    (void)s;
    struct fx x;
    fx_start(&x, "{\"auths\":{\"HOST\":{\"auth\":\"YWxpY2U6cHc=\"}}}");
    x.f.auth = FA_BASIC;
    x.f.basic = "Basic YWxpY2U6cHc=";
    struct got g = digest(&x, "team/app", "v1");
    assert_int_equal(g.err, 0);
    assert_string_equal(g.digest, DIGEST_A);
    assert_int_equal(x.f.api_requests, 2);
    assert_int_equal(x.f.token_requests, 0);
    /* The host asked for Basic: credentials go up front from now on. */
    g = digest(&x, "team/app", "v1");
    assert_int_equal(g.err, 0);
    assert_int_equal(x.f.api_requests, 3);
    fx_finish(&x);

    /* Without credentials: refused, and the line says so. */
    fx_start(&x, NULL);
    x.f.auth = FA_BASIC;
    x.f.basic = "Basic YWxpY2U6cHc=";
    g = digest(&x, "team/app", "v1");
    assert_int_equal(g.err, -EACCES);
    assert_non_null(strstr(g.error, "refused anonymous access to team/app (HTTP 401"));
    fx_finish(&x);

    /* Wrong Basic credentials: one retry, then refused. */
    fx_start(&x, "{\"auths\":{\"HOST\":{\"username\":\"alice\",\"password\":\"nope-nope\"}}}");
    x.f.auth = FA_BASIC;
    x.f.basic = "Basic YWxpY2U6cHc=";
    g = digest(&x, "team/app", "v1");
    assert_int_equal(g.err, -EACCES);
    assert_int_equal(g.status, 401);
    char want[256];
    snprintf(want, sizeof want, "%s refused the credentials for team/app (HTTP 401)", x.host);
    assert_string_equal(g.error, want);
    assert_int_equal(x.f.api_requests, 2);
    fx_finish(&x);
}

static void test_expired_token_refetched(void **s)
{
    (void)s;
    struct fx x;
    fx_start(&x, NULL);
    x.f.auth = FA_BEARER;
    x.f.expires_in = 1;
    struct got g = digest(&x, "team/app", "v1");
    assert_int_equal(g.err, 0);
    assert_int_equal(x.f.token_requests, 1);
    assert_int_equal(x.f.api_requests, 2);
    usleep(1000 * 1000);
    uv_update_time(&x.loop);
    g = digest(&x, "team/app", "v1");
    assert_int_equal(g.err, 0);
    assert_int_equal(x.f.token_requests, 2);
    /* The host's challenge is remembered: the new token is fetched first,
     * without another 401 round trip. */
    assert_int_equal(x.f.api_requests, 3);
    /* Without expires_in a token lasts 60 s. */
    x.f.expires_in = 0;
    usleep(1000 * 1000);
    uv_update_time(&x.loop);
    g = digest(&x, "team/app", "v1");
    assert_int_equal(x.f.token_requests, 3);   /* access_token form */
    g = digest(&x, "team/app", "v1");
    assert_int_equal(g.err, 0);
    assert_int_equal(x.f.token_requests, 3);
    fx_finish(&x);
}

static void test_401_after_token(void **s)
{
    (void)s;
    struct fx x;
    fx_start(&x, NULL);
    x.f.auth = FA_BEARER;
    x.f.reject_all = true;
    struct got g = digest(&x, "team/app", "v1");
    assert_int_equal(g.err, -EACCES);
    assert_int_equal(g.status, 401);
    assert_non_null(strstr(g.error, "refused anonymous access to team/app (HTTP 401"));
    assert_null(strstr(g.error, "tok-"));
    assert_int_equal(x.f.token_requests, 1);
    assert_int_equal(x.f.api_requests, 2);
    fx_finish(&x);
}

static void test_not_found(void **s)
{
    (void)s;
    struct fx x;
    fx_start(&x, NULL);
    struct got g = digest(&x, "team/app", "nope");
    assert_int_equal(g.err, -ENOENT);
    assert_int_equal(g.status, 404);
    char want[256];
    snprintf(want, sizeof want, "%s has no team/app:nope (HTTP 404)", x.host);
    assert_string_equal(g.error, want);
    assert_true(has_stat(&x, "not_found=1;"));
    fx_finish(&x);
}

static void test_rate_limited_pause(void **s)
{
    (void)s;
    struct fx x;
    fx_start(&x, NULL);
    x.f.rate_limit = true;
    struct got g = digest(&x, "team/app", "v1");
    assert_int_equal(g.err, -EAGAIN);
    assert_int_equal(g.status, 429);
    assert_int_equal(g.retry_after_ms, 2000);
    assert_int_equal(x.f.api_requests, 1);
    /* During the pause: -EAGAIN at once (from the loop), nothing sent. */
    uint64_t t0 = uv_now(&x.loop);
    g = digest(&x, "team/app", "v1");
    assert_int_equal(g.err, -EAGAIN);
    assert_true(g.retry_after_ms > 1000 && g.retry_after_ms <= 2000);
    if (uv_now(&x.loop) - t0 >= 200) fail_msg("took %llu ms", (unsigned long long)(uv_now(&x.loop) - t0));
    struct got tg = {0};
    registry_get_tags(x.rc, x.host, "team/app", on_result, &tg);
    run_until(&x, &tg);
    assert_int_equal(tg.err, -EAGAIN);
    assert_int_equal(x.f.api_requests, 1);
    assert_true(has_stat(&x, "rate_limited=3;"));
    /* After it, requests go out again. */
    x.f.rate_limit = false;
    usleep(2100 * 1000);
    uv_update_time(&x.loop);
    g = digest(&x, "team/app", "v1");
    assert_int_equal(g.err, 0);
    assert_int_equal(x.f.api_requests, 2);
    fx_finish(&x);
}

static void test_missing_digest_get_sha256(void **s)
{
    (void)s;
    struct fx x;
    fx_start(&x, NULL);
    x.f.omit_digest = true;
    struct got g = digest(&x, "team/app", "v1");
    assert_int_equal(g.err, 0);
    /* sha256 of MANIFEST_BODY (printf %s | sha256sum) */
    assert_string_equal(g.digest, "sha256:dff9de10919148711140d349bf03f1a99eb06f94b03e51715ccebfa7cdc518e2");
    assert_string_equal(x.f.last_method, "GET");
    assert_int_equal(x.f.api_requests, 2);
    fx_finish(&x);
}

/* A Docker-Content-Digest that is not sha256:<64 lower-case hex> is not
 * taken: the body's own hash is (as when the header is missing). */
static void test_bad_digest_header(void **s)
{
    (void)s;
    static const char *const bad[] = {
        "sha256:zzz",
        "sha256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",     /* 63 */
        "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",   /* 65 */
        "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa/../x",
        "sha256:",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct fx x;
        fx_start(&x, NULL);
        x.f.bad_digest = bad[i];
        struct got g = digest(&x, "team/app", "v1");
        assert_int_equal(g.err, 0);
        assert_string_equal(g.digest, "sha256:dff9de10919148711140d349bf03f1a99eb06f94b03e51715ccebfa7cdc518e2");
        assert_string_equal(x.f.last_method, "GET");
        fx_finish(&x);
    }
}

static void test_tags_pagination(void **s)
{
    (void)s;
    struct fx x;
    fx_start(&x, NULL);
    x.f.auth = FA_BEARER;
    x.f.expires_in = 300;
    struct got g = {0};
    registry_get_tags(x.rc, x.host, "team/app", on_result, &g);
    run_until(&x, &g);
    assert_int_equal(g.err, 0);
    assert_int_equal(g.ntags, 5);
    assert_string_equal(g.tags, "a,b,c,d,v1,");
    assert_int_equal(x.f.token_requests, 1);
    assert_int_equal(x.f.api_requests, 4);   /* 401 + three pages */
    memset(&g, 0, sizeof g);
    registry_get_tags(x.rc, x.host, "team/none", on_result, &g);
    run_until(&x, &g);
    assert_int_equal(g.err, -ENOENT);
    fx_finish(&x);
}

/* The client again, with caps on a whole tag list. */
static void fx_recreate(struct fx *x, size_t max_tags, size_t max_bytes)
{
    registry_client_close(x->rc, NULL, NULL);
    struct registry_client_opts o = {.http = x->http, .log = &x->lg, .auth = x->auth, .insecure = x->insecure,
                                     .timeout_ms = 3000, .max_tags = max_tags, .max_tags_bytes = max_bytes};
    x->rc = registry_client_new(&x->loop, &o);
}

static struct got tags_of(struct fx *x)
{
    struct got g = {0};
    registry_get_tags(x->rc, x->host, "team/app", on_result, &g);
    run_until(x, &g);
    return g;
}

/* A whole tag list is capped (tags and bytes), not only each page; a next
 * link back to a page already fetched stops the list. Old code: every
 * page up to 1,000 was taken, and a loop went round 1,000 pages. */
static void test_tags_caps_and_loop(void **s)
{
    (void)s;
    struct fx x;
    fx_start(&x, NULL);
    fx_recreate(&x, 5, 0);   /* exactly the five tags: fine */
    struct got g = tags_of(&x);
    assert_int_equal(g.err, 0);
    assert_int_equal(g.ntags, 5);
    fx_recreate(&x, 3, 0);
    int before = fake_get(&x.f, &x.f.api_requests);
    g = tags_of(&x);
    assert_int_equal(g.err, -E2BIG);
    assert_int_equal(g.ntags, 0);
    char want[512];
    snprintf(want, sizeof want, "%s: the tag list of team/app is longer than 3 tags or 16777216 bytes: watch one "
             "tag instead (an exact tag label, or a glob that accepts the object's own tag)", x.host);
    assert_string_equal(g.error, want);
    assert_int_equal(fake_get(&x.f, &x.f.api_requests) - before, 2);   /* stopped at the second page */
    fx_recreate(&x, 0, 50);   /* each page is 36 bytes */
    g = tags_of(&x);
    assert_int_equal(g.err, -E2BIG);
    assert_non_null(strstr(g.error, "or 50 bytes"));

    fx_recreate(&x, 0, 0);
    x.f.loop_next = true;
    before = fake_get(&x.f, &x.f.api_requests);
    g = tags_of(&x);
    assert_int_equal(g.err, -ELOOP);
    snprintf(want, sizeof want, "%s: the tag list of team/app links back to a page it already gave: stopped",
             x.host);
    assert_string_equal(g.error, want);
    assert_int_equal(fake_get(&x.f, &x.f.api_requests) - before, 3);
    fx_finish(&x);
}

static void test_keep_alive(void **s)
{
    (void)s;
    struct fx x;
    fx_start(&x, NULL);
    for (int i = 0; i < 20; i++) {
        struct got g = digest(&x, "team/app", "v1");
        assert_int_equal(g.err, 0);
    }
    assert_int_equal(x.f.api_requests, 20);
    assert_int_equal(fake_get(&x.f, &x.f.connections), 1);
    assert_int_equal(registry_client_connections(x.rc), 1);
    assert_true(has_stat(&x, "ok=20;"));
    fx_finish(&x);
}

static void test_cancel(void **s)
{
    (void)s;
    struct fx x;
    fx_start(&x, NULL);
    x.f.hang = true;
    struct got g = {0}, paused = {0}, later = {0};
    struct registry_req *r = registry_get_digest(x.rc, x.host, "team/app", "v1", on_result, &g);
    for (int i = 0; i < 50 && fake_get(&x.f, &x.f.api_requests) == 0; i++) uv_run(&x.loop, UV_RUN_NOWAIT), usleep(2000);
    registry_req_cancel(r);
    /* A result decided at once (bad name), cancelled before the loop ran. */
    r = registry_get_digest(x.rc, x.host, "team app", "v1", on_result, &paused);
    registry_req_cancel(r);
    /* One left pending when the client closes: no callback either. */
    registry_get_digest(x.rc, x.host, "team/app", "v1", on_result, &later);
    for (int i = 0; i < 20; i++) uv_run(&x.loop, UV_RUN_NOWAIT);
    fx_finish(&x);
    assert_int_equal(g.done, 0);
    assert_int_equal(paused.done, 0);
    assert_int_equal(later.done, 0);
}

static void test_https_and_errors(void **s)
{
    (void)s;
    struct fx x;
    fx_start(&x, NULL);
    /* Not in INSECURE_REGISTRIES and not a loopback address to the rule
     * (127.0.0.0/8, ::1, localhost), though it reaches 127.0.0.1: the
     * IPv4-mapped form stands in for a remote host. https, which this
     * plain server cannot speak, and the error says what to do. */
    struct got g = {0};
    char other[64];
    snprintf(other, sizeof other, "[::ffff:127.0.0.1]:%d", x.f.port);
    registry_get_digest(x.rc, other, "team/app", "v1", on_result, &g);
    run_until(&x, &g);
    assert_true(g.err < 0);
    assert_non_null(strstr(g.error, other));
    if (!strstr(g.error, "the registry answered plain HTTP: add it to INSECURE_REGISTRIES"))
        fail_msg("got \"%s\"", g.error);
    memset(&g, 0, sizeof g);
    /* A loopback name: https first, then plain http, as Docker does. */
    snprintf(other, sizeof other, "localhost:%d", x.f.port);
    registry_get_digest(x.rc, other, "team/app", "v1", on_result, &g);
    run_until(&x, &g);
    if (g.err) fail_msg("localhost: %s", g.error);
    assert_int_equal(x.f.api_requests, 1);
    memset(&g, 0, sizeof g);
    registry_get_digest(x.rc, x.host, "team/app", "v1\r\nX: y", on_result, &g);
    run_until(&x, &g);
    assert_int_equal(g.err, -EINVAL);
    assert_int_equal(x.f.api_requests, 1);
    fx_finish(&x);
}


/* The client closed from inside a callback: what else was decided gets no
 * callback, and a request started after the close is refused (NULL). */
static struct fx *g_fx;
static struct registry_req *g_after_close;
static int g_close_cbs;

static void on_result_close(void *ud, const struct registry_result *r)
{
    (void)ud;
    (void)r;
    g_close_cbs++;
    registry_client_close(g_fx->rc, on_client_closed, NULL);
    g_after_close = registry_get_digest(g_fx->rc, g_fx->host, "team/app", "v1", on_result, NULL);
}

static void test_loopback_hosts(void **s)
{
    (void)s;
    const char *yes[] = {"127.0.0.1", "127.0.0.1:5000", "127.3.2.1:80", "localhost", "LOCALHOST:5000",
                         "[::1]:5000", "[::1]", "::1"};
    const char *no[] = {"128.0.0.1:5000", "reg.local:5000", "127.1:5000", "[::ffff:127.0.0.1]:5000", "localhost.example:5000",
                        "[::2]:5000", "10.0.0.1", "", "[::1"};
    for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++)
        if (!registry_host_is_loopback(yes[i])) fail_msg("%s: not loopback", yes[i]);
    for (size_t i = 0; i < sizeof no / sizeof no[0]; i++)
        if (registry_host_is_loopback(no[i])) fail_msg("%s: loopback", no[i]);
}

static void test_close_from_callback(void **s)
{
    (void)s;
    struct fx x;
    fx_start(&x, NULL);
    g_fx = &x;
    g_close_cbs = 0;
    g_closed = 0;
    g_after_close = (struct registry_req *)&x;
    /* Two results decided at once (bad names), delivered in one turn. */
    registry_get_digest(x.rc, x.host, "bad name", "v1", on_result_close, NULL);
    registry_get_digest(x.rc, x.host, "bad name", "v1", on_result_close, NULL);
    for (int i = 0; i < 50 && !g_closed; i++) uv_run(&x.loop, UV_RUN_NOWAIT);
    assert_int_equal(g_close_cbs, 1);
    assert_null(g_after_close);
    assert_int_equal(g_closed, 1);
    http_client_close(x.http, NULL, NULL);
    dns_close(x.dns, NULL, NULL);
    uv_run(&x.loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&x.loop), 0);
    fake_stop(&x.f);
}


/* Many requests to one host in one turn (a thousand watches firing
 * together): at most 4 in flight, so at most 4 connections, the rest
 * queued; every one answered. */
static void test_host_concurrency(void **s)
{
    (void)s;
    struct fx x;
    fx_start(&x, NULL);
    struct got g[12];
    memset(g, 0, sizeof g);
    for (int i = 0; i < 12; i++) registry_get_digest(x.rc, x.host, "team/app", "v1", on_result, &g[i]);
    for (int i = 0; i < 12; i++) run_until(&x, &g[i]);
    for (int i = 0; i < 12; i++) assert_int_equal(g[i].err, 0);
    assert_int_equal(x.f.api_requests, 12);
    assert_true(fake_get(&x.f, &x.f.connections) <= 4);
    fx_finish(&x);
}


/* A realm that is no http(s) URL: an error, from the first 401 and from the
 * remembered challenge alike, and never from inside registry_get_digest. */
static void test_bad_realm(void **s)
{
    (void)s;
    struct fx x;
    fx_start(&x, NULL);
    x.f.auth = FA_BEARER;
    x.f.realm = "ftp://127.0.0.1/token";
    for (int i = 0; i < 2; i++) {
        struct got g = digest(&x, "team/app", "v1");   /* checks: no callback from inside */
        assert_int_equal(g.err, -EPROTO);
        assert_non_null(strstr(g.error, "the token realm of its challenge is not an http(s) URL"));
    }
    assert_true(has_stat(&x, "error=2;"));
    fx_finish(&x);
}

/* A plain-http registry whose challenge names a realm on another host:
 * its credentials are not sent there (old code sent them). Anonymous
 * token requests still go. */
static void test_http_realm_other_host(void **s)
{
    (void)s;
    struct fx x;
    char realm[128];
    fx_start(&x, "{\"auths\":{\"HOST\":{\"auth\":\"YWxpY2U6cHc=\"}}}");
    snprintf(realm, sizeof realm, "http://localhost:%d/token", x.f.port);
    x.f.auth = FA_BEARER;
    x.f.realm = realm;
    struct got g = digest(&x, "team/app", "v1");
    assert_int_equal(g.err, -EPROTO);
    char want[256];
    snprintf(want, sizeof want, "%s: plain-http registry names a token realm on another host (localhost:%d): its "
             "credentials are not sent there", x.host, x.f.port);
    assert_string_equal(g.error, want);
    assert_int_equal(x.f.token_requests, 0);
    fx_finish(&x);

    /* The same host (any port): the registry's own. */
    fx_start(&x, "{\"auths\":{\"HOST\":{\"auth\":\"YWxpY2U6cHc=\"}}}");
    snprintf(realm, sizeof realm, "http://127.0.0.1:%d/token", x.f.port);
    x.f.auth = FA_BEARER;
    x.f.realm = realm;
    g = digest(&x, "team/app", "v1");
    assert_int_equal(g.err, 0);
    assert_string_equal(x.f.last_token_authz, "Basic YWxpY2U6cHc=");
    fx_finish(&x);

    fx_start(&x, NULL);
    snprintf(realm, sizeof realm, "http://localhost:%d/token", x.f.port);
    x.f.auth = FA_BEARER;
    x.f.realm = realm;
    g = digest(&x, "team/app", "v1");
    assert_int_equal(g.err, 0);
    assert_string_equal(x.f.last_token_authz, "");
    fx_finish(&x);
}

/* Three checks of one repository at once on a Bearer host: one token
 * request, not three (old code: three, and with this fake, which honours
 * only the newest token, two of them were then refused). A token server
 * that refuses: all three fail with its answer, still one request. */
static void test_token_fetches_merged(void **s)
{
    (void)s;
    struct fx x;
    fx_start(&x, NULL);
    x.f.auth = FA_BEARER;
    x.f.expires_in = 300;
    struct got g[3];
    memset(g, 0, sizeof g);
    for (int i = 0; i < 3; i++) registry_get_digest(x.rc, x.host, "team/app", "v1", on_result, &g[i]);
    for (int i = 0; i < 3; i++) run_until(&x, &g[i]);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(g[i].err, 0);
        assert_string_equal(g[i].digest, DIGEST_A);
    }
    assert_int_equal(fake_get(&x.f, &x.f.token_requests), 1);
    fx_finish(&x);

    fx_start(&x, "{\"auths\":{\"HOST\":{\"username\":\"alice\",\"password\":\"wrong-pw\"}}}");
    x.f.auth = FA_BEARER;
    x.f.basic = "Basic YWxpY2U6cHc=";
    memset(g, 0, sizeof g);
    for (int i = 0; i < 3; i++) registry_get_digest(x.rc, x.host, "team/app", "v1", on_result, &g[i]);
    for (int i = 0; i < 3; i++) run_until(&x, &g[i]);
    char want[256];
    snprintf(want, sizeof want, "%s refused the credentials for team/app (HTTP 401 from its token server)", x.host);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(g[i].err, -EACCES);
        assert_string_equal(g[i].error, want);
    }
    assert_int_equal(fake_get(&x.f, &x.f.token_requests), 1);
    assert_true(has_stat(&x, "auth_error=3;"));
    fx_finish(&x);
}

/* The request that fetches the token is cancelled: the ones waiting for
 * it fetch their own. */
static void test_token_leader_cancelled(void **s)
{
    (void)s;
    struct fx x;
    fx_start(&x, NULL);
    x.f.auth = FA_BEARER;
    x.f.expires_in = 300;
    struct got g[3];
    memset(g, 0, sizeof g);
    pthread_mutex_lock(&x.f.mu);
    x.f.hang_token = true;
    pthread_mutex_unlock(&x.f.mu);
    struct registry_req *first = registry_get_digest(x.rc, x.host, "team/app", "v1", on_result, &g[0]);
    for (int i = 0; i < 4000 && fake_get(&x.f, &x.f.token_requests) < 1; i++) {
        uv_run(&x.loop, UV_RUN_NOWAIT);
        usleep(500);
    }
    /* The host's challenge is known now: these two go for a token at once,
     * and wait for the first one's. */
    for (int i = 1; i < 3; i++) registry_get_digest(x.rc, x.host, "team/app", "v1", on_result, &g[i]);
    for (int i = 0; i < 50; i++) uv_run(&x.loop, UV_RUN_NOWAIT), usleep(200);
    assert_int_equal(fake_get(&x.f, &x.f.token_requests), 1);   /* the others wait for it */
    pthread_mutex_lock(&x.f.mu);
    x.f.hang_token = false;
    pthread_mutex_unlock(&x.f.mu);
    registry_req_cancel(first);
    for (int i = 1; i < 3; i++) run_until(&x, &g[i]);
    for (int i = 1; i < 3; i++) assert_int_equal(g[i].err, 0);
    assert_int_equal(g[0].done, 0);
    fx_finish(&x);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_anonymous_token_flow),  cmocka_unit_test(test_credentialed_token_flow),
        cmocka_unit_test(test_basic_challenge),       cmocka_unit_test(test_expired_token_refetched),
        cmocka_unit_test(test_401_after_token),       cmocka_unit_test(test_not_found),
        cmocka_unit_test(test_rate_limited_pause),    cmocka_unit_test(test_missing_digest_get_sha256),
        cmocka_unit_test(test_tags_pagination),       cmocka_unit_test(test_keep_alive),
        cmocka_unit_test(test_cancel),                cmocka_unit_test(test_https_and_errors),
        cmocka_unit_test(test_loopback_hosts),
        cmocka_unit_test(test_close_from_callback),   cmocka_unit_test(test_host_concurrency),
        cmocka_unit_test(test_bad_realm),             cmocka_unit_test(test_bad_digest_header),
        cmocka_unit_test(test_http_realm_other_host), cmocka_unit_test(test_tags_caps_and_loop),
        cmocka_unit_test(test_token_fetches_merged),  cmocka_unit_test(test_token_leader_cancelled),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
