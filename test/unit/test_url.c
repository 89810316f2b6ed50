/* URL parsing, redaction and encoding. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <openssl/evp.h>

#include "sha256.h"
#include "url.h"

/* Parses s, which must succeed, and checks every field. */
static void check_parse(const char *s, bool tls, const char *host, int port, const char *path,
                        const char *authority)
{
    struct url u;
    const char *why = "unset";
    if (url_parse(s, &u, &why) != 0) fail_msg("refused \"%s\": %s", s, why ? why : "(null)");
    assert_null(why);
    if (u.tls != tls || strcmp(u.host, host) != 0 || u.port != port || strcmp(u.path, path) != 0 ||
        strcmp(u.authority, authority) != 0)
        fail_msg("\"%s\" -> tls=%d host=\"%s\" port=%d path=\"%s\" authority=\"%s\"", s, u.tls, u.host,
                 u.port, u.path, u.authority);
    url_free(&u);
    assert_null(u.host);
}

static void test_parse(void **state)
{
    (void)state;
    check_parse("http://127.0.0.1:5099/hook", false, "127.0.0.1", 5099, "/hook", "127.0.0.1:5099");
    check_parse("HTTPS://Portainer:9443/api/stacks/webhooks/x?tag=1#frag", true, "portainer", 9443,
                "/api/stacks/webhooks/x?tag=1", "portainer:9443");
    check_parse("HtTp://EXAMPLE.com/A/B", false, "example.com", 80, "/A/B", "example.com");
    check_parse("https://h", true, "h", 443, "/", "h");
    check_parse("https://h/", true, "h", 443, "/", "h");
    check_parse("http://h?x=1", false, "h", 80, "/?x=1", "h");
    check_parse("http://h#frag", false, "h", 80, "/", "h");
    check_parse("http://h/p#frag?not-a-query", false, "h", 80, "/p", "h");
    check_parse("http://h/a?b=c/d&e=%20", false, "h", 80, "/a?b=c/d&e=%20", "h");
    /* Default ports are not repeated in the Host header. */
    check_parse("http://h:80/", false, "h", 80, "/", "h");
    check_parse("https://h:443/x", true, "h", 443, "/x", "h");
    check_parse("https://h:80/x", true, "h", 80, "/x", "h:80");
    check_parse("http://h:443/x", false, "h", 443, "/x", "h:443");
    check_parse("http://h:1/", false, "h", 1, "/", "h:1");
    check_parse("http://h:65535/", false, "h", 65535, "/", "h:65535");
    check_parse("http://h:08080/", false, "h", 8080, "/", "h:8080");
    /* IPv6: brackets kept in the authority only. */
    check_parse("http://[::1]:8080/a", false, "::1", 8080, "/a", "[::1]:8080");
    check_parse("https://[2001:DB8::1]/", true, "2001:db8::1", 443, "/", "[2001:db8::1]");
    check_parse("http://[::ffff:10.0.0.1]", false, "::ffff:10.0.0.1", 80, "/", "[::ffff:10.0.0.1]");
    /* Names Docker hands out. */
    check_parse("http://my_stack_portainer.1:9000/api/webhooks/abc", false, "my_stack_portainer.1",
                9000, "/api/webhooks/abc", "my_stack_portainer.1:9000");
    /* A label template keeps its placeholders until substitution. */
    check_parse("http://h/hook?tag={tag}&repo={repository}", false, "h", 80,
                "/hook?tag={tag}&repo={repository}", "h");
    /* '@' after the authority belongs to the path. */
    check_parse("http://h/v2/x@sha256:ab", false, "h", 80, "/v2/x@sha256:ab", "h");
    /* Host, authority and path share one block: long ones, past its first size. */
    char host[201], url[900], path[601], authority[220];
    memset(host, 'h', 200);
    host[200] = '\0';
    memset(path, 'p', 600);
    path[0] = '/';
    path[600] = '\0';
    snprintf(url, sizeof url, "http://%s:8080%s#x", host, path);
    snprintf(authority, sizeof authority, "%s:8080", host);
    check_parse(url, false, host, 8080, path, authority);
}

static void check_bad(const char *s, const char *want_reason)
{
    struct url u;
    const char *why = NULL;
    if (url_parse(s, &u, &why) == 0) fail_msg("accepted \"%s\"", s);
    assert_non_null(why);
    if (want_reason && !strstr(why, want_reason)) fail_msg("\"%s\": reason \"%s\", want \"%s\"", s, why, want_reason);
    /* Nothing was allocated; freeing is harmless. */
    assert_null(u.host);
    url_free(&u);
}

/* A copy is its own block with the same text, and outlives the original. */
static void test_copy(void **state)
{
    (void)state;
    struct url u, c;
    assert_int_equal(url_parse("https://Portainer.LAN:9443/api/webhooks/abc?tag=1#frag", &u, NULL), 0);
    url_copy(&c, &u);
    assert_ptr_not_equal(c.host, u.host);
    url_free(&u);
    assert_true(c.tls);
    assert_int_equal(c.port, 9443);
    assert_string_equal(c.host, "portainer.lan");
    assert_string_equal(c.authority, "portainer.lan:9443");
    assert_string_equal(c.path, "/api/webhooks/abc?tag=1");
    url_free(&c);
}

static void test_parse_bad(void **state)
{
    (void)state;
    check_bad("", "empty");
    check_bad("ftp://h/x", "scheme");
    check_bad("h/x", "scheme");
    check_bad("http:/h/x", "scheme");
    check_bad("httpx://h/", "scheme");
    check_bad("//h/x", "scheme");
    check_bad("http://", "host");
    check_bad("http:///x", "host");
    check_bad("http://?q", "host");
    check_bad("http://:80/", "host");
    check_bad("http://u:p@h/x", "user");
    check_bad("http://token@h/x", "user");
    check_bad("http://@h/", "user");
    check_bad("http://h:0/", "port");
    check_bad("http://h:65536/", "port");
    check_bad("http://h:123456/", "port");
    check_bad("http://h:x/", "port");
    check_bad("http://h:/", "port");
    check_bad("http://h:-1/", "port");
    check_bad("http://h:+80/", "port");
    check_bad("http://h:80:81/", "port");
    check_bad("http://::1/", "host");
    check_bad("http://h /x", "spaces");
    check_bad(" http://h/x", "spaces");
    check_bad("http://h/x y", "spaces");
    check_bad("http://h\n/x", "control");
    check_bad("http://h/x\t", "control");
    check_bad("http://h/x\x7f", "control");
    check_bad("http://h/caf\xc3\xa9", "ASCII");
    check_bad("http://ho$t/", "host");
    check_bad("http://h\\x/", "host");
    check_bad("http://h%41/", "host");
    check_bad("http://[::1/x", "IPv6");
    check_bad("http://[::1]x/", "IPv6");
    check_bad("http://[]/", "host");
    check_bad("http://[zz::1]/", "IPv6");
    check_bad("http://[127.0.0.1]/", "IPv6");
    check_bad("http://[fe80::1%25eth0]/", "IPv6");
    check_bad("http://[::1]:/", "port");
    check_bad("http://[::1]:99999/", "port");

    struct url u;
    const char *why = NULL;
    assert_int_equal(url_parse(NULL, &u, &why), -EINVAL);
    assert_non_null(why);
    assert_int_equal(url_parse("nope", &u, NULL), -EINVAL);   /* err may be NULL */
}

/* The fingerprint the SPEC asks for, computed here on its own: "#" and the
 * first 8 lower-case hex digits of the SHA-256 of the whole string. */
static void put_fp(struct buf *b, const char *s)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned n = 0;
    assert_int_equal(EVP_Digest(s, strlen(s), md, &n, EVP_sha256(), NULL), 1);
    buf_printf(b, "#%02x%02x%02x%02x", md[0], md[1], md[2], md[3]);
}

/* want_prefix is what must precede the fingerprint ("" for no output at all). */
static void check_redact(const char *in, const char *want_prefix)
{
    struct buf b, want;
    buf_init(&b);
    buf_init(&want);
    buf_puts(&want, want_prefix);
    if (*want_prefix) put_fp(&want, in);
    url_redact(&b, in);
    if (strcmp(buf_cstr(&b), buf_cstr(&want)) != 0)
        fail_msg("\"%s\" -> \"%s\", want \"%s\"", in ? in : "(null)", buf_cstr(&b), buf_cstr(&want));
    buf_free(&b);
    buf_free(&want);
}

static void test_redact(void **state)
{
    (void)state;
    /* The SPEC's Portainer shape, with its fingerprint spelled out
     * (python3 hashlib.sha256(url).hexdigest()[:8]). */
    check_redact("https://portainer:9443/api/stacks/webhooks/638e6967-ef77?tag=latest",
                 "https://portainer:9443/***");
    struct buf b;
    buf_init(&b);
    url_redact(&b, "https://portainer:9443/api/stacks/webhooks/638e6967-ef77?tag=latest");
    assert_string_equal(buf_cstr(&b), "https://portainer:9443/***#f1083958");
    /* Two webhooks on one host differ by their fingerprint only. */
    buf_reset(&b);
    url_redact(&b, "https://portainer:9443/api/stacks/webhooks/638e6968-ef77?tag=latest");
    assert_string_equal(buf_cstr(&b), "https://portainer:9443/***#ffaec459");
    buf_free(&b);

    /* Only scheme, host and port are kept, whatever the path looks like. */
    check_redact("https://portainer:9443/api/stacks/webhooks/638e6967", "https://portainer:9443/***");
    check_redact("http://h/hook", "http://h/***");
    check_redact("http://h/", "http://h/***");
    check_redact("http://h", "http://h/***");
    check_redact("http://h/a/b/", "http://h/***");
    check_redact("http://h?token=x", "http://h/***");
    check_redact("http://h/a#frag", "http://h/***");
    check_redact("http://h/a?q=1#frag", "http://h/***");
    /* The port as written (a default one too); scheme and host lower-cased. */
    check_redact("HTTPS://H:1/x/y", "https://h:1/***");
    check_redact("https://portainer:443/x", "https://portainer:443/***");
    check_redact("http://Ntfy.Example/topic", "http://ntfy.example/***");
    /* Secrets anywhere in the path: placeholders, first segment, middle. */
    check_redact("http://h/api/webhooks/SECRET/{tag}", "http://h/***");
    check_redact("http://h/hooks/SECRET/deploy", "http://h/***");
    check_redact("https://ntfy.sh/SECRET", "https://ntfy.sh/***");
    check_redact("http://h/hooks/abc?tag={tag}", "http://h/***");
    /* IPv6. */
    check_redact("http://[::1]:80/x#f", "http://[::1]:80/***");
    check_redact("https://[2001:db8::1]/api/webhooks/abc?x=y", "https://[2001:db8::1]/***");
}

/* Strings that do not parse as an http(s) URL: no part of them is shown,
 * only the scheme when it is http or https. */
static void test_redact_odd(void **state)
{
    (void)state;
    check_redact("not a url with s3cret", "***");
    check_redact("s3cret", "***");
    check_redact("/api/webhooks/s3cret", "***");
    check_redact("s3cr et://h/x", "***");
    check_redact("1http://h/x", "***");
    check_redact("://h/x", "***");
    check_redact(" http://h/x", "***");
    check_redact("http:/h/s3cret", "***");
    check_redact("ftp://h/a/b", "***");
    check_redact("git+ssh://h/a/b", "***");
    check_redact("", "");
    check_redact(NULL, "");
    check_redact("http://", "http://***");
    check_redact("http:///x", "http://***");
    check_redact("http://[fe80::1%25eth0]/x", "http://***");
    /* Userinfo is refused by url_parse, so never shown, host included. */
    check_redact("http://user:pw@h/a", "http://***");
    check_redact("http://tok@h", "http://***");
    check_redact("http://u:p@ss@h:8080/x/y", "http://***");
    check_redact("http://user:pa/ss@h/x", "http://***");
    check_redact("http://u:p?ss@h/x", "http://***");
    check_redact("HTTPS://u:p#ss@h/x", "https://***");
    /* Spaces, control characters, bad hosts and ports. */
    check_redact("http://h/api/s3c ret", "http://***");
    check_redact("http://h/a\r\nX-Injected: 1", "http://***");
    check_redact("http://h x/s3cret", "http://***");
    check_redact("http://h\\s3cret", "http://***");
    check_redact("http://h\"s3cret\"", "http://***");
    check_redact("http://h:s3cret/x", "http://***");
    check_redact("http://h/caf\xc3\xa9", "http://***");
}

/* Whatever the input, the redacted form never contains the secret. */
static void test_redact_never_leaks(void **state)
{
    (void)state;
    const char *shapes[] = {
        "http://h/S3CR3T",        "http://h/a/S3CR3T",       "http://h/a/S3CR3T/",
        "http://h/a?S3CR3T",      "http://h/a?t=S3CR3T",     "http://h/a#S3CR3T",
        "http://S3CR3T@h/a",      "http://u:S3CR3T@h/a",     "http://u:/S3CR3T@h/a",
        "http://u:?S3CR3T@h/a",   "http://h/a b/S3CR3T",     "S3CR3T",
        "x S3CR3T://h/",          "http://h/a?x=@S3CR3T",    "http://h\\S3CR3T",
        "http://h:S3CR3T@x/",     "http://[::1]/S3CR3T",     "http://h/a/S3CR3T?q#f",
        "http://h/a\nS3CR3T",    "http://u@S3CR3T@h/",      "http://u:S3/CR3T@h/a",
        "http://u:S3#CR3T@h/a",   "http://h/S3CR3T/",        "http://h/S3CR3T//?x",
        "http://h/api/webhooks/S3CR3T/{tag}",                 "http://h/hooks/S3CR3T/deploy",
        "http://h/S3CR3T/{tag}?x={repository}",               "S3CR3T://h/x",
    };
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
        const char *in = shapes[i];
        struct buf b;
        buf_init(&b);
        url_redact(&b, in);
        if (strstr(buf_cstr(&b), "S3") || strstr(buf_cstr(&b), "CR3T"))
            fail_msg("\"%s\" leaked as \"%s\"", in, buf_cstr(&b));
        buf_free(&b);
    }
}

static void test_redact_long(void **state)
{
    (void)state;
    size_t n = 1 << 20;
    char *s = malloc(n + 1);
    assert_non_null(s);
    memcpy(s, "https://h/", 10);
    for (size_t i = 10; i < n; i++) s[i] = (i % 97 == 0) ? '/' : 'a';
    s[n] = '\0';
    check_redact(s, "https://h/***");

    /* Long garbage without a scheme. */
    memset(s, 'x', n);
    check_redact(s, "***");

    /* And url_parse copes with the same length. */
    memcpy(s, "http://h/", 9);
    struct url u;
    assert_int_equal(url_parse(s, &u, NULL), 0);
    assert_int_equal(strlen(u.path), n - 8);
    url_free(&u);
    free(s);
}

/* Redaction appends; it never replaces what is already in the buffer. */
static void test_redact_appends(void **state)
{
    (void)state;
    struct buf b;
    buf_init(&b);
    buf_puts(&b, "target=");
    url_redact(&b, "http://h/x");
    buf_puts(&b, " other=");
    url_redact(&b, "s3cret");
    /* sha256("http://h/x") and sha256("s3cret"), first 8 hex digits. */
    struct buf want;
    buf_init(&want);
    buf_puts(&want, "target=http://h/***");
    put_fp(&want, "http://h/x");
    buf_puts(&want, " other=***#1ec1c26b");
    assert_string_equal(buf_cstr(&b), buf_cstr(&want));
    buf_free(&want);
    buf_free(&b);
}

/* The fingerprint's own SHA-256 agrees with OpenSSL's at every length
 * around the padding's block boundaries (55/56, 63/64, 119/120 bytes). */
static void test_sha256_matches_openssl(void **state)
{
    (void)state;
    unsigned char data[300];
    for (size_t i = 0; i < sizeof data; i++) data[i] = (unsigned char)(i * 7 + 3);
    for (size_t len = 0; len <= sizeof data; len++) {
        uint8_t mine[SHA256_LEN];
        unsigned char want[EVP_MAX_MD_SIZE];
        unsigned n = 0;
        sha256(data, len, mine);
        assert_int_equal(EVP_Digest(data, len, want, &n, EVP_sha256(), NULL), 1);
        assert_int_equal(n, SHA256_LEN);
        assert_memory_equal(mine, want, SHA256_LEN);
    }
}

static void check_encode(const char *in, const char *want)
{
    struct buf b;
    buf_init(&b);
    url_encode(&b, in);
    if (strcmp(buf_cstr(&b), want) != 0) fail_msg("\"%s\" -> \"%s\", want \"%s\"", in, buf_cstr(&b), want);
    buf_free(&b);
}

static void test_encode(void **state)
{
    (void)state;
    check_encode("team/my app:v1.0~_-&?#%", "team%2Fmy%20app%3Av1.0~_-%26%3F%23%25");
    check_encode("", "");
    check_encode("AZaz09-._~", "AZaz09-._~");
    check_encode("sha256:abc", "sha256%3Aabc");
    check_encode("a+b=c/d@e", "a%2Bb%3Dc%2Fd%40e");
    check_encode("{\"label\":[\"x=y\"]}", "%7B%22label%22%3A%5B%22x%3Dy%22%5D%7D");
    check_encode("caf\xc3\xa9\xff\x01\x7f", "caf%C3%A9%FF%01%7F");
    check_encode("\r\n\t ", "%0D%0A%09%20");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse),
        cmocka_unit_test(test_copy),
        cmocka_unit_test(test_parse_bad),
        cmocka_unit_test(test_redact),
        cmocka_unit_test(test_redact_odd),
        cmocka_unit_test(test_redact_never_leaks),
        cmocka_unit_test(test_redact_long),
        cmocka_unit_test(test_redact_appends),
        cmocka_unit_test(test_encode),
        cmocka_unit_test(test_sha256_matches_openssl),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
