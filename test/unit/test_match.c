/* Matching a route against an event, and tag globs (SPEC: Matching); the
 * reference grammar itself is test_reference.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "match.h"

static bool matches(const char *label, const char *registry, const char *repository)
{
    struct repo_ref r, e;
    assert_int_equal(repo_ref_parse(label, &r), 0);
    assert_int_equal(repo_ref_from_event(registry, repository, &e), 0);
    return repo_ref_match(&r, &e);
}

static void test_host_rules(void **state)
{
    (void)state;
    /* No host in the label: any registry. */
    assert_true(matches("team/myapp", "127.0.0.1:5000", "team/myapp"));
    assert_true(matches("team/myapp", NULL, "team/myapp"));
    assert_true(matches("myapp", "registry.local", "myapp"));
    /* A host in the label: that registry only. */
    assert_true(matches("127.0.0.1:5000/team/myapp", "127.0.0.1:5000", "team/myapp"));
    assert_true(matches("REG.example:5000/team/myapp", "reg.EXAMPLE:5000", "team/myapp"));
    assert_false(matches("127.0.0.1:5000/team/myapp", "127.0.0.1:5001", "team/myapp"));
    assert_false(matches("127.0.0.1:5000/team/myapp", NULL, "team/myapp"));
    assert_false(matches("docker.io/team/myapp", "ghcr.io", "team/myapp"));
    /* library/ only for Docker Hub. */
    assert_false(matches("nginx", "ghcr.io", "library/nginx"));
    /* A generic {"image":"redis:7"} arrives as Docker Hub's (payload_generic.c);
     * a repository without a registry names no host, so a label with one
     * cannot claim it. */
    assert_true(matches("docker.io/library/redis", "docker.io", "redis"));
    assert_true(matches("redis", "docker.io", "redis"));
    assert_false(matches("docker.io/library/redis", NULL, "redis"));
    assert_true(matches("redis", NULL, "redis"));
}

static void test_exact_only(void **state)
{
    (void)state;
    assert_false(matches("team/myapp", NULL, "team/myapp2"));
    assert_false(matches("team/myapp", NULL, "team/my"));
    assert_false(matches("myapp", NULL, "team/myapp"));
    assert_false(matches("team/myapp", NULL, "other/team/myapp"));
}

static void test_globs(void **state)
{
    (void)state;
    assert_true(tag_glob_match("latest", "latest"));
    assert_false(tag_glob_match("latest", "latest2"));
    assert_true(tag_glob_match("v*", "v1.2.3"));
    assert_true(tag_glob_match("v*", "v"));
    assert_false(tag_glob_match("v*", "1.0"));
    assert_true(tag_glob_match("release-*", "release-2026.11"));
    assert_true(tag_glob_match("*", "anything"));
    assert_true(tag_glob_match("v?.?", "v1.2"));
    assert_false(tag_glob_match("v?.?", "v1.22"));
    assert_true(tag_glob_match("v[0-9]*", "v3-rc"));
    assert_false(tag_glob_match("v[0-9]*", "vx"));
    assert_true(tag_glob_match("[!d]*", "prod"));
    assert_false(tag_glob_match("[!d]*", "dev"));
    assert_true(tag_glob_match("*-rc*", "v1-rc2"));
    assert_true(tag_glob_match("\\v1", "v1"));
    /* Pathological pattern stays fast and correct. */
    assert_false(tag_glob_match("*a*a*a*a*a*a*a*a*b", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"));
}

static void test_glob_validity(void **state)
{
    (void)state;
    const char *good[] = {"latest", "v*", "release-*", "?", "[a-z]*", "[!x]", "\\v", "*.*"};
    const char *bad[] = {"", "[abc", "v[", "a b", "a/b", "tag\\", "[z-a]", "a,b", "é*", "a]"};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) assert_true(tag_glob_valid(good[i]));
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) assert_false(tag_glob_valid(bad[i]));
    assert_false(tag_glob_valid(NULL));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_host_rules),
        cmocka_unit_test(test_exact_only),
        cmocka_unit_test(test_globs),
        cmocka_unit_test(test_glob_validity),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
