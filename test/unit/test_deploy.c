/* deploy.c, the glue between the parts and the history, without sockets:
 * forward outcomes, confirmation from reported container starts, the
 * deadline turning into unconfirmed, engine update outcomes, notifications. */
#include <jansson.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "deploy.h"

#define URL "http://127.0.0.1:9/api/stacks/webhooks/TOKEN"

struct fx {
    uv_loop_t loop;
    struct logger lg;
    struct route_table *routes;
    struct deploy *d;
};

static void fx_start(struct fx *x, int confirm_secs)
{
    memset(x, 0, sizeof *x);
    uv_loop_init(&x->loop);
    logger_init(&x->lg, LOG_ERROR, LOG_FORMAT_JSON, 2);
    x->routes = routes_new();
    json_t *l = json_pack("{s:s,s:s}", "webhook-router.image", "reg:5000/team/app", "webhook-router.url", URL);
    struct route_source src = {.engine = "e", .kind = "container", .id = "c1", .name = "web-1", .image = "reg:5000/team/app:v0"};
    assert_int_equal(routes_put(x->routes, &src, l, "webhook-router", &x->lg), 1);
    json_decref(l);
    struct deploy_opts o = {.history_size = 8, .confirm_secs = confirm_secs, .routes = x->routes,
                            .label_prefix = "webhook-router", .log = &x->lg};
    x->d = deploy_new(&x->loop, &o);
}

static void fx_finish(struct fx *x)
{
    deploy_close(x->d, NULL, NULL);
    uv_run(&x->loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&x->loop), 0);
    deploy_free(x->d);
    routes_free(x->routes);
}

static const struct push_event EV = {.format = "distribution", .id = "e1", .registry = "reg:5000",
                                     .repository = "team/app", .tag = "v1", .digest = "sha256:abc"};

static const struct history_entry *entry(struct fx *x, uint64_t id)
{
    return history_get(deploy_history(x->d), id);
}

static void test_delivered_then_confirmed(void **state)
{
    (void)state;
    struct fx x;
    fx_start(&x, 300);
    uint64_t id = deploy_record_redeploy(x.d, &EV, URL);
    const struct history_entry *e = entry(&x, id);
    assert_int_equal(e->outcome, HISTORY_QUEUED);
    assert_null(strstr(e->target, "TOKEN"));
    assert_string_equal(e->objects, "web-1");
    struct forward_result fo = {.delivered = true, .status = 204, .attempts = 1, .duration_ms = 5, .attempt_ms = 5,
                                .tag = id};
    deploy_forward_done(x.d, &fo);
    assert_int_equal(e->outcome, HISTORY_DELIVERED);

    /* A start of the route's container, on the pushed digest. */
    json_t *labels = json_pack("{s:s,s:s,s:s}", "webhook-router.image", "reg:5000/team/app", "webhook-router.url",
                               URL, "name", "web-1");
    const char *digests[] = {"reg:5000/team/app@sha256:abc"};
    struct docker_started s = {.engine = "e", .kind = "container", .id = "c2", .name = "web-1", .labels = labels,
                               .digests = digests, .ndigests = 1, .created_ms = deploy_now_ms(),
                               .started_ms = deploy_now_ms()};
    deploy_observed(x.d, &s);
    assert_int_equal(e->outcome, HISTORY_DEPLOYED);
    assert_true(e->deployed_ms >= 0);
    assert_int_equal(history_deploy_stats(deploy_history(x.d))->count, 1);
    json_decref(labels);
    fx_finish(&x);
}

static void test_unconfirmed_after_the_deadline(void **state)
{
    (void)state;
    struct fx x;
    fx_start(&x, 1);
    uint64_t id = deploy_record_redeploy(x.d, &EV, URL);
    struct forward_result fo = {.delivered = true, .status = 204, .attempts = 1, .tag = id};
    deploy_forward_done(x.d, &fo);
    const struct history_entry *e = entry(&x, id);
    /* The route's container came back on the old image (Portainer's pull failed, say). */
    json_t *labels = json_pack("{s:s,s:s}", "webhook-router.image", "reg:5000/team/app", "webhook-router.url", URL);
    const char *digests[] = {"reg:5000/team/app@sha256:0ld0ld0ld0ld0ld0ld"};
    struct docker_started s = {.engine = "e", .kind = "container", .id = "c2", .name = "web-1", .labels = labels,
                               .digests = digests, .ndigests = 1, .created_ms = deploy_now_ms(),
                               .started_ms = deploy_now_ms()};
    deploy_observed(x.d, &s);
    json_decref(labels);
    assert_int_equal(e->outcome, HISTORY_DELIVERED);
    for (int i = 0; i < 300 && e->outcome == HISTORY_DELIVERED; i++) uv_run(&x.loop, UV_RUN_ONCE);
    assert_int_equal(e->outcome, HISTORY_UNCONFIRMED);
    assert_string_equal(e->error, "not running it after 1 s; container web-1 runs sha256:0ld0ld0ld0ld...");
    fx_finish(&x);
}

static void test_failed_and_rejected(void **state)
{
    (void)state;
    struct fx x;
    fx_start(&x, 300);
    uint64_t a = deploy_record_redeploy(x.d, &EV, URL);
    struct forward_result fo = {.status = 502, .attempts = 4, .duration_ms = 9000, .error = "HTTP 502", .tag = a};
    deploy_forward_done(x.d, &fo);
    assert_int_equal(entry(&x, a)->outcome, HISTORY_FAILED);
    assert_string_equal(entry(&x, a)->error, "HTTP 502");
    assert_int_equal(entry(&x, a)->attempts, 4);
    /* A POST that could not even be queued is told as failed too. */
    uint64_t b = deploy_record_redeploy(x.d, &EV, "not a url");
    deploy_forward_done(x.d, &(struct forward_result){.err = -EINVAL, .error = "the target URL cannot be used",
                                                      .tag = b});
    assert_int_equal(entry(&x, b)->outcome, HISTORY_FAILED);
    assert_string_equal(entry(&x, b)->error, "the target URL cannot be used");
    /* An id the ring overwrote: nothing happens. */
    for (int i = 0; i < 10; i++) deploy_record_redeploy(x.d, &EV, URL);
    deploy_forward_done(x.d, &fo);
    fx_finish(&x);
}

static void test_update_and_notify(void **state)
{
    (void)state;
    struct fx x;
    fx_start(&x, 300);
    struct route_source src = {.engine = "e", .kind = "container", .id = "c1", .name = "web-1"};
    deploy_record_update(x.d, &EV, &src);
    struct push_event other = EV;
    other.digest = "sha256:def";
    deploy_record_update(x.d, &other, &src);
    /* The update of sha256:abc completed (the object has a new id by then; the name stays). */
    struct update_outcome uo = {.engine = "e", .kind = "container", .id = "c1", .name = "web-1",
                                .digest = "sha256:abc", .outcome = "completed"};
    deploy_update_outcome(x.d, &uo);
    const struct history_entry *out[8];
    struct history_filter f = {.outcome = HISTORY_NOUTCOMES};
    assert_int_equal(history_query(deploy_history(x.d), &f, out, 8), 2);
    assert_int_equal(out[1]->outcome, HISTORY_DEPLOYED);
    assert_string_equal(out[1]->target, "container web-1");
    assert_int_equal(out[0]->outcome, HISTORY_QUEUED);   /* another digest: its own outcome */
    struct update_outcome rb = {.engine = "e", .kind = "container", .id = "c9", .name = "web-1",
                                .digest = "sha256:def", .outcome = "rolled_back"};
    deploy_update_outcome(x.d, &rb);
    assert_int_equal(out[0]->outcome, HISTORY_FAILED);
    assert_string_equal(out[0]->error, "update failed, rolled back");

    uint64_t n = deploy_record_notify(x.d, &EV, "discord discord.com #3f9a1c0e", "web-1");
    assert_int_equal(entry(&x, n)->action, HISTORY_NOTIFY);
    deploy_notify_outcome(x.d, n, false, 429, 3, 1200, "HTTP 429");
    assert_int_equal(entry(&x, n)->outcome, HISTORY_FAILED);
    assert_int_equal(entry(&x, n)->status, 429);
    fx_finish(&x);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_delivered_then_confirmed),
        cmocka_unit_test(test_unconfirmed_after_the_deadline),
        cmocka_unit_test(test_failed_and_rejected),
        cmocka_unit_test(test_update_and_notify),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
