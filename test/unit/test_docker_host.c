/* DOCKER_HOST: the one grammar config, app and watcher share. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "docker_host.h"

static void test_entry(void **s)
{
    (void)s;
    struct http_endpoint ep;
    const char *err;
    assert_int_equal(docker_host_parse_entry("unix:///var/run/docker.sock", &ep, &err), 0);
    assert_string_equal(ep.unix_path, "/var/run/docker.sock");
    assert_null(ep.host);
    http_endpoint_free(&ep);
    assert_int_equal(docker_host_parse_entry("tcp://proxy:2375", &ep, &err), 0);
    assert_null(ep.unix_path);
    assert_string_equal(ep.host, "proxy");
    assert_int_equal(ep.port, 2375);
    assert_false(ep.tls);
    http_endpoint_free(&ep);
    assert_int_equal(docker_host_parse_entry("tcp://[::1]:2376", &ep, &err), 0);
    assert_string_equal(ep.host, "::1");
    assert_int_equal(ep.port, 2376);
    http_endpoint_free(&ep);
    assert_int_equal(docker_host_parse_entry("tcp://10.0.0.1:65535", &ep, &err), 0);
    assert_string_equal(ep.host, "10.0.0.1");
    assert_int_equal(ep.port, 65535);
    http_endpoint_free(&ep);
    assert_int_equal(docker_host_parse_entry("tcp://docker_proxy:1", &ep, &err), 0);
    assert_string_equal(ep.host, "docker_proxy");
    http_endpoint_free(&ep);
    /* Blanks inside a path are the path's (only those around an entry go). */
    assert_int_equal(docker_host_parse_entry("unix:///run/my docker.sock", &ep, &err), 0);
    assert_string_equal(ep.unix_path, "/run/my docker.sock");
    http_endpoint_free(&ep);
}

/* Which engines get X-Registry-Auth in clear over a network (app.c warns
 * once at start for them when REGISTRY_AUTH_FILE is set). */
static void test_in_clear(void **s)
{
    (void)s;
    static const struct {
        const char *entry;
        bool in_clear;
    } cases[] = {
        {"unix:///var/run/docker.sock", false}, {"tcp://127.0.0.1:2375", false}, {"tcp://127.8.9.1:2375", false},
        {"tcp://[::1]:2375", false},            {"tcp://localhost:2375", false}, {"tcp://LocalHost:2375", false},
        {"tcp://10.0.0.1:2375", true},          {"tcp://proxy:2375", true},      {"tcp://[fd00::1]:2375", true},
        {"tcp://128.0.0.1:2375", true},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct http_endpoint ep;
        const char *err;
        assert_int_equal(docker_host_parse_entry(cases[i].entry, &ep, &err), 0);
        if (docker_host_in_clear(&ep) != cases[i].in_clear) fail_msg("%s", cases[i].entry);
        http_endpoint_free(&ep);
    }
}

static void test_bad_entries(void **s)
{
    (void)s;
    const char *bad[] = {
        "", "unix://", "unix:///", "unix://rel.sock", "unix:///a\x01", "/var/run/docker.sock",
        "http://h:1", "TCP://h:1", "tcp://h", "tcp://h:", "tcp://:2375", "tcp://h:0", "tcp://h:65536",
        "tcp://h:99999", "tcp://h:x", "tcp://h:+1", "tcp://h: 1", "tcp://h:2375/", "tcp://a:b:2375",
        "tcp://[::1:2375", "tcp://[::1]", "tcp://[]:1", "tcp://h$:1", "tcp://h:000002375",
        "tcp://[::1]x:1", "tcp://[a/b]:1", "unix:///a ", " unix:///a",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct http_endpoint ep;
        const char *err = NULL;
        if (docker_host_parse_entry(bad[i], &ep, &err) != -EINVAL) fail_msg("accepted \"%s\"", bad[i]);
        assert_non_null(err);
        assert_null(strchr(err, '\n'));
        assert_null(ep.unix_path);
        assert_null(ep.host);
    }
}

/* The case of issue 11 item 13: blanks around commas are trimmed, so the
 * watcher connects to "/a", not "/a ". */
static void test_list_trims_blanks(void **s)
{
    (void)s;
    struct docker_host *v;
    size_t n;
    char err[128];
    assert_int_equal(docker_host_parse_list("unix:///a , unix:///b", &v, &n, err, sizeof err), 0);
    assert_int_equal(n, 2);
    assert_string_equal(v[0].text, "unix:///a");
    assert_string_equal(v[0].ep.unix_path, "/a");
    assert_string_equal(v[1].text, "unix:///b");
    assert_string_equal(v[1].ep.unix_path, "/b");
    docker_host_list_free(v, n);

    const char *blanks = " \ttcp://proxy:2375\t,unix:///x.sock ";
    assert_int_equal(docker_host_parse_list(blanks, &v, &n, err, sizeof err), 0);
    assert_int_equal(n, 2);
    assert_string_equal(v[0].text, "tcp://proxy:2375");
    assert_string_equal(v[0].ep.host, "proxy");
    assert_int_equal(v[0].ep.port, 2375);
    assert_string_equal(v[1].text, "unix:///x.sock");
    docker_host_list_free(v, n);

    assert_int_equal(docker_host_parse_list("unix:///var/run/docker.sock", &v, &n, err, sizeof err), 0);
    assert_int_equal(n, 1);
    assert_string_equal(v[0].text, "unix:///var/run/docker.sock");
    docker_host_list_free(v, n);
}

static void expect_list_error(const char *value, const char *reason)
{
    struct docker_host *v = (struct docker_host *)1;
    size_t n = 99;
    char err[128] = "";
    if (docker_host_parse_list(value, &v, &n, err, sizeof err) != -EINVAL) fail_msg("accepted \"%s\"", value);
    assert_null(v);
    assert_int_equal(n, 0);
    if (strcmp(err, reason) != 0) fail_msg("\"%s\": reason \"%s\", want \"%s\"", value, err, reason);
}

static void test_list_errors(void **s)
{
    (void)s;
    expect_list_error("", "entry 1 is empty");
    expect_list_error("  ", "entry 1 is empty");
    expect_list_error(",", "entry 1 is empty");
    expect_list_error("tcp://10.0.0.1:2375,", "entry 2 is empty");
    expect_list_error("unix:///a, ,unix:///b", "entry 2 is empty");
    expect_list_error("unix:///a,,unix:///b", "entry 2 is empty");
    expect_list_error("unix:///ok.sock,tcp://bad", "entry 2: tcp:// needs host:port");
    expect_list_error("unix://rel", "entry 1: unix:// needs an absolute socket path");
    expect_list_error("unix:///a, unix:///a", "entry 2 repeats entry 1");
    expect_list_error("tcp://h:1,unix:///b,tcp://h:1", "entry 3 repeats entry 1");
    /* The reason names the entry, never its text (a mistyped host could be anything). */
    expect_list_error("tcp://secret-name", "entry 1: tcp:// needs host:port");
}

static void test_copy(void **s)
{
    (void)s;
    struct docker_host *v;
    size_t n;
    char err[128];
    assert_int_equal(docker_host_parse_list("tcp://[fe80::1]:2375", &v, &n, err, sizeof err), 0);
    struct docker_host c;
    docker_host_copy(&c, &v[0]);
    docker_host_list_free(v, n);
    assert_string_equal(c.text, "tcp://[fe80::1]:2375");
    assert_string_equal(c.ep.host, "fe80::1");
    assert_int_equal(c.ep.port, 2375);
    assert_null(c.ep.unix_path);
    docker_host_free(&c);
    assert_null(c.text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_entry),        cmocka_unit_test(test_bad_entries),
        cmocka_unit_test(test_list_trims_blanks), cmocka_unit_test(test_list_errors),
        cmocka_unit_test(test_copy),         cmocka_unit_test(test_in_clear),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
