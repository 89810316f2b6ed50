/* reference.c: the image reference grammar, Docker's host rule and the
 * normalised (host, path) pair (SPEC: Matching). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "match.h"
#include "reference.h"

static bool matches(const char *label, const char *registry, const char *repository)
{
    struct repo_ref r, e;
    assert_int_equal(repo_ref_parse(label, &r), 0);
    assert_int_equal(repo_ref_from_event(registry, repository, &e), 0);
    return repo_ref_match(&r, &e);
}

static bool span_is(struct reference_span s, const char *want)
{
    if (!want) return s.p == NULL && s.n == 0;
    return s.p && s.n == strlen(want) && memcmp(s.p, want, s.n) == 0;
}

static void test_split(void **state)
{
    (void)state;
    struct reference r;
    const char *full = "reg.local:5000/team/app:v1.2@sha256:abc";
    assert_int_equal(reference_split(full, strlen(full), &r), 0);
    assert_true(span_is(r.host, "reg.local:5000"));
    assert_true(span_is(r.path, "team/app"));
    assert_true(span_is(r.tag, "v1.2"));
    assert_true(span_is(r.digest, "sha256:abc"));
    /* A port is not a tag; the first component is a host only by Docker's rule. */
    const char *port = "localhost:5000/app";
    assert_int_equal(reference_split(port, strlen(port), &r), 0);
    assert_true(span_is(r.host, "localhost:5000"));
    assert_true(span_is(r.path, "app"));
    assert_true(span_is(r.tag, NULL));
    const char *hub = "team/app:latest";
    assert_int_equal(reference_split(hub, strlen(hub), &r), 0);
    assert_true(span_is(r.host, NULL));
    assert_true(span_is(r.path, "team/app"));
    assert_true(span_is(r.tag, "latest"));
    const char *none = "";
    assert_int_not_equal(reference_split(none, 0, &r), 0);
}

static void test_host_rule(void **state)
{
    (void)state;
    assert_true(reference_is_host("localhost", 9));
    assert_true(reference_is_host("reg.local", 9));
    assert_true(reference_is_host("reg:5000", 8));
    assert_false(reference_is_host("team", 4));
    struct reference_span h;
    assert_int_equal(reference_host_of("https://ghcr.io:443/v2/", &h), 0);
    assert_true(span_is(h, "ghcr.io:443"));
    assert_int_equal(reference_host_of("ghcr.io/o/n:1", &h), 0);
    assert_true(span_is(h, "ghcr.io"));
    assert_int_not_equal(reference_host_of("team/app", &h), 0);
    char out[64];
    assert_int_equal(registry_host_normalize("Registry-1.Docker.IO", out, sizeof out), 0);
    assert_string_equal(out, "docker.io");
    assert_int_equal(registry_host_normalize(NULL, out, sizeof out), 0);
    assert_string_equal(out, "");
    assert_int_not_equal(registry_host_normalize("a-very-long-registry-host-name.example", out, 8), 0);
    assert_true(registry_host_is_docker_hub("index.docker.io"));
    assert_false(registry_host_is_docker_hub("ghcr.io"));
}

static void test_parse_forms(void **state)
{
    (void)state;
    struct repo_ref r;
    assert_int_equal(repo_ref_parse("myapp", &r), 0);
    assert_string_equal(r.host, "");
    assert_string_equal(r.path, "myapp");
    assert_int_equal(repo_ref_parse("team/myapp", &r), 0);
    assert_string_equal(r.host, "");
    assert_string_equal(r.path, "team/myapp");
    assert_int_equal(repo_ref_parse("Registry.Local:5000/team/myapp", &r), 0);
    assert_string_equal(r.host, "registry.local:5000");
    assert_string_equal(r.path, "team/myapp");
    assert_int_equal(repo_ref_parse("localhost/app", &r), 0);
    assert_string_equal(r.host, "localhost");
    assert_int_equal(repo_ref_parse("  spaced/app ", &r), 0);
    assert_string_equal(r.path, "spaced/app");
}

static void test_docker_hub_aliases(void **state)
{
    (void)state;
    const char *aliases[] = {"docker.io", "index.docker.io", "registry-1.docker.io",
                             "registry.hub.docker.com", "DOCKER.IO"};
    for (size_t i = 0; i < sizeof aliases / sizeof aliases[0]; i++) {
        char label[128];
        struct repo_ref r;
        snprintf(label, sizeof label, "%s/nginx", aliases[i]);
        assert_int_equal(repo_ref_parse(label, &r), 0);
        assert_string_equal(r.host, "docker.io");
        assert_string_equal(r.path, "library/nginx");
    }
    assert_true(matches("docker.io/nginx", "index.docker.io", "library/nginx"));
    assert_true(matches("index.docker.io/library/nginx", "docker.io", "nginx"));
    assert_true(matches("nginx", "docker.io", "nginx"));
    assert_true(matches("nginx", "registry-1.docker.io", "library/nginx"));
    assert_true(matches("library/nginx", "docker.io", "nginx"));
}

static void test_parse_rejects(void **state)
{
    (void)state;
    struct repo_ref r;
    const char *bad[] = {"", "   ", "/app", "app/", "team//app", "app:latest", "app@sha256:00",
                         "te am/app", "reg:5000/", "-app", "app/-x", "a\"b", "reg.io/a b"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_not_equal(repo_ref_parse(bad[i], &r), 0);
    assert_int_not_equal(repo_ref_parse(NULL, &r), 0);
    char huge[2000];
    memset(huge, 'a', sizeof huge - 1);
    huge[sizeof huge - 1] = '\0';
    assert_int_not_equal(repo_ref_parse(huge, &r), 0);
    assert_int_not_equal(repo_ref_from_event(NULL, "", &r), 0);
    assert_int_not_equal(repo_ref_from_event(huge, "app", &r), 0);
}

/* Registries refuse upper-case repository paths, so a label holding one
 * could never match: it is refused. The host is case-insensitive. */
static void test_upper_case_path_refused(void **state)
{
    (void)state;
    struct repo_ref r;
    const char *bad[] = {"MyApp", "team/MyApp", "Team/myapp", "reg.io:5000/Team/app",
                         "docker.io/Nginx", "localhost/App"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (repo_ref_parse(bad[i], &r) == 0) fail_msg("\"%s\" accepted", bad[i]);
    assert_int_equal(repo_ref_parse("REG.IO:5000/team/app", &r), 0);
    assert_string_equal(r.host, "reg.io:5000");
    assert_string_equal(r.path, "team/app");
    assert_int_equal(repo_ref_parse("LocalHost.Lan/app", &r), 0);
    assert_string_equal(r.host, "localhost.lan");
    /* Events are read as sent (a registry that reports upper case is not
     * second-guessed here). */
    assert_int_equal(repo_ref_from_event("reg.io", "Team/App", &r), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_split),
        cmocka_unit_test(test_host_rule),
        cmocka_unit_test(test_parse_forms),
        cmocka_unit_test(test_docker_hub_aliases),
        cmocka_unit_test(test_parse_rejects),
        cmocka_unit_test(test_upper_case_path_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
