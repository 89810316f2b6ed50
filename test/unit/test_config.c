/* Environment and flag parsing, validation messages. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "buf.h"
#include "config.h"
#include "docker_host.h"

#define ERRLEN 512

static enum config_action run_out(struct config *c, char **argv, char **env, char *err, FILE *out)
{
    int argc = 0;
    while (argv[argc]) argc++;
    config_defaults(c);
    err[0] = '\0';
    return config_parse(c, argc, argv, env, out, err, ERRLEN);
}

static enum config_action run(struct config *c, char **argv, char **env, char *err)
{
    return run_out(c, argv, env, err, stdout);
}

/* Runs with argv and env, expects CONFIG_ERROR and an error line that starts
 * with prefix, says what is expected and is one line. */
static void expect_error(char **argv, char **env, const char *prefix)
{
    struct config c;
    char err[ERRLEN];
    enum config_action act = run(&c, argv, env, err);
    if (act != CONFIG_ERROR) fail_msg("%s: accepted (action %d)", prefix, act);
    if (strncmp(err, prefix, strlen(prefix)) != 0) fail_msg("want \"%s...\", got \"%s\"", prefix, err);
    assert_null(strchr(err, '\n'));
    assert_null(strchr(err, '\r'));
    config_free(&c);
}

static void expect_env_error(const char *assignment)
{
    char *argv[] = {"wr", NULL};
    char *env[] = {"PATH=/bin", (char *)assignment, NULL};
    char name[64];
    snprintf(name, sizeof name, "%.*s: expected ", (int)(strchr(assignment, '=') - assignment), assignment);
    expect_error(argv, env, name);
}

static void test_defaults(void **state)
{
    (void)state;
    struct config c;
    char err[ERRLEN];
    char *argv[] = {"wr", NULL};
    char *env[] = {"PATH=/bin", "UNRELATED", "listen_port=1", "LISTEN_PORTX=1", NULL};
    assert_int_equal(run(&c, argv, env, err), CONFIG_RUN);
    assert_string_equal(c.listen_addr, "0.0.0.0");
    assert_int_equal(c.listen_port, 3000);
    assert_string_equal(c.docker_host, "unix:///var/run/docker.sock");
    assert_int_equal(c.nengines, 1);
    assert_string_equal(c.engines[0].ep.unix_path, "/var/run/docker.sock");
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
    assert_false(c.engine_updates);
    assert_int_equal(c.engine_update_health_timeout_secs, 60);
    assert_int_equal(c.max_body_bytes, 1048576);
    assert_int_equal(c.max_buffered_bytes, 67108864);
    config_free(&c);
    config_free(&c);   /* harmless twice */

    /* A NULL environment is an empty one. */
    config_defaults(&c);
    assert_int_equal(config_parse(&c, 1, argv, NULL, stdout, err, sizeof err), CONFIG_RUN);
    assert_int_equal(c.listen_port, 3000);
    config_free(&c);
}

static void test_env_values(void **state)
{
    (void)state;
    struct config c;
    char err[ERRLEN];
    char *argv[] = {"wr", NULL};
    char *env[] = {"LISTEN_ADDR=::", "LISTEN_PORT=8080", "DOCKER_HOST=tcp://proxy:2375,unix:///x.sock",
                   "LABEL_PREFIX=com.example.wr-1_a", "CACHE_TTL_SECS=0", "LOG_LEVEL=TRACE",
                   "LOG_FORMAT=text", "WEBHOOK_TOKEN=t0k!$x", "WEBHOOK_HMAC_SECRET=hm4c",
                   "FORWARD_TIMEOUT_SECS=300", "FORWARD_RETRIES=0", "FORWARD_CONCURRENCY=10000",
                   "FORWARD_QUEUE_MAX=10000000", "DEBOUNCE_MS=0", "TLS_CA_FILE=/dev/null",
                   "TLS_INSECURE=yes", "MAX_BODY_BYTES=1073741824", "MAX_BUFFERED_BYTES=68719476736",
                   "ENGINE_UPDATES=1", "ENGINE_UPDATE_HEALTH_TIMEOUT_SECS=5", NULL};
    assert_int_equal(run(&c, argv, env, err), CONFIG_RUN);
    assert_true(c.engine_updates);
    assert_int_equal(c.engine_update_health_timeout_secs, 5);
    assert_string_equal(c.listen_addr, "::");
    assert_int_equal(c.listen_port, 8080);
    assert_string_equal(c.docker_host, "tcp://proxy:2375,unix:///x.sock");
    assert_string_equal(c.label_prefix, "com.example.wr-1_a");
    assert_int_equal(c.cache_ttl_secs, 0);
    assert_int_equal(c.log_level, LOG_TRACE);
    assert_int_equal(c.log_format, LOG_FORMAT_TEXT);
    assert_string_equal(c.webhook_token, "t0k!$x");
    assert_string_equal(c.webhook_hmac_secret, "hm4c");
    assert_int_equal(c.forward_timeout_secs, 300);
    assert_int_equal(c.forward_retries, 0);
    assert_int_equal(c.forward_concurrency, 10000);
    assert_int_equal(c.forward_queue_max, 10000000);
    assert_int_equal(c.debounce_ms, 0);
    assert_string_equal(c.tls_ca_file, "/dev/null");
    assert_true(c.tls_insecure);
    assert_int_equal(c.max_body_bytes, 1073741824);
    assert_true(c.max_buffered_bytes == 68719476736ULL);
    config_free(&c);
}

/* Every setting through a flag, alternating the two spellings. */
static void test_flags(void **state)
{
    (void)state;
    struct config c;
    char err[ERRLEN];
    char *argv[] = {"wr", "--listen-addr=127.0.0.1", "--listen-port", "4000",
                    "--docker-host=unix:///run/docker.sock", "--label-prefix", "wr",
                    "--cache-ttl-secs=86400", "--log-level", "warn", "--log-format=text",
                    "--webhook-token", "tok", "--webhook-hmac-secret=sec", "--forward-timeout-secs", "1",
                    "--forward-retries=20", "--forward-concurrency", "1", "--forward-queue-max=1",
                    "--debounce-ms", "600000", "--tls-ca-file=/dev/null", "--tls-insecure=true",
                    "--max-body-bytes", "1024", "--max-buffered-bytes=1024", NULL};
    char *env[] = {NULL};
    assert_int_equal(run(&c, argv, env, err), CONFIG_RUN);
    assert_string_equal(c.listen_addr, "127.0.0.1");
    assert_int_equal(c.listen_port, 4000);
    assert_string_equal(c.docker_host, "unix:///run/docker.sock");
    assert_string_equal(c.label_prefix, "wr");
    assert_int_equal(c.cache_ttl_secs, 86400);
    assert_int_equal(c.log_level, LOG_WARN);
    assert_int_equal(c.log_format, LOG_FORMAT_TEXT);
    assert_string_equal(c.webhook_token, "tok");
    assert_string_equal(c.webhook_hmac_secret, "sec");
    assert_int_equal(c.forward_timeout_secs, 1);
    assert_int_equal(c.forward_retries, 20);
    assert_int_equal(c.forward_concurrency, 1);
    assert_int_equal(c.forward_queue_max, 1);
    assert_int_equal(c.debounce_ms, 600000);
    assert_string_equal(c.tls_ca_file, "/dev/null");
    assert_true(c.tls_insecure);
    assert_int_equal(c.max_body_bytes, 1024);
    assert_int_equal(c.max_buffered_bytes, 1024);
    config_free(&c);
}

static void test_flags_override_env(void **state)
{
    (void)state;
    struct config c;
    char err[ERRLEN];
    char *argv[] = {"wr", "--listen-port", "4000", "--log-format=text", "--tls-insecure",
                    "--docker-host", "unix:///a.sock, tcp://10.0.0.1:2375", "--webhook-token=fl4g",
                    "--log-level", "error", "--log-level=debug", NULL};
    char *env[] = {"LISTEN_PORT=3500", "LISTEN_ADDR=::", "WEBHOOK_TOKEN=t0k", "LOG_FORMAT=json",
                   "MAX_BODY_BYTES=2048", "TLS_CA_FILE=/dev/null",
                   "TLS_INSECURE=0", "DOCKER_HOST=tcp://other:1", NULL};
    assert_int_equal(run(&c, argv, env, err), CONFIG_RUN);
    assert_int_equal(c.listen_port, 4000);   /* flag wins */
    assert_string_equal(c.listen_addr, "::");
    assert_int_equal(c.log_level, LOG_DEBUG);   /* the last of two flags */
    assert_int_equal(c.log_format, LOG_FORMAT_TEXT);
    assert_true(c.tls_insecure);
    assert_string_equal(c.docker_host, "unix:///a.sock, tcp://10.0.0.1:2375");
    /* Parsed once, here, with the blanks around the comma gone (issue 11 item 13). */
    assert_int_equal(c.nengines, 2);
    assert_string_equal(c.engines[0].text, "unix:///a.sock");
    assert_string_equal(c.engines[0].ep.unix_path, "/a.sock");
    assert_string_equal(c.engines[1].text, "tcp://10.0.0.1:2375");
    assert_string_equal(c.engines[1].ep.host, "10.0.0.1");
    assert_int_equal(c.engines[1].ep.port, 2375);
    assert_string_equal(c.webhook_token, "fl4g");   /* the flag wins over the env token */
    assert_null(c.webhook_hmac_secret);
    assert_int_equal(c.max_body_bytes, 2048);
    assert_string_equal(c.tls_ca_file, "/dev/null");
    config_free(&c);

    /* A flag also wins over an environment value that would be invalid. */
    char *a2[] = {"wr", "--listen-port=5000", NULL};
    char *e2[] = {"LISTEN_PORT=not-a-port", NULL};
    assert_int_equal(run(&c, a2, e2, err), CONFIG_RUN);
    assert_int_equal(c.listen_port, 5000);
    config_free(&c);

    /* A variable named twice in the environment: the first counts, as with getenv(). */
    char *a3[] = {"wr", NULL};
    char *e3[] = {"LISTEN_PORT=3001", "LISTEN_PORT=3002", NULL};
    assert_int_equal(run(&c, a3, e3, err), CONFIG_RUN);
    assert_int_equal(c.listen_port, 3001);
    config_free(&c);
}

static void test_tls_insecure_forms(void **state)
{
    (void)state;
    struct config c;
    char err[ERRLEN];
    char *env1[] = {"TLS_INSECURE=1", NULL};
    char *env0[] = {NULL};
    char *a1[] = {"wr", "--tls-insecure", NULL};
    assert_int_equal(run(&c, a1, env0, err), CONFIG_RUN);
    assert_true(c.tls_insecure);
    config_free(&c);
    char *a2[] = {"wr", "--tls-insecure=no", NULL};
    assert_int_equal(run(&c, a2, env1, err), CONFIG_RUN);
    assert_false(c.tls_insecure);
    config_free(&c);
    char *a3[] = {"wr", "--tls-insecure", "FALSE", NULL};
    assert_int_equal(run(&c, a3, env1, err), CONFIG_RUN);
    assert_false(c.tls_insecure);
    config_free(&c);
    char *a4[] = {"wr", "--tls-insecure", "--listen-port", "1", NULL};
    assert_int_equal(run(&c, a4, env0, err), CONFIG_RUN);
    assert_true(c.tls_insecure);
    assert_int_equal(c.listen_port, 1);
    config_free(&c);
    /* A bare boolean does not swallow the subcommand. */
    char *a5[] = {"wr", "--tls-insecure", "healthcheck", NULL};
    assert_int_equal(run(&c, a5, env0, err), CONFIG_HEALTHCHECK);
    assert_true(c.tls_insecure);
    config_free(&c);
    const char *words[] = {"TLS_INSECURE=true", "TLS_INSECURE=Yes", "TLS_INSECURE=1"};
    for (size_t i = 0; i < 3; i++) {
        char *e[] = {(char *)words[i], NULL};
        assert_int_equal(run(&c, (char *[]){"wr", NULL}, e, err), CONFIG_RUN);
        assert_true(c.tls_insecure);
        config_free(&c);
    }
}

static void test_integers(void **state)
{
    (void)state;
    struct config c;
    char err[ERRLEN];
    char *argv[] = {"wr", NULL};
    char *e1[] = {"LISTEN_PORT=0000000000000000000000008080", NULL};
    assert_int_equal(run(&c, argv, e1, err), CONFIG_RUN);
    assert_int_equal(c.listen_port, 8080);   /* leading zeros are still decimal */
    config_free(&c);
    const char *bad[] = {
        "LISTEN_PORT=+80",  "LISTEN_PORT= 80",  "LISTEN_PORT=80 ",  "LISTEN_PORT=0x50",
        "LISTEN_PORT=8.0",  "LISTEN_PORT=-0",   "LISTEN_PORT=1e3",  "LISTEN_PORT=٣",
        "MAX_BODY_BYTES=1073741825",            "MAX_BODY_BYTES=1023",
        "MAX_BUFFERED_BYTES=1023",              "MAX_BUFFERED_BYTES=68719476737",
        "MAX_BODY_BYTES=18446744073709551617",  "FORWARD_QUEUE_MAX=9223372036854775808",
        "FORWARD_QUEUE_MAX=10000001",           "CACHE_TTL_SECS=-1",
        "DEBOUNCE_MS=600001",                   "FORWARD_TIMEOUT_SECS=301",
        "FORWARD_CONCURRENCY=10001",            "FORWARD_RETRIES=-0",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) expect_env_error(bad[i]);
}

/* Every variable: one bad value gives an error line naming it. */
static void test_bad_values(void **state)
{
    (void)state;
    const char *cases[] = {
        "LISTEN_ADDR=localhost", "LISTEN_ADDR=", "LISTEN_ADDR=1.2.3.4.5", "LISTEN_ADDR=[::]",
        "LISTEN_ADDR=0.0.0.0:80", "LISTEN_PORT=0", "LISTEN_PORT=65536", "LISTEN_PORT=80x",
        "LISTEN_PORT=-1", "LISTEN_PORT=", "LISTEN_PORT=abc",
        "DOCKER_HOST=/var/run/docker.sock", "DOCKER_HOST=tcp://h", "DOCKER_HOST=http://h:1",
        "DOCKER_HOST=", "DOCKER_HOST=,", "DOCKER_HOST=unix://", "DOCKER_HOST=unix:///",
        "DOCKER_HOST=unix://relative.sock", "DOCKER_HOST=tcp://:2375", "DOCKER_HOST=tcp://h:0",
        "DOCKER_HOST=tcp://h:65536", "DOCKER_HOST=tcp://h:2375/", "DOCKER_HOST=tcp://a:b:2375",
        "DOCKER_HOST=tcp://[::1:2375", "DOCKER_HOST=tcp://[::1]", "DOCKER_HOST=tcp://[]:1",
        "DOCKER_HOST=tcp://h$:1", "DOCKER_HOST=unix:///ok.sock,tcp://bad", "DOCKER_HOST=TCP://h:1",
        "DOCKER_HOST=tcp://10.0.0.1:2375,", "DOCKER_HOST=unix:///a,,unix:///b", "DOCKER_HOST= , ",
        "DOCKER_HOST=unix:///a, unix:///a",
        "LABEL_PREFIX=Web", "LABEL_PREFIX=.x", "LABEL_PREFIX=x.", "LABEL_PREFIX=", "LABEL_PREFIX=a b",
        "LABEL_PREFIX=a/b", "CACHE_TTL_SECS=86401", "CACHE_TTL_SECS=x", "LOG_LEVEL=verbose",
        "LOG_LEVEL=", "LOG_LEVEL=warning", "LOG_FORMAT=xml", "LOG_FORMAT=", "FORWARD_TIMEOUT_SECS=0",
        "FORWARD_RETRIES=21", "FORWARD_CONCURRENCY=0", "FORWARD_QUEUE_MAX=99999999999999999999",
        "FORWARD_QUEUE_MAX=0", "DEBOUNCE_MS=1e3", "TLS_CA_FILE=/nonexistent/ca.pem", "TLS_CA_FILE=",
        "TLS_CA_FILE=/", "TLS_INSECURE=maybe", "TLS_INSECURE=", "TLS_INSECURE=2", "MAX_BODY_BYTES=10",
        "WEBHOOK_TOKEN=a b", "WEBHOOK_TOKEN=caf\xc3\xa9", "WEBHOOK_HMAC_SECRET=tab\there",
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) expect_env_error(cases[i]);
}

static void test_good_shapes(void **state)
{
    (void)state;
    const char *cases[] = {
        "DOCKER_HOST=tcp://[::1]:2375",       "DOCKER_HOST=\ttcp://10.0.0.1:2375 ",
        "DOCKER_HOST=tcp://docker_proxy:2375", "DOCKER_HOST=unix:///a , unix:///b",
        "LISTEN_ADDR=::1",                    "LISTEN_ADDR=fe80::1",
        "LISTEN_ADDR=::ffff:127.0.0.1",       "LABEL_PREFIX=a",
        "LABEL_PREFIX=-a_b-",                 "LOG_LEVEL=Error",
        "LOG_FORMAT=JSON",                    "TLS_CA_FILE=/dev/null",
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct config c;
        char err[ERRLEN];
        char *argv[] = {"wr", NULL};
        char *env[] = {(char *)cases[i], NULL};
        if (run(&c, argv, env, err) != CONFIG_RUN) fail_msg("%s refused: %s", cases[i], err);
        config_free(&c);
    }
}

static void test_error_text(void **state)
{
    (void)state;
    char *argv[] = {"wr", NULL};
    struct config c;
    char err[ERRLEN];
    char *e1[] = {"LISTEN_PORT=abc", NULL};
    assert_int_equal(run(&c, argv, e1, err), CONFIG_ERROR);
    assert_string_equal(err, "LISTEN_PORT: expected an integer 1-65535, got \"abc\"");
    config_free(&c);

    /* A value with a newline still gives one line. */
    char *e2[] = {"LOG_LEVEL=info\nX", NULL};
    assert_int_equal(run(&c, argv, e2, err), CONFIG_ERROR);
    assert_string_equal(err, "LOG_LEVEL: expected one of trace, debug, info, warn, error, got \"info\\x0aX\"");
    config_free(&c);

    /* A huge value is cut short. */
    char big[4096 + 16];
    snprintf(big, sizeof big, "LABEL_PREFIX=%04096d", 0);
    big[13] = 'A';
    char *e3[] = {big, NULL};
    assert_int_equal(run(&c, argv, e3, err), CONFIG_ERROR);
    assert_true(strlen(err) < 300);
    assert_non_null(strstr(err, "...\""));
    config_free(&c);

    /* The file's problem is said. */
    char *e4[] = {"TLS_CA_FILE=/nonexistent/ca.pem", NULL};
    assert_int_equal(run(&c, argv, e4, err), CONFIG_ERROR);
    assert_non_null(strstr(err, "readable"));
    assert_non_null(strstr(err, "/nonexistent/ca.pem"));
    assert_non_null(strstr(err, "No such file"));
    config_free(&c);
    char *e5[] = {"TLS_CA_FILE=/tmp", NULL};
    assert_int_equal(run(&c, argv, e5, err), CONFIG_ERROR);
    assert_non_null(strstr(err, "directory"));
    config_free(&c);

    /* DOCKER_HOST says which entry is wrong, and how. */
    char *e6[] = {"DOCKER_HOST=unix:///a , unix:///b,", NULL};
    assert_int_equal(run(&c, argv, e6, err), CONFIG_ERROR);
    assert_string_equal(err, "DOCKER_HOST: expected unix:///path/to/docker.sock or tcp://host:port, "
                             "comma-separated, got \"unix:///a , unix:///b,\" (entry 3 is empty)");
    config_free(&c);
    char *e7[] = {"DOCKER_HOST=tcp://h:1,tcp://h", NULL};
    assert_int_equal(run(&c, argv, e7, err), CONFIG_ERROR);
    assert_non_null(strstr(err, "(entry 2: tcp:// needs host:port)"));
    config_free(&c);

    /* A small error buffer is filled, not overrun. */
    char small[16];
    config_defaults(&c);
    assert_int_equal(config_parse(&c, 1, argv, e1, stdout, small, sizeof small), CONFIG_ERROR);
    assert_string_equal(small, "LISTEN_PORT: ex");
    config_free(&c);
}

static void test_ca_file_unreadable(void **state)
{
    (void)state;
    if (geteuid() == 0) skip();   /* root reads anything */
    char path[] = "/tmp/wr-test-ca-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    assert_int_equal(chmod(path, 0), 0);
    char assignment[64];
    snprintf(assignment, sizeof assignment, "TLS_CA_FILE=%s", path);
    expect_env_error(assignment);
    unlink(path);
}

static void test_secret_not_echoed(void **state)
{
    (void)state;
    struct config c;
    char err[ERRLEN];
    char *argv[] = {"wr", NULL};
    char *e1[] = {"WEBHOOK_TOKEN=has space-s3cr3t", NULL};
    assert_int_equal(run(&c, argv, e1, err), CONFIG_ERROR);
    assert_non_null(strstr(err, "WEBHOOK_TOKEN: expected"));
    assert_null(strstr(err, "s3cr3t"));
    config_free(&c);
    char *e2[] = {"WEBHOOK_HMAC_SECRET=s3cr3t\x01", NULL};
    assert_int_equal(run(&c, argv, e2, err), CONFIG_ERROR);
    assert_non_null(strstr(err, "WEBHOOK_HMAC_SECRET: expected"));
    assert_null(strstr(err, "s3cr3t"));
    config_free(&c);

    char *env[] = {NULL};
    char *a1[] = {"wr", "--webhook-token=s3cr3t with space", NULL};
    assert_int_equal(run(&c, a1, env, err), CONFIG_ERROR);
    assert_non_null(strstr(err, "--webhook-token (WEBHOOK_TOKEN)"));
    assert_null(strstr(err, "s3cr3t"));
    config_free(&c);
    /* The rest of a token split by the shell. */
    char *a2[] = {"wr", "--webhook-hmac-secret", "s3cr3t", "t4il", NULL};
    assert_int_equal(run(&c, a2, env, err), CONFIG_ERROR);
    assert_null(strstr(err, "s3cr3t"));
    assert_null(strstr(err, "t4il"));
    config_free(&c);
    char *a3[] = {"wr", "--webhook-token=s3cr3t", "t4il", NULL};
    assert_int_equal(run(&c, a3, env, err), CONFIG_ERROR);
    assert_null(strstr(err, "t4il"));
    config_free(&c);
    /* A misspelt flag: its name is shown, not its value. */
    char *a4[] = {"wr", "--webhok-token=s3cr3t", NULL};
    assert_int_equal(run(&c, a4, env, err), CONFIG_ERROR);
    assert_non_null(strstr(err, "--webhok-token"));
    assert_null(strstr(err, "s3cr3t"));
    config_free(&c);
}

/* "WEBHOOK_TOKEN=" (a compose file's typo, an unset shell variable) must not
 * quietly mean "auth off": it stops start-up with one line naming it. */
static void test_empty_secret_refused(void **state)
{
    (void)state;
    char *none[] = {"wr", NULL};
    char *e1[] = {"PATH=/bin", "WEBHOOK_TOKEN=", NULL};
    expect_error(none, e1, "WEBHOOK_TOKEN: set but empty");
    char *e2[] = {"WEBHOOK_HMAC_SECRET=", "WEBHOOK_TOKEN=t0k", NULL};
    expect_error(none, e2, "WEBHOOK_HMAC_SECRET: set but empty");
    char *env[] = {NULL};
    char *a1[] = {"wr", "--webhook-token=", NULL};
    expect_error(a1, env, "--webhook-token (WEBHOOK_TOKEN): set but empty");
    char *a2[] = {"wr", "--webhook-hmac-secret", "", NULL};
    expect_error(a2, env, "--webhook-hmac-secret (WEBHOOK_HMAC_SECRET): set but empty");
    /* A flag does not rescue an empty environment value it does not replace. */
    char *a3[] = {"wr", "--webhook-token=t0k", NULL};
    char *e3[] = {"WEBHOOK_HMAC_SECRET=", NULL};
    expect_error(a3, e3, "WEBHOOK_HMAC_SECRET: set but empty");
    /* Unset stays "auth off". */
    struct config c;
    char err[ERRLEN];
    char *e4[] = {"PATH=/bin", NULL};
    assert_int_equal(run(&c, none, e4, err), CONFIG_RUN);
    assert_null(c.webhook_token);
    assert_null(c.webhook_hmac_secret);
    config_free(&c);
}

static void test_flag_errors(void **state)
{
    (void)state;
    char *env[] = {NULL};
    char *a1[] = {"wr", "--listen-port", "abc", NULL};
    expect_error(a1, env, "--listen-port (LISTEN_PORT): expected an integer 1-65535, got \"abc\"");
    char *a1b[] = {"wr", "--max-body-bytes=1", NULL};
    expect_error(a1b, env, "--max-body-bytes (MAX_BODY_BYTES): expected");
    char *a1c[] = {"wr", "--tls-insecure=maybe", NULL};
    expect_error(a1c, env, "--tls-insecure (TLS_INSECURE): expected");
    char *a2[] = {"wr", "--nope", NULL};
    expect_error(a2, env, "unknown flag \"--nope\"");
    char *a2b[] = {"wr", "--LISTEN-PORT=1", NULL};
    expect_error(a2b, env, "unknown flag");
    char *a2c[] = {"wr", "-x", NULL};
    expect_error(a2c, env, "unknown flag \"-x\"");
    char *a2d[] = {"wr", "--", NULL};
    expect_error(a2d, env, "unknown flag");
    char *a2e[] = {"wr", "--listen-port3000", NULL};
    expect_error(a2e, env, "unknown flag");
    char *a3[] = {"wr", "--listen-port", NULL};
    expect_error(a3, env, "--listen-port (LISTEN_PORT): a value is required");
    char *a3b[] = {"wr", "--webhook-token", "--listen-port", "1", NULL};
    expect_error(a3b, env, "--webhook-token (WEBHOOK_TOKEN): a value is required");
    char *a4[] = {"wr", "extra", NULL};
    expect_error(a4, env, "unexpected argument \"extra\"");
    char *a5[] = {"wr", "healthcheck", "healthcheck", NULL};
    expect_error(a5, env, "unexpected argument");
    char *a6[] = {"wr", "-", NULL};
    expect_error(a6, env, "unexpected argument");
}

/* Not inlined: gcc -O2 then mistakes pointers into the memstream buffer for
 * pointers to this frame (-Wdangling-pointer). */
__attribute__((noinline)) static char *capture(char **argv, char **env, enum config_action want)
{
    struct config c;
    char err[ERRLEN];
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    assert_non_null(out);
    assert_int_equal(run_out(&c, argv, env, err, out), want);
    config_free(&c);
    fclose(out);
    return text;
}

static void test_help(void **state)
{
    (void)state;
    const char *want[] = {
        "LISTEN_ADDR",          "--listen-addr",          "0.0.0.0",
        "LISTEN_PORT",          "--listen-port",          "3000",
        "DOCKER_HOST",          "--docker-host",          "unix:///var/run/docker.sock",
        "LABEL_PREFIX",         "--label-prefix",         "webhook-router",
        "CACHE_TTL_SECS",       "--cache-ttl-secs",       "60",
        "LOG_LEVEL",            "--log-level",            "info",
        "LOG_FORMAT",           "--log-format",           "json",
        "WEBHOOK_TOKEN",        "--webhook-token",        "unset",
        "WEBHOOK_HMAC_SECRET",  "--webhook-hmac-secret",  "unset",
        "FORWARD_TIMEOUT_SECS", "--forward-timeout-secs", "10",
        "FORWARD_RETRIES",      "--forward-retries",      "3",
        "FORWARD_CONCURRENCY",  "--forward-concurrency",  "64",
        "FORWARD_QUEUE_MAX",    "--forward-queue-max",    "10000",
        "DEBOUNCE_MS",          "--debounce-ms",          "1000",
        "TLS_CA_FILE",          "--tls-ca-file",          "system bundle",
        "TLS_INSECURE",         "--tls-insecure",         "0",
        "MAX_BODY_BYTES",       "--max-body-bytes",       "1048576",
        "MAX_BUFFERED_BYTES",   "--max-buffered-bytes",   "67108864",
        "ENGINE_UPDATES",       "--engine-updates",       "0",
        "ENGINE_UPDATE_HEALTH_TIMEOUT_SECS", "--engine-update-health-timeout-secs", "60",
    };
    /* --help works even when the environment holds an invalid value. */
    char *env[] = {"LISTEN_PORT=broken", NULL};
    char *a1[] = {"wr", "--help", NULL};
    char *text = capture(a1, env, CONFIG_EXIT_OK);
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i += 3) {
        /* The flag, its variable and its default are on one line. */
        char needle[64];
        snprintf(needle, sizeof needle, "\n  %s ", want[i + 1]);
        const char *line = strstr(text, needle);
        if (!line) fail_msg("--help lacks a line for %s", want[i + 1]);
        line++;
        const char *eol = strchr(line, '\n');
        size_t n = eol ? (size_t)(eol - line) : strlen(line);
        char *one = strndup(line, n);
        if (!strstr(one, want[i]) || !strstr(one, want[i + 2]))
            fail_msg("--help line \"%s\" lacks %s or %s", one, want[i], want[i + 2]);
        free(one);
    }
    assert_non_null(strstr(text, "healthcheck"));
    assert_non_null(strstr(text, "--version"));
    free(text);

    char *a2[] = {"wr", "-h", NULL};
    text = capture(a2, env, CONFIG_EXIT_OK);
    assert_non_null(strstr(text, "--max-body-bytes"));
    free(text);
}

static void test_version(void **state)
{
    (void)state;
    char *env[] = {NULL};
    char *argv[] = {"wr", "--version", NULL};
    char *text = capture(argv, env, CONFIG_EXIT_OK);
    assert_string_equal(text, "webhook-router " WR_VERSION "\n");
    free(text);
}

static void test_healthcheck(void **state)
{
    (void)state;
    struct config c;
    char err[ERRLEN];
    char *env[] = {"LISTEN_PORT=3123", "LISTEN_ADDR=::1", NULL};
    char *a1[] = {"wr", "healthcheck", NULL};
    assert_int_equal(run(&c, a1, env, err), CONFIG_HEALTHCHECK);
    assert_int_equal(c.listen_port, 3123);
    assert_string_equal(c.listen_addr, "::1");
    config_free(&c);
    char *a2[] = {"wr", "--listen-port=3999", "healthcheck", NULL};
    assert_int_equal(run(&c, a2, env, err), CONFIG_HEALTHCHECK);
    assert_int_equal(c.listen_port, 3999);
    config_free(&c);
    char *a3[] = {"wr", "healthcheck", "--listen-port", "4001", NULL};
    assert_int_equal(run(&c, a3, env, err), CONFIG_HEALTHCHECK);
    assert_int_equal(c.listen_port, 4001);
    config_free(&c);
    /* The configuration is still validated. */
    char *bad[] = {"LISTEN_PORT=x", NULL};
    expect_error(a1, bad, "LISTEN_PORT: expected");
}

/* Issue 13: the registry settings and the registry-digest subcommand. */
static void test_registry_settings(void **state)
{
    (void)state;
    struct config c;
    char err[ERRLEN];
    char *env[] = {"INSECURE_REGISTRIES=reg.local:5000, 127.0.0.1:5000,[::1]:5000", "REGISTRY_AUTH_FILE=/dev/null", NULL};
    char *a1[] = {"wr", "registry-digest", "reg.local:5000/team/app:v1", NULL};
    assert_int_equal(run(&c, a1, env, err), CONFIG_REGISTRY_DIGEST);
    assert_string_equal(c.registry_digest_ref, "reg.local:5000/team/app:v1");
    assert_string_equal(c.insecure_registries, "reg.local:5000, 127.0.0.1:5000,[::1]:5000");
    assert_string_equal(c.registry_auth_file, "/dev/null");
    config_free(&c);
    char *env0[] = {NULL};
    char *a2[] = {"wr", "--insecure-registries", "r:1", "registry-digest", "redis:7", NULL};
    assert_int_equal(run(&c, a2, env0, err), CONFIG_REGISTRY_DIGEST);
    assert_string_equal(c.insecure_registries, "r:1");
    assert_null(c.registry_auth_file);
    config_free(&c);
    char *a3[] = {"wr", "registry-digest", NULL};
    expect_error(a3, env0, "registry-digest: an image reference is required");
    char *bad1[] = {"INSECURE_REGISTRIES=http://r:1/", NULL};
    expect_error(a1, bad1, "INSECURE_REGISTRIES: expected host[:port] names");
    char *bad2[] = {"INSECURE_REGISTRIES=,", NULL};
    expect_error(a1, bad2, "INSECURE_REGISTRIES: expected");
    char *bad3[] = {"REGISTRY_AUTH_FILE=/nonexistent/config.json", NULL};
    expect_error(a1, bad3, "REGISTRY_AUTH_FILE: expected a readable file");
}

/* Issue 21 item 12: Watchtower's POLL_INTERVAL=300 is seconds. */
static void test_poll_interval_seconds(void **state)
{
    (void)state;
    struct config c;
    char err[ERRLEN];
    char *argv[] = {"wr", NULL};
    char *env[] = {"POLL_INTERVAL=300", NULL};
    assert_int_equal(run(&c, argv, env, err), CONFIG_RUN);
    assert_int_equal(c.poll_interval_ms, 300000);
    config_free(&c);
    char *off[] = {"POLL_INTERVAL=0", NULL};
    assert_int_equal(run(&c, argv, off, err), CONFIG_RUN);
    assert_int_equal(c.poll_interval_ms, 0);
    config_free(&c);
    char *bad[] = {"POLL_INTERVAL=5x", NULL};
    expect_error(argv, bad, "POLL_INTERVAL: expected an interval of at least 1s such as 30s, 5m or 1h, a number of seconds");
    char *env0[] = {NULL};
    char *a1[] = {"wr", "--help", NULL};
    char *text = capture(a1, env0, CONFIG_EXIT_OK);
    assert_non_null(strstr(text, "a bare number of seconds"));
    free(text);
}

static const char *meant_for(const char *name)
{
    const char *meant = "(not a suspect)";
    if (!config_env_suspect(name, strlen(name), &meant)) return "(not a suspect)";
    return meant ? meant : "(prefix)";
}

/* Issue 21 item 9: names one edit away from a setting, or of its family. */
static void test_env_suspects(void **state)
{
    (void)state;
    assert_string_equal(meant_for("ENGINE_UPDATE"), "ENGINE_UPDATES");      /* deletion */
    assert_string_equal(meant_for("POLL_INTERVALL"), "POLL_INTERVAL");      /* insertion */
    assert_string_equal(meant_for("POLL_INTREVAL"), "POLL_INTERVAL");       /* swap */
    assert_string_equal(meant_for("LISTEN_PORD"), "LISTEN_PORT");           /* substitution */
    assert_string_equal(meant_for("listen_port"), "LISTEN_PORT");           /* case */
    assert_string_equal(meant_for("DOCKER_HOTS"), "DOCKER_HOST");
    assert_string_equal(meant_for("FORWARD_TIMEOUT"), "(prefix)");
    assert_string_equal(meant_for("WEBHOOK_SECRET"), "(prefix)");
    assert_string_equal(meant_for("REGISTRY_AUTH"), "(prefix)");
    assert_string_equal(meant_for("LOG_LEVELS_X"), "(prefix)");
    const char *fine[] = {"PATH", "HOME", "HOSTNAME", "TERM", "LOGNAME", "SSL_CERT_FILE", "LANG",
                          "DOCKER_CERT_PATH", "DOCKER_TLS_VERIFY", "DOCKER_CONFIG", "DOCKER_CONTEXT",
                          "DOCKER_API_VERSION", "NOTIFY_OPS_URL", "NOTIFY_OPS_EVENTS", "LISTEN_PORT",
                          "POLL_INTERVAL", "POLL", "FORWARD",
                          /* Kubernetes services "registry", "webhook-router"; Docker links. */
                          "REGISTRY_SERVICE_HOST", "REGISTRY_SERVICE_PORT", "REGISTRY_SERVICE_PORT_HTTP",
                          "REGISTRY_PORT", "REGISTRY_PORT_5000_TCP_ADDR", "WEBHOOK_ROUTER_PORT_3000_TCP",
                          "WEBHOOK_ROUTER_SERVICE_HOST", "LOG_NAME", "LOG_ENV_LEVEL"};
    for (size_t i = 0; i < sizeof fine / sizeof fine[0]; i++)
        if (strcmp(meant_for(fine[i]), "(not a suspect)") != 0) fail_msg("%s is a suspect", fine[i]);

    /* config_parse keeps them for the start-up warning, once each. */
    struct config c;
    char err[ERRLEN];
    char *argv[] = {"wr", NULL};
    char *env[] = {"PATH=/bin", "ENGINE_UPDATE=1", "POLL_INTERVALL=5m", "ENGINE_UPDATE=0", "HOSTNAME=x", NULL};
    assert_int_equal(run(&c, argv, env, err), CONFIG_RUN);
    assert_int_equal(c.nunknown, 2);
    assert_string_equal(c.unknown[0].name, "ENGINE_UPDATE");
    assert_string_equal(c.unknown[0].meant, "ENGINE_UPDATES");
    assert_string_equal(c.unknown[1].name, "POLL_INTERVALL");
    assert_false(c.engine_updates);
    config_free(&c);
}

/* Issue 21 item 9: the starting line's list of settings that differ. */
static void test_describe_changes(void **state)
{
    (void)state;
    struct config c;
    char err[ERRLEN];
    char *argv[] = {"wr", "--listen-port", "3000", NULL};
    char *env[] = {"POLL_INTERVAL=300", "WEBHOOK_TOKEN=s3cret", "ENGINE_UPDATES=1", "LOG_LEVEL=info",
                   "FORWARD_RETRIES=5", NULL};
    assert_int_equal(run(&c, argv, env, err), CONFIG_RUN);
    struct buf b;
    buf_init(&b);
    config_describe_changes(&c, &b);
    assert_string_equal(buf_cstr(&b), "WEBHOOK_TOKEN=set FORWARD_RETRIES=5 ENGINE_UPDATES=1 POLL_INTERVAL=300s");
    buf_free(&b);
    config_free(&c);
    char *env0[] = {NULL};
    assert_int_equal(run(&c, argv, env0, err), CONFIG_RUN);
    buf_init(&b);
    config_describe_changes(&c, &b);
    assert_string_equal(buf_cstr(&b), "");
    buf_free(&b);
    config_free(&c);
}

/* Issue 21: the start-up error is written in LOG_FORMAT, even when the
 * bad value comes before LOG_FORMAT in the environment. */
static void test_error_format(void **state)
{
    (void)state;
    struct config c;
    char err[ERRLEN];
    char *argv[] = {"wr", NULL};
    char *e1[] = {"LISTEN_PORT=x", "LOG_FORMAT=text", NULL};
    assert_int_equal(run(&c, argv, e1, err), CONFIG_ERROR);
    assert_int_equal(c.log_format, LOG_FORMAT_TEXT);
    config_free(&c);
    char *e2[] = {"LOG_FORMAT=text", "LISTEN_PORT=x", NULL};
    char *a2[] = {"wr", "--log-format", "json", NULL};
    assert_int_equal(run(&c, a2, e2, err), CONFIG_ERROR);
    assert_int_equal(c.log_format, LOG_FORMAT_JSON);
    config_free(&c);
    char *e3[] = {"LISTEN_PORT=x", NULL};
    assert_int_equal(run(&c, argv, e3, err), CONFIG_ERROR);
    assert_int_equal(c.log_format, LOG_FORMAT_JSON);
    config_free(&c);
}

/* The delivery history's settings, and ADMIN_TOKEN (a secret). */
static void test_history_settings(void **state)
{
    (void)state;
    struct config c;
    char err[ERRLEN];
    char *a[] = {"wr", NULL};
    char *env0[] = {NULL};
    assert_int_equal(run(&c, a, env0, err), CONFIG_RUN);
    assert_int_equal(c.deploy_confirm_secs, 300);
    assert_int_equal(c.history_size, 1000);
    assert_null(c.admin_token);
    config_free(&c);
    char *env[] = {"DEPLOY_CONFIRM_SECS=0", "HISTORY_SIZE=50", "ADMIN_TOKEN=s3cret-admin", NULL};
    assert_int_equal(run(&c, a, env, err), CONFIG_RUN);
    assert_int_equal(c.deploy_confirm_secs, 0);
    assert_int_equal(c.history_size, 50);
    assert_string_equal(c.admin_token, "s3cret-admin");
    config_free(&c);
    char *bad1[] = {"HISTORY_SIZE=0", NULL};
    expect_error(a, bad1, "HISTORY_SIZE:");
    char *bad2[] = {"HISTORY_SIZE=1000001", NULL};
    expect_error(a, bad2, "HISTORY_SIZE:");
    char *bad3[] = {"DEPLOY_CONFIRM_SECS=-1", NULL};
    expect_error(a, bad3, "DEPLOY_CONFIRM_SECS:");
    char *bad4[] = {"ADMIN_TOKEN=", NULL};
    expect_error(a, bad4, "ADMIN_TOKEN:");
    char *bad5[] = {"ADMIN_TOKEN=has space", NULL};
    expect_error(a, bad5, "ADMIN_TOKEN:");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),         cmocka_unit_test(test_env_values),
        cmocka_unit_test(test_flags),            cmocka_unit_test(test_flags_override_env),
        cmocka_unit_test(test_tls_insecure_forms), cmocka_unit_test(test_integers),
        cmocka_unit_test(test_bad_values),       cmocka_unit_test(test_good_shapes),
        cmocka_unit_test(test_error_text),       cmocka_unit_test(test_ca_file_unreadable),
        cmocka_unit_test(test_secret_not_echoed), cmocka_unit_test(test_empty_secret_refused),
        cmocka_unit_test(test_flag_errors),
        cmocka_unit_test(test_help),             cmocka_unit_test(test_version),
        cmocka_unit_test(test_healthcheck),      cmocka_unit_test(test_registry_settings),
        cmocka_unit_test(test_poll_interval_seconds), cmocka_unit_test(test_env_suspects),
        cmocka_unit_test(test_describe_changes), cmocka_unit_test(test_error_format),
        cmocka_unit_test(test_history_settings),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
