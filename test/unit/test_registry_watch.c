/* What a route on an object watches (SPEC: Registry watch): host, tag or
 * tag list, interval. Pure. */
#include <errno.h>
#include <jansson.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "registry_watch.h"

static struct route route(const char *image, const char *glob, long long poll_ms)
{
    struct route r = {.image = (char *)image, .url = "http://t/x", .tag_glob = (char *)glob, .poll_ms = poll_ms};
    assert_int_equal(repo_ref_parse(image, &r.ref), 0);
    return r;
}

static void test_interval(void **s)
{
    (void)s;
    struct watch_key k;
    struct route_source src = {.kind = "container", .image = "redis:7"};
    struct route r = route("redis", "7", 0);
    assert_false(watch_key_of(&r, &src, 0, &k));          /* no label, no POLL_INTERVAL */
    assert_true(watch_key_of(&r, &src, 300000, &k));
    assert_int_equal(k.interval_ms, 300000);
    r.poll_ms = 30000;
    assert_true(watch_key_of(&r, &src, 300000, &k));       /* the label wins */
    assert_int_equal(k.interval_ms, 30000);
    r.poll_ms = -1;
    assert_false(watch_key_of(&r, &src, 300000, &k));      /* poll=off */
}

static void test_host_rules(void **s)
{
    (void)s;
    struct watch_key k;
    /* The label's host. */
    struct route r = route("reg.local:5000/team/app", "v1", 1000);
    struct route_source src = {.kind = "container", .image = "other.io/team/app:v1"};
    assert_true(watch_key_of(&r, &src, 0, &k));
    assert_string_equal(k.host, "reg.local:5000");
    assert_string_equal(k.repository, "team/app");
    /* Host-less label: the object's own image names the same repository. */
    r = route("team/app", "v1", 1000);
    src.image = "Reg.Local:5000/team/app:v1";
    assert_true(watch_key_of(&r, &src, 0, &k));
    assert_string_equal(k.host, "reg.local:5000");
    /* ... or not: Docker Hub. */
    src.image = "reg.local:5000/team/other:v1";
    assert_true(watch_key_of(&r, &src, 0, &k));
    assert_string_equal(k.host, "docker.io");
    assert_string_equal(k.repository, "team/app");
    r = route("redis", "7", 1000);
    src.image = NULL;
    assert_true(watch_key_of(&r, &src, 0, &k));
    assert_string_equal(k.host, "docker.io");
    assert_string_equal(k.repository, "library/redis");
    src.image = "redis:7.2";   /* Docker Hub by Docker's rules: the same repository */
    assert_true(watch_key_of(&r, &src, 0, &k));
    assert_string_equal(k.repository, "library/redis");
}

static void test_tag_rules(void **s)
{
    (void)s;
    struct watch_key k;
    struct route_source src = {.kind = "container", .image = "reg:5000/team/app:v1.4"};
    struct route r = route("reg:5000/team/app", "stable", 1000);
    assert_true(watch_key_of(&r, &src, 0, &k));
    assert_string_equal(k.tag, "stable");                  /* an exact glob */
    r = route("reg:5000/team/app", "v*", 1000);
    assert_true(watch_key_of(&r, &src, 0, &k));
    assert_string_equal(k.tag, "v1.4");                    /* the object's own tag */
    r = route("reg:5000/team/app", "release-*", 1000);
    assert_true(watch_key_of(&r, &src, 0, &k));
    assert_string_equal(k.tag, "");                        /* the tag list */
    assert_string_equal(k.glob, "release-*");
    r = route("reg:5000/team/app", NULL, 1000);
    assert_true(watch_key_of(&r, &src, 0, &k));
    assert_string_equal(k.tag, "v1.4");                    /* every tag: the own one */
    src.image = "sha256:0123456789abcdef";                 /* made from an image id */
    assert_true(watch_key_of(&r, &src, 0, &k));
    assert_string_equal(k.glob, "*");
    /* A service pinned by digest still says its tag. */
    struct route_source svc = {.kind = "service", .image = "reg:5000/team/app:v2@sha256:abc"};
    r = route("reg:5000/team/app", "v*", 1000);
    assert_true(watch_key_of(&r, &svc, 0, &k));
    assert_string_equal(k.tag, "v2");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_interval),
        cmocka_unit_test(test_host_rules),
        cmocka_unit_test(test_tag_rules),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
