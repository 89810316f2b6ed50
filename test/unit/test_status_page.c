/* The status page rendered from real parts (route table, delivery history)
 * without sockets: hostile strings from labels, container names and event
 * ids stay text; the sections say what they should. Also the /history and
 * ADMIN_TOKEN paths of the dispatcher. */
#include <jansson.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "deploy.h"
#include "handlers.h"
#include "history.h"
#include "status_page.h"

#define HOSTILE "<script>alert(1)</script><img src=x onerror=alert(2)>\"'&"

struct fx {
    uv_loop_t loop;
    struct logger lg;
    struct route_table *routes;
    struct deploy *deploy;
    struct handlers_ctx ctx;
};

static void put_labels(struct fx *x, const char *id, const char *name, const char *stack, const char *json)
{
    json_error_t e;
    json_t *l = json_loads(json, 0, &e);
    assert_non_null(l);
    struct route_source src = {.engine = "unix:///d.sock", .kind = "container", .id = id, .name = name,
                               .stack = stack, .image = "reg:5000/team/app:v0"};
    assert_true(routes_put(x->routes, &src, l, "webhook-router", &x->lg) > 0);
    json_decref(l);
}

static void fx_start(struct fx *x)
{
    memset(x, 0, sizeof *x);
    uv_loop_init(&x->loop);
    logger_init(&x->lg, LOG_ERROR, LOG_FORMAT_JSON, 2);
    x->routes = routes_new();
    struct deploy_opts o = {.history_size = 10, .confirm_secs = 300, .routes = x->routes, .log = &x->lg};
    x->deploy = deploy_new(&x->loop, &o);
    x->ctx = (struct handlers_ctx){.routes = x->routes, .deploy = x->deploy, .log = &x->lg};
}

static void fx_finish(struct fx *x)
{
    deploy_close(x->deploy, NULL, NULL);
    uv_run(&x->loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&x->loop), 0);
    deploy_free(x->deploy);
    routes_free(x->routes);
}

static void test_html_escape(void **state)
{
    (void)state;
    struct buf b;
    buf_init(&b);
    html_escape(&b, HOSTILE);
    assert_string_equal(buf_cstr(&b), "&lt;script&gt;alert(1)&lt;/script&gt;&lt;img src=x onerror=alert(2)&gt;"
                                      "&quot;&#39;&amp;");
    html_escape(&b, NULL);
    buf_free(&b);
}

static void test_page_escapes_everything(void **state)
{
    (void)state;
    struct fx x;
    fx_start(&x);
    /* A label value and a container name from outside; the route's URL token is a secret. */
    put_labels(&x, "c1", "<b>web</b><script>alert(3)</script>", "<img src=x onerror=alert(4)>",
               "{\"webhook-router.image\":\"reg:5000/team/app\",\"webhook-router.url\":"
               "\"http://127.0.0.1:9/api/stacks/webhooks/SECRETTOKEN\"}");
    /* A container whose labels were ignored (a misspelt key), named from outside. */
    json_t *bad = json_pack("{ss}", "webhook-router.images", "team/app");
    struct route_source ign = {.engine = "unix:///d.sock", .kind = "container", .id = "c2",
                               .name = "<i>ignored</i><script>alert(5)</script>"};
    assert_true(routes_put(x.routes, &ign, bad, "webhook-router", &x.lg) <= 0);
    json_decref(bad);
    struct push_event ev = {.format = "distribution", .id = HOSTILE, .registry = "reg:5000",
                            .repository = "team/app", .tag = "v1", .digest = "sha256:0123456789abcdef0123"};
    uint64_t id = deploy_record_redeploy(x.deploy, &ev, "http://127.0.0.1:9/api/stacks/webhooks/SECRETTOKEN");
    struct forward_result fo = {.status = 500, .attempts = 4, .duration_ms = 3000, .error = "HTTP <500>", .tag = id};
    deploy_forward_done(x.deploy, &fo);

    struct buf b;
    buf_init(&b);
    status_page_render(&b, &x.ctx, deploy_now_ms() + 125000);
    const char *page = buf_cstr(&b);
    /* Not a single tag from outside made it through as markup. */
    assert_null(strstr(page, "<script"));
    assert_null(strstr(page, "<img"));
    assert_null(strstr(page, "<b>"));
    assert_null(strstr(page, "SECRETTOKEN"));
    assert_non_null(strstr(page, "&lt;script&gt;alert(1)&lt;/script&gt;&lt;img src=x onerror=alert(2)&gt;"));
    assert_non_null(strstr(page, "&lt;b&gt;web&lt;/b&gt;"));
    assert_non_null(strstr(page, "&lt;img src=x onerror=alert(4)&gt;"));
    assert_non_null(strstr(page, "HTTP &lt;500&gt;"));
    /* What an operator looks for. */
    assert_non_null(strstr(page, "<meta http-equiv=refresh content=10>"));
    assert_non_null(strstr(page, "name=viewport"));
    assert_non_null(strstr(page, "<span class=\"o o-failed\">failed</span>"));
    assert_non_null(strstr(page, "2 min ago</time>"));
    assert_non_null(strstr(page, "<time title=\"20"));
    assert_non_null(strstr(page, "1 in a row"));
    assert_non_null(strstr(page, "sha256:0123456789ab&hellip;"));
    assert_null(strstr(page, "<i>"));
    assert_non_null(strstr(page, "&lt;i&gt;ignored&lt;/i&gt;&lt;script&gt;alert(5)&lt;/script&gt;"));
    assert_non_null(strstr(page, "did you mean webhook-router.image?"));
    /* No outside resource, no script of its own. */
    assert_null(strstr(page, "http-equiv=refresh content=10 url"));
    assert_null(strstr(page, "src="  "\""));
    assert_null(strstr(page, "<link"));
    buf_free(&b);
    fx_finish(&x);
}

static void test_history_and_admin_dispatch(void **state)
{
    (void)state;
    struct fx x;
    fx_start(&x);
    x.ctx.admin_token = "adm";
    struct push_event ev = {.format = "distribution", .id = "e1", .repository = "team/app", .tag = "v1"};
    deploy_record_redeploy(x.deploy, &ev, "http://127.0.0.1:9/a");
    ev.repository = "team/other";
    deploy_record_redeploy(x.deploy, &ev, "http://127.0.0.1:9/b");
    struct http_header auth = {.name = "authorization", .value = "Bearer adm"};
    struct http_request req = {.method = "GET", .path = "/history", .query = "repository=team%2Fapp&limit=5"};
    struct http_response res = {0};
    buf_init(&res.headers);
    buf_init(&res.body);
    handlers_dispatch(&x.ctx, &req, &res);
    assert_int_equal(res.status, 401);
    assert_non_null(strstr(buf_cstr(&res.headers), "WWW-Authenticate: Basic realm=\"webhook-router\""));
    buf_reset(&res.body);
    buf_reset(&res.headers);
    req.headers = &auth;
    req.nheaders = 1;
    handlers_dispatch(&x.ctx, &req, &res);
    assert_int_equal(res.status, 200);
    json_t *doc = json_loads(buf_cstr(&res.body), 0, NULL);
    json_t *entries = json_object_get(doc, "entries");
    assert_int_equal(json_array_size(entries), 1);
    assert_string_equal(json_string_value(json_object_get(json_array_get(entries, 0), "repository")), "team/app");
    assert_string_equal(json_string_value(json_object_get(json_array_get(entries, 0), "outcome")), "queued");
    json_decref(doc);
    buf_reset(&res.body);
    req.query = "limit=0";
    handlers_dispatch(&x.ctx, &req, &res);
    assert_int_equal(res.status, 400);
    buf_free(&res.headers);
    buf_free(&res.body);
    fx_finish(&x);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_html_escape),
        cmocka_unit_test(test_page_escapes_everything),
        cmocka_unit_test(test_history_and_admin_dispatch),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
