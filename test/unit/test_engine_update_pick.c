/* What an engine update installs: only the object's own registry and
 * repository, by digest; only its own tag unless a tag label says more;
 * never an older version; the health wait from the container's check. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <errno.h>
#include <string.h>
#include <cmocka.h>

#include "engine_update_pick.h"

static int pick(const char *own, const char *label, const char *reg, const char *repo, const char *tag,
                const char *digest, struct engine_pick *p)
{
    char why[256];
    int rc = engine_update_pick(own, label, reg, repo, tag, digest, p, why, sizeof why);
    if (rc) assert_true(why[0] != '\0');
    return rc;
}

static void test_own_registry_and_repository_only(void **state)
{
    (void)state;
    struct engine_pick p;
    const char *d = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    assert_int_equal(pick("127.0.0.1:5000/team/app:latest", NULL, "127.0.0.1:5000", "team/app", "latest", d, &p), 0);
    assert_string_equal(p.repo, "127.0.0.1:5000/team/app");
    assert_string_equal(p.tag, "latest");
    assert_string_equal(p.digest, d);
    /* The same repository on another registry (a host-less label matched
     * it, or a POST named it): never. */
    assert_int_equal(pick("127.0.0.1:5000/team/app:latest", NULL, "other-host", "team/app", "latest", d, &p), 1);
    assert_int_equal(pick("127.0.0.1:5000/team/app:latest", NULL, "docker.io", "team/app", "latest", d, &p), 1);
    assert_int_equal(pick("team/app:latest", NULL, "ghcr.io", "team/app", "latest", d, &p), 1);
    /* Another repository. */
    assert_int_equal(pick("127.0.0.1:5000/team/app:latest", NULL, "127.0.0.1:5000", "team/other", "latest", d, &p), 1);
    /* Docker Hub under its aliases and short names. */
    assert_int_equal(pick("nginx:1", NULL, "index.docker.io", "library/nginx", "1", d, &p), 0);
    assert_string_equal(p.repo, "nginx");
    assert_int_equal(pick("docker.io/team/app", NULL, "registry-1.docker.io", "team/app", "latest", NULL, &p), 0);
    assert_string_equal(p.repo, "docker.io/team/app");
    assert_string_equal(p.digest, "");
    /* A host-less event (generic {"repository"}): the own registry. */
    assert_int_equal(pick("reg.local:5000/team/app:latest", NULL, NULL, "team/app", "latest", d, &p), 0);
    assert_string_equal(p.repo, "reg.local:5000/team/app");
    /* An image id names no repository. */
    assert_int_equal(pick("sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", NULL,
                          "docker.io", "team/app", "latest", d, &p), -EINVAL);
}

static void test_own_tag_and_no_downgrades(void **state)
{
    (void)state;
    struct engine_pick p;
    /* No tag label: only the tag it runs. */
    assert_int_equal(pick("r:5000/team/app:stable", NULL, "r:5000", "team/app", "pr-123", NULL, &p), 1);
    assert_int_equal(pick("r:5000/team/app:stable", NULL, "r:5000", "team/app", "stable", NULL, &p), 0);
    assert_int_equal(pick("r:5000/team/app", NULL, "r:5000", "team/app", "latest", NULL, &p), 0);
    assert_int_equal(pick("r:5000/team/app", NULL, "r:5000", "team/app", "dev", NULL, &p), 1);
    /* A service pinned by tag and digest keeps its tag. */
    assert_int_equal(pick("r:5000/team/app:v1@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
                          NULL, "r:5000", "team/app", "v1", NULL, &p), 0);
    /* A glob follows newer versions only. */
    assert_int_equal(pick("r:5000/team/app:v1.0.0", "v*", "r:5000", "team/app", "v1.1.0", NULL, &p), 0);
    assert_string_equal(p.tag, "v1.1.0");
    assert_int_equal(pick("r:5000/team/app:v1.0.0", "v*", "r:5000", "team/app", "v0.9.0", NULL, &p), 1);
    assert_int_equal(pick("r:5000/team/app:v1.0.0", "v*", "r:5000", "team/app", "v1.0.0", NULL, &p), 0);
    assert_int_equal(pick("r:5000/team/app:v1.0.0", "v*", "r:5000", "team/app", "vnext", NULL, &p), 0);
    assert_int_equal(pick("r:5000/team/app:v1.0.0", "v*", "r:5000", "team/app", "x1", NULL, &p), 1);
    /* An exact tag label. */
    assert_int_equal(pick("r:5000/team/app:latest", "stable", "r:5000", "team/app", "stable", NULL, &p), 0);
}

static void test_version_order(void **state)
{
    (void)state;
    bool c;
    assert_true(engine_version_cmp("v1.2.10", "v1.2.9", &c) > 0 && c);
    assert_true(engine_version_cmp("1.2", "1.2.0", &c) == 0 && c);
    assert_true(engine_version_cmp("v2", "1.9.9", &c) > 0 && c);
    assert_true(engine_version_cmp("1.2.0-rc1", "1.2.0", &c) < 0 && c);
    assert_true(engine_version_cmp("1.2.0-rc2", "1.2.0-rc1", &c) > 0 && c);
    assert_true(engine_version_cmp("1.2.0+b7", "1.2.0", &c) == 0 && c);
    engine_version_cmp("latest", "1.0", &c);
    assert_false(c);
    engine_version_cmp("1.0x", "1.0", &c);
    assert_false(c);
}

static void test_health_wait(void **state)
{
    (void)state;
    /* start 60 s + 5 s x 3 + 2 s = 77 s, over a 10 s floor. */
    json_t *hc = json_pack("{s:[s,s], s:I, s:I, s:I, s:i}", "Test", "CMD", "true", "StartPeriod",
                           (json_int_t)60000000000LL, "Interval", (json_int_t)5000000000LL, "Timeout",
                           (json_int_t)2000000000LL, "Retries", 3);
    assert_int_equal(engine_update_health_wait_ms(hc, 10000), 77000);
    assert_int_equal(engine_update_health_wait_ms(hc, 120000), 120000);
    json_decref(hc);
    /* Docker's defaults: 30 s x 3 + 30 s. */
    hc = json_pack("{s:[s,s]}", "Test", "CMD", "true");
    assert_int_equal(engine_update_health_wait_ms(hc, 1000), 120000);
    json_decref(hc);
    assert_int_equal(engine_update_health_wait_ms(NULL, 5000), 5000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_own_registry_and_repository_only),
        cmocka_unit_test(test_own_tag_and_no_downgrades),
        cmocka_unit_test(test_version_order),
        cmocka_unit_test(test_health_wait),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
