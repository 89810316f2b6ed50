/* A tag-list watch with a repository of 40,000 tags (issue 18 item 5): each
 * check of the list must cost about one hash lookup per tag. The old watch
 * compared every tag with every tag it knew (and every new one with every
 * fetch in flight): 40,000 tags stalled the loop, /health included, for
 * seconds at each check.
 *
 * The registry client is replaced at link time by the fake below (this
 * file defines registry_get_digest, registry_get_tags and
 * registry_req_cancel, so registry.o is not taken from the library): the
 * test hands the watch its answers itself. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "registry_watch.h"

#define NTAGS 40000
#define NEW_DIGEST "sha256:1111111111111111111111111111111111111111111111111111111111111111"

/* ---- the fake client --------------------------------------------------- */

struct registry_req {
    registry_cb cb;
    void *ud;
    bool tags;
    char tag[129];
};

struct fake {
    struct registry_req *pending[8];
    size_t npending;
    int tag_lists;           /* registry_get_tags calls */
    int digests;             /* registry_get_digest calls */
    char last_digest_tag[129];
};
static struct fake g_fake;   /* the fake client's state: there is one client per test */

static struct registry_req *fake_req(registry_cb cb, void *ud, bool tags, const char *tag)
{
    struct registry_req *r = calloc(1, sizeof *r);
    r->cb = cb;
    r->ud = ud;
    r->tags = tags;
    snprintf(r->tag, sizeof r->tag, "%s", tag ? tag : "");
    assert_true(g_fake.npending < 8);
    g_fake.pending[g_fake.npending++] = r;
    return r;
}

static void fake_forget(struct registry_req *r)
{
    for (size_t i = 0; i < g_fake.npending; i++)
        if (g_fake.pending[i] == r) {
            g_fake.pending[i] = g_fake.pending[--g_fake.npending];
            break;
        }
    free(r);
}

struct registry_req *registry_get_digest(struct registry_client *c, const char *registry, const char *repository,
                                         const char *tag, registry_cb cb, void *ud)
{
    (void)c, (void)registry, (void)repository;
    g_fake.digests++;
    snprintf(g_fake.last_digest_tag, sizeof g_fake.last_digest_tag, "%s", tag);
    return fake_req(cb, ud, false, tag);
}

struct registry_req *registry_get_tags(struct registry_client *c, const char *registry, const char *repository,
                                       registry_cb cb, void *ud)
{
    (void)c, (void)registry, (void)repository;
    g_fake.tag_lists++;
    return fake_req(cb, ud, true, NULL);
}

void registry_req_cancel(struct registry_req *r)
{
    if (r) fake_forget(r);
}

/* Answers the pending request of that kind; false when there is none. */
static bool answer(bool tags, const struct registry_result *res)
{
    for (size_t i = 0; i < g_fake.npending; i++) {
        struct registry_req *r = g_fake.pending[i];
        if (r->tags != tags) continue;
        g_fake.pending[i] = g_fake.pending[--g_fake.npending];
        r->cb(r->ud, res);
        free(r);
        return true;
    }
    return false;
}

/* ---- the watch ---------------------------------------------------------- */

struct pushes {
    int n;
    char tag[129];
    char digest[80];
};

static int on_push(void *ud, const struct push_event *ev)
{
    struct pushes *p = ud;
    p->n++;
    snprintf(p->tag, sizeof p->tag, "%s", ev->tag);
    snprintf(p->digest, sizeof p->digest, "%s", ev->digest ? ev->digest : "");
    return 0;
}

static void run_until_tag_list(uv_loop_t *loop)
{
    for (int i = 0; i < 3000 && !g_fake.npending; i++) {
        uv_run(loop, UV_RUN_NOWAIT);
        if (!g_fake.npending) uv_sleep(1);
    }
    assert_int_equal(g_fake.npending, 1);
}

/* One answer of the whole list; returns how long the watch took with it. */
static uint64_t answer_list(const char *const *tags, size_t n)
{
    struct registry_result res = {.status = 200, .tags = tags, .ntags = n, .ratelimit_limit = -1,
                                  .ratelimit_remaining = -1};
    uint64_t t0 = uv_hrtime();
    assert_true(answer(true, &res));
    return (uv_hrtime() - t0) / 1000000;
}

static void on_closed(void *ud)
{
    *(int *)ud = 1;
}

static void test_forty_thousand_tags(void **s)
{
    (void)s;
    memset(&g_fake, 0, sizeof g_fake);
    uv_loop_t loop;
    uv_loop_init(&loop);
    struct logger lg;
    logger_init(&lg, LOG_ERROR, LOG_FORMAT_JSON, 2);
    struct route_table *routes = routes_new();
    json_t *labels = json_pack("{s:s, s:s, s:s, s:s}", "webhook-router.image", "reg.local:5000/team/app",
                               "webhook-router.url", "http://127.0.0.1:9/x", "webhook-router.tag", "1.*",
                               "webhook-router.poll", "1s");
    struct route_source src = {.engine = "e1", .kind = "container", .id = "c1", .name = "app",
                               .image = "reg.local:5000/team/app:latest"};   /* the glob refuses it: tag list */
    assert_int_equal(routes_put(routes, &src, labels, "webhook-router", &lg), 1);
    json_decref(labels);
    struct pushes pushed = {0};
    struct registry_watch_opts o = {.routes = routes, .client = NULL, .log = &lg, .on_push = on_push, .ud = &pushed};
    struct registry_watcher *rw = registry_watch_new(&loop, &o);

    /* 40,000 tags, plus one more the second time. */
    char **tags = calloc(NTAGS + 1, sizeof *tags);
    for (size_t i = 0; i < NTAGS; i++) {
        char t[32];
        snprintf(t, sizeof t, "1.%zu.%zu", i / 100, i % 100);
        tags[i] = strdup(t);
    }
    tags[NTAGS] = strdup("1.new");

    run_until_tag_list(&loop);
    uint64_t baseline_ms = answer_list((const char *const *)tags, NTAGS);
    run_until_tag_list(&loop);   /* the next check, an interval later */
    uint64_t second_ms = answer_list((const char *const *)tags, NTAGS + 1);
    print_message("40,000 tags: baseline %llu ms, next check %llu ms\n", (unsigned long long)baseline_ms,
                  (unsigned long long)second_ms);
    /* Old code: about 1.5-3 s each (n^2/2 string compares). */
    if (baseline_ms > 400 || second_ms > 400)
        fail_msg("a check of 40,000 tags took %llu / %llu ms", (unsigned long long)baseline_ms,
                 (unsigned long long)second_ms);

    /* The one new tag: its digest is fetched, and it is a push. */
    assert_int_equal(g_fake.digests, 1);
    assert_string_equal(g_fake.last_digest_tag, "1.new");
    struct registry_result dres = {.status = 200, .digest = NEW_DIGEST, .ratelimit_limit = -1,
                                   .ratelimit_remaining = -1};
    assert_true(answer(false, &dres));
    assert_int_equal(pushed.n, 1);
    assert_string_equal(pushed.tag, "1.new");
    assert_string_equal(pushed.digest, NEW_DIGEST);
    assert_int_equal(registry_watch_count(rw), 1);

    /* The same list again: nothing new, nothing fetched. */
    run_until_tag_list(&loop);
    answer_list((const char *const *)tags, NTAGS + 1);
    assert_int_equal(g_fake.digests, 1);
    assert_int_equal(pushed.n, 1);

    int closed = 0;
    registry_watch_close(rw, on_closed, &closed);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(closed, 1);
    assert_int_equal(g_fake.npending, 0);
    assert_int_equal(uv_loop_close(&loop), 0);
    routes_free(routes);
    for (size_t i = 0; i <= NTAGS; i++) free(tags[i]);
    free(tags);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_forty_thousand_tags),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
