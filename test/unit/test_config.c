/* Environment and flag parsing, validation messages. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "config.h"

static enum config_action run(struct config *c, char **argv, char **env, char *err, FILE *out)
{
    int argc = 0;
    while (argv[argc]) argc++;
    config_defaults(c);
    return config_parse(c, argc, argv, env, out, err, 512);
}

static void test_defaults(void **state)
{
    (void)state;
    struct config c;
    char err[512] = "";
    char *argv[] = {"wr", NULL};
    char *env[] = {"PATH=/bin", "UNRELATED", NULL};
    assert_int_equal(run(&c, argv, env, err, stdout), CONFIG_RUN);
    assert_string_equal(c.listen_addr, "0.0.0.0");
    assert_int_equal(c.listen_port, 3000);
    assert_string_equal(c.docker_host, "unix:///var/run/docker.sock");
    assert_string_equal(c.label_prefix, "webhook-router");
    assert_int_equal(c.cache_ttl_secs, 60);
    assert_int_equal(c.log_level, LOG_INFO);
    assert_int_equal(c.log_format, LOG_FORMAT_JSON);
    assert_null(c.webhook_token);
    assert_null(c.webhook_hmac_secret);
    assert_int_equal(c.forward_timeout_secs, 10);
    assert_int_equal(c.forward_retries, 3);
    assert_int_equal(c.forward_concurrency, 64);
    assert_int_equal(c.forward_queue_max, 10000);
    assert_int_equal(c.debounce_ms, 1000);
    assert_null(c.tls_ca_file);
    assert_false(c.tls_insecure);
    assert_int_equal(c.max_body_bytes, 1048576);
    config_free(&c);
}

static void test_env_and_flags(void **state)
{
    (void)state;
    struct config c;
    char err[512] = "";
    char *argv[] = {"wr", "--listen-port", "4000", "--log-format=text", "--tls-insecure",
                    "--docker-host", "unix:///a.sock, tcp://10.0.0.1:2375", NULL};
    char *env[] = {"LISTEN_PORT=3500", "LISTEN_ADDR=::", "LOG_LEVEL=debug", "WEBHOOK_TOKEN=t0k",
                   "WEBHOOK_HMAC_SECRET=", "MAX_BODY_BYTES=2048", "TLS_CA_FILE=/dev/null", NULL};
    assert_int_equal(run(&c, argv, env, err, stdout), CONFIG_RUN);
    assert_int_equal(c.listen_port, 4000);   /* flag wins */
    assert_string_equal(c.listen_addr, "::");
    assert_int_equal(c.log_level, LOG_DEBUG);
    assert_int_equal(c.log_format, LOG_FORMAT_TEXT);
    assert_true(c.tls_insecure);
    assert_string_equal(c.webhook_token, "t0k");
    assert_null(c.webhook_hmac_secret);      /* empty = unset */
    assert_int_equal(c.max_body_bytes, 2048);
    assert_string_equal(c.tls_ca_file, "/dev/null");
    config_free(&c);
}

static void test_bad_values(void **state)
{
    (void)state;
    const char *cases[] = {
        "LISTEN_ADDR=localhost", "LISTEN_PORT=0", "LISTEN_PORT=65536", "LISTEN_PORT=80x",
        "LISTEN_PORT=-1", "LISTEN_PORT=", "DOCKER_HOST=/var/run/docker.sock", "DOCKER_HOST=tcp://h",
        "DOCKER_HOST=http://h:1", "DOCKER_HOST=", "DOCKER_HOST=unix://", "LABEL_PREFIX=Web",
        "LABEL_PREFIX=.x", "LABEL_PREFIX=", "CACHE_TTL_SECS=86401", "LOG_LEVEL=verbose",
        "LOG_FORMAT=xml", "FORWARD_TIMEOUT_SECS=0", "FORWARD_RETRIES=21", "FORWARD_CONCURRENCY=0",
        "FORWARD_QUEUE_MAX=99999999999999999999", "DEBOUNCE_MS=1e3", "TLS_CA_FILE=/nonexistent/ca.pem",
        "TLS_INSECURE=maybe", "MAX_BODY_BYTES=10",
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct config c;
        char err[512] = "";
        char *argv[] = {"wr", NULL};
        char *env[] = {(char *)cases[i], NULL};
        assert_int_equal(run(&c, argv, env, err, stdout), CONFIG_ERROR);
        char name[64];
        snprintf(name, sizeof name, "%.*s:", (int)(strchr(cases[i], '=') - cases[i]), cases[i]);
        if (strncmp(err, name, strlen(name)) != 0) fail_msg("case %s: got \"%s\"", cases[i], err);
        assert_non_null(strstr(err, "expected"));
        assert_null(strchr(err, '\n'));
        config_free(&c);
    }
}

static void test_secret_not_echoed(void **state)
{
    (void)state;
    struct config c;
    char err[512] = "";
    char *argv[] = {"wr", NULL};
    char *env[] = {"WEBHOOK_TOKEN=has space-s3cr3t", NULL};
    assert_int_equal(run(&c, argv, env, err, stdout), CONFIG_ERROR);
    assert_non_null(strstr(err, "WEBHOOK_TOKEN"));
    assert_null(strstr(err, "s3cr3t"));
    config_free(&c);
}

static void test_flag_errors(void **state)
{
    (void)state;
    struct config c;
    char err[512] = "";
    char *env[] = {NULL};
    char *a1[] = {"wr", "--listen-port", "abc", NULL};
    assert_int_equal(run(&c, a1, env, err, stdout), CONFIG_ERROR);
    assert_non_null(strstr(err, "--listen-port (LISTEN_PORT)"));
    config_free(&c);
    char *a2[] = {"wr", "--nope", NULL};
    assert_int_equal(run(&c, a2, env, err, stdout), CONFIG_ERROR);
    assert_non_null(strstr(err, "unknown flag"));
    config_free(&c);
    char *a3[] = {"wr", "--listen-port", NULL};
    assert_int_equal(run(&c, a3, env, err, stdout), CONFIG_ERROR);
    config_free(&c);
    char *a4[] = {"wr", "extra", NULL};
    assert_int_equal(run(&c, a4, env, err, stdout), CONFIG_ERROR);
    config_free(&c);
}

static void test_help_version_healthcheck(void **state)
{
    (void)state;
    struct config c;
    char err[512] = "";
    char *env[] = {"LISTEN_PORT=3123", NULL};
    char *buf = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&buf, &len);
    char *a1[] = {"wr", "--help", NULL};
    assert_int_equal(run(&c, a1, env, err, out), CONFIG_EXIT_OK);
    config_free(&c);
    char *a2[] = {"wr", "--version", NULL};
    assert_int_equal(run(&c, a2, env, err, out), CONFIG_EXIT_OK);
    config_free(&c);
    fclose(out);
    const char *vars[] = {"LISTEN_ADDR", "LISTEN_PORT", "DOCKER_HOST", "LABEL_PREFIX",
                          "CACHE_TTL_SECS", "LOG_LEVEL", "LOG_FORMAT", "WEBHOOK_TOKEN",
                          "WEBHOOK_HMAC_SECRET", "FORWARD_TIMEOUT_SECS", "FORWARD_RETRIES",
                          "FORWARD_CONCURRENCY", "FORWARD_QUEUE_MAX", "DEBOUNCE_MS", "TLS_CA_FILE",
                          "TLS_INSECURE", "MAX_BODY_BYTES", "--listen-port", "webhook-router " WR_VERSION};
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++) assert_non_null(strstr(buf, vars[i]));
    free(buf);
    char *a3[] = {"wr", "healthcheck", NULL};
    assert_int_equal(run(&c, a3, env, err, stdout), CONFIG_HEALTHCHECK);
    assert_int_equal(c.listen_port, 3123);
    config_free(&c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),          cmocka_unit_test(test_env_and_flags),
        cmocka_unit_test(test_bad_values),        cmocka_unit_test(test_secret_not_echoed),
        cmocka_unit_test(test_flag_errors),       cmocka_unit_test(test_help_version_healthcheck),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
