/* Interval strings for POLL_INTERVAL and the poll label. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "duration.h"

static void test_valid(void **s)
{
    (void)s;
    struct { const char *in; uint64_t ms; } ok[] = {
        {"30s", 30000}, {"5m", 300000}, {"1h", 3600000}, {" 1h30m ", 5400000}, {"500ms", 500},
        {"1m5s", 65000}, {"168h", 604800000}, {"1s500ms", 1500},
        /* A bare number is seconds, as WATCHTOWER_POLL_INTERVAL takes it. */
        {"300", 300000}, {" 30 ", 30000}, {"604800", 604800000},
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        uint64_t v = 0;
        assert_int_equal(duration_parse_ms(ok[i].in, &v), 0);
        assert_int_equal(v, ok[i].ms);
    }
}

static void test_invalid(void **s)
{
    (void)s;
    const char *bad[] = {"", " ", "0", "604801", "30 5", "s", "5x", "-5s", "1.5h", "0s", "169h", "99999999999999999999h",
                         "5 m", "off", "5mm", "h1", NULL};
    uint64_t v;
    for (size_t i = 0; bad[i]; i++) assert_int_equal(duration_parse_ms(bad[i], &v), -EINVAL);
    assert_int_equal(duration_parse_ms(NULL, &v), -EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_valid), cmocka_unit_test(test_invalid)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
