/* The arena JSON reader used for webhook bodies (json_parse.c). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "buf.h"
#include "json_parse.h"
#include "json_split.h"

static int parse(struct jdoc *d, const char *text, char *err, size_t errlen)
{
    return jdoc_parse(d, text, strlen(text), err, errlen);
}

static void expect_ok(const char *text)
{
    struct jdoc d;
    char err[160] = "";
    if (parse(&d, text, err, sizeof err) != 0) fail_msg("refused %s: %s", text, err);
    assert_non_null(d.root);
    jdoc_free(&d);
}

/* Refused, and the message starts with what. */
static void expect_bad(const char *text, size_t len, const char *what)
{
    struct jdoc d;
    char err[160] = "";
    if (jdoc_parse(&d, text, len, err, sizeof err) == 0) fail_msg("accepted %.*s", (int)len, text);
    assert_null(d.root);
    if (strncmp(err, what, strlen(what)) != 0) fail_msg("%.*s: got \"%s\", want \"%s...\"", (int)len, text, err, what);
}

static void test_values(void **state)
{
    (void)state;
    struct jdoc d;
    char err[160];
    const char *text = " {\"s\":\"a\\\"b\\\\c\\/\\n\\t\",\"i\":-42,\"r\":1.5e2,\"big\":123456789012345678901234,"
                       "\"t\":true,\"f\":false,\"z\":null,\"a\":[1,[2,[]],{}],\"o\":{\"k\":{\"k\":\"deep\"}}} \n";
    assert_int_equal(parse(&d, text, err, sizeof err), 0);
    const struct jv *r = d.root;
    assert_true(jv_is_object(r));
    assert_string_equal(jv_str(jv_get(r, "s")), "a\"b\\c/\n\t");
    assert_int_equal(jv_get(r, "s")->n, 8);
    assert_true(jv_is_integer(jv_get(r, "i")));
    assert_int_equal(jv_integer(jv_get(r, "i")), -42);
    assert_false(jv_is_integer(jv_get(r, "r")));
    assert_true(jv_number(jv_get(r, "r")) == 150.0);
    /* Too big for int64: still a number, as a double. */
    assert_true(jv_is_number(jv_get(r, "big")) && !jv_is_integer(jv_get(r, "big")));
    assert_true(jv_number(jv_get(r, "big")) > 1.2e23);
    assert_true(jv_is(jv_get(r, "t"), JV_TRUE) && jv_is(jv_get(r, "f"), JV_FALSE));
    assert_true(jv_is_null(jv_get(r, "z")));
    const struct jv *a = jv_get(r, "a");
    assert_int_equal(jv_size(a), 3);
    assert_int_equal(jv_integer(jv_at(a, 0)), 1);
    assert_int_equal(jv_size(jv_at(a, 1)), 2);
    assert_int_equal(jv_size(jv_at(jv_at(a, 1), 1)), 0);
    assert_true(jv_is_object(jv_at(a, 2)));
    assert_null(jv_at(a, 3));
    assert_string_equal(jv_str(jv_get(jv_get(jv_get(r, "o"), "k"), "k")), "deep");
    jdoc_free(&d);
}

/* Integers of up to 18 digits are summed by hand, longer ones by strtoll,
 * past int64 a double: each side of both edges. */
static void test_integers(void **state)
{
    (void)state;
    struct jdoc d;
    char err[160];
    const char *text = "[0,-0,7,-7,999999999999999999,-999999999999999999,1000000000000000000,"
                       "9223372036854775807,-9223372036854775808,9223372036854775808,-9223372036854775809,"
                       "012]";
    assert_int_equal(parse(&d, text, err, sizeof err), -EINVAL);   /* a leading zero */
    text = "[0,-0,7,-7,999999999999999999,-999999999999999999,1000000000000000000,"
           "9223372036854775807,-9223372036854775808,9223372036854775808,-9223372036854775809]";
    assert_int_equal(parse(&d, text, err, sizeof err), 0);
    const long long want[] = {0, 0, 7, -7, 999999999999999999LL, -999999999999999999LL, 1000000000000000000LL,
                              INT64_MAX, INT64_MIN};
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        assert_true(jv_is_integer(jv_at(d.root, i)));
        assert_true(jv_integer(jv_at(d.root, i)) == want[i]);
    }
    assert_false(jv_is_integer(jv_at(d.root, 9)));
    assert_true(jv_number(jv_at(d.root, 9)) == 9223372036854775808.0);
    assert_false(jv_is_integer(jv_at(d.root, 10)));
    assert_true(jv_number(jv_at(d.root, 10)) < -9.2e18);
    jdoc_free(&d);
}

/* Every accessor answers "absent" for NULL and for the wrong type, so
 * lookups chain without checks in between. */
static void test_absent(void **state)
{
    (void)state;
    struct jdoc d;
    char err[160];
    assert_int_equal(parse(&d, "[\"x\"]", err, sizeof err), 0);
    assert_null(jv_get(NULL, "a"));
    assert_null(jv_get(d.root, "a"));          /* an array has no members */
    assert_null(jv_get(jv_get(NULL, "a"), "b"));
    assert_null(jv_str(NULL));
    assert_null(jv_str(d.root));
    assert_int_equal(jv_size(NULL), 0);
    assert_null(jv_at(NULL, 0));
    assert_null(jv_at(jv_at(d.root, 0), 0));   /* a string has no items */
    assert_true(jv_number(jv_at(d.root, 0)) == 0);
    assert_int_equal(jv_integer(NULL), 0);
    assert_false(jv_is_object(NULL) || jv_is_array(NULL) || jv_is_string(NULL) || jv_is_null(NULL));
    jdoc_free(&d);
    jdoc_free(&d);   /* freeing twice is harmless */
}

static void test_duplicate_keys(void **state)
{
    (void)state;
    struct jdoc d;
    char err[160];
    /* The last one wins, as with jansson. */
    assert_int_equal(parse(&d, "{\"a\":1,\"b\":2,\"a\":3}", err, sizeof err), 0);
    assert_int_equal(jv_integer(jv_get(d.root, "a")), 3);
    assert_int_equal(jv_integer(jv_get(d.root, "b")), 2);
    assert_null(jv_get(d.root, "ab"));
    assert_null(jv_get(d.root, ""));
    jdoc_free(&d);
}

static void test_unicode(void **state)
{
    (void)state;
    struct jdoc d;
    char err[160];
    /* é as an escape and as UTF-8, a BMP character, and an astral one as a
     * surrogate pair, all decode to the same UTF-8. */
    assert_int_equal(parse(&d, "[\"\\u00e9\",\"\xc3\xa9\",\"\\u20AC\",\"\\ud83d\\ude00\",\"\xf0\x9f\x98\x80\"]", err,
                           sizeof err), 0);
    assert_string_equal(jv_str(jv_at(d.root, 0)), "\xc3\xa9");
    assert_string_equal(jv_str(jv_at(d.root, 1)), "\xc3\xa9");
    assert_string_equal(jv_str(jv_at(d.root, 2)), "\xe2\x82\xac");
    assert_string_equal(jv_str(jv_at(d.root, 3)), "\xf0\x9f\x98\x80");
    assert_string_equal(jv_str(jv_at(d.root, 4)), "\xf0\x9f\x98\x80");
    jdoc_free(&d);
}

/* Strings long enough to cross the 16-byte scan, with the special byte at
 * every position, so the vector scan and the plain loop agree. */
static void test_long_strings(void **state)
{
    (void)state;
    for (size_t at = 0; at < 40; at++) {
        char want[64], text[80];
        memset(want, 'x', 40);
        want[40] = '\0';
        want[at] = '"';
        snprintf(text, sizeof text, "[\"%.*s\\\"%s\"]", (int)at, want, want + at + 1);
        struct jdoc d;
        char err[160];
        assert_int_equal(parse(&d, text, err, sizeof err), 0);
        assert_string_equal(jv_str(jv_at(d.root, 0)), want);
        jdoc_free(&d);
        snprintf(text, sizeof text, "[\"%.*s\x01\"]", (int)at, want);
        expect_bad(text, strlen(text), "control character in string");
    }
}

static void test_refused(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        const char *what;
    } bad[] = {
        {"", "'[' or '{' expected"},
        {"   ", "'[' or '{' expected"},
        {"\"top-level string\"", "'[' or '{' expected"},
        {"42", "'[' or '{' expected"},
        {"{", "string or '}' expected"},
        {"{\"a\"}", "':' expected"},
        {"{\"a\":}", "invalid token"},
        {"{\"a\":1,}", "string or '}' expected"},
        {"[1,]", "invalid token"},
        {"[1 2]", "',' or ']' expected"},
        {"{\"a\":1 \"b\":2}", "',' or '}' expected"},
        {"{a:1}", "string or '}' expected"},
        {"['x']", "invalid token"},
        {"[tru]", "invalid token"},
        {"[nul]", "invalid token"},
        {"[01]", "',' or ']' expected"},
        {"[-]", "invalid number"},
        {"[1.]", "invalid number"},
        {"[.5]", "invalid token"},
        {"[1e]", "invalid number"},
        {"[+1]", "invalid token"},
        {"[1e999]", "number out of range"},
        {"[NaN]", "invalid token"},
        {"[\"abc", "unterminated string"},
        {"[\"abc\\", "unterminated string"},
        {"[\"a\\x\"]", "invalid escape in string"},
        {"[\"\\u12\"]", "invalid \\u escape"},
        {"[\"\\u12G4\"]", "invalid \\u escape"},
        {"[\"\\u0000\"]", "\\u0000 is not allowed"},
        {"[\"\\ud800\"]", "invalid Unicode surrogate pair"},
        {"[\"\\ud800\\u0041\"]", "invalid Unicode surrogate pair"},
        {"[\"\\udc00\"]", "invalid Unicode surrogate pair"},
        {"[\"\t\"]", "control character in string"},
        {"[\"\xc3\"]", "invalid UTF-8 in string"},
        {"[\"\xc0\xaf\"]", "invalid UTF-8 in string"},         /* overlong */
        {"[\"\xed\xa0\x80\"]", "invalid UTF-8 in string"},     /* an encoded surrogate */
        {"[\"\xf4\x90\x80\x80\"]", "invalid UTF-8 in string"}, /* above U+10FFFF */
        {"[\"\xff\"]", "invalid UTF-8 in string"},
        {"{} {}", "end of input expected"},
        {"[]x", "end of input expected"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) expect_bad(bad[i].text, strlen(bad[i].text), bad[i].what);
    /* A NUL byte is not whitespace, and not allowed in a string. */
    expect_bad("[1]\0", 4, "end of input expected");
    expect_bad("[\"a\0b\"]", 7, "control character in string");
    /* Numbers are read into a bounded buffer. */
    char longnum[300] = "[1";
    memset(longnum + 2, '0', 280);
    strcpy(longnum + 282, "]");
    expect_bad(longnum, strlen(longnum), "number too long");
}

static void test_error_position(void **state)
{
    (void)state;
    struct jdoc d;
    char err[160];
    assert_int_equal(parse(&d, "{\n  \"a\": 1,\n  \"b\": x\n}", err, sizeof err), -22);
    assert_string_equal(err, "invalid token (line 3, column 8)");
    /* A tiny error buffer truncates, never overflows. */
    char small[8];
    assert_int_equal(parse(&d, "[x]", small, sizeof small), -22);
    assert_string_equal(small, "invalid");
}

static void test_depth(void **state)
{
    (void)state;
    char text[2 * JSON_MAX_DEPTH + 8];
    memset(text, '[', JSON_MAX_DEPTH);
    memset(text + JSON_MAX_DEPTH, ']', JSON_MAX_DEPTH);
    text[2 * JSON_MAX_DEPTH] = '\0';
    expect_ok(text);
    char deeper[2 * JSON_MAX_DEPTH + 8];
    memset(deeper, '[', JSON_MAX_DEPTH + 1);
    memset(deeper + JSON_MAX_DEPTH + 1, ']', JSON_MAX_DEPTH + 1);
    expect_bad(deeper, 2 * JSON_MAX_DEPTH + 2, "too deeply nested");
}

/* Bigger than the first arena block and the work stack on the C stack. */
static void test_large(void **state)
{
    (void)state;
    struct buf b;
    buf_init(&b);
    buf_puts(&b, "{\"items\":[");
    for (int i = 0; i < 20000; i++) buf_printf(&b, "%s{\"n\":%d,\"s\":\"item-%d\\u00e9\"}", i ? "," : "", i, i);
    buf_puts(&b, "],\"last\":true}");
    struct jdoc d;
    char err[160];
    assert_int_equal(jdoc_parse(&d, b.data, b.len, err, sizeof err), 0);
    const struct jv *items = jv_get(d.root, "items");
    assert_int_equal(jv_size(items), 20000);
    char want[32];
    for (size_t i = 0; i < 20000; i += 997) {
        snprintf(want, sizeof want, "item-%zu\xc3\xa9", i);
        assert_string_equal(jv_str(jv_get(jv_at(items, i), "s")), want);
        assert_int_equal(jv_integer(jv_get(jv_at(items, i), "n")), (int64_t)i);
    }
    assert_true(jv_is(jv_get(d.root, "last"), JV_TRUE));
    jdoc_free(&d);
    buf_free(&b);
}

/* jdoc_parse_in: the caller's memory is the first block. A document that
 * fits stays in it; one that does not spills into allocated blocks (freed
 * by jdoc_free, the caller's never: ASan and valgrind would say). */
static void test_caller_memory(void **state)
{
    (void)state;
    unsigned char mem[1024 + 1];
    char err[160];
    struct jdoc d;
    const char *small = "{\"repo\":\"team/app\",\"tags\":[\"a\",\"b\"]}";
    /* Unaligned on purpose: the block is aligned inside it. */
    assert_int_equal(jdoc_parse_in(&d, small, strlen(small), mem + 1, sizeof mem - 1, err, sizeof err), 0);
    const char *repo = jv_str(jv_get(d.root, "repo"));
    assert_string_equal(repo, "team/app");
    assert_true((const unsigned char *)repo > mem && (const unsigned char *)repo < mem + sizeof mem);
    assert_string_equal(jv_str(jv_at(jv_get(d.root, "tags"), 1)), "b");
    jdoc_free(&d);

    struct buf b;
    buf_init(&b);
    buf_puts(&b, "[");
    for (int i = 0; i < 500; i++) buf_printf(&b, "%s\"value-%d\"", i ? "," : "", i);
    buf_puts(&b, "]");
    assert_int_equal(jdoc_parse_in(&d, b.data, b.len, mem, sizeof mem, err, sizeof err), 0);
    assert_int_equal(jv_size(d.root), 500);
    assert_string_equal(jv_str(jv_at(d.root, 499)), "value-499");
    jdoc_free(&d);

    /* Refused text, and memory too small to use: the same as jdoc_parse. */
    assert_int_equal(jdoc_parse_in(&d, "{\"a\":", 5, mem, sizeof mem, err, sizeof err), -EINVAL);
    jdoc_free(&d);
    assert_int_equal(jdoc_parse_in(&d, small, strlen(small), mem, 16, err, sizeof err), 0);
    assert_string_equal(jv_str(jv_get(d.root, "repo")), "team/app");
    jdoc_free(&d);
    buf_free(&b);
}

/* ---- json_split: a JSON array's elements from a stream ----------------- */

struct elems {
    char text[16][64];
    size_t n;
    int refuse_at;   /* 1-based element to refuse, 0: none */
};

static int on_elem(void *ud, const char *e, size_t len)
{
    struct elems *x = ud;
    if (x->refuse_at && (int)x->n + 1 == x->refuse_at) return -ECANCELED;
    assert_true(x->n < 16 && len < 64);
    memcpy(x->text[x->n], e, len);
    x->text[x->n][len] = '\0';
    x->n++;
    return 0;
}

/* Feeds text in pieces of `step` bytes; returns the first error, or finish's. */
static int split(const char *text, size_t step, size_t max_elem, struct elems *x)
{
    struct json_split s;
    json_split_init(&s, max_elem);
    size_t n = strlen(text);
    int rc = 0;
    for (size_t off = 0; off < n && rc == 0; off += step)
        rc = json_split_feed(&s, text + off, n - off < step ? n - off : step, on_elem, x);
    if (rc == 0) rc = json_split_finish(&s);
    json_split_free(&s);
    return rc;
}

static void test_split(void **state)
{
    (void)state;
    const char *text = " [ {\"a\":\"}]\\\\\",\"b\":[1,{\"c\":\"\\\"]\"}]} ,\"x\\\"]\", [1,[2]],-3.5e2 ,true,null]\n";
    const char *want[] = {"{\"a\":\"}]\\\\\",\"b\":[1,{\"c\":\"\\\"]\"}]}", "\"x\\\"]\"", "[1,[2]]", "-3.5e2", "true",
                          "null"};
    /* Every piece size gives the same elements: whole, one at a time, in order. */
    for (size_t step = 1; step <= strlen(text); step++) {
        struct elems x = {0};
        assert_int_equal(split(text, step, 1024, &x), 0);
        assert_int_equal(x.n, 6);
        for (size_t i = 0; i < 6; i++) assert_string_equal(x.text[i], want[i]);
        /* Each element is a JSON value of its own. */
        for (size_t i = 0; i < 6 && step == 1; i++) {
            struct jdoc d;
            char err[96];
            /* jdoc_parse takes a container only: wrap it. */
            char wrapped[80];
            snprintf(wrapped, sizeof wrapped, "[%s]", x.text[i]);
            assert_int_equal(jdoc_parse(&d, wrapped, strlen(wrapped), err, sizeof err), 0);
            jdoc_free(&d);
        }
    }
    struct elems x = {0};
    assert_int_equal(split("[]", 1, 16, &x), 0);
    assert_int_equal(split(" [ \n] ", 2, 16, &x), 0);
    assert_int_equal(x.n, 0);
}

static void test_split_refused(void **state)
{
    (void)state;
    static const char *const bad[] = {"{}", "[1 2]", "[1,]", "[,1]", "[1]x", "[1", "", "[{\"a\":1}", "[\"ab", "]"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        for (size_t step = 1; step <= 3; step++) {
            struct elems x = {0};
            assert_int_equal(split(bad[i], step, 1024, &x), -EINVAL);
        }
    }
    /* An element over the bound, while it is still arriving. */
    struct elems x = {0};
    assert_int_equal(split("[1,{\"a\":\"0123456789abcdef\"}]", 1, 8, &x), -E2BIG);
    assert_int_equal(x.n, 1);
    /* A refused element stops the split; later feeds say so again. */
    struct elems y = {.refuse_at = 2};
    struct json_split s;
    json_split_init(&s, 64);
    assert_int_equal(json_split_feed(&s, "[1,2,3", 6, on_elem, &y), -ECANCELED);
    assert_int_equal(json_split_feed(&s, "]", 1, on_elem, &y), -ECANCELED);
    assert_int_equal(json_split_finish(&s), -ECANCELED);
    assert_int_equal(y.n, 1);
    json_split_free(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_values),         cmocka_unit_test(test_integers),
        cmocka_unit_test(test_absent),
        cmocka_unit_test(test_duplicate_keys), cmocka_unit_test(test_unicode),
        cmocka_unit_test(test_long_strings),   cmocka_unit_test(test_refused),
        cmocka_unit_test(test_error_position), cmocka_unit_test(test_depth),
        cmocka_unit_test(test_large),          cmocka_unit_test(test_caller_memory),
        cmocka_unit_test(test_split),
        cmocka_unit_test(test_split_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
