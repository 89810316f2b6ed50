/* URL parsing, redaction and encoding. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "url.h"

static void test_parse(void **state)
{
    (void)state;
    struct url u;
    assert_int_equal(url_parse("http://127.0.0.1:5099/hook", &u, NULL), 0);
    assert_false(u.tls);
    assert_string_equal(u.host, "127.0.0.1");
    assert_int_equal(u.port, 5099);
    assert_string_equal(u.path, "/hook");
    assert_string_equal(u.authority, "127.0.0.1:5099");
    url_free(&u);
    assert_int_equal(url_parse("HTTPS://Portainer:9443/api/stacks/webhooks/x?tag=1#frag", &u, NULL), 0);
    assert_true(u.tls);
    assert_string_equal(u.host, "portainer");
    assert_int_equal(u.port, 9443);
    assert_string_equal(u.path, "/api/stacks/webhooks/x?tag=1");
    url_free(&u);
    assert_int_equal(url_parse("https://h", &u, NULL), 0);
    assert_int_equal(u.port, 443);
    assert_string_equal(u.path, "/");
    assert_string_equal(u.authority, "h");
    url_free(&u);
    assert_int_equal(url_parse("http://h?x=1", &u, NULL), 0);
    assert_string_equal(u.path, "/?x=1");
    url_free(&u);
    assert_int_equal(url_parse("http://[::1]:8080/a", &u, NULL), 0);
    assert_string_equal(u.host, "::1");
    assert_string_equal(u.authority, "[::1]:8080");
    url_free(&u);
    assert_int_equal(url_parse("http://h:80/", &u, NULL), 0);
    assert_string_equal(u.authority, "h");
    url_free(&u);
}

static void test_parse_bad(void **state)
{
    (void)state;
    const char *bad[] = {"", "ftp://h/x", "h/x", "http://", "http:///x", "http://u:p@h/x",
                         "http://h:0/", "http://h:65536/", "http://h:x/", "http://h /x",
                         "http://[::1/x", "http://h\n/x", "http://ho$t/", "http://[::1]x/"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct url u;
        const char *why = NULL;
        if (url_parse(bad[i], &u, &why) == 0) fail_msg("accepted \"%s\"", bad[i]);
        assert_non_null(why);
    }
    struct url u;
    assert_int_not_equal(url_parse(NULL, &u, NULL), 0);
}

static void check_redact(const char *in, const char *want)
{
    struct buf b;
    buf_init(&b);
    url_redact(&b, in);
    if (strcmp(buf_cstr(&b), want) != 0)
        fail_msg("\"%s\" -> \"%s\", want \"%s\"", in ? in : "(null)", buf_cstr(&b), want);
    buf_free(&b);
}

static void test_redact(void **state)
{
    (void)state;
    check_redact("https://portainer:9443/api/stacks/webhooks/638e6967-ef77?tag=latest",
                 "https://portainer:9443/api/stacks/webhooks/***?***");
    check_redact("http://h/hook", "http://h/***");
    check_redact("http://h/", "http://h/");
    check_redact("http://h", "http://h");
    check_redact("http://h/a/b/", "http://h/a/***/");
    check_redact("http://h?token=x", "http://h?***");
    check_redact("http://user:pw@h/a", "http://***@h/***");
    check_redact("http://[::1]:80/x#f", "http://[::1]:80/***#***");
    check_redact("not a url with s3cret", "***");
    check_redact("", "");
    check_redact(NULL, "");
}

static void test_encode(void **state)
{
    (void)state;
    struct buf b;
    buf_init(&b);
    url_encode(&b, "team/my app:v1.0~_-&?#%");
    assert_string_equal(buf_cstr(&b), "team%2Fmy%20app%3Av1.0~_-%26%3F%23%25");
    buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse), cmocka_unit_test(test_parse_bad),
        cmocka_unit_test(test_redact), cmocka_unit_test(test_encode),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
