/* auth.c - bearer/path token and HMAC-SHA256 body signatures. */
#include "auth.h"

#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <strings.h>
#include <string.h>

/* Compares a secret with a candidate without leaking, through timing, how
 * much of it matched. Lengths may differ; the length itself is not secret. */
static int secret_equal(const char *secret, const char *candidate, size_t cand_len)
{
    size_t n = strlen(secret);
    if (n != cand_len) return 0;
    return CRYPTO_memcmp(secret, candidate, n) == 0;
}

static int token_ok(const char *token, const struct auth_input *in)
{
    if (in->path_token && secret_equal(token, in->path_token, strlen(in->path_token))) return 1;
    const char *a = in->authorization;
    if (a && strncasecmp(a, "Bearer ", 7) == 0) {
        a += 7;
        while (*a == ' ') a++;
        size_t n = strlen(a);
        while (n && a[n - 1] == ' ') n--;
        if (secret_equal(token, a, n)) return 1;
    }
    return 0;
}

static int hex_value(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Compares hex (64 digits, either case) with the 32-byte mac, constant-time. */
static int hex_mac_equal(const char *hex, const unsigned char *mac, unsigned mac_len)
{
    unsigned char want[EVP_MAX_MD_SIZE];
    if (strlen(hex) != mac_len * 2) return 0;
    for (unsigned i = 0; i < mac_len; i++) {
        int hi = hex_value(hex[2 * i]), lo = hex_value(hex[2 * i + 1]);
        if (hi < 0 || lo < 0) return 0;
        want[i] = (unsigned char)(hi << 4 | lo);
    }
    return CRYPTO_memcmp(want, mac, mac_len) == 0;
}

static int hmac_ok(const char *secret, const struct auth_input *in)
{
    const char *sig = NULL;
    if (in->hub_signature && strncmp(in->hub_signature, "sha256=", 7) == 0)
        sig = in->hub_signature + 7;
    else if (in->gitea_signature)
        sig = in->gitea_signature;
    if (!sig) return 0;
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned mac_len = 0;
    if (!HMAC(EVP_sha256(), secret, (int)strlen(secret), (const unsigned char *)in->body,
              in->body_len, mac, &mac_len))
        return 0;
    return hex_mac_equal(sig, mac, mac_len);
}

int auth_check(const char *token, const char *hmac_secret, const struct auth_input *in,
               const char **why)
{
    if (token && !token_ok(token, in)) {
        *why = in->authorization || in->path_token ? "invalid token"
                                                   : "missing token (Authorization: Bearer)";
        return -EACCES;
    }
    if (hmac_secret && !hmac_ok(hmac_secret, in)) {
        *why = in->hub_signature || in->gitea_signature
                   ? "invalid signature"
                   : "missing signature (X-Hub-Signature-256 or X-Gitea-Signature)";
        return -EACCES;
    }
    *why = NULL;
    return 0;
}

/* "Basic <base64(user:password)>": the password, compared like a token. */
static int basic_password_ok(const char *token, const char *b64)
{
    while (*b64 == ' ') b64++;
    size_t n = strlen(b64);
    while (n && b64[n - 1] == ' ') n--;
    if (n == 0 || n % 4 || n > 4096) return 0;
    unsigned char plain[3 * 4096 / 4 + 1];
    int len = EVP_DecodeBlock(plain, (const unsigned char *)b64, (int)n);
    if (len < 0) return 0;
    /* EVP_DecodeBlock counts the padding as zero bytes: take them off. */
    if (b64[n - 1] == '=') len--;
    if (b64[n - 2] == '=') len--;
    plain[len] = '\0';
    const char *colon = memchr(plain, ':', (size_t)len);
    if (!colon) return 0;
    const char *pass = colon + 1;
    return secret_equal(token, pass, (size_t)len - (size_t)(pass - (const char *)plain));
}

int auth_admin_check(const char *token, const char *authorization, const char **why)
{
    *why = NULL;
    if (!token) return 0;
    const char *a = authorization;
    if (!a) {
        *why = "authentication required (ADMIN_TOKEN)";
        return -EACCES;
    }
    struct auth_input in = {.authorization = a};
    if (strncasecmp(a, "Bearer ", 7) == 0 && token_ok(token, &in)) return 0;
    if (strncasecmp(a, "Basic ", 6) == 0 && basic_password_ok(token, a + 6)) return 0;
    *why = "invalid credentials";
    return -EACCES;
}
