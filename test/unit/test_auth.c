/* Token and HMAC checks. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <ctype.h>
#include <errno.h>
#include <string.h>
#include <cmocka.h>

#include "auth.h"

/* HMAC-SHA256("s3cret", "{\"a\":1}\n") computed with `openssl dgst -sha256 -hmac`. */
#define BODY "{\"a\":1}\n"
#define MAC "015557de5463cb8cd33338a9acf30081fd629d849d401e1d1b89eb16de83586f"

static int check(const char *token, const char *secret, struct auth_input in, const char **why)
{
    if (!in.body) {
        in.body = BODY;
        in.body_len = strlen(BODY);
    }
    return auth_check(token, secret, &in, why);
}

static void test_off(void **state)
{
    (void)state;
    const char *why;
    assert_int_equal(check(NULL, NULL, (struct auth_input){0}, &why), 0);
}

static void test_token(void **state)
{
    (void)state;
    const char *why;
    assert_int_equal(check("tok-123", NULL, (struct auth_input){.authorization = "Bearer tok-123"}, &why), 0);
    assert_int_equal(check("tok-123", NULL, (struct auth_input){.authorization = "bearer  tok-123 "}, &why), 0);
    assert_int_equal(check("tok-123", NULL, (struct auth_input){.path_token = "tok-123"}, &why), 0);
    assert_int_equal(check("tok-123", NULL, (struct auth_input){0}, &why), -EACCES);
    assert_non_null(strstr(why, "missing"));
    assert_int_equal(check("tok-123", NULL, (struct auth_input){.authorization = "Bearer tok-12"}, &why), -EACCES);
    assert_string_equal(why, "invalid token");
    assert_int_equal(check("tok-123", NULL, (struct auth_input){.authorization = "Basic tok-123"}, &why), -EACCES);
    assert_int_equal(check("tok-123", NULL, (struct auth_input){.authorization = "Bearer tok-1234"}, &why), -EACCES);
    assert_int_equal(check("tok-123", NULL, (struct auth_input){.path_token = "tok-12"}, &why), -EACCES);
    assert_int_equal(check("tok-123", NULL, (struct auth_input){.path_token = ""}, &why), -EACCES);
}

static void test_hmac(void **state)
{
    (void)state;
    const char *why;
    const char *mac = MAC;
    char hub[80];
    snprintf(hub, sizeof hub, "sha256=%s", mac);
    assert_int_equal(check(NULL, "s3cret", (struct auth_input){.hub_signature = hub}, &why), 0);
    assert_int_equal(check(NULL, "s3cret", (struct auth_input){.gitea_signature = mac}, &why), 0);
    /* Upper-case hex is the same signature. */
    char upper[80];
    for (size_t i = 0; i <= strlen(mac); i++) upper[i] = (char)toupper((unsigned char)mac[i]);
    assert_int_equal(check(NULL, "s3cret", (struct auth_input){.gitea_signature = upper}, &why), 0);
    /* Same body without its trailing newline: a different signature. */
    assert_int_equal(check(NULL, "s3cret", (struct auth_input){.hub_signature = hub, .body = "{\"a\":1}",
                                                               .body_len = 7}, &why), -EACCES);
    assert_int_equal(check(NULL, "wrong", (struct auth_input){.hub_signature = hub}, &why), -EACCES);
    assert_string_equal(why, "invalid signature");
    assert_int_equal(check(NULL, "s3cret", (struct auth_input){0}, &why), -EACCES);
    assert_non_null(strstr(why, "missing signature"));
    assert_int_equal(check(NULL, "s3cret", (struct auth_input){.hub_signature = mac}, &why), -EACCES);
    assert_int_equal(check(NULL, "s3cret", (struct auth_input){.gitea_signature = "zz"}, &why), -EACCES);
    /* Both configured: both needed. */
    assert_int_equal(check("t0ken", "s3cret", (struct auth_input){.hub_signature = hub}, &why), -EACCES);
    assert_int_equal(check("t0ken", "s3cret", (struct auth_input){.hub_signature = hub,
                                                                  .path_token = "t0ken"}, &why), 0);
}

/* ADMIN_TOKEN: Bearer, or Basic with any user and the token as password. */
static void test_admin(void **state)
{
    (void)state;
    const char *why;
    assert_int_equal(auth_admin_check(NULL, NULL, &why), 0);            /* unset: open */
    assert_int_equal(auth_admin_check(NULL, "Basic junk", &why), 0);
    const char *t = "adm-secret";
    assert_int_equal(auth_admin_check(t, "Bearer adm-secret", &why), 0);
    assert_int_equal(auth_admin_check(t, "bearer  adm-secret ", &why), 0);
    assert_int_equal(auth_admin_check(t, "Basic dTphZG0tc2VjcmV0", &why), 0);      /* u:adm-secret */
    assert_int_equal(auth_admin_check(t, "basic OmFkbS1zZWNyZXQ=", &why), 0);      /* :adm-secret */
    assert_int_equal(auth_admin_check(t, NULL, &why), -EACCES);
    assert_non_null(strstr(why, "required"));
    assert_int_equal(auth_admin_check(t, "Bearer adm-secreX", &why), -EACCES);
    assert_null(strstr(why, "adm"));   /* never the secret */
    assert_int_equal(auth_admin_check(t, "Bearer adm-secret2", &why), -EACCES);
    assert_int_equal(auth_admin_check(t, "Basic dTphZG0tc2VjcmVY", &why), -EACCES);  /* u:adm-secreX */
    assert_int_equal(auth_admin_check(t, "Basic dTphZG06c2VjcmV0", &why), -EACCES);  /* u:adm:secret */
    assert_int_equal(auth_admin_check(t, "Basic YWRtLXNlY3JldA==", &why), -EACCES);  /* no colon */
    assert_int_equal(auth_admin_check(t, "Basic !!!!", &why), -EACCES);
    assert_int_equal(auth_admin_check(t, "Basic ", &why), -EACCES);
    assert_int_equal(auth_admin_check(t, "Basic abc", &why), -EACCES);
    assert_int_equal(auth_admin_check(t, "adm-secret", &why), -EACCES);
    assert_int_equal(auth_admin_check(t, "Digest adm-secret", &why), -EACCES);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_off), cmocka_unit_test(test_token), cmocka_unit_test(test_hmac), cmocka_unit_test(test_admin),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
