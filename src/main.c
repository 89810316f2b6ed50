/* main.c - entry point: configuration, the `healthcheck` and
 * `registry-digest` subcommands, the loop. */
#include <arpa/inet.h>
#include <errno.h>
#include <malloc.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>
#include <uv.h>

#include "app.h"
#include "config.h"
#include "dns.h"
#include "forward.h"
#include "http_client.h"
#include "notifier.h"
#include "reference.h"
#include "registry.h"

extern char **environ;

/* GET /health on the local listener; exit 0 if it answers 200. Blocking
 * sockets are fine here: this runs in its own short-lived process (the
 * container HEALTHCHECK), never in the daemon's loop. */
static int healthcheck(const struct config *c)
{
    struct sockaddr_storage ss;
    socklen_t len;
    memset(&ss, 0, sizeof ss);
    const char *addr = c->listen_addr;
    int v6 = strchr(addr, ':') != NULL;
    /* A wildcard listener is reached on loopback. */
    if (strcmp(addr, "0.0.0.0") == 0) addr = "127.0.0.1";
    if (strcmp(addr, "::") == 0) addr = "::1";
    if (v6) {
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons((uint16_t)c->listen_port);
        inet_pton(AF_INET6, addr, &s6->sin6_addr);
        len = sizeof *s6;
    } else {
        struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
        s4->sin_family = AF_INET;
        s4->sin_port = htons((uint16_t)c->listen_port);
        inet_pton(AF_INET, addr, &s4->sin_addr);
        len = sizeof *s4;
    }
    int fd = socket(ss.ss_family, SOCK_STREAM, 0);
    if (fd < 0) return 1;
    struct timeval tv = {.tv_sec = 3};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    const char req[] = "GET /health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";
    char resp[64] = "";
    int ok = connect(fd, (struct sockaddr *)&ss, len) == 0 &&
             write(fd, req, sizeof req - 1) == (ssize_t)(sizeof req - 1) &&
             read(fd, resp, sizeof resp - 1) > 12 && strncmp(resp + 8, " 200", 4) == 0;
    close(fd);
    if (!ok) fprintf(stderr, "webhook-router: healthcheck failed on %s port %d\n", addr,
                     c->listen_port);
    return ok ? 0 : 1;
}

/* ---- registry-digest ------------------------------------------------------- */

struct digest_run {
    struct registry_client *rc;
    struct http_client *http;
    struct dns *dns;
    int rc_exit;
};

static void digest_closed(void *ud)
{
    struct digest_run *d = ud;
    http_client_close(d->http, NULL, NULL);
    dns_close(d->dns, NULL, NULL);
}

static void on_digest(void *ud, const struct registry_result *r)
{
    struct digest_run *d = ud;
    if (r->err == 0) {
        printf("%s\n", r->digest);
        d->rc_exit = 0;
    } else {
        fprintf(stderr, "webhook-router: %s\n", r->error ? r->error : "registry request failed");
    }
    registry_client_close(d->rc, digest_closed, d);
}

/* Splits ref Docker's way: "redis:7" is docker.io/library/redis:7. */
static int split_ref(const char *ref, char *registry, size_t rlen, char *repo, size_t plen, char *tag,
                     size_t tlen)
{
    struct reference r;
    if (reference_split(ref, strlen(ref), &r) < 0 || r.digest.p) return -EINVAL;
    char name[800];
    if (r.host.n + r.path.n + 2 > sizeof name) return -EINVAL;
    snprintf(name, sizeof name, "%.*s%s%.*s", (int)r.host.n, r.host.p ? r.host.p : "", r.host.n ? "/" : "",
             (int)r.path.n, r.path.p);
    struct repo_ref rr;
    if (repo_ref_parse(name, &rr) < 0) return -EINVAL;
    snprintf(registry, rlen, "%s", rr.host[0] ? rr.host : "docker.io");
    /* A host-less name is a Docker Hub one: library/ for a single name. */
    if (!rr.host[0] && !strchr(rr.path, '/')) snprintf(repo, plen, "library/%s", rr.path);
    else snprintf(repo, plen, "%s", rr.path);
    snprintf(tag, tlen, "%.*s", r.tag.p ? (int)r.tag.n : 6, r.tag.p ? r.tag.p : "latest");
    return 0;
}

/* Prints the digest a registry watch would see for ref; exit 0, or the
 * error on stderr and exit 1. The operator's check of credentials and
 * reachability, with the daemon's own client and settings. */
static int registry_digest(const struct config *c)
{
    char registry[256], repo[600], tag[256];
    if (split_ref(c->registry_digest_ref, registry, sizeof registry, repo, sizeof repo, tag, sizeof tag) < 0) {
        fprintf(stderr, "webhook-router: registry-digest: not an image reference with a tag: %s\n",
                c->registry_digest_ref);
        return 1;
    }
    char err[512] = "";
    struct registry_auth *auth = NULL;
    if (c->registry_auth_file) {
        auth = registry_auth_load(c->registry_auth_file, err, sizeof err);
        if (!auth) {
            fprintf(stderr, "webhook-router: %s\n", err);
            return 1;
        }
    }
    char api_host[256];
    registry_api_host(registry, api_host, sizeof api_host);
    if (registry_auth_needs_helper(auth, api_host))
        fprintf(stderr, "webhook-router: warning: the credentials for %s are in a credential helper "
                        "(credsStore/credHelpers), which the router cannot run; put them in \"auths\"\n",
                api_host);
    uv_loop_t loop;
    uv_loop_init(&loop);
    struct logger lg;
    logger_init(&lg, c->log_level, c->log_format, 2);
    struct digest_run d = {.rc_exit = 1};
    d.dns = dns_new(&loop, &lg);
    d.http = http_client_new(&loop, d.dns, &lg);
    const char *why = NULL;
    if (http_client_tls_setup(d.http, c->tls_ca_file, c->tls_insecure, &why) < 0) {
        fprintf(stderr, "webhook-router: TLS_CA_FILE: %s\n", why ? why : "cannot be loaded");
        http_client_close(d.http, NULL, NULL);
        dns_close(d.dns, NULL, NULL);
    } else {
        struct registry_client_opts o = {.http = d.http, .log = &lg, .auth = auth,
                                         .insecure = c->insecure_registries,
                                         .timeout_ms = 0};
        d.rc = registry_client_new(&loop, &o);
        registry_get_digest(d.rc, registry, repo, tag, on_digest, &d);
    }
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    registry_auth_free(auth);
    return d.rc_exit;
}

/* ---- notify-test ------------------------------------------------------------ */

struct notify_run {
    const struct notify_target *target;
    struct dns *dns;
    struct http_client *http;
    struct forwarder *fwd;
    struct notifier *n;
    int sent, told, failed;
    bool finishing;
};

static void notify_drained(void *ud)
{
    struct notify_run *r = ud;
    forward_free(r->fwd);
    r->fwd = NULL;
    notifier_close(r->n, NULL, NULL);
    http_client_close(r->http, NULL, NULL);
    dns_close(r->dns, NULL, NULL);
}

static void notify_finish(struct notify_run *r)
{
    if (r->finishing || r->sent < 0 || r->told < r->sent) return;
    r->finishing = true;
    forward_drain(r->fwd, notify_drained, r);
}

static void on_notify_tested(void *ud, const struct forward_result *res)
{
    struct notify_run *r = ud;
    r->told++;
    if (res->delivered) {
        printf("delivered: HTTP %d (%s)\n", res->status, r->target->display);
    } else {
        r->failed++;
        if (res->status) printf("failed: HTTP %d (%s)\n", res->status, r->target->display);
        else printf("failed: %s (%s)\n", res->error ? res->error : "not delivered", r->target->display);
    }
    fflush(stdout);
    notify_finish(r);
}

/* Sends a sample message to the target NOTIFY_<name>_URL, with the
 * daemon's own client and settings but without retries (the operator
 * wants the answer now); prints each request's outcome; 0 when all were
 * delivered. */
static int notify_test(const struct config *c)
{
    struct notify_run r = {.sent = -1};
    r.target = notify_config_find(&c->notify, c->notify_test_name, strlen(c->notify_test_name));
    if (!r.target) {
        fprintf(stderr, "webhook-router: notify-test: no target named \"%s\" (set NOTIFY_<NAME>_URL)\n",
                c->notify_test_name);
        return 1;
    }
    uv_loop_t loop;
    uv_loop_init(&loop);
    struct logger lg;
    logger_init(&lg, c->log_level, c->log_format, 2);
    r.dns = dns_new(&loop, &lg);
    r.http = http_client_new(&loop, r.dns, &lg);
    const char *why = NULL;
    int rc = 1;
    if (http_client_tls_setup(r.http, c->tls_ca_file, c->tls_insecure, &why) < 0) {
        fprintf(stderr, "webhook-router: TLS_CA_FILE: %s\n", why ? why : "cannot be loaded");
        http_client_close(r.http, NULL, NULL);
        dns_close(r.dns, NULL, NULL);
    } else {
        struct forward_opts fo = {.timeout_secs = c->forward_timeout_secs, .retries = 0, .concurrency = 8,
                                  .queue_max = 16};
        r.fwd = forward_new(&loop, r.http, &lg, &fo);
        struct notifier_opts no = {.config = &c->notify, .window_ms = 0};
        r.n = notifier_new(&loop, r.fwd, &lg, &no);
        r.sent = notifier_test(r.n, c->notify_test_name, on_notify_tested, &r);
        if (r.sent == 0) {
            printf("failed: nothing to send to (%s)\n", r.target->display);
            r.failed = 1;
        }
        notify_finish(&r);
        uv_run(&loop, UV_RUN_DEFAULT);
        notifier_free(r.n);
        rc = r.failed || r.sent <= 0 ? 1 : 0;
    }
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    return rc;
}

/* Many idle keep-alive connections are normal for a webhook endpoint: take
 * every file descriptor the hard limit allows. */
static void raise_fd_limit(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

int main(int argc, char **argv)
{
    struct config cfg;
    char err[512] = "";
    config_defaults(&cfg);
    enum config_action act = config_parse(&cfg, argc, argv, environ, stdout, err, sizeof err);
    int rc = 0;
    switch (act) {
    case CONFIG_ERROR: {
        /* One line in LOG_FORMAT (JSON by default), so `| jq` reads it as
         * it reads every other line. */
        struct logger lg;
        logger_init(&lg, LOG_ERROR, cfg.log_format, 2);
        LOG(&lg, LOG_ERROR, "invalid configuration", F_STR("error", err));
        config_free(&cfg);
        return 2;
    }
    case CONFIG_EXIT_OK:
        config_free(&cfg);
        return 0;
    case CONFIG_HEALTHCHECK:
        rc = healthcheck(&cfg);
        config_free(&cfg);
        return rc;
    case CONFIG_REGISTRY_DIGEST:
        signal(SIGPIPE, SIG_IGN);
        rc = registry_digest(&cfg);
        config_free(&cfg);
        return rc;
    case CONFIG_NOTIFY_TEST:
        signal(SIGPIPE, SIG_IGN);
        rc = notify_test(&cfg);
        config_free(&cfg);
        return rc;
    case CONFIG_RUN:
        break;
    }

    /* A peer closing its socket must be an EPIPE, not a dead process. */
    signal(SIGPIPE, SIG_IGN);
    raise_fd_limit();
    /* Small blocks come and go with every request; glibc's per-thread cache
     * serves them. Its fastbins would only add work: each request's
     * larger block (the parsed body) makes malloc consolidate them. */
    mallopt(M_MXFAST, 0);

    uv_loop_t loop;
    uv_loop_init(&loop);
    struct app app;
    if (app_start(&app, &loop, &cfg) < 0) {
        rc = 1;
        app_stop(&app);
    }
    uv_run(&loop, UV_RUN_DEFAULT);
    app_free(&app);
    if (uv_loop_close(&loop) != 0) {
        /* Some handle was left open: a bug, but not one to hang on. */
        fprintf(stderr, "webhook-router: handles still open at exit\n");
    }
    config_free(&cfg);
    return rc;
}
