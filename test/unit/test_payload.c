/* The distribution envelope: real fixtures and broken variants. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "payload.h"
#include "testutil.h"

static int parse_str(const char *body, struct payload *p, struct buf *err)
{
    struct payload_hints h = {0};
    buf_reset(err);
    return payload_parse(body, strlen(body), &h, p, err);
}

static void parse_fixture(const char *name, struct payload *p)
{
    size_t len;
    char *body = tu_shared_fixture(name, &len);
    struct payload_hints h = {0};
    struct buf err;
    buf_init(&err);
    assert_int_equal(payload_parse(body, len, &h, p, &err), 0);
    assert_string_equal(p->format, "distribution");
    assert_int_equal(p->n, 1);
    buf_free(&err);
    free(body);
}

static void test_manifest_push(void **state)
{
    (void)state;
    struct payload p;
    parse_fixture("distribution/04-push-manifest.json", &p);
    struct push_event *ev = &p.events[0];
    assert_null(ev->ignored);
    assert_string_equal(ev->repository, "team/myapp");
    assert_string_equal(ev->tag, "latest");
    assert_string_equal(ev->registry, "127.0.0.1:5000");
    assert_string_equal(ev->id, "3fa8df3b-a583-464b-8936-131347067308");
    assert_string_equal(ev->digest,
                        "sha256:20a5b08e26ee5b7292cac7a88a810f8225f0b3e031ed4262c8d58f2edeabec94");
    payload_free(&p);
}

static void test_ignored_fixtures(void **state)
{
    (void)state;
    const char *names[] = {"distribution/00-push-blob.json", "distribution/01-pull-blob.json",
                           "distribution/02-push-blob.json", "distribution/03-pull-blob.json"};
    const char *why[] = {"blob push", "action is pull, not push", "blob push",
                         "action is pull, not push"};
    for (size_t i = 0; i < 4; i++) {
        struct payload p;
        parse_fixture(names[i], &p);
        assert_non_null(p.events[0].ignored);
        assert_string_equal(p.events[0].ignored, why[i]);
        payload_free(&p);
    }
}

/* Events live in the document's memory, the array doubling as they come:
 * 11 of them cross 4 and 8, and each keeps its own strings. */
static void test_many_events(void **state)
{
    (void)state;
    struct buf body, err;
    buf_init(&body);
    buf_init(&err);
    buf_puts(&body, "{\"events\":[");
    for (int i = 0; i < 11; i++)
        buf_printf(&body, "%s{\"id\":\"ev-%d\",\"action\":\"push\",\"target\":{\"repository\":\"team/app%d\","
                          "\"tag\":\"v%d\",\"digest\":\"sha256:%d\",\"mediaType\":\"application/"
                          "vnd.oci.image.manifest.v1+json\",\"url\":\"http://reg:5000/v2/x\"}}",
                   i ? "," : "", i, i, i, i);
    buf_puts(&body, "]}");
    struct payload p;
    assert_int_equal(parse_str(body.data, &p, &err), 0);
    assert_int_equal(p.n, 11);
    for (int i = 0; i < 11; i++) {
        char want[32];
        snprintf(want, sizeof want, "ev-%d", i);
        assert_string_equal(p.events[i].id, want);
        snprintf(want, sizeof want, "team/app%d", i);
        assert_string_equal(p.events[i].repository, want);
        snprintf(want, sizeof want, "v%d", i);
        assert_string_equal(p.events[i].tag, want);
        assert_string_equal(p.events[i].format, "distribution");
        assert_null(p.events[i].ignored);
    }
    payload_free(&p);
    assert_null(p.events);
    buf_free(&body);
    buf_free(&err);
}

static void test_variants(void **state)
{
    (void)state;
    struct payload p;
    struct buf err;
    buf_init(&err);
    /* Tagless manifest push; host from target.url when request is absent. */
    assert_int_equal(parse_str("{\"events\":[{\"action\":\"push\",\"target\":{\"repository\":\"a/b\","
                               "\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\","
                               "\"url\":\"http://reg.io:5000/v2/a/b/manifests/sha256:1\"}}]}",
                               &p, &err), 0);
    assert_string_equal(p.events[0].ignored, "manifest push without a tag");
    assert_string_equal(p.events[0].registry, "reg.io:5000");
    payload_free(&p);
    /* Several events, each decided on its own; an empty list is fine. */
    assert_int_equal(parse_str("{\"events\":[{\"action\":\"pull\",\"target\":{\"repository\":\"a\"}},"
                               "{\"action\":\"push\",\"target\":{\"repository\":\"a\",\"tag\":\"v1\"}},"
                               "{\"action\":\"delete\",\"target\":{\"repository\":\"a\"}}]}",
                               &p, &err), 0);
    assert_int_equal(p.n, 3);
    assert_non_null(p.events[0].ignored);
    assert_null(p.events[1].ignored);
    assert_null(p.events[1].registry);
    assert_string_equal(p.events[2].ignored, "action is delete, not push");
    payload_free(&p);
    assert_int_equal(parse_str("{\"events\":[]}", &p, &err), 0);
    assert_int_equal(p.n, 0);
    payload_free(&p);
    buf_free(&err);
}

static void test_broken(void **state)
{
    (void)state;
    const char *cases[][2] = {
        {"", "not valid JSON"},
        {"{\"events\":[", "not valid JSON"},
        {"not json", "not valid JSON"},
        {"[]", "unknown payload format"},
        {"{\"foo\":1}", "unknown payload format"},
        {"{\"events\":{}}", "unknown payload format"},
        {"{\"events\":[1]}", "event 1: not an object"},
        {"{\"events\":[{\"target\":{\"repository\":\"a\"}}]}", "event 1: action missing"},
        {"{\"events\":[{\"action\":\"push\",\"target\":{\"repository\":\"a\",\"tag\":\"t\"}},"
         "{\"action\":\"push\",\"target\":{}}]}", "event 2: target.repository missing"},
        {"{\"events\":[{\"action\":\"push\",\"target\":\"x\"}]}", "event 1: target missing"},
        {"{\"events\":[{\"action\":\"push\",\"target\":{\"repository\":\"a\",\"tag\":7}}]}",
         "must be strings"},
        {"{\"events\":[{\"action\":7,\"target\":{\"repository\":\"a\"}}]}", "action missing"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct payload p;
        struct buf err;
        buf_init(&err);
        assert_int_equal(parse_str(cases[i][0], &p, &err), -EINVAL);
        if (!strstr(buf_cstr(&err), cases[i][1]))
            fail_msg("case %zu: \"%s\" lacks \"%s\"", i, buf_cstr(&err), cases[i][1]);
        assert_int_equal(p.n, 0);
        payload_free(&p);
        buf_free(&err);
    }
}

static void test_hostile_strings(void **state)
{
    (void)state;
    struct payload p;
    struct buf err;
    buf_init(&err);
    /* Quotes, control characters and unicode survive as data. */
    assert_int_equal(parse_str("{\"events\":[{\"action\":\"push\\\"},{\",\"target\":"
                               "{\"repository\":\"a\\\"b\\u0001\\u00e9\",\"tag\":\"t\"}}]}",
                               &p, &err), 0);
    assert_string_equal(p.events[0].repository, "a\"b\x01\xc3\xa9");
    assert_string_equal(p.events[0].ignored, "action is push\"},{, not push");
    payload_free(&p);
    buf_free(&err);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_manifest_push),
        cmocka_unit_test(test_many_events), cmocka_unit_test(test_ignored_fixtures),
        cmocka_unit_test(test_variants),      cmocka_unit_test(test_broken),
        cmocka_unit_test(test_hostile_strings),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
