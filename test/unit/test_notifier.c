/* The notifier: which outcomes reach which targets (_ON and its defaults),
 * one message per (target, outcome, image) within the window, the bound on
 * pending messages, target health, the label check. Deliveries go to a
 * closed loopback port, so each ends at once (refused) and is seen through
 * the history hook. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "dns.h"
#include "forward.h"
#include "http_client.h"
#include "notifier.h"
#include "testutil.h"

struct fx {
    uv_loop_t loop;
    struct logger lg;
    struct dns *dns;
    struct http_client *http;
    struct forwarder *fwd;
    struct notifier *n;
    struct notify_config cfg;
    int ndeliveries;
    char objects[8][256];
    enum notify_outcome_kind outcomes[8];
    char targets[8][128];
};

static void on_delivery(void *ud, const struct notify_delivery *d)
{
    struct fx *x = ud;
    if (x->ndeliveries < 8) {
        snprintf(x->objects[x->ndeliveries], sizeof x->objects[0], "%s", d->objects ? d->objects : "");
        snprintf(x->targets[x->ndeliveries], sizeof x->targets[0], "%s", d->target);
        x->outcomes[x->ndeliveries] = d->outcome;
    }
    x->ndeliveries++;
}

static void fx_start(struct fx *x, size_t max_pending)
{
    memset(x, 0, sizeof *x);
    uv_loop_init(&x->loop);
    logger_init(&x->lg, LOG_ERROR + 1, LOG_FORMAT_JSON, 2);   /* quiet */
    char a[128], b[128];
    int port = tu_closed_port();
    snprintf(a, sizeof a, "NOTIFY_CHAT_URL=slack+http://127.0.0.1:%d/chat/s3cret", port);
    snprintf(b, sizeof b, "NOTIFY_ALL_URL=discord+http://127.0.0.1:%d/all", port);
    const char *env[] = {a, b, "NOTIFY_ALL_ON=push,delivered,failed", NULL};
    char err[256];
    assert_int_equal(notify_config_parse((char *const *)env, &x->cfg, err, sizeof err), 0);
    x->dns = dns_new(&x->loop, &x->lg);
    x->http = http_client_new(&x->loop, x->dns, &x->lg);
    struct forward_opts fo = {.timeout_secs = 2, .retries = 0, .concurrency = 4, .queue_max = 16};
    x->fwd = forward_new(&x->loop, x->http, &x->lg, &fo);
    struct notifier_opts no = {.config = &x->cfg, .window_ms = 50, .max_pending = max_pending,
                               .on_delivery = on_delivery, .on_delivery_ud = x};
    x->n = notifier_new(&x->loop, x->fwd, &x->lg, &no);
}

static void on_quiet(uv_timer_t *t)
{
    uv_close((uv_handle_t *)t, NULL);
}

static void run_until(struct fx *x, int deliveries)
{
    uint64_t t0 = uv_now(&x->loop);
    while (x->ndeliveries < deliveries && uv_now(&x->loop) - t0 < 3000) uv_run(&x->loop, UV_RUN_ONCE);
    /* Nothing more comes: past another window. */
    uv_timer_t t;
    uv_timer_init(&x->loop, &t);
    uv_timer_start(&t, on_quiet, 120, 0);
    uv_run(&x->loop, UV_RUN_DEFAULT);
    assert_int_equal(x->ndeliveries, deliveries);
}

static void drained(void *ud)
{
    struct fx *x = ud;
    forward_free(x->fwd);
    x->fwd = NULL;
    notifier_close(x->n, NULL, NULL);
    http_client_close(x->http, NULL, NULL);
    dns_close(x->dns, NULL, NULL);
}

static void fx_finish(struct fx *x)
{
    forward_drain(x->fwd, drained, x);
    uv_run(&x->loop, UV_RUN_DEFAULT);
    notifier_free(x->n);
    notify_config_free(&x->cfg);
    assert_int_equal(uv_loop_close(&x->loop), 0);
}

static const struct push_event ev1 = {.format = "distribution", .id = "e1", .registry = "reg:5000",
                                      .repository = "team/app", .tag = "v1", .digest = "sha256:1"};

static void tell(struct fx *x, enum notify_outcome_kind o, const struct push_event *ev, const char *label,
                 bool redeploys, const char *object)
{
    struct notify_outcome out = {.outcome = o, .ev = ev, .notify = label, .redeploys = redeploys,
                                 .objects = &object, .nobjects = 1};
    notifier_outcome(x->n, &out);
}

static void test_one_message_per_target_outcome_image(void **s)
{
    (void)s;
    struct fx x;
    fx_start(&x, 100);
    /* Three stacks of one image, one push each way: one message. */
    tell(&x, NO_PUSH, &ev1, "all", false, "web-1");
    tell(&x, NO_PUSH, &ev1, "all", false, "web-2");
    struct push_event ev1b = ev1;
    ev1b.tag = "sha-abc";   /* a second tag of the image, coalesced */
    tell(&x, NO_PUSH, &ev1b, "all", false, "web-1");
    tell(&x, NO_PUSH, &ev1, "all", false, "web-3");
    /* Another outcome, another image: their own messages. */
    tell(&x, NO_FAILED, &ev1, "all", true, "web-1");
    struct push_event ev2 = ev1;
    ev2.repository = "team/other";
    tell(&x, NO_PUSH, &ev2, "all", false, "db");
    run_until(&x, 3);
    assert_string_equal(x.objects[0], "web-1, web-2, web-3");
    assert_int_equal(x.outcomes[0], NO_PUSH);
    assert_int_equal(x.outcomes[1], NO_FAILED);
    assert_string_equal(x.objects[2], "db");
    assert_null(strstr(x.targets[0], "s3cret"));
    assert_int_equal(notifier_count(x.n, NK_DISCORD, 1), 3);   /* refused: counted failed */
    fx_finish(&x);
}

static void test_on_defaults(void **s)
{
    (void)s;
    struct fx x;
    fx_start(&x, 100);
    /* chat has no _ON: a redeploying route tells deployed/unconfirmed/failed, a notify-only one push. */
    tell(&x, NO_PUSH, &ev1, "CHAT", true, "web");         /* no */
    tell(&x, NO_DELIVERED, &ev1, "chat", true, "web");    /* no */
    tell(&x, NO_DEPLOYED, &ev1, "chat", true, "web");     /* yes */
    tell(&x, NO_PUSH, &ev1, "chat", false, "watcher");    /* yes */
    tell(&x, NO_DEPLOYED, &ev1, "chat", false, "watcher"); /* no */
    tell(&x, NO_PUSH, &ev1, "unknown-name", false, "w");  /* gone since the check: nothing */
    run_until(&x, 2);
    assert_int_equal(x.outcomes[0], NO_DEPLOYED);
    assert_int_equal(x.outcomes[1], NO_PUSH);
    fx_finish(&x);
}

struct health_list {
    struct notify_target_health *v;
    size_t n;
};

static void on_health(void *ud, const struct notify_target_health *h)
{
    struct health_list *l = ud;
    if (l->n < 4) l->v[l->n] = *h;
    l->n++;
}

static void test_pending_bound_and_health(void **s)
{
    (void)s;
    struct fx x;
    fx_start(&x, 2);
    const char *repos[] = {"a/1", "a/2", "a/3", "a/4"};
    for (int i = 0; i < 4; i++) {
        struct push_event ev = ev1;
        ev.repository = repos[i];
        tell(&x, NO_PUSH, &ev, "all", false, "o");
    }
    run_until(&x, 2);   /* two fit; two are dropped and counted */
    assert_int_equal(notifier_count(x.n, NK_DISCORD, 1), 4);
    struct notify_target_health seen[4];
    struct health_list hl = {seen, 0};
    notifier_foreach_target(x.n, on_health, &hl);
    assert_int_equal(hl.n, 2);   /* chat, all (no label URL in use) */
    const struct notify_target_health *all = strcmp(seen[0].name, "all") == 0 ? &seen[0] : &seen[1];
    assert_int_equal(all->consecutive_failures, 2);
    assert_true(all->last_fail_ms > 0);
    assert_int_equal(all->last_ok_ms, 0);
    assert_string_equal(all->last_error, "connection refused");
    fx_finish(&x);
}

static void test_check_word(void **s)
{
    (void)s;
    struct fx x;
    fx_start(&x, 10);
    char err[256];
    assert_int_equal(notifier_check_word(x.n, "Chat", err, sizeof err), 0);
    assert_int_equal(notifier_check_word(x.n, "discord://tok@1", err, sizeof err), 0);
    assert_int_equal(notifier_check_word(x.n, "chatt", err, sizeof err), -EINVAL);
    assert_string_equal(err, "unknown notification target \"chatt\" (no NOTIFY_CHATT_URL is set)");
    assert_int_equal(notifier_check_word(x.n, "discord://s3cret", err, sizeof err), -EINVAL);
    assert_null(strstr(err, "s3cret"));
    assert_non_null(strstr(err, "invalid target URL (notify *** #"));
    struct buf b;
    buf_init(&b);
    notifier_put_targets(x.n, &b, " chat  slack://hook:a-b-s3cret@webhook ");
    assert_null(strstr(buf_cstr(&b), "s3cret"));
    assert_non_null(strstr(buf_cstr(&b), "[\"slack 127.0.0.1:"));
    assert_non_null(strstr(buf_cstr(&b), "\",\"slack hooks.slack.com #"));
    buf_free(&b);
    fx_finish(&x);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_one_message_per_target_outcome_image),
        cmocka_unit_test(test_on_defaults),
        cmocka_unit_test(test_pending_bound_and_health),
        cmocka_unit_test(test_check_word),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
