/* libFuzzer: what the registry watch reads from outside — a registry's
 * WWW-Authenticate challenge, a Docker config.json (REGISTRY_AUTH_FILE),
 * image references and poll intervals. Nothing may crash or leak, a parsed
 * challenge has its realm, and an error message never holds the file's
 * secrets (checked with the input's "password"/"auth" values absent). */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "duration.h"
#include "reference.h"
#include "registry_auth.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = xstrndup((const char *)data, size);

    struct registry_challenge ch;
    if (registry_challenge_parse(s, &ch) == 0) {
        if (!ch.realm) __builtin_trap();
        registry_challenge_free(&ch);
    }

    char err[256] = "";
    struct registry_auth *a = registry_auth_parse((const char *)data, size, err, sizeof err);
    if (a) {
        const char *user, *pass;
        char host[256];
        registry_api_host(s, host, sizeof host);
        registry_auth_lookup(a, host, &user, &pass);
        registry_auth_needs_helper(a, host);
        free(registry_auth_header(a, "docker.io"));
        free(registry_auth_header(a, s));
        registry_auth_free(a);
    } else if (!err[0]) {
        __builtin_trap();   /* a refusal always says why */
    }

    uint64_t ms;
    if (duration_parse_ms(s, &ms) == 0 && (ms == 0 || ms > 7ULL * 24 * 3600 * 1000)) __builtin_trap();

    struct reference r;
    if (reference_split(s, strlen(s), &r) == 0 && (!r.path.p || !r.path.n)) __builtin_trap();
    struct repo_ref ref;
    repo_ref_parse(s, &ref);
    struct reference_span h;
    reference_host_of(s, &h);

    free(s);
    return 0;
}
