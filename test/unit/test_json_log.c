/* JSON escaping, log line format and redaction in logs. */
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>
#include <jansson.h>
#include <uv.h>

#include "buf.h"
#include "json.h"
#include "log.h"

static char *escape(const char *s, size_t n)
{
    struct buf b;
    buf_init(&b);
    json_put_strn(&b, s, n);
    return buf_steal(&b);
}

static void test_escape(void **state)
{
    (void)state;
    char *s = escape("plain", 5);
    assert_string_equal(s, "\"plain\"");
    free(s);
    s = escape("q\"b\\n\n\r\t\x01", 9);
    assert_string_equal(s, "\"q\\\"b\\\\n\\n\\r\\t\\u0001\"");
    free(s);
    s = escape("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x90\xb3", 14);
    assert_string_equal(s, "\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x90\xb3\"");
    free(s);
    /* Invalid UTF-8 (lone continuation, overlong, truncated, surrogate) and NUL. */
    s = escape("a\x80" "b\xc0\xaf" "c\xe2\x82" "d\xed\xa0\x80" "e\0f", 15);
    assert_string_equal(s, "\"a\\ufffdb\\ufffd\\ufffdc\\ufffd\\ufffdd\\ufffd\\ufffd\\ufffde\\u0000f\"");
    free(s);
    struct buf b;
    buf_init(&b);
    json_put_str(&b, NULL);
    assert_string_equal(buf_cstr(&b), "null");
    buf_free(&b);
}

/* json_put_strn reads 16 and 8 bytes at a time: every special byte at
 * every position of strings of 1-48 bytes comes out as a byte-at-a-time
 * escaper (here) says. */
static void put_ref(struct buf *b, const unsigned char *s, size_t n)
{
    buf_putc(b, '"');
    for (size_t i = 0; i < n; i++) {
        unsigned char c = s[i];
        if (c == '"') buf_puts(b, "\\\"");
        else if (c == '\\') buf_puts(b, "\\\\");
        else if (c == '\n') buf_puts(b, "\\n");
        else if (c == '\r') buf_puts(b, "\\r");
        else if (c == '\t') buf_puts(b, "\\t");
        else if (c < 0x20) buf_printf(b, "\\u%04x", c);
        else if (c == 0xc3 && i + 1 < n && s[i + 1] == 0xa9) {
            buf_append(b, s + i, 2);
            i++;
        } else if (c >= 0x80) buf_puts(b, "\\ufffd");
        else buf_putc(b, (char)c);
    }
    buf_putc(b, '"');
}

static void test_escape_every_position(void **state)
{
    (void)state;
    const unsigned char specials[] = {0x00, 0x01, 0x1f, '"', '\\', '\n', 0x80, 0xc3, 0xff, 0x7f, 0x20, 0x7e};
    struct buf got, want;
    buf_init(&got);
    buf_init(&want);
    unsigned char s[48];
    for (size_t n = 1; n <= sizeof s; n++)
        for (size_t at = 0; at < n; at++)
            for (size_t k = 0; k < sizeof specials; k++) {
                for (size_t i = 0; i < n; i++) s[i] = (unsigned char)('a' + i % 26);
                s[at] = specials[k];
                if (specials[k] == 0xc3 && at + 1 < n) s[at + 1] = 0xa9;   /* a valid pair too */
                buf_reset(&got);
                buf_reset(&want);
                json_put_strn(&got, (const char *)s, n);
                put_ref(&want, s, n);
                assert_string_equal(got.data, want.data);
            }
    buf_free(&got);
    buf_free(&want);
}

static void test_escape_roundtrip_all_bytes(void **state)
{
    (void)state;
    char in[256];
    for (int i = 0; i < 256; i++) in[i] = (char)i;
    char *s = escape(in, sizeof in);
    json_error_t e;
    json_t *j = json_loads(s, JSON_DECODE_ANY | JSON_ALLOW_NUL, &e);
    assert_non_null(j);  /* always valid JSON whatever the bytes */
    assert_true(json_is_string(j));
    json_decref(j);
    free(s);
}

static void test_log_line(void **state)
{
    (void)state;
    struct buf b;
    buf_init(&b);
    const struct log_field f[] = {
        F_STR("repository", "team/\"app\""), F_INT("status", 202),
        F_URL("target", "https://portainer:9443/api/stacks/webhooks/638e6967?tag=latest"),
        F_STR("skipped", NULL), F_BOOL("ok", 1), F_INT("min", -9223372036854775807LL - 1), F_INT("zero", 0),
    };
    log_format_line(&b, LOG_FORMAT_JSON, 1795345013123LL, LOG_WARN, "forward \"done\"", f, 7);
    json_error_t e;
    json_t *j = json_loads(buf_cstr(&b), 0, &e);
    assert_non_null(j);
    assert_string_equal(json_string_value(json_object_get(j, "ts")), "2026-11-22T10:56:53.123Z");
    assert_string_equal(json_string_value(json_object_get(j, "level")), "warn");
    assert_string_equal(json_string_value(json_object_get(j, "msg")), "forward \"done\"");
    assert_string_equal(json_string_value(json_object_get(j, "repository")), "team/\"app\"");
    assert_int_equal(json_integer_value(json_object_get(j, "status")), 202);
    assert_true(json_is_true(json_object_get(j, "ok")));
    assert_non_null(strstr(buf_cstr(&b), "\"min\":-9223372036854775808,\"zero\":0}"));
    assert_null(json_object_get(j, "skipped"));
    assert_null(strstr(buf_cstr(&b), "638e6967"));
    assert_null(strstr(buf_cstr(&b), "latest"));
    assert_null(strstr(buf_cstr(&b), "webhooks"));
    /* Scheme, host and port, then the fingerprint of the whole URL. */
    assert_string_equal(json_string_value(json_object_get(j, "target")), "https://portainer:9443/***#861f5db6");
    assert_int_equal(b.data[b.len - 1], '\n');
    json_decref(j);

    buf_reset(&b);
    log_format_line(&b, LOG_FORMAT_TEXT, 0, LOG_INFO, "hello", f, 3);
    assert_non_null(strstr(buf_cstr(&b), "1970-01-01T00:00:00.000Z info  hello"));
    assert_non_null(strstr(buf_cstr(&b), "status=202"));
    assert_null(strstr(buf_cstr(&b), "638e6967"));
    buf_free(&b);
}

/* The line's time is computed by hand; gmtime_r and strftime are the
 * reference, over leap days, century years, the epoch and a stride
 * through 1970-2400 that lands on every hour and millisecond digit. */
static void test_time_matches_gmtime(void **state)
{
    (void)state;
    const long long fixed[] = {0, 999, 86399999, 951782400000LL /* 2000-02-29 */, 4107542400000LL /* 2100-03-01 */,
                               1795345013123LL, 253402300799999LL /* 9999-12-31T23:59:59.999 */};
    struct buf b;
    buf_init(&b);
    for (size_t i = 0; i < sizeof fixed / sizeof fixed[0] + 200000; i++) {
        long long ms = i < sizeof fixed / sizeof fixed[0] ? fixed[i] : (long long)i * 67108863997LL % 13569465600000LL;
        time_t secs = (time_t)(ms / 1000);
        struct tm tm;
        assert_non_null(gmtime_r(&secs, &tm));
        char want[40];
        size_t n = strftime(want, sizeof want, "%Y-%m-%dT%H:%M:%S", &tm);
        snprintf(want + n, sizeof want - n, ".%03dZ", (int)(ms % 1000));
        buf_reset(&b);
        log_put_time(&b, ms);
        assert_string_equal(b.data, want);
    }
    buf_free(&b);
}

/* The memo must give log_put_time's text whatever the order of the times:
 * steps within a second, across seconds, midnight and a year's end, and
 * the clock set back (the memo is only a cache of the last second). */
static void test_time_memo_matches(void **state)
{
    (void)state;
    struct log_time_memo memo = {0};
    struct buf got, want;
    buf_init(&got);
    buf_init(&want);
    const long long start = 1798761599000LL - 1500;   /* 2026-12-31T23:59:57.500 */
    long long ms = start;
    for (int i = 0; i < 5000; i++) {
        ms += i % 7 == 6 ? -1700 : 1 + i % 3;   /* forward, and now and then back */
        buf_reset(&got);
        buf_reset(&want);
        log_put_time_memo(&got, ms, &memo);
        log_put_time(&want, ms);
        assert_string_equal(got.data, want.data);
    }
    buf_reset(&got);
    log_put_time_memo(&got, 0, &memo);   /* the epoch: second 0 is a second like any other */
    assert_string_equal(got.data, "1970-01-01T00:00:00.000Z");
    buf_reset(&got);
    log_put_time_memo(&got, 1500, NULL);
    assert_string_equal(got.data, "1970-01-01T00:00:01.500Z");
    buf_free(&got);
    buf_free(&want);
}

static void test_levels(void **state)
{
    (void)state;
    struct logger lg;
    logger_init(&lg, LOG_WARN, LOG_FORMAT_JSON, -1);
    assert_false(log_enabled(&lg, LOG_INFO));
    assert_true(log_enabled(&lg, LOG_WARN));
    assert_true(log_enabled(&lg, LOG_ERROR));
    assert_false(log_enabled(NULL, LOG_ERROR));
    assert_string_equal(log_level_name(LOG_TRACE), "trace");
}

/* What the pipe holds right now (non-blocking read), as a string. */
static size_t drain(int fd, char *out, size_t cap)
{
    ssize_t n = read(fd, out, cap - 1);
    out[n > 0 ? n : 0] = '\0';
    return n > 0 ? (size_t)n : 0;
}

static void test_batch(void **state)
{
    (void)state;
    int p[2];
    assert_int_equal(pipe2(p, O_NONBLOCK), 0);
    struct logger lg;
    logger_init(&lg, LOG_DEBUG, LOG_FORMAT_JSON, p[1]);
    log_batch_start(&lg);
    char got[256 * 1024];
    LOG(&lg, LOG_INFO, "one", F_INT("n", 1));
    LOG(&lg, LOG_WARN, "two", F_URL("target", "http://h/hook/secret-token"));
    assert_int_equal(drain(p[0], got, sizeof got), 0);   /* held until the flush */
    log_flush(&lg);
    size_t n = drain(p[0], got, sizeof got);
    assert_true(n > 0 && n == strlen(got));
    assert_non_null(strstr(got, "\"msg\":\"one\""));
    char *second = strchr(got, '\n');
    assert_non_null(second);
    assert_non_null(strstr(second, "\"msg\":\"two\""));   /* in order, whole lines */
    assert_null(strstr(got, "secret-token"));
    log_flush(&lg);                                        /* nothing pending: no write */
    assert_int_equal(drain(p[0], got, sizeof got), 0);
    /* An error goes out at once, with what was pending before it. */
    LOG(&lg, LOG_INFO, "before");
    LOG(&lg, LOG_ERROR, "bad");
    drain(p[0], got, sizeof got);
    assert_true(strstr(got, "before") && strstr(got, "bad") && strstr(got, "before") < strstr(got, "bad"));
    /* A burst is written when the batch passes 64 KiB, not held. */
    char big[1000];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    for (int i = 0; i < 70; i++) LOG(&lg, LOG_INFO, "burst", F_STR("data", big));
    assert_true(drain(p[0], got, sizeof got) >= 64 * 1024);
    /* Freeing flushes the rest. */
    LOG(&lg, LOG_INFO, "last");
    log_batch_free(&lg);
    assert_null(lg.sink);
    drain(p[0], got, sizeof got);
    assert_non_null(strstr(got, "\"msg\":\"last\""));
    LOG(&lg, LOG_INFO, "unbatched again");                /* straight to the fd */
    drain(p[0], got, sizeof got);
    assert_non_null(strstr(got, "unbatched again"));
    close(p[0]);
    close(p[1]);
}

/* On a loop a line is written out as it happens (the SPEC's Logs): by
 * the turn that logged it, before the loop waits for anything, however few
 * lines the turn had; a turn's lines share that one write. */
static void test_loop_turn(void **state)
{
    (void)state;
    int p[2];
    assert_int_equal(pipe2(p, O_NONBLOCK), 0);
    uv_loop_t loop;
    uv_loop_init(&loop);
    struct logger lg;
    logger_init(&lg, LOG_DEBUG, LOG_FORMAT_JSON, p[1]);
    log_batch_start(&lg);
    log_loop_attach(&lg, &loop);
    char got[4096];
    LOG(&lg, LOG_INFO, "one");
    LOG(&lg, LOG_INFO, "two");
    assert_int_equal(drain(p[0], got, sizeof got), 0);   /* batched within the turn */
    uv_run(&loop, UV_RUN_NOWAIT);
    assert_true(drain(p[0], got, sizeof got) > 0);
    assert_true(strstr(got, "\"msg\":\"one\"") && strstr(got, "\"msg\":\"two\""));
    log_loop_detach(&lg);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
    log_batch_free(&lg);
    close(p[0]);
    close(p[1]);
}

/* Sequence number of a log line {"...","msg":"line","n":N}, or -1. */
static long line_n(const char *line)
{
    static const char key[] = "\"msg\":\"line\",\"n\":";
    const char *p = strstr(line, key);
    return p ? strtol(p + sizeof key - 1, NULL, 10) : -1;
}

/* A log consumer that stops reading: no write blocks, lines stay whole and
 * in order, what does not fit the bounded buffer is dropped by whole lines
 * and counted, and once the consumer reads again a warn line says how many
 * went missing, where they went missing. */
static void test_stalled_consumer(void **state)
{
    (void)state;
    int p[2];
    assert_int_equal(pipe(p), 0);   /* blocking, as stdout would be */
    assert_int_equal(fcntl(p[0], F_SETFL, O_NONBLOCK), 0);   /* the test's own end only */
    struct logger lg;
    logger_init(&lg, LOG_INFO, LOG_FORMAT_JSON, p[1]);
    log_batch_start(&lg);
    assert_true(log_nonblocking(&lg));
    assert_true(fcntl(p[1], F_GETFL) & O_NONBLOCK);

    /* 4 MiB of lines into a pipe that holds 64 KiB, nobody reading: none of
     * these calls may block (a blocking write would hang the test here). */
    char pad[1000];
    memset(pad, 'x', sizeof pad - 1);
    pad[sizeof pad - 1] = '\0';
    const long total = 4000;
    for (long i = 0; i < total; i++) {
        LOG(&lg, i % 100 == 99 ? LOG_ERROR : LOG_INFO, "line", F_INT("n", i), F_STR("pad", pad));
        if (i % 50 == 0) log_flush(&lg);
        assert_true(log_pending(&lg) <= LOG_MAX_PENDING);
    }
    unsigned long long dropped = log_dropped(&lg);
    assert_true(dropped > 0 && dropped < (unsigned long long)total);

    /* The consumer reads again; the loop flushes each turn. */
    struct buf all;
    buf_init(&all);
    char chunk[65536];
    for (int turn = 0; turn < 10000; turn++) {
        size_t n = drain(p[0], chunk, sizeof chunk);
        buf_append(&all, chunk, n);
        log_flush(&lg);
        if (!n && !log_pending(&lg)) break;
    }
    assert_int_equal(log_pending(&lg), 0);
    LOG(&lg, LOG_INFO, "line", F_INT("n", total), F_STR("pad", "after"));
    log_flush(&lg);
    buf_append(&all, chunk, drain(p[0], chunk, sizeof chunk));

    /* Every line whole JSON; numbers in order; each gap is announced by one
     * warn line counting exactly the lines missing there. */
    long next = 0;
    unsigned long long announced = 0;
    int warns = 0;
    char *save = NULL;
    for (char *line = strtok_r(all.data, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        json_error_t e;
        json_t *j = json_loads(line, 0, &e);
        if (!j) fail_msg("not a whole JSON line: %.80s", line);
        const char *msg = json_string_value(json_object_get(j, "msg"));
        if (strcmp(msg, "log lines dropped: the log consumer was not reading") == 0) {
            assert_string_equal(json_string_value(json_object_get(j, "level")), "warn");
            long lost = (long)json_integer_value(json_object_get(j, "dropped"));
            assert_true(lost > 0);
            announced += (unsigned long long)lost;
            warns++;
            next += lost;   /* the next line continues after the gap */
        } else {
            assert_int_equal(line_n(line), next);
            next++;
        }
        json_decref(j);
    }
    assert_int_equal(next, total + 1);
    assert_true(warns >= 1);
    assert_true(announced == dropped);
    assert_true(log_dropped(&lg) == dropped);   /* the total stays, for the metric */
    buf_free(&all);

    /* Freeing restores the fd's blocking mode (O_NONBLOCK is shared with
     * whoever else holds the pipe). */
    log_batch_free(&lg);
    assert_false(fcntl(p[1], F_GETFL) & O_NONBLOCK);
    close(p[0]);
    close(p[1]);

    /* A regular file is never switched. */
    FILE *f = tmpfile();
    logger_init(&lg, LOG_INFO, LOG_FORMAT_JSON, fileno(f));
    log_batch_start(&lg);
    assert_false(log_nonblocking(&lg));
    assert_false(fcntl(fileno(f), F_GETFL) & O_NONBLOCK);
    log_batch_free(&lg);
    fclose(f);
}

/* A consumer that is gone for good (EPIPE): lines are dropped and counted,
 * nothing is kept, nothing blocks. */
static void test_gone_consumer(void **state)
{
    (void)state;
    int p[2];
    assert_int_equal(pipe(p), 0);
    close(p[0]);
    struct logger lg;
    logger_init(&lg, LOG_INFO, LOG_FORMAT_JSON, p[1]);
    log_batch_start(&lg);
    assert_true(log_nonblocking(&lg));
    for (int i = 0; i < 10; i++) LOG(&lg, LOG_INFO, "line", F_INT("n", i));
    log_flush(&lg);
    assert_int_equal(log_pending(&lg), 0);
    assert_true(log_dropped(&lg) == 10);
    log_batch_free(&lg);
    close(p[1]);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);   /* as main.c: a gone reader is EPIPE, not death */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_escape), cmocka_unit_test(test_escape_every_position),
        cmocka_unit_test(test_escape_roundtrip_all_bytes),
        cmocka_unit_test(test_log_line), cmocka_unit_test(test_time_matches_gmtime),
        cmocka_unit_test(test_time_memo_matches), cmocka_unit_test(test_levels),
        cmocka_unit_test(test_batch), cmocka_unit_test(test_stalled_consumer),
        cmocka_unit_test(test_gone_consumer), cmocka_unit_test(test_loop_turn),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
