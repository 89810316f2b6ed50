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

/* The fields of the real captures, one line at a time. */
static void test_fixture_fields(void **state)
{
    (void)state;
    char *data = tu_shared_fixture("docker/events-container-and-service.jsonl", NULL);
    char *second = strchr(data, '\n') + 1;
    struct docker_event ev;
    const char *err = NULL;

    /* Line 1: a compose container created with the router's labels. */
    assert_int_equal(docker_event_parse(data, (size_t)(second - data - 1), &ev, &err), 0);
    assert_int_equal(ev.type, DOCKER_EVENT_CONTAINER);
    assert_string_equal(ev.action, "create");
    assert_string_equal(ev.id, "77d3a2f9ab0b4b090647509c72f234fc8f52bbe83b3768fc30dd56cde9f36ab0");
    assert_true(ev.time_nano == 1795345013990848205LL);
    assert_string_equal(json_string_value(json_object_get(ev.attributes, "name")), "fx1");
    assert_string_equal(json_string_value(json_object_get(ev.attributes, "webhook-router.image")), "team/myapp");
    assert_string_equal(json_string_value(json_object_get(ev.attributes, "com.docker.compose.project")), "shop");
    docker_event_free(&ev);
    assert_null(ev.root);

    /* Line 3: a swarm service. */
    char *third = strchr(second, '\n') + 1;
    char *end = strchr(third, '\n');
    assert_int_equal(docker_event_parse(third, (size_t)(end - third), &ev, &err), 0);
    assert_int_equal(ev.type, DOCKER_EVENT_SERVICE);
    assert_string_equal(ev.action, "create");
    assert_string_equal(ev.id, "wweu9foqnkz2klmipsgi2jpi9");
    assert_string_equal(json_string_value(json_object_get(ev.attributes, "name")), "fxsvc");
    docker_event_free(&ev);
    free(data);

    /* No Attributes, no timeNano: an empty object and 0, never NULL. */
    const char *bare = "{\"Type\":\"container\",\"Action\":\"destroy\",\"Actor\":{\"ID\":\"abc\"}}";
    assert_int_equal(docker_event_parse(bare, strlen(bare), &ev, &err), 0);
    assert_non_null(ev.attributes);
    assert_true(json_is_object(ev.attributes));
    assert_int_equal(json_object_size(ev.attributes), 0);
    assert_true(ev.time_nano == 0);
    docker_event_free(&ev);
}

/* After -E2BIG the splitter starts clean: the next line is whole. */
static void test_recovers_after_too_long(void **state)
{
    (void)state;
    struct seen s = {0};
    struct line_splitter ls;
    line_splitter_init(&ls, 80);
    char big[200];
    memset(big, 'x', sizeof big);
    assert_int_equal(line_splitter_feed(&ls, big, 50, on_line, &s), 0);   /* pending, under the limit */
    assert_int_equal(line_splitter_feed(&ls, big, 50, on_line, &s), -E2BIG);
    assert_int_equal(s.n + s.errors, 0);
    const char *ev = "{\"Type\":\"service\",\"Action\":\"update\",\"Actor\":{\"ID\":\"s\"}}\n";
    assert_int_equal(line_splitter_feed(&ls, ev, strlen(ev), on_line, &s), 0);
    assert_int_equal(s.n, 1);
    assert_int_equal(s.services, 1);
    assert_int_equal(s.errors, 0);
    /* A line of exactly max_line bytes is fine. */
    char exact[82];
    memset(exact, ' ', 80);
    exact[80] = '\n';
    assert_int_equal(line_splitter_feed(&ls, exact, 81, on_line, &s), 0);
    assert_int_equal(s.errors, 1);   /* blanks are not JSON, but it was a line */
    line_splitter_free(&ls);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fixture_any_split), cmocka_unit_test(test_partial_and_limits),
        cmocka_unit_test(test_broken_events), cmocka_unit_test(test_fixture_fields),
        cmocka_unit_test(test_recovers_after_too_long),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
