/* The routing layer and the webhook handler without sockets: the pure plan
 * (events -> decisions and targets), the answer and what it queues, auth at
 * the head stage, and the path table's 404 / 405. */
#include <errno.h>
#include <jansson.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "handlers.h"
#include "dedupe.h"
#include "handlers.h"
#include "webhook.h"

struct fx {
    uv_loop_t loop;
    struct logger lg;
    struct dns *dns;
    struct http_client *http;
    struct forwarder *fwd;
    struct route_table *routes;
    struct dedupe *seen;
    struct webhook_ctx w;
    struct http_response res;
};

static void put_labels(struct fx *x, const char *id, const char *json)
{
    json_error_t e;
    json_t *l = json_loads(json, 0, &e);
    assert_non_null(l);
    struct route_source src = {.engine = "unix:///d.sock", .kind = "container", .id = id, .name = id};
    assert_true(routes_put(x->routes, &src, l, "webhook-router", &x->lg) > 0);
    json_decref(l);
}

static void fx_start(struct fx *x, int queue_max)
{
    memset(x, 0, sizeof *x);
    uv_loop_init(&x->loop);
    logger_init(&x->lg, LOG_ERROR, LOG_FORMAT_JSON, 2);
    x->dns = dns_new(&x->loop, &x->lg);
    x->http = http_client_new(&x->loop, x->dns, &x->lg);
    /* A long coalescing window: forwards stay queued, nothing is sent. */
    struct forward_opts fo = {.timeout_secs = 1, .concurrency = 4, .queue_max = queue_max, .debounce_ms = 60000};
    x->fwd = forward_new(&x->loop, x->http, &x->lg, &fo);
    x->routes = routes_new();
    x->seen = dedupe_new(64, NULL);
    x->w = (struct webhook_ctx){.routes = x->routes, .seen = x->seen, .fwd = x->fwd, .log = &x->lg};
    buf_init(&x->res.headers);
    buf_init(&x->res.body);
    put_labels(x, "c1", "{\"webhook-router.image\":\"team/app\",\"webhook-router.url\":\"http://127.0.0.1:9/a\"}");
    put_labels(x, "c2", "{\"webhook-router.image\":\"team/app\",\"webhook-router.url\":\"http://127.0.0.1:9/b\"}");
}

static void on_drained(void *ud)
{
    struct fx *x = ud;
    forward_free(x->fwd);
    x->fwd = NULL;
}

/* As the app does: the forwarder drains (its queued forwards get their last
 * attempt, refused at port 9) before the client goes. */
static void fx_finish(struct fx *x)
{
    forward_drain(x->fwd, on_drained, x);
    for (int i = 0; i < 500 && x->fwd; i++) uv_run(&x->loop, UV_RUN_ONCE);
    assert_null(x->fwd);
    http_client_close(x->http, NULL, NULL);
    dns_close(x->dns, NULL, NULL);
    uv_run(&x->loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&x->loop), 0);
    routes_free(x->routes);
    dedupe_free(x->seen);
    buf_free(&x->res.headers);
    buf_free(&x->res.body);
}

static void reset_res(struct fx *x)
{
    x->res.status = 0;
    buf_reset(&x->res.headers);
    buf_reset(&x->res.body);
}

static void test_plan(void **s)
{
    (void)s;
    struct fx x;
    fx_start(&x, 16);
    dedupe_add(x.seen, "old");
    struct push_event evs[] = {
        {.format = "t", .id = "blob", .repository = "team/app", .ignored = "blob push"},
        {.format = "t", .id = "old", .repository = "team/app", .tag = "v1"},
        {.format = "t", .id = "other", .repository = "team/other", .tag = "v1"},
        {.format = "t", .id = "new", .repository = "team/app", .tag = "v2"},
        {.format = "t", .id = "new", .repository = "team/app", .tag = "v2"},
        {.format = "t", .id = NULL, .repository = "team/app", .tag = "v3"},
    };
    struct payload p = {.format = "t", .events = evs, .n = 6};
    struct webhook_plan plan;
    webhook_plan_make(x.routes, x.seen, NULL, &p, &plan);
    enum webhook_decision want[] = {WEBHOOK_IGNORED, WEBHOOK_DUPLICATE, WEBHOOK_NO_ROUTE,
                                    WEBHOOK_FORWARD, WEBHOOK_DUPLICATE, WEBHOOK_FORWARD};
    for (size_t i = 0; i < 6; i++) assert_int_equal(plan.decision[i], want[i]);
    assert_int_equal(plan.ntargets, 4);
    assert_int_equal(plan.first[3], 0);
    assert_int_equal(plan.first[4], 2);
    assert_int_equal(plan.first[6], 4);
    /* Pure: nothing was marked seen or queued. */
    assert_false(dedupe_seen(x.seen, "new"));
    assert_int_equal(forward_queued(x.fwd), 0);
    webhook_plan_free(&plan);
    fx_finish(&x);
}

/* A plan keeps its first 8 targets in itself, then moves them to the heap:
 * 5 events with 2 URLs each cross that line. */
static void test_plan_many_targets(void **s)
{
    (void)s;
    struct fx x;
    fx_start(&x, 16);
    struct dedupe *delivered = dedupe_new(64, NULL);
    struct push_event evs[5];
    char ids[5][8], tags[5][8], digests[5][16];
    for (int i = 0; i < 5; i++) {
        snprintf(ids[i], sizeof ids[i], "e%d", i);
        snprintf(tags[i], sizeof tags[i], "v%d", i);
        snprintf(digests[i], sizeof digests[i], "sha256:%d", i);
        evs[i] = (struct push_event){.format = "t", .id = ids[i], .registry = "reg:5000", .repository = "team/app",
                                     .tag = tags[i], .digest = digests[i]};
    }
    struct payload p = {.format = "t", .events = evs, .n = 5};
    struct webhook_plan plan;
    webhook_plan_make(x.routes, x.seen, delivered, &p, &plan);
    assert_int_equal(plan.ntargets, 10);
    for (size_t i = 0; i < 5; i++) {
        assert_int_equal(plan.decision[i], WEBHOOK_FORWARD);
        assert_int_equal(plan.first[i], 2 * i);
        assert_string_equal(plan.targets[2 * i], plan.targets[0]);
        assert_string_equal(plan.targets[2 * i + 1], plan.targets[1]);
        for (size_t k = 0; k < 2 * i; k++) assert_true(plan.target_tags[k] != plan.target_tags[2 * i]);
        assert_true(plan.target_tags[2 * i] != 0);
    }
    assert_int_equal(plan.first[5], 10);
    assert_string_not_equal(plan.targets[0], plan.targets[1]);
    webhook_plan_free(&plan);
    dedupe_free(delivered);
    fx_finish(&x);
}

/* <prefix>.update=true: the event is routed with no URL, and its sources
 * to update are in the plan. */
static void test_plan_updates(void **s)
{
    (void)s;
    struct fx x;
    fx_start(&x, 16);
    put_labels(&x, "u1", "{\"webhook-router.image\":\"team/upd\",\"webhook-router.update\":\"true\"}");
    put_labels(&x, "u2", "{\"webhook-router.image\":\"team/app\",\"webhook-router.update\":\"true\","
                         "\"webhook-router.url\":\"http://127.0.0.1:9/a\"}");
    struct push_event evs[] = {
        {.format = "t", .id = "a", .repository = "team/upd", .tag = "v1"},
        {.format = "t", .id = "b", .repository = "team/app", .tag = "v1"},
    };
    struct payload p = {.format = "t", .events = evs, .n = 2};
    struct webhook_plan plan;
    webhook_plan_make(x.routes, x.seen, NULL, &p, &plan);
    assert_int_equal(plan.decision[0], WEBHOOK_FORWARD);
    assert_int_equal(plan.first[1] - plan.first[0], 0);
    assert_int_equal(plan.ufirst[1] - plan.ufirst[0], 1);
    assert_string_equal(plan.updates[0]->id, "u1");
    assert_int_equal(plan.first[2] - plan.first[1], 2);   /* c1's and c2's URLs (u2 shares c1's) */
    assert_int_equal(plan.ufirst[2] - plan.ufirst[1], 1);
    assert_string_equal(plan.updates[1]->id, "u2");
    webhook_plan_free(&plan);
    fx_finish(&x);
}

/* Notify routes: a notify-only route makes the event routed (nothing to
 * send, a route to tell); a digest already told is not told again, whether
 * a webhook or a poll saw it first. */
static void test_plan_notify(void **s)
{
    (void)s;
    struct fx x;
    fx_start(&x, 16);
    put_labels(&x, "n1", "{\"webhook-router.image\":\"team/new\",\"webhook-router.notify\":\"chat\"}");
    struct dedupe *delivered = dedupe_new(64, NULL);
    x.w.delivered = delivered;
    struct push_event ev = {.format = "t", .id = "hook-1", .registry = "reg:5000", .repository = "team/new",
                            .tag = "v1", .digest = "sha256:11"};
    struct payload p = {.format = "t", .events = &ev, .n = 1};
    struct webhook_plan plan;
    webhook_plan_make(x.routes, x.seen, delivered, &p, &plan);
    assert_int_equal(plan.decision[0], WEBHOOK_FORWARD);
    assert_int_equal(plan.ntargets, 0);
    assert_int_equal(plan.nhits, 1);
    assert_string_equal(plan.hits[0].route->notify, "chat");
    assert_string_equal(plan.hits[0].sources[0]->id, "n1");
    webhook_plan_free(&plan);
    /* Carried out (no notifier here: nothing is told), the digest is remembered. */
    assert_int_equal(webhook_inject(&x.w, &ev), 0);
    struct push_event poll = ev;
    poll.format = "poll";
    poll.id = "reg:5000/team/new:v1@sha256:11";
    webhook_plan_make(x.routes, x.seen, delivered, &p, &plan);   /* the same id: a redelivery */
    assert_int_equal(plan.decision[0], WEBHOOK_DUPLICATE);
    webhook_plan_free(&plan);
    p.events = &poll;
    webhook_plan_make(x.routes, x.seen, delivered, &p, &plan);
    assert_int_equal(plan.decision[0], WEBHOOK_DUPLICATE);
    webhook_plan_free(&plan);
    poll.digest = "sha256:22";   /* a new digest is told */
    webhook_plan_make(x.routes, x.seen, delivered, &p, &plan);
    assert_int_equal(plan.decision[0], WEBHOOK_FORWARD);
    assert_int_equal(plan.nhits, 1);
    webhook_plan_free(&plan);
    dedupe_free(delivered);
    fx_finish(&x);
}

static const char body[] =
    "{\"events\":[{\"id\":\"e1\",\"action\":\"push\",\"target\":{\"mediaType\":"
    "\"application/vnd.oci.image.manifest.v1+json\",\"repository\":\"team/app\",\"tag\":\"v1\","
    "\"digest\":\"sha256:aa\"},\"request\":{\"host\":\"reg:5000\"}},"
    "{\"id\":\"e2\",\"action\":\"pull\",\"target\":{\"repository\":\"team/app\",\"tag\":\"v1\"}}]}";

static struct http_request request(const char *path, const struct http_header *h, size_t nh)
{
    return (struct http_request){.method = "POST", .path = path, .query = "", .headers = h, .nheaders = nh,
                                 .body = body, .body_len = sizeof body - 1, .peer = "127.0.0.1:1"};
}

static void test_handle_accepts_and_queues(void **s)
{
    (void)s;
    struct fx x;
    fx_start(&x, 16);
    struct http_request req = request("/webhook", NULL, 0);
    webhook_handle(&x.w, &req, NULL, &x.res);
    assert_int_equal(x.res.status, 202);
    const char *b = buf_cstr(&x.res.body);
    assert_non_null(strstr(b, "\"format\":\"distribution\",\"accepted\":2"));
    assert_non_null(strstr(b, "\"decision\":\"forwarded\",\"targets\":2"));
    assert_non_null(strstr(b, "\"decision\":\"ignored\",\"reason\":\"action is pull, not push\""));
    assert_int_equal(forward_queued(x.fwd), 2);
    /* Counted under the status it was answered with (not the one before). */
    assert_int_equal(x.w.counts.n, 1);
    assert_string_equal(x.w.counts.by_status[0].format, "distribution");
    assert_int_equal(x.w.counts.by_status[0].status, 202);
    assert_true(dedupe_seen(x.seen, "e1"));
    assert_int_equal(x.w.counts.forwarded, 1);
    assert_int_equal(x.w.counts.ignored, 1);
    /* The registry redelivers: a duplicate, nothing more queued. */
    reset_res(&x);
    webhook_handle(&x.w, &req, NULL, &x.res);
    assert_int_equal(x.res.status, 202);
    assert_non_null(strstr(buf_cstr(&x.res.body), "\"decision\":\"duplicate\""));
    assert_int_equal(forward_queued(x.fwd), 2);
    assert_int_equal(x.w.counts.n, 1);
    assert_string_equal(x.w.counts.by_status[0].format, "distribution");
    assert_int_equal(x.w.counts.by_status[0].status, 202);   /* the status the request ended with */
    assert_int_equal(x.w.counts.by_status[0].n, 2);
    fx_finish(&x);
}

static void test_handle_all_or_nothing(void **s)
{
    (void)s;
    struct fx x;
    fx_start(&x, 1);   /* room for one forward; the push needs two */
    struct http_request req = request("/webhook", NULL, 0);
    webhook_handle(&x.w, &req, NULL, &x.res);
    assert_int_equal(x.res.status, 503);
    assert_int_equal(forward_queued(x.fwd), 0);
    assert_false(dedupe_seen(x.seen, "e1"));   /* its redelivery will go through */
    fx_finish(&x);
}

static void test_token_at_head(void **s)
{
    (void)s;
    struct fx x;
    fx_start(&x, 16);
    x.w.token = "s3cr3t";
    struct http_header wrong = {"Authorization", "Bearer nope"};
    struct http_request req = request("/webhook", &wrong, 1);
    req.body = NULL;
    req.body_len = 0;
    webhook_head(&x.w, &req, NULL, &x.res);
    assert_int_equal(x.res.status, 401);
    assert_null(strstr(buf_cstr(&x.res.body), "s3cr3t"));
    reset_res(&x);
    struct http_header right = {"Authorization", "Bearer s3cr3t"};
    req = request("/webhook", &right, 1);
    webhook_head(&x.w, &req, NULL, &x.res);
    assert_int_equal(x.res.status, 0);   /* left alone: the body may be read */
    req = request("/webhook/s3cr3t", NULL, 0);
    webhook_head(&x.w, &req, "s3cr3t", &x.res);
    assert_int_equal(x.res.status, 0);
    assert_false(webhook_token_path_ok(&x.w, "a/b"));
    x.w.token = NULL;
    assert_false(webhook_token_path_ok(&x.w, "s3cr3t"));
    assert_true(webhook_token_path_ok(&x.w, NULL));
    fx_finish(&x);
}

/* One digest redeploys a route once: the webhook delivered it, the
 * registry watch's poll of the same digest is a duplicate, and the other
 * way round. */
static void test_digest_once_per_route(void **s)
{
    (void)s;
    struct fx x;
    fx_start(&x, 16);
    x.w.delivered = dedupe_new(64, NULL);
    struct http_request req = request("/webhook", NULL, 0);
    webhook_handle(&x.w, &req, NULL, &x.res);   /* team/app:v1@sha256:aa from reg:5000, two targets */
    assert_int_equal(forward_queued(x.fwd), 2);
    struct push_event poll = {.format = "poll", .id = "reg:5000/team/app:v1@sha256:aa", .registry = "reg:5000",
                              .repository = "team/app", .tag = "v1", .digest = "sha256:aa"};
    assert_int_equal(webhook_inject(&x.w, &poll), 0);
    assert_int_equal(forward_queued(x.fwd), 2);
    assert_int_equal(x.w.counts.duplicate, 1);
    /* A new digest: both routes get it, once, by whichever comes first. */
    struct push_event poll2 = poll;
    poll2.id = "reg:5000/team/app:v1@sha256:bb";
    poll2.digest = "sha256:bb";
    assert_int_equal(webhook_inject(&x.w, &poll2), 0);
    assert_int_equal(x.w.counts.forwarded, 2);
    struct push_event hook2 = poll2;
    hook2.format = "distribution";
    hook2.id = "e-bb";
    assert_int_equal(webhook_inject(&x.w, &hook2), 0);
    assert_int_equal(x.w.counts.duplicate, 2);
    dedupe_free(x.w.delivered);
    fx_finish(&x);
}

static void test_dispatch_table(void **s)
{
    (void)s;
    struct fx x;
    fx_start(&x, 16);
    struct handlers_ctx a = {.webhook = &x.w};
    struct { const char *method, *path; int status; const char *allow; } cases[] = {
        {"GET", "/nope", 404, NULL},
        {"POST", "/health", 405, "Allow: GET, HEAD\r\n"},
        {"DELETE", "/routes", 405, "Allow: GET, HEAD\r\n"},
        {"GET", "/webhook", 405, "Allow: POST\r\n"},
        {"POST", "/webhook/token", 404, NULL},   /* no token configured: no such path */
        {"GET", "/health", 200, NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        reset_res(&x);
        struct http_request req = {.method = cases[i].method, .path = cases[i].path, .query = "", .body = "",
                                   .peer = "p"};
        handlers_dispatch(&a, &req, &x.res);
        assert_int_equal(x.res.status, cases[i].status);
        if (cases[i].allow) assert_string_equal(buf_cstr(&x.res.headers), cases[i].allow);
    }
    fx_finish(&x);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plan),
        cmocka_unit_test(test_plan_many_targets),
        cmocka_unit_test(test_plan_notify),
        cmocka_unit_test(test_plan_updates),
        cmocka_unit_test(test_handle_accepts_and_queues),
        cmocka_unit_test(test_handle_all_or_nothing),
        cmocka_unit_test(test_token_at_head),
        cmocka_unit_test(test_digest_once_per_route),
        cmocka_unit_test(test_dispatch_table),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
