/* docker_engine.c: the one API version rule, and how a call's target is built. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <errno.h>
#include <string.h>
#include <cmocka.h>

#include "docker_engine.h"

static void test_api_pick(void **s)
{
    (void)s;
    char v[16];
    assert_int_equal(docker_api_pick("1.41", v, sizeof v), 0);
    assert_string_equal(v, "1.41");
    assert_int_equal(docker_api_pick(DOCKER_MIN_API, v, sizeof v), 0);
    assert_string_equal(v, DOCKER_MIN_API);
    /* Newer than this code knows: it speaks the newest it was written against. */
    assert_int_equal(docker_api_pick("1.51", v, sizeof v), 0);
    assert_string_equal(v, DOCKER_MAX_API);
    assert_int_equal(docker_api_pick("2.0", v, sizeof v), 0);
    assert_string_equal(v, DOCKER_MAX_API);
    /* Older than the oldest it can work with, or no version at all: refused
     * (the updater used to accept any). */
    const char *bad[] = {"1.23", "1.9", "0.99", "", "1", "1.", ".41", "1.41a", "a.b", "1.41.0", "-1.41", NULL};
    for (size_t i = 0; bad[i]; i++) assert_int_equal(docker_api_pick(bad[i], v, sizeof v), -ENOTSUP);
    assert_int_equal(docker_api_pick(NULL, v, sizeof v), -ENOTSUP);
}

static void test_engine_name_and_version(void **s)
{
    (void)s;
    struct docker_host h = {.text = "tcp://[::1]:2375", .ep = {.host = "::1", .port = 2375}};
    struct docker_engine *e = docker_engine_new(NULL, &h);
    assert_string_equal(docker_engine_name(e), "tcp://[::1]:2375");
    assert_string_equal(docker_engine_api(e), "");
    assert_int_equal(docker_engine_take_version(e, "1.12"), -ENOTSUP);
    assert_string_equal(docker_engine_api(e), "");
    assert_int_equal(docker_engine_take_version(e, "1.43"), 0);
    assert_string_equal(docker_engine_api(e), "1.43");
    docker_engine_free(e);
    docker_engine_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_api_pick),
        cmocka_unit_test(test_engine_name_and_version),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
