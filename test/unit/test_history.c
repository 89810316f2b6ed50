/* The delivery history ring and the deploy confirmation rule (pure). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "confirm.h"
#include "history.h"

static const struct push_event EV = {.format = "distribution", .id = "ev-1", .registry = "reg:5000",
                                     .repository = "team/app", .tag = "v1", .digest = "sha256:aaa"};

static uint64_t add(struct history *h, const struct push_event *ev, long long now, size_t key)
{
    struct history_add a = {.now_ms = now, .action = HISTORY_REDEPLOY, .ev = ev, .target = "http://***#0badf00d",
                            .target_key = key};
    return history_add(h, &a);
}

static void test_wrap_and_ids(void **state)
{
    (void)state;
    struct history *h = history_new(3);
    uint64_t ids[5];
    for (int i = 0; i < 5; i++) ids[i] = add(h, &EV, 1000 + i, 7);
    assert_int_equal(history_count(h), 3);
    /* The first two were overwritten by the wrap: their ids find nothing,
     * not the entries that took their slots. */
    assert_null(history_get(h, ids[0]));
    assert_null(history_get(h, ids[1]));
    assert_null(history_get(h, 0));
    assert_null(history_get(h, ids[4] + 1));
    for (int i = 2; i < 5; i++) {
        struct history_entry *e = history_get(h, ids[i]);
        assert_non_null(e);
        assert_int_equal(e->ts_ms, 1000 + i);
    }
    /* Newest first. */
    const struct history_entry *out[10];
    struct history_filter f = {.outcome = HISTORY_NOUTCOMES};
    assert_int_equal(history_query(h, &f, out, 10), 3);
    assert_int_equal(out[0]->id, ids[4]);
    assert_int_equal(out[2]->id, ids[2]);
    history_free(h);
}

static void test_update_in_place(void **state)
{
    (void)state;
    struct history *h = history_new(10);
    uint64_t id = add(h, &EV, 1000, 7);
    add(h, &EV, 1001, 8);
    struct history_entry *e = history_get(h, id);
    assert_int_equal(e->outcome, HISTORY_QUEUED);
    e->status = 204;
    history_set_outcome(e, HISTORY_DELIVERED, 1500, NULL);
    history_deployed(h, e, 4000);
    const struct history_entry *out[10];
    struct history_filter f = {.outcome = HISTORY_NOUTCOMES};
    assert_int_equal(history_query(h, &f, out, 10), 2);   /* still two entries: updated, not added */
    assert_int_equal(out[1]->outcome, HISTORY_DEPLOYED);
    assert_int_equal(out[1]->deployed_ms, 3000);
    assert_int_equal(out[1]->status, 204);
    assert_int_equal(history_deploy_stats(h)->count, 1);
    assert_int_equal(history_deploy_stats(h)->le[0], 0);   /* 3 s: not <= 1 s or 2 s */
    assert_int_equal(history_deploy_stats(h)->le[2], 1);   /* <= 5 s */
    history_free(h);
}

static void test_filters(void **state)
{
    (void)state;
    struct history *h = history_new(100);
    struct push_event other = EV;
    other.repository = "team/other";
    for (int i = 0; i < 20; i++) {
        uint64_t id = add(h, i % 2 ? &other : &EV, i, 7);
        if (i % 4 == 0) history_set_outcome(history_get(h, id), HISTORY_FAILED, i, "HTTP 500");
    }
    const struct history_entry *out[100];
    struct history_filter f = {.limit = 3, .outcome = HISTORY_NOUTCOMES};
    assert_int_equal(history_query(h, &f, out, 100), 3);
    f = (struct history_filter){.repository = "team/other", .outcome = HISTORY_NOUTCOMES};
    assert_int_equal(history_query(h, &f, out, 100), 10);
    for (int i = 0; i < 10; i++) assert_string_equal(out[i]->repository, "team/other");
    f = (struct history_filter){.repository = "team/app", .outcome = HISTORY_FAILED};
    assert_int_equal(history_query(h, &f, out, 100), 5);
    assert_string_equal(out[0]->error, "HTTP 500");
    f = (struct history_filter){.repository = "team/app", .outcome = HISTORY_FAILED, .limit = 2};
    assert_int_equal(history_query(h, &f, out, 100), 2);
    assert_int_equal(history_outcome_parse("unconfirmed"), HISTORY_UNCONFIRMED);
    assert_int_equal(history_outcome_parse("nope"), HISTORY_NOUTCOMES);
    history_free(h);
}

/* Strings are cut to their field, never in the middle of a character. */
static void test_bounded_strings(void **state)
{
    (void)state;
    struct history *h = history_new(2);
    char longid[400];
    memset(longid, 'x', sizeof longid);
    memcpy(longid + 94, "\xc3\xa9", 2);   /* é across the cut at 95 */
    longid[sizeof longid - 1] = '\0';
    struct push_event ev = EV;
    ev.id = longid;
    struct history_entry *e = history_get(h, add(h, &ev, 1, 1));
    assert_int_equal(strlen(e->event_id), 94);
    /* Everything long at once: the text area is shared, the digest (packed
     * first) is whole, the rest cut, nothing overruns. */
    ev.registry = ev.repository = ev.tag = ev.format = longid;
    e = history_get(h, add(h, &ev, 2, 1));
    assert_string_equal(e->digest, "sha256:aaa");
    assert_true(strlen(e->registry) <= 63 && strlen(e->repository) <= 127 && strlen(e->tag) <= 95);
    assert_true(e->target + strlen(e->target) < e->text + sizeof e->text);
    history_free(h);
}

static void test_json_escapes(void **state)
{
    (void)state;
    struct history *h = history_new(2);
    struct push_event ev = EV;
    ev.id = "<script>\"x\"\n";
    struct history_entry *e = history_get(h, add(h, &ev, 1700000000000LL, 1));
    struct buf b;
    buf_init(&b);
    history_entry_json(&b, e);
    assert_non_null(strstr(buf_cstr(&b), "\"event_id\":\"<script>\\\"x\\\"\\n\""));
    assert_non_null(strstr(buf_cstr(&b), "\"ts\":\"2023-11-14T22:13:20.000Z\""));
    assert_non_null(strstr(buf_cstr(&b), "\"outcome\":\"queued\""));
    assert_non_null(strstr(buf_cstr(&b), "\"deployed_ms\":null"));
    buf_free(&b);
    history_free(h);
}

/* ---- confirmation ---------------------------------------------------------- */

/* A delivered redeploy of EV to route 7, POSTed at 10 000. */
static struct history_entry *delivered(struct history *h, const struct push_event *ev)
{
    struct history_entry *e = history_get(h, add(h, ev, 9000, 7));
    e->posted_ms = 10000;
    history_set_outcome(e, HISTORY_DELIVERED, 10100, NULL);
    return e;
}

static const size_t ROUTE7[] = {3, 7};
static const size_t ROUTE8[] = {8};

static void test_confirm_container_digest(void **state)
{
    (void)state;
    struct history *h = history_new(4);
    struct history_entry *e = delivered(h, &EV);
    const char *digests[] = {"reg:5000/team/app@sha256:old", "reg:5000/team/app@sha256:aaa"};
    struct confirm_observation o = {.kind = CONFIRM_CONTAINER, .target_keys = ROUTE7, .nkeys = 2,
                                    .digests = digests, .ndigests = 2, .created_ms = 10500, .started_ms = 11000};
    assert_true(confirm_matches(e, &o));
    /* Another route's container with the same image confirms nothing. */
    o.target_keys = ROUTE8;
    o.nkeys = 1;
    assert_false(confirm_matches(e, &o));
    o.target_keys = ROUTE7;
    o.nkeys = 2;
    /* The old image only. */
    o.ndigests = 1;
    assert_false(confirm_matches(e, &o));
    /* A digest that merely starts like the pushed one. */
    const char *longer[] = {"reg:5000/team/app@sha256:aaab"};
    o.digests = longer;
    assert_false(confirm_matches(e, &o));
    /* Started before the POST: that is the old deployment. */
    o.digests = digests;
    o.ndigests = 2;
    o.started_ms = 9999;
    assert_false(confirm_matches(e, &o));
    /* Queued, failed or already deployed entries are not waiting. */
    o.started_ms = 11000;
    e->outcome = HISTORY_QUEUED;
    assert_false(confirm_matches(e, &o));
    e->outcome = HISTORY_DEPLOYED;
    assert_false(confirm_matches(e, &o));
    history_free(h);
}

/* Portainer's redeploy replaces the container: the old one (created long
 * before, running the old image) stops, a new one with the same labels
 * starts. The old one restarting proves nothing; the new one confirms. */
static void test_confirm_replaced_container(void **state)
{
    (void)state;
    struct history *h = history_new(4);
    struct history_entry *e = delivered(h, &EV);
    const char *old_img[] = {"reg:5000/team/app@sha256:old"};
    const char *new_img[] = {"reg:5000/team/app@sha256:aaa"};
    struct confirm_observation old = {.kind = CONFIRM_CONTAINER, .target_keys = ROUTE7, .nkeys = 2,
                                      .digests = old_img, .ndigests = 1, .created_ms = 0, .started_ms = 10200};
    assert_false(confirm_matches(e, &old));
    struct confirm_observation repl = {.kind = CONFIRM_CONTAINER, .target_keys = ROUTE7, .nkeys = 2,
                                       .digests = new_img, .ndigests = 1, .created_ms = 10300, .started_ms = 10400};
    assert_true(confirm_matches(e, &repl));
    history_free(h);
}

static void test_confirm_no_digest(void **state)
{
    (void)state;
    struct history *h = history_new(4);
    struct push_event ev = EV;
    ev.digest = NULL;
    struct history_entry *e = delivered(h, &ev);
    struct confirm_observation o = {.kind = CONFIRM_CONTAINER, .target_keys = ROUTE7, .nkeys = 2,
                                    .created_ms = 10300, .started_ms = 10400};
    assert_true(confirm_matches(e, &o));
    /* An old container restarted (created before the POST, or unknown). */
    o.created_ms = 0;
    assert_false(confirm_matches(e, &o));
    o.created_ms = 9000;
    assert_false(confirm_matches(e, &o));
    /* A service updated after the POST. */
    struct confirm_observation s = {.kind = CONFIRM_SERVICE, .target_keys = ROUTE7, .nkeys = 2, .started_ms = 10400};
    assert_true(confirm_matches(e, &s));
    history_free(h);
}

static void test_confirm_service_pinned(void **state)
{
    (void)state;
    struct history *h = history_new(4);
    struct history_entry *e = delivered(h, &EV);
    const char *img[] = {"reg:5000/team/app:v1@sha256:aaa"};
    struct confirm_observation s = {.kind = CONFIRM_SERVICE, .target_keys = ROUTE7, .nkeys = 2, .digests = img,
                                    .ndigests = 1, .started_ms = 10400};
    assert_true(confirm_matches(e, &s));
    const char *unpinned[] = {"reg:5000/team/app:v1"};
    s.digests = unpinned;
    assert_false(confirm_matches(e, &s));
    history_free(h);
}

static void test_confirm_deadline(void **state)
{
    (void)state;
    struct history *h = history_new(4);
    assert_int_equal(confirm_next_deadline(h, 300), 0);
    struct history_entry *e = delivered(h, &EV);
    assert_int_equal(confirm_next_deadline(h, 3), 13000);
    assert_int_equal(confirm_next_deadline(h, 0), 0);   /* off */
    assert_false(confirm_expired(e, 12999, 3));
    assert_true(confirm_expired(e, 13000, 3));
    assert_false(confirm_expired(e, 99999, 0));
    history_set_outcome(e, HISTORY_UNCONFIRMED, 13000, "not running");
    assert_int_equal(confirm_next_deadline(h, 3), 0);
    history_free(h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_wrap_and_ids),
        cmocka_unit_test(test_update_in_place),
        cmocka_unit_test(test_filters),
        cmocka_unit_test(test_bounded_strings),
        cmocka_unit_test(test_json_escapes),
        cmocka_unit_test(test_confirm_container_digest),
        cmocka_unit_test(test_confirm_replaced_container),
        cmocka_unit_test(test_confirm_no_digest),
        cmocka_unit_test(test_confirm_service_pinned),
        cmocka_unit_test(test_confirm_deadline),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
