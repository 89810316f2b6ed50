/* Registry credentials from a Docker config.json, API host names, the
 * X-Registry-Auth header and WWW-Authenticate challenges. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "registry_auth.h"

static struct registry_auth *parse(const char *json, char *err, size_t errlen)
{
    err[0] = '\0';
    return registry_auth_parse(json, strlen(json), err, errlen);
}

static void test_api_host(void **s)
{
    (void)s;
    char out[64];
    const char *hub[] = {"docker.io", "index.docker.io", "https://index.docker.io/v1/", "Registry-1.Docker.IO",
                         "registry.hub.docker.com", ""};
    for (size_t i = 0; i < sizeof hub / sizeof hub[0]; i++) {
        registry_api_host(hub[i], out, sizeof out);
        assert_string_equal(out, "registry-1.docker.io");
    }
    registry_api_host("https://Reg.Local:5000", out, sizeof out);
    assert_string_equal(out, "reg.local:5000");
    registry_api_host("ghcr.io", out, sizeof out);
    assert_string_equal(out, "ghcr.io");
    registry_api_host("http://127.0.0.1:5000/v2/", out, sizeof out);
    assert_string_equal(out, "127.0.0.1:5000");
}

static void test_auth_and_username_password(void **s)
{
    (void)s;
    char err[256];
    /* dXNlcjpwYTpzcw== is "user:pa:ss": only the first colon splits. */
    struct registry_auth *a = parse("{\"auths\":{"
                                    "\"https://index.docker.io/v1/\":{\"auth\":\"dXNlcjpwYTpzcw==\"},"
                                    "\"https://Reg.Local:5000\":{\"username\":\"bob\",\"password\":\"s3cret\"},"
                                    "\"empty.example\":{}},"
                                    "\"credHelpers\":{\"123.dkr.ecr.example\":\"ecr-login\"}}",
                                    err, sizeof err);
    assert_non_null(a);
    const char *u, *p;
    assert_true(registry_auth_lookup(a, "registry-1.docker.io", &u, &p));
    assert_string_equal(u, "user");
    assert_string_equal(p, "pa:ss");
    assert_true(registry_auth_lookup(a, "docker.io", &u, &p));
    assert_true(registry_auth_lookup(a, "reg.local:5000", &u, &p));
    assert_string_equal(u, "bob");
    assert_string_equal(p, "s3cret");
    assert_false(registry_auth_lookup(a, "empty.example", &u, &p));
    assert_false(registry_auth_lookup(a, "reg.local", &u, &p));
    assert_true(registry_auth_needs_helper(a, "123.dkr.ecr.example"));
    assert_false(registry_auth_needs_helper(a, "reg.local:5000"));
    assert_false(registry_auth_needs_helper(a, "ghcr.io"));
    registry_auth_free(a);

    /* auth without padding, and the URL alphabet, both decode. */
    a = parse("{\"auths\":{\"r:1\":{\"auth\":\"YTpi\"},\"r:2\":{\"auth\":\"YTpiYw\"}}}", err, sizeof err);
    assert_non_null(a);
    assert_true(registry_auth_lookup(a, "r:2", &u, &p));
    assert_string_equal(p, "bc");
    registry_auth_free(a);

    /* A key given twice: the last one counts, as with Docker. */
    a = parse("{\"auths\":{\"r:1\":{\"auth\":\"YTpi\"},\"r:1\":{\"auth\":\"YTpj\"}}}", err, sizeof err);
    assert_non_null(a);
    assert_true(registry_auth_lookup(a, "r:1", &u, &p));
    assert_string_equal(p, "c");
    registry_auth_free(a);
}

static void test_creds_store(void **s)
{
    (void)s;
    char err[256];
    struct registry_auth *a = parse("{\"auths\":{\"docker.io\":{},\"mine:5000\":{\"auth\":\"YTpi\"}},"
                                    "\"credsStore\":\"desktop\"}",
                                    err, sizeof err);
    assert_non_null(a);
    assert_true(registry_auth_needs_helper(a, "registry-1.docker.io"));
    assert_true(registry_auth_needs_helper(a, "ghcr.io"));
    assert_false(registry_auth_needs_helper(a, "mine:5000"));   /* its inline credentials work */
    registry_auth_free(a);
    assert_false(registry_auth_needs_helper(NULL, "ghcr.io"));
    assert_false(registry_auth_lookup(NULL, "ghcr.io", NULL, NULL));
}

/* Every malformed file is refused with a line that names what is wrong and
 * never repeats a value from the file. */
static void test_malformed(void **s)
{
    (void)s;
    struct {
        const char *json;
        const char *says;
    } cases[] = {
        {"{\"auths\":{\"r\":{\"auth\":\"SECRETSECRET\" ", "not valid JSON (line 1"},
        {"[\"SECRETSECRET\"]", "is not a JSON object"},
        {"{\"auths\":[\"SECRETSECRET\"]}", "\"auths\" is not an object"},
        {"{\"auths\":{\"r\":\"SECRETSECRET\"}}", "auths entry \"r\" is not an object"},
        {"{\"auths\":{\"r\":{\"auth\":12345}}}", "\"auth\" is not a string"},
        {"{\"auths\":{\"r\":{\"auth\":\"SECRET*SECRET\"}}}", "\"auth\" is not valid base64"},
        /* "SECRETSECRET" has no colon once decoded */
        {"{\"auths\":{\"r\":{\"auth\":\"U0VDUkVUU0VDUkVU\"}}}", "not base64 of user:password"},
        {"{\"auths\":{\"r\":{\"username\":\"u\",\"password\":7}}}", "must both be strings"},
        {"{\"auths\":{\"r\":{\"username\":\"SECRETSECRET\"}}}", "must both be strings"},
        {"{\"auths\":{\"r\":{\"auth\":\"OlNFQ1JFVFNFQ1JFVA==\"}}}", "empty user name"},
        {"{\"credsStore\":{}}", "\"credsStore\" is not a string"},
        {"{\"credHelpers\":\"SECRETSECRET\"}", "\"credHelpers\" is not an object"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char err[256];
        struct registry_auth *a = parse(cases[i].json, err, sizeof err);
        if (a || !strstr(err, cases[i].says) || strstr(err, "SECRET"))
            fail_msg("case %zu: got %p, \"%s\"", i, (void *)a, err);
        assert_true(strncmp(err, "config.json: ", 13) == 0);
    }
}

static void test_load_file(void **s)
{
    (void)s;
    char err[256] = "";
    assert_null(registry_auth_load("/nonexistent/wr/config.json", err, sizeof err));
    assert_string_equal(err, "registry auth file /nonexistent/wr/config.json: No such file or directory");
    char path[] = "/tmp/wr-test-auth-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    const char bad[] = "{\"auths\":{\"r\":{\"auth\":\"%%%\"}}}";
    assert_int_equal(write(fd, bad, sizeof bad - 1), (ssize_t)(sizeof bad - 1));
    close(fd);
    assert_null(registry_auth_load(path, err, sizeof err));
    char want[256];
    snprintf(want, sizeof want, "registry auth file %s: auths entry \"r\": \"auth\" is not valid base64", path);
    assert_string_equal(err, want);
    FILE *f = fopen(path, "w");
    fputs("{\"auths\":{\"r:5000\":{\"auth\":\"YTpi\"}}}", f);
    fclose(f);
    struct registry_auth *a = registry_auth_load(path, err, sizeof err);
    assert_non_null(a);
    assert_true(registry_auth_lookup(a, "r:5000", NULL, NULL));
    registry_auth_free(a);
    unlink(path);
}

/* base64url decode, for checking the header. */
static size_t b64url_decode(const char *in, char *out)
{
    size_t o = 0;
    unsigned acc = 0;
    int bits = 0;
    for (const char *p = in; *p && *p != '='; p++) {
        const char *tab = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        const char *at = strchr(tab, *p);
        assert_non_null(at);
        acc = (acc << 6) | (unsigned)(at - tab);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (char)((acc >> bits) & 0xff);
        }
    }
    out[o] = '\0';
    return o;
}

static void test_registry_auth_header(void **s)
{
    (void)s;
    char err[256];
    struct registry_auth *a = parse("{\"auths\":{\"docker.io\":{\"username\":\"u\",\"password\":\"p\\\"?>\"},"
                                    "\"reg:5000\":{\"auth\":\"YTpi\"}}}",
                                    err, sizeof err);
    assert_non_null(a);
    char *h = registry_auth_header(a, "index.docker.io");
    assert_non_null(h);
    assert_null(strpbrk(h, "+/"));   /* URL alphabet */
    char plain[256];
    b64url_decode(h, plain);
    assert_string_equal(plain, "{\"username\":\"u\",\"password\":\"p\\\"?>\",\"serveraddress\":\"docker.io\"}");
    free(h);
    h = registry_auth_header(a, "reg:5000");
    b64url_decode(h, plain);
    assert_string_equal(plain, "{\"username\":\"a\",\"password\":\"b\",\"serveraddress\":\"reg:5000\"}");
    free(h);
    assert_null(registry_auth_header(a, "ghcr.io"));
    assert_null(registry_auth_header(NULL, "ghcr.io"));
    registry_auth_free(a);
}

static void test_challenge(void **s)
{
    (void)s;
    struct registry_challenge c;
    assert_int_equal(registry_challenge_parse("Bearer realm=\"https://auth.docker.io/token\",service=\"registry.docker.io\","
                                              "scope=\"repository:library/redis:pull\"",
                                              &c),
                     0);
    assert_true(c.bearer);
    assert_string_equal(c.realm, "https://auth.docker.io/token");
    assert_string_equal(c.service, "registry.docker.io");
    assert_string_equal(c.scope, "repository:library/redis:pull");
    registry_challenge_free(&c);

    /* Blanks around '=' and ',', escapes, unknown parameters, a bare token. */
    assert_int_equal(registry_challenge_parse("  bearer  realm = \"http://t/a\\\"b\" ,  error=\"insufficient_scope\","
                                              " service=reg ,scope=\"repository:a/b:pull,push\"",
                                              &c),
                     0);
    assert_true(c.bearer);
    assert_string_equal(c.realm, "http://t/a\"b");
    assert_string_equal(c.service, "reg");
    assert_string_equal(c.scope, "repository:a/b:pull,push");
    registry_challenge_free(&c);

    assert_int_equal(registry_challenge_parse("Basic realm=\"Registry Realm\"", &c), 0);
    assert_false(c.bearer);
    assert_string_equal(c.realm, "Registry Realm");
    assert_null(c.service);
    registry_challenge_free(&c);
    assert_int_equal(registry_challenge_parse("Basic", &c), 0);
    assert_string_equal(c.realm, "");
    registry_challenge_free(&c);

    const char *bad[] = {NULL, "", "Digest realm=\"x\"", "Bearer", "Bearer service=\"x\"", "Bearer realm=\"x",
                         "Bearer realm", "Bearer realm=\"x\" junk", "Bearerx realm=\"x\"", "Basic =x"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (registry_challenge_parse(bad[i], &c) != -EINVAL) fail_msg("accepted case %zu", i);
        assert_null(c.realm);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_api_host),         cmocka_unit_test(test_auth_and_username_password),
        cmocka_unit_test(test_creds_store),      cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_load_file),        cmocka_unit_test(test_registry_auth_header),
        cmocka_unit_test(test_challenge),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
