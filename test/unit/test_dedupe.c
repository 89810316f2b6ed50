/* The recent-event-id memory. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "dedupe.h"

/* The key changes every tag: a string seen under one key is not seen
 * under another. */
static void test_keyed(void **state)
{
    (void)state;
    uint8_t k1[DEDUPE_KEY_LEN] = {1}, k2[DEDUPE_KEY_LEN] = {2};
    struct dedupe *a = dedupe_new(8, k1), *b = dedupe_new(8, k2);
    dedupe_add(a, "sha256:aa|http://h/hook|reg/team/app:v1");
    assert_true(dedupe_seen(a, "sha256:aa|http://h/hook|reg/team/app:v1"));
    assert_false(dedupe_seen(b, "sha256:aa|http://h/hook|reg/team/app:v1"));
    assert_false(dedupe_seen(a, "sha256:aa|http://h/hook|reg/team/app:v2"));
    dedupe_free(a);
    dedupe_free(b);
}

static void test_basic(void **state)
{
    (void)state;
    struct dedupe *d = dedupe_new(3, NULL);
    assert_false(dedupe_seen(d, "a"));
    assert_false(dedupe_seen(d, NULL));
    dedupe_add(d, "a");
    dedupe_add(d, "b");
    dedupe_add(d, "a");           /* already known: no second slot */
    dedupe_add(d, "c");
    assert_true(dedupe_seen(d, "a") && dedupe_seen(d, "b") && dedupe_seen(d, "c"));
    dedupe_add(d, "d");           /* evicts the oldest, a */
    assert_false(dedupe_seen(d, "a"));
    assert_true(dedupe_seen(d, "b") && dedupe_seen(d, "d"));
    dedupe_free(d);
}

static void test_many(void **state)
{
    (void)state;
    struct dedupe *d = dedupe_new(1000, NULL);
    char id[32];
    for (int i = 0; i < 50000; i++) {
        snprintf(id, sizeof id, "id-%d", i);
        dedupe_add(d, id);
        /* Everything of the last 1000 is known, nothing older. */
        if (i % 997 == 0) {
            for (int k = i; k >= 0 && k > i - 1000; k -= 7) {
                snprintf(id, sizeof id, "id-%d", k);
                assert_true(dedupe_seen(d, id));
            }
            if (i >= 1000) {
                snprintf(id, sizeof id, "id-%d", i - 1000);
                assert_false(dedupe_seen(d, id));
            }
        }
    }
    dedupe_free(d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_basic), cmocka_unit_test(test_many),
                                       cmocka_unit_test(test_keyed)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
