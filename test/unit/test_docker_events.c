/* The /events stream: framing across reads and event parsing. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "docker_events.h"
#include "testutil.h"

struct seen {
    int n;
    int containers, services, creates;
    int errors;
    char first_url[256];
};

static void on_line(void *ud, const char *line, size_t len)
{
    struct seen *s = ud;
    struct docker_event ev;
    const char *err;
    if (docker_event_parse(line, len, &ev, &err) < 0) {
        s->errors++;
        return;
    }
    s->n++;
    if (ev.type == DOCKER_EVENT_CONTAINER) s->containers++;
    if (ev.type == DOCKER_EVENT_SERVICE) s->services++;
    if (!strcmp(ev.action, "create")) s->creates++;
    json_t *url = json_object_get(ev.attributes, "webhook-router.url");
    if (url && !s->first_url[0]) snprintf(s->first_url, sizeof s->first_url, "%s", json_string_value(url));
    docker_event_free(&ev);
}

static struct seen feed_in_pieces(const char *data, size_t len, size_t piece, unsigned seed)
{
    struct seen s = {0};
    struct line_splitter ls;
    line_splitter_init(&ls, 1 << 20);
    size_t off = 0;
    srand(seed);
    while (off < len) {
        size_t n = piece ? piece : (size_t)(rand() % 97) + 1;
        if (n > len - off) n = len - off;
        assert_int_equal(line_splitter_feed(&ls, data + off, n, on_line, &s), 0);
        off += n;
    }
    line_splitter_free(&ls);
    return s;
}

static void test_fixture_any_split(void **state)
{
    (void)state;
    size_t len;
    char *data = tu_shared_fixture("docker/events-container-and-service.jsonl", &len);
    struct seen whole = feed_in_pieces(data, len, len, 0);
    assert_true(whole.n >= 5);
    assert_int_equal(whole.errors, 0);
    assert_true(whole.services >= 1);
    assert_true(whole.containers >= 2);
    assert_string_equal(whole.first_url,
                        "https://portainer:9443/api/stacks/webhooks/638e6967-ef77-4906-8af8-236800621360");
    struct seen bytes = feed_in_pieces(data, len, 1, 0);
    assert_memory_equal(&whole, &bytes, sizeof whole);
    for (unsigned seed = 1; seed < 20; seed++) {
        struct seen r = feed_in_pieces(data, len, 0, seed);
        assert_memory_equal(&whole, &r, sizeof whole);
    }
    free(data);
}

static void test_partial_and_limits(void **state)
{
    (void)state;
    struct seen s = {0};
    struct line_splitter ls;
    line_splitter_init(&ls, 64);
    const char *ev = "{\"Type\":\"container\",\"Action\":\"destroy\",\"Actor\":{\"ID\":\"x\"}}";
    assert_int_equal(line_splitter_feed(&ls, ev, strlen(ev), on_line, &s), 0);
    assert_int_equal(s.n, 0);                 /* no newline yet */
    assert_int_equal(line_splitter_feed(&ls, "\r\n\n\n", 4, on_line, &s), 0);
    assert_int_equal(s.n, 1);                 /* blank lines skipped, CR trimmed */
    char big[100];
    memset(big, 'x', sizeof big);
    assert_int_equal(line_splitter_feed(&ls, big, sizeof big, on_line, &s), -E2BIG);
    line_splitter_free(&ls);
}

static void test_broken_events(void **state)
{
    (void)state;
    const char *bad[] = {
        "not json", "[1,2]", "{}", "{\"Type\":\"container\",\"Action\":\"create\"}",
        "{\"Type\":\"container\",\"Action\":\"create\",\"Actor\":{}}",
        "{\"Type\":1,\"Action\":\"create\",\"Actor\":{\"ID\":\"a\"}}",
        "{\"Type\":\"container\",\"Action\":\"create\",\"Actor\":{\"ID\":\"a\",\"Attributes\":[]}}",
        "{\"Type\":\"container\",\"Action\":\"create\",\"Actor\":{\"ID\":\"a\"}} trailing",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct docker_event ev;
        const char *err = NULL;
        assert_int_equal(docker_event_parse(bad[i], strlen(bad[i]), &ev, &err), -EINVAL);
        assert_non_null(err);
    }
    struct docker_event ev;
    const char *err;
    const char *ok = "{\"Type\":\"network\",\"Action\":\"connect\",\"Actor\":{\"ID\":\"n\"}}";
    assert_int_equal(docker_event_parse(ok, strlen(ok), &ev, &err), 0);
    assert_int_equal(ev.type, DOCKER_EVENT_OTHER);
    assert_true(json_is_object(ev.attributes));
    docker_event_free(&ev);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fixture_any_split), cmocka_unit_test(test_partial_and_limits),
        cmocka_unit_test(test_broken_events),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
