/* The string set the tag-list watches keep their tags in: membership,
 * removal (the backward shift), and that 40,000 tags cost a few probes
 * each, not a compare with every other (issue 18 item 5). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "strset.h"

static void test_add_has_remove(void **s)
{
    (void)s;
    struct strset set;
    strset_init(&set);
    assert_false(strset_has(&set, "a"));
    assert_false(strset_remove(&set, "a"));
    assert_true(strset_add(&set, "a"));
    assert_false(strset_add(&set, "a"));
    assert_true(strset_add(&set, ""));
    assert_true(strset_has(&set, "a"));
    assert_true(strset_has(&set, ""));
    assert_int_equal(strset_count(&set), 2);
    assert_true(strset_remove(&set, "a"));
    assert_false(strset_has(&set, "a"));
    assert_true(strset_has(&set, ""));
    strset_free(&set);
    assert_int_equal(strset_count(&set), 0);
}

/* Removing half of many entries in an interleaved order: every other one
 * is still found (a hole left in a probe run would hide some). */
static void test_remove_keeps_runs(void **s)
{
    (void)s;
    struct strset set;
    strset_init(&set);
    char v[32];
    for (int i = 0; i < 5000; i++) {
        snprintf(v, sizeof v, "v%d", i);
        assert_true(strset_add(&set, v));
    }
    for (int i = 0; i < 5000; i += 2) {
        snprintf(v, sizeof v, "v%d", i);
        assert_true(strset_remove(&set, v));
    }
    for (int i = 0; i < 5000; i++) {
        snprintf(v, sizeof v, "v%d", i);
        assert_int_equal(strset_has(&set, v), i % 2 == 1);
    }
    assert_int_equal(strset_count(&set), 2500);
    strset_free(&set);
}

static void test_forty_thousand(void **s)
{
    (void)s;
    enum { N = 40000 };
    struct strset set;
    strset_init(&set);
    char v[32];
    for (int i = 0; i < N; i++) {
        snprintf(v, sizeof v, "1.%d.%d-build", i / 100, i % 100);
        strset_add(&set, v);
    }
    unsigned long before = set.probes;
    for (int i = 0; i < N; i++) {
        snprintf(v, sizeof v, "1.%d.%d-build", i / 100, i % 100);
        assert_true(strset_has(&set, v));
    }
    /* A list compared with every other tag: N/2 compares per lookup. */
    unsigned long per = (set.probes - before) / N;
    if (per > 4) fail_msg("%lu probes per lookup", per);
    strset_free(&set);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_add_has_remove),
        cmocka_unit_test(test_remove_keeps_runs),
        cmocka_unit_test(test_forty_thousand),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
