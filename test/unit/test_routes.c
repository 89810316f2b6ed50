/* Label parsing, the source table, resync and matching. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "buf.h"
#include "routes.h"
#include "testutil.h"

#define URL_A "http://127.0.0.1:5099/hook/secret-a"
#define URL_B "https://portainer:9443/api/stacks/webhooks/638e6967-ef77"

/* The logger writes to a temp file so tests can read what was warned. */
struct fixture {
    struct logger lg;
    FILE *logf;
    struct route_table *t;
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    f->logf = tmpfile();
    logger_init(&f->lg, LOG_DEBUG, LOG_FORMAT_JSON, fileno(f->logf));
    f->t = routes_new();
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    routes_free(f->t);
    fclose(f->logf);
    free(f);
    return 0;
}

static char *log_text(struct fixture *f)
{
    fflush(f->logf);
    long n = lseek(fileno(f->logf), 0, SEEK_END);
    char *s = calloc(1, (size_t)n + 1);
    pread(fileno(f->logf), s, (size_t)n, 0);
    return s;
}

static json_t *labels(const char *json)
{
    json_error_t e;
    json_t *j = json_loads(json, 0, &e);
    assert_non_null(j);
    return j;
}

static int put(struct fixture *f, const char *engine, const char *id, const char *json)
{
    json_t *l = labels(json);
    struct route_source src = {.engine = engine, .kind = "container", .id = id, .name = id};
    int rc = routes_put(f->t, &src, l, "webhook-router", &f->lg);
    json_decref(l);
    return rc;
}

static size_t match(struct fixture *f, const char *registry, const char *repo, const char *tag,
                    const char **urls)
{
    struct push_event ev = {.registry = (char *)registry, .repository = (char *)repo,
                            .tag = (char *)tag};
    return routes_match(f->t, &ev, urls, 16);
}

static void test_parse_labels(void **state)
{
    (void)state;
    struct route *r;
    char err[256];
    json_t *l = labels("{\"webhook-router.image\":\"team/a, reg.io:5000/b ,c\","
                       "\"webhook-router.url\":\"" URL_A "\",\"webhook-router.tag\":\"v*\","
                       "\"other\":\"x\"}");
    int n = route_parse_labels("webhook-router", l, &r, err, sizeof err);
    assert_int_equal(n, 3);
    assert_string_equal(r[0].ref.path, "team/a");
    assert_string_equal(r[1].ref.host, "reg.io:5000");
    assert_string_equal(r[1].ref.path, "b");
    assert_string_equal(r[2].image, "c");
    assert_string_equal(r[2].tag_glob, "v*");
    route_list_free(r, (size_t)n);
    json_decref(l);

    /* Not ours. */
    l = labels("{\"com.docker.compose.project\":\"shop\"}");
    assert_int_equal(route_parse_labels("webhook-router", l, &r, err, sizeof err), 0);
    json_decref(l);
    /* Another prefix. */
    l = labels("{\"wr.image\":\"a\",\"wr.url\":\"http://h/x\"}");
    assert_int_equal(route_parse_labels("wr", l, &r, err, sizeof err), 1);
    route_list_free(r, 1);
    json_decref(l);
}

static void test_parse_malformed(void **state)
{
    (void)state;
    const char *cases[][2] = {
        {"{\"webhook-router.image\":\"a\"}", "url is missing"},
        {"{\"webhook-router.url\":\"" URL_A "\"}", "image is missing"},
        {"{\"webhook-router.image\":\"a\",\"webhook-router.url\":\"ftp://h/secret\"}", "url is invalid"},
        {"{\"webhook-router.image\":\"a\",\"webhook-router.url\":\"" URL_A "\","
         "\"webhook-router.tag\":\"v[\"}", "tag is not a valid"},
        {"{\"webhook-router.image\":\"a b\",\"webhook-router.url\":\"" URL_A "\"}", "invalid repository"},
        {"{\"webhook-router.image\":\"team/a,Team/MyApp\",\"webhook-router.url\":\"" URL_A "\"}",
         "upper-case letters in its repository path: \"Team/MyApp\""},
        {"{\"webhook-router.image\":\" , \",\"webhook-router.url\":\"" URL_A "\"}", "image is empty"},
        {"{\"webhook-router.image\":5,\"webhook-router.url\":\"" URL_A "\"}", "must be strings"},
        {"{\"webhook-router.image\":\"a\",\"webhook-router.update\":\"false\"}", "url is missing"},
        {"{\"webhook-router.image\":\"a\",\"webhook-router.update\":\"yes\"}", "update must be true or false"},
        {"{\"webhook-router.image\":\"a\",\"webhook-router.url\":\"" URL_A "\",\"webhook-router.poll\":\"5x\"}",
         "poll is not an interval"},
        {"{\"webhook-router.image\":\"a\",\"webhook-router.url\":\"" URL_A "\",\"webhook-router.poll\":\"500ms\"}",
         "at least 1s"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct route *r;
        char err[256] = "";
        json_t *l = labels(cases[i][0]);
        assert_int_equal(route_parse_labels("webhook-router", l, &r, err, sizeof err), -EINVAL);
        assert_non_null(strstr(err, cases[i][1]));
        assert_null(strstr(err, "secret"));
        json_decref(l);
    }
}

static void test_poll_label(void **state)
{
    (void)state;
    const struct { const char *poll; long long ms; } cases[] = {{NULL, 0}, {"30s", 30000}, {"1h", 3600000}, {"off", -1}, {"300", 300000}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char json[256];
        if (cases[i].poll)
            snprintf(json, sizeof json, "{\"webhook-router.image\":\"a\",\"webhook-router.url\":\"" URL_A "\","
                     "\"webhook-router.poll\":\"%s\"}", cases[i].poll);
        else
            snprintf(json, sizeof json, "{\"webhook-router.image\":\"a\",\"webhook-router.url\":\"" URL_A "\"}");
        struct route *r;
        char err[256] = "";
        json_t *l = labels(json);
        assert_int_equal(route_parse_labels("webhook-router", l, &r, err, sizeof err), 1);
        assert_int_equal(r[0].poll_ms, cases[i].ms);
        route_list_free(r, 1);
        json_decref(l);
    }
}

static void test_match_and_fanout(void **state)
{
    struct fixture *f = *state;
    const char *urls[16];
    assert_int_equal(put(f, "e1", "c1", "{\"webhook-router.image\":\"team/myapp\","
                                        "\"webhook-router.url\":\"" URL_A "\"}"), 1);
    assert_int_equal(put(f, "e1", "c2", "{\"webhook-router.image\":\"team/myapp\","
                                        "\"webhook-router.url\":\"" URL_B "\","
                                        "\"webhook-router.tag\":\"v*\"}"), 1);
    assert_int_equal(match(f, "127.0.0.1:5000", "team/myapp", "latest", urls), 1);
    assert_string_equal(urls[0], URL_A);
    assert_int_equal(match(f, "127.0.0.1:5000", "team/myapp", "v2", urls), 2);
    assert_int_equal(match(f, "127.0.0.1:5000", "team/other", "v2", urls), 0);
    assert_int_equal(routes_count(f->t), 2);
}

/* <prefix>.update=true makes a route without a URL; with a URL both
 * happen. routes_match sees only URLs, routes_match_all the sources too. */
static void test_update_routes(void **state)
{
    struct fixture *f = *state;
    const char *urls[16];
    const struct route_source *upd[16];
    assert_int_equal(put(f, "e1", "c1", "{\"webhook-router.image\":\"team/app\",\"webhook-router.update\":\"true\"}"), 1);
    assert_int_equal(put(f, "e1", "c2", "{\"webhook-router.image\":\"team/app\",\"webhook-router.update\":\"true\","
                                        "\"webhook-router.url\":\"" URL_A "\"}"), 1);
    assert_int_equal(put(f, "e1", "c3", "{\"webhook-router.image\":\"team/app\",\"webhook-router.url\":\"" URL_A "\"}"), 1);
    assert_int_equal(put(f, "e1", "c4", "{\"webhook-router.image\":\"team/app\",\"webhook-router.update\":\"true\"}"), 1);
    assert_int_equal(match(f, NULL, "team/app", "latest", urls), 1);
    struct push_event ev = {.repository = "team/app", .tag = "latest"};
    struct route_matches m = {.urls = urls, .max_urls = 16, .updates = upd, .max_updates = 16};
    routes_match_all(f->t, &ev, &m);
    assert_int_equal(m.nurls, 1);
    assert_int_equal(m.nupdates, 3);
    int seen = 0;
    for (size_t i = 0; i < m.nupdates; i++) seen |= 1 << (upd[i]->id[1] - '0');
    assert_int_equal(seen, (1 << 1) | (1 << 2) | (1 << 4));
    ev.repository = "team/other";
    routes_match_all(f->t, &ev, &m);
    assert_int_equal(m.nurls + m.nupdates, 0);
}

/* A stand-in for the daemon's target check: "chat" exists, URLs with
 * "bad" in them do not parse. */
static int check_word(void *ud, const char *word, char *err, size_t errlen)
{
    (void)ud;
    if (strcmp(word, "chat") == 0 || (strstr(word, "://") && !strstr(word, "bad"))) return 0;
    snprintf(err, errlen, "unknown notification target \"%s\"", strstr(word, "://") ? "***" : word);
    return -EINVAL;
}

static void test_notify_routes(void **state)
{
    struct fixture *f = *state;
    routes_set_notify_check(f->t, check_word, NULL);
    /* Notify-only: a route of its own, redeploying nothing. */
    assert_int_equal(put(f, "e1", "c1", "{\"webhook-router.image\":\"team/app\",\"webhook-router.notify\":\"chat\"}"), 1);
    assert_int_equal(put(f, "e1", "c2", "{\"webhook-router.image\":\"team/app\",\"webhook-router.url\":\"" URL_A "\","
                                        "\"webhook-router.notify\":\" chat  discord://s3cret@1 \"}"), 1);
    assert_int_equal(put(f, "e1", "c3", "{\"webhook-router.image\":\"team/app\",\"webhook-router.url\":\"" URL_A "\"}"), 1);
    /* An unknown name, a bad URL, an empty label: malformed, one warn each, no URL in it. */
    assert_int_equal(put(f, "e1", "c4", "{\"webhook-router.image\":\"team/app\",\"webhook-router.notify\":\"chat chatt\"}"), -EINVAL);
    assert_int_equal(put(f, "e1", "c5", "{\"webhook-router.image\":\"team/app\",\"webhook-router.url\":\"" URL_A "\","
                                        "\"webhook-router.notify\":\"discord://bad-s3cret\"}"), -EINVAL);
    assert_int_equal(put(f, "e1", "c6", "{\"webhook-router.image\":\"team/app\",\"webhook-router.notify\":\"  \"}"), -EINVAL);
    char *log = log_text(f);
    assert_non_null(strstr(log, "webhook-router.notify: unknown notification target \\\"chatt\\\""));
    assert_non_null(strstr(log, "webhook-router.notify is empty"));
    assert_null(strstr(log, "s3cret"));
    free(log);

    const char *urls[16];
    struct route_hit hits[16];
    struct push_event ev = {.repository = "team/app", .tag = "latest"};
    struct route_matches m = {.urls = urls, .max_urls = 16, .notifies = hits, .max_notifies = 16};
    routes_match_all(f->t, &ev, &m);
    assert_int_equal(m.nurls, 1);
    assert_int_equal(m.nnotifies, 2);
    int only = hits[0].route->url ? 1 : 0;   /* which hit is the notify-only route */
    assert_null(hits[only].route->url);
    assert_string_equal(hits[only].route->notify, "chat");
    assert_string_equal(hits[!only].route->url, URL_A);
    assert_int_equal(hits[!only].nsources, 1);
    assert_string_equal(hits[!only].sources[0]->id, "c2");
    /* Counted also without the array. */
    struct route_matches count = {0};
    routes_match_all(f->t, &ev, &count);
    assert_int_equal(count.nnotifies, 2);
}

static void test_replicas_merge(void **state)
{
    struct fixture *f = *state;
    const char *urls[16];
    const char *l = "{\"webhook-router.image\":\"team/myapp\",\"webhook-router.url\":\"" URL_A "\"}";
    put(f, "e1", "r1", l);
    put(f, "e1", "r2", l);
    put(f, "e1", "r3", l);
    /* Two images on one URL: still one POST per event. */
    put(f, "e1", "r4", "{\"webhook-router.image\":\"team/myapp,myapp\",\"webhook-router.url\":\"" URL_A "\"}");
    assert_int_equal(routes_source_count(f->t), 4);
    assert_int_equal(routes_count(f->t), 2);
    assert_int_equal(match(f, NULL, "team/myapp", "latest", urls), 1);
    assert_true(routes_remove(f->t, "e1", "r1"));
    assert_false(routes_remove(f->t, "e1", "r1"));
    assert_int_equal(match(f, NULL, "team/myapp", "latest", urls), 1);
}

static void count_visits(void *ud, const struct route *r, const struct route_source *const *s, size_t n)
{
    (void)s;
    size_t *count = ud;
    assert_null(r->tag_glob);
    count[0]++;
    count[1] += n;
}

/* One replica says tag: *, another has no tag label: both mean every tag,
 * so they are one route (old code: two, and /routes listed it twice). */
static void test_star_tag_is_no_tag(void **state)
{
    struct fixture *f = *state;
    const char *urls[16];
    put(f, "e1", "r1", "{\"webhook-router.image\":\"team/app\",\"webhook-router.url\":\"" URL_A "\","
                       "\"webhook-router.tag\":\"*\"}");
    put(f, "e1", "r2", "{\"webhook-router.image\":\"team/app\",\"webhook-router.url\":\"" URL_A "\"}");
    put(f, "e1", "r3", "{\"webhook-router.image\":\"team/app\",\"webhook-router.url\":\"" URL_A "\","
                       "\"webhook-router.tag\":\"**\"}");
    assert_int_equal(routes_count(f->t), 1);
    size_t seen[2] = {0, 0};
    routes_foreach(f->t, count_visits, seen);
    assert_int_equal(seen[0], 1);   /* one route ... */
    assert_int_equal(seen[1], 3);   /* ... carried by the three replicas */
    assert_int_equal(match(f, NULL, "team/app", "anything", urls), 1);
}

/* A resync puts every source again: the generation (what the registry
 * watcher rebuilds on) moves only when something changed. Old code: it
 * moved on every put, so on every resync. */
static void test_generation_moves_on_change_only(void **state)
{
    struct fixture *f = *state;
    const char *l = "{\"webhook-router.image\":\"a\",\"webhook-router.url\":\"" URL_A "\"}";
    const char *bad = "{\"webhook-router.image\":\"a\",\"webhook-router.url\":\"ftp://x\"}";
    put(f, "e1", "c1", l);
    put(f, "e1", "c2", bad);
    unsigned long g = routes_generation(f->t);
    assert_int_equal(routes_count(f->t), 1);
    for (int i = 0; i < 3; i++) {
        routes_mark(f->t, "e1");
        put(f, "e1", "c1", l);
        put(f, "e1", "c2", bad);
        assert_int_equal(routes_sweep(f->t, "e1"), 0);
        assert_int_equal(routes_generation(f->t), g);
    }
    /* A real change: new labels, a new name, a source gone. */
    put(f, "e1", "c1", "{\"webhook-router.image\":\"a\",\"webhook-router.url\":\"" URL_B "\"}");
    assert_true(routes_generation(f->t) > g);
    g = routes_generation(f->t);
    json_t *j = labels(l);
    struct route_source src = {.engine = "e1", .kind = "container", .id = "c1", .name = "renamed"};
    routes_put(f->t, &src, j, "webhook-router", &f->lg);
    assert_true(routes_generation(f->t) > g);
    g = routes_generation(f->t);
    routes_put(f->t, &src, j, "webhook-router", &f->lg);
    assert_int_equal(routes_generation(f->t), g);
    src.image = "a:2";
    routes_put(f->t, &src, j, "webhook-router", &f->lg);
    assert_true(routes_generation(f->t) > g);
    /* The list says the container's ImageID; an event (no ImageID) keeps it. */
    src.image_id = "sha256:1234";
    routes_put(f->t, &src, j, "webhook-router", &f->lg);
    assert_string_equal(routes_find(f->t, "e1", "c1")->image_id, "sha256:1234");
    g = routes_generation(f->t);
    src.image_id = NULL;
    routes_put(f->t, &src, j, "webhook-router", &f->lg);
    assert_string_equal(routes_find(f->t, "e1", "c1")->image_id, "sha256:1234");
    assert_int_equal(routes_generation(f->t), g);
    json_decref(j);
    /* Malformed for another reason: no generation move, but its own warn. */
    g = routes_generation(f->t);
    put(f, "e1", "c2", "{\"webhook-router.image\":\"a\",\"webhook-router.update\":\"maybe\"}");
    assert_int_equal(routes_generation(f->t), g);
    char *log = log_text(f);
    assert_non_null(strstr(log, "update must be true or false"));
    free(log);
    put(f, "e1", "c2", l);   /* malformed -> good */
    assert_true(routes_generation(f->t) > g);
    g = routes_generation(f->t);
    routes_mark(f->t, "e1");
    put(f, "e1", "c2", l);
    assert_int_equal(routes_sweep(f->t, "e1"), 1);
    assert_true(routes_generation(f->t) > g);
    const char *urls[16];
    assert_int_equal(match(f, NULL, "a", "t", urls), 1);
}

static void test_remove_and_replace(void **state)
{
    struct fixture *f = *state;
    const char *urls[16];
    put(f, "e1", "c1", "{\"webhook-router.image\":\"a\",\"webhook-router.url\":\"" URL_A "\"}");
    assert_int_equal(match(f, NULL, "a", "t", urls), 1);
    /* Same source, new labels: the old route is gone. */
    put(f, "e1", "c1", "{\"webhook-router.image\":\"b\",\"webhook-router.url\":\"" URL_A "\"}");
    assert_int_equal(match(f, NULL, "a", "t", urls), 0);
    assert_int_equal(match(f, NULL, "b", "t", urls), 1);
    /* Labels removed entirely: the source is forgotten. */
    assert_int_equal(put(f, "e1", "c1", "{}"), 0);
    assert_int_equal(routes_source_count(f->t), 0);
    assert_int_equal(match(f, NULL, "b", "t", urls), 0);
}

static void visit_names(void *ud, const struct route *r, const struct route_source *const *s, size_t n)
{
    (void)r;
    size_t *count = ud;
    for (size_t i = 0; i < n; i++) {
        assert_string_equal(s[i]->name, "web-blue");
        (*count)++;
    }
}

/* docker rename: same routes, new name; only a source the table has. */
static void test_rename(void **state)
{
    struct fixture *f = *state;
    const char *urls[16];
    put(f, "e1", "c1", "{\"webhook-router.image\":\"a\",\"webhook-router.url\":\"" URL_A "\"}");
    assert_int_equal(match(f, NULL, "a", "t", urls), 1);   /* the index is built */
    assert_string_equal(routes_find(f->t, "e1", "c1")->name, "c1");
    assert_true(routes_rename(f->t, "e1", "c1", "web-blue"));
    assert_string_equal(routes_find(f->t, "e1", "c1")->name, "web-blue");
    assert_false(routes_rename(f->t, "e1", "c1", "web-blue"));   /* no change */
    assert_false(routes_rename(f->t, "e2", "c1", "x"));          /* another engine's c1 */
    assert_false(routes_rename(f->t, "e1", "c9", "x"));
    assert_null(routes_find(f->t, "e1", "c9"));
    assert_int_equal(routes_source_count(f->t), 1);
    assert_int_equal(match(f, NULL, "a", "t", urls), 1);
    size_t n = 0;
    routes_foreach(f->t, visit_names, &n);   /* the index shows the new name */
    assert_int_equal(n, 1);
}

static void test_resync_sweep(void **state)
{
    struct fixture *f = *state;
    const char *urls[16];
    const char *l = "{\"webhook-router.image\":\"a\",\"webhook-router.url\":\"" URL_A "\"}";
    put(f, "e1", "c1", l);
    put(f, "e1", "c2", l);
    put(f, "e2", "x1", "{\"webhook-router.image\":\"z\",\"webhook-router.url\":\"" URL_B "\"}");
    routes_mark(f->t, "e1");
    put(f, "e1", "c2", l);
    put(f, "e1", "c3", l);
    assert_int_equal(routes_sweep(f->t, "e1"), 1);  /* c1 */
    assert_int_equal(routes_source_count(f->t), 3);
    /* The other engine is untouched by e1's resync. */
    assert_int_equal(match(f, NULL, "z", "t", urls), 1);
    routes_mark(f->t, "e1");
    assert_int_equal(routes_sweep(f->t, "e1"), 2);
    assert_int_equal(match(f, NULL, "a", "t", urls), 0);
    assert_int_equal(match(f, NULL, "z", "t", urls), 1);
}

static void test_malformed_warns_once(void **state)
{
    struct fixture *f = *state;
    const char *l = "{\"webhook-router.image\":\"a\",\"webhook-router.url\":\"ftp://h/tok3n\"}";
    assert_int_equal(put(f, "e1", "broken", l), -EINVAL);
    assert_int_equal(put(f, "e1", "broken", l), -EINVAL);
    put(f, "e1", "fine", "{\"webhook-router.image\":\"a\",\"webhook-router.url\":\"" URL_A "\"}");
    char *log = log_text(f);
    char *first = strstr(log, "labels ignored");
    assert_non_null(first);
    assert_null(strstr(first + 1, "labels ignored"));
    assert_non_null(strstr(log, "\"container\":\"broken\""));
    assert_null(strstr(log, "tok3n"));
    free(log);
    const char *urls[16];
    assert_int_equal(match(f, NULL, "a", "t", urls), 1);
}

/* A label repository with upper case can never match a push: the container
 * is warned about by name and contributes no route, not a dead one. */
static void test_upper_case_repository_skipped(void **state)
{
    struct fixture *f = *state;
    const char *urls[16];
    assert_int_equal(put(f, "e1", "shouty", "{\"webhook-router.image\":\"team/MyApp\","
                                            "\"webhook-router.url\":\"" URL_A "\"}"), -EINVAL);
    char *log = log_text(f);
    assert_non_null(strstr(log, "\"msg\":\"labels ignored\""));
    assert_non_null(strstr(log, "\"container\":\"shouty\""));
    assert_non_null(strstr(log, "upper-case"));
    free(log);
    assert_int_equal(match(f, NULL, "team/MyApp", "t", urls), 0);
    assert_int_equal(match(f, NULL, "team/myapp", "t", urls), 0);
    /* The host part may be upper case. */
    assert_int_equal(put(f, "e1", "fine", "{\"webhook-router.image\":\"REG.io:5000/team/myapp\","
                                          "\"webhook-router.url\":\"" URL_A "\"}"), 1);
    assert_int_equal(match(f, "reg.io:5000", "team/myapp", "t", urls), 1);
}

static void test_fixture_containers(void **state)
{
    struct fixture *f = *state;
    size_t len;
    char *text = tu_shared_fixture("docker/containers-json.json", &len);
    json_error_t e;
    json_t *arr = json_loadb(text, len, 0, &e);
    assert_true(json_is_array(arr));
    size_t i;
    json_t *c;
    json_array_foreach(arr, i, c) {
        struct route_source src = {.engine = "e", .kind = "container",
                                   .id = json_string_value(json_object_get(c, "Id"))};
        routes_put(f->t, &src, json_object_get(c, "Labels"), "webhook-router", &f->lg);
    }
    const char *urls[16];
    assert_true(routes_source_count(f->t) >= 2);
    assert_int_equal(match(f, "127.0.0.1:5000", "team/myapp", "latest", urls), 1);
    assert_string_equal(urls[0], "http://127.0.0.1:5099/hook");
    json_decref(arr);
    free(text);
}

static void visit(void *ud, const struct route *r, const struct route_source *const *s, size_t n)
{
    (void)r;
    (void)s;
    *(size_t *)ud += n;
}

static void test_many_sources(void **state)
{
    struct fixture *f = *state;
    char id[32], l[256];
    for (int i = 0; i < 3000; i++) {
        snprintf(id, sizeof id, "c%d", i);
        snprintf(l, sizeof l, "{\"webhook-router.image\":\"app%d\",\"webhook-router.url\":\"http://h/%d\"}",
                 i % 500, i % 7);
        put(f, "e", id, l);
    }
    assert_int_equal(routes_source_count(f->t), 3000);
    size_t total = 0;
    routes_foreach(f->t, visit, &total);
    assert_int_equal(total, 3000);
    const char *urls[16];
    assert_true(match(f, NULL, "app42", "x", urls) >= 1);
    for (int i = 0; i < 3000; i += 2) {
        snprintf(id, sizeof id, "c%d", i);
        assert_true(routes_remove(f->t, "e", id));
    }
    assert_int_equal(routes_source_count(f->t), 1500);
}

/* Issue 21 item 10: a misspelt key is named, with the key it was meant to be. */
static void test_unknown_label_keys(void **state)
{
    (void)state;
    const char *cases[][2] = {
        {"{\"webhook-router.images\":\"a\",\"webhook-router.url\":\"" URL_A "\"}",
         "unknown label webhook-router.images (did you mean webhook-router.image?); webhook-router.image is missing"},
        {"{\"webhook-router.image\":\"a\",\"webhook-router.URL\":\"" URL_A "\"}",
         "unknown label webhook-router.URL (did you mean webhook-router.url?); webhook-router.url is missing"},
        {"{\"webhook-router.image\":\"a\",\"webhook-router.enable\":\"true\"}",
         "unknown label webhook-router.enable (known: image, url, tag, poll, update, notify); "},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct route *r;
        char err[256] = "";
        json_t *l = labels(cases[i][0]);
        assert_int_equal(route_parse_labels("webhook-router", l, &r, err, sizeof err), -EINVAL);
        if (strncmp(err, cases[i][1], strlen(cases[i][1])) != 0) fail_msg("got \"%s\"", err);
        assert_null(strstr(err, "secret"));
        json_decref(l);
    }
    /* Known keys (notify included) are not reported. */
    char out[200];
    json_t *l = labels("{\"webhook-router.image\":\"a\",\"webhook-router.url\":\"u\",\"webhook-router.tag\":\"v\","
                       "\"webhook-router.poll\":\"5m\",\"webhook-router.update\":\"true\",\"webhook-router.notify\":\"ops\","
                       "\"other.images\":\"x\"}");
    assert_false(route_unknown_label("webhook-router", l, out, sizeof out));
    json_decref(l);
}

static void collect_ignored(void *ud, const struct route_source *src, const char *reason)
{
    struct buf *b = ud;
    buf_printf(b, "%s %s: %s\n", src->kind, src->name, reason);
}

/* Issue 21 item 10: the sources whose labels were ignored can be listed;
 * an unknown key beside a good route is warned about once. */
static void test_ignored_listed(void **state)
{
    struct fixture *f = *state;
    put(f, "e1", "typo", "{\"webhook-router.images\":\"a\",\"webhook-router.url\":\"" URL_A "\"}");
    put(f, "e1", "fine", "{\"webhook-router.image\":\"a\",\"webhook-router.url\":\"" URL_A "\"}");
    struct buf b;
    buf_init(&b);
    routes_foreach_ignored(f->t, collect_ignored, &b);
    assert_string_equal(buf_cstr(&b), "container typo: unknown label webhook-router.images (did you mean "
                                      "webhook-router.image?); webhook-router.image is missing\n");
    /* Fixed: no longer listed. */
    put(f, "e1", "typo", "{\"webhook-router.image\":\"a\",\"webhook-router.url\":\"" URL_A "\","
                         "\"webhook-router.tags\":\"v*\"}");
    buf_reset(&b);
    routes_foreach_ignored(f->t, collect_ignored, &b);
    assert_string_equal(buf_cstr(&b), "");
    buf_free(&b);
    put(f, "e1", "typo", "{\"webhook-router.image\":\"a\",\"webhook-router.url\":\"" URL_A "\","
                         "\"webhook-router.tags\":\"v*\"}");
    char *log = log_text(f);
    char *first = strstr(log, "label key ignored");
    assert_non_null(first);
    assert_null(strstr(first + 1, "label key ignored"));
    assert_non_null(strstr(first, "did you mean webhook-router.tag?"));
    free(log);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_labels),
        cmocka_unit_test(test_parse_malformed),
        cmocka_unit_test(test_poll_label),
        cmocka_unit_test_setup_teardown(test_match_and_fanout, setup, teardown),
        cmocka_unit_test_setup_teardown(test_replicas_merge, setup, teardown),
        cmocka_unit_test_setup_teardown(test_star_tag_is_no_tag, setup, teardown),
        cmocka_unit_test_setup_teardown(test_generation_moves_on_change_only, setup, teardown),
        cmocka_unit_test_setup_teardown(test_notify_routes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_update_routes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_remove_and_replace, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rename, setup, teardown),
        cmocka_unit_test_setup_teardown(test_resync_sweep, setup, teardown),
        cmocka_unit_test_setup_teardown(test_malformed_warns_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_upper_case_repository_skipped, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fixture_containers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_many_sources, setup, teardown),
        cmocka_unit_test(test_unknown_label_keys),
        cmocka_unit_test_setup_teardown(test_ignored_listed, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
