/* The recent-event-id memory, and the keyed hash it remembers ids by. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>

#include "dedupe.h"
#include "siphash.h"

/* OpenSSL's SipHash-2-4 (64-bit output), the reference for ours. */
static uint64_t openssl_siphash(const uint8_t key[16], const uint8_t *data, size_t len)
{
    EVP_MAC *mac = EVP_MAC_fetch(NULL, "SIPHASH", NULL);
    assert_non_null(mac);
    EVP_MAC_CTX *ctx = EVP_MAC_CTX_new(mac);
    size_t size = 8, outlen = 0;
    OSSL_PARAM params[] = {OSSL_PARAM_construct_size_t(OSSL_MAC_PARAM_SIZE, &size), OSSL_PARAM_construct_end()};
    uint8_t out[8];
    assert_int_equal(EVP_MAC_init(ctx, key, 16, params), 1);
    assert_int_equal(EVP_MAC_update(ctx, data, len), 1);
    assert_int_equal(EVP_MAC_final(ctx, out, &outlen, sizeof out), 1);
    assert_int_equal(outlen, 8);
    EVP_MAC_CTX_free(ctx);
    EVP_MAC_free(mac);
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = (v << 8) | out[i];
    return v;
}

static void test_siphash(void **state)
{
    (void)state;
    uint8_t key[16], msg[200];
    for (int i = 0; i < 16; i++) key[i] = (uint8_t)i;
    for (int i = 0; i < 200; i++) msg[i] = (uint8_t)i;
    /* The paper's vectors: key 00..0f, messages 00.., lengths 0 and 15. */
    assert_true(siphash24(key, msg, 0) == 0x726fdb47dd0e0e31ULL);
    assert_true(siphash24(key, msg, 15) == 0xa129ca6149be45e5ULL);
    /* Every tail length, blocks of several 8-byte words. */
    for (size_t len = 0; len < sizeof msg; len++) assert_true(siphash24(key, msg, len) == openssl_siphash(key, msg, len));
    key[3] ^= 1;
    assert_true(siphash24(key, msg, 40) == openssl_siphash(key, msg, 40));
}

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
    assert_true(siphash24(k1, "x", 1) != siphash24(k2, "x", 1));
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

/* A small memory wraps its index many times over: after every add,
 * exactly the last seven ids are known (the backward-shift delete keeps
 * every probe run whole). */
static void test_small_wraps(void **state)
{
    (void)state;
    struct dedupe *d = dedupe_new(7, NULL);
    char id[32];
    for (int i = 0; i < 20000; i++) {
        snprintf(id, sizeof id, "w%d", i);
        dedupe_add(d, id);
        for (int k = i - 9; k <= i; k++) {
            if (k < 0) continue;
            snprintf(id, sizeof id, "w%d", k);
            assert_int_equal(dedupe_seen(d, id), k > i - 7);
        }
    }
    dedupe_free(d);
}

/* The tag calls and the string calls are one memory: a caller that asks,
 * then remembers, hashes the id once. 0 is "no id": never seen, never kept. */
static void test_tags(void **state)
{
    (void)state;
    struct dedupe *d = dedupe_new(4, NULL);
    uint64_t t = dedupe_tag(d, "sha256:abc|http://h/x");
    assert_true(t != 0);
    assert_false(dedupe_seen_tag(d, t));
    dedupe_add_tag(d, t);
    assert_true(dedupe_seen(d, "sha256:abc|http://h/x"));
    dedupe_add(d, "e2");
    assert_true(dedupe_seen_tag(d, dedupe_tag(d, "e2")));
    assert_false(dedupe_seen_tag(d, 0));
    dedupe_add_tag(d, 0);
    assert_false(dedupe_seen_tag(d, 0));
    /* Evicted in order like any id: four more and the first is gone. */
    for (int i = 0; i < 4; i++) {
        char id[8];
        snprintf(id, sizeof id, "n%d", i);
        dedupe_add_tag(d, dedupe_tag(d, id));
    }
    assert_false(dedupe_seen_tag(d, t));
    assert_true(dedupe_seen(d, "n3"));
    dedupe_free(d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_basic), cmocka_unit_test(test_many),
                                       cmocka_unit_test(test_siphash), cmocka_unit_test(test_keyed),
                                       cmocka_unit_test(test_tags), cmocka_unit_test(test_small_wraps)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
