/* libFuzzer: label parsing, repository normalisation, matching and globs.
 * Input: "<labels JSON>\n<repository>\n<registry>\n<tag>". */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "match.h"
#include "routes.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char *field(const char **p, const char *end)
{
    const char *nl = memchr(*p, '\n', (size_t)(end - *p));
    size_t n = nl ? (size_t)(nl - *p) : (size_t)(end - *p);
    char *s = xstrndup(*p, n);
    *p += n + (nl ? 1 : 0);
    return s;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *p = (const char *)data, *end = p + size;
    char *labels_json = field(&p, end), *repo = field(&p, end), *registry = field(&p, end),
         *tag = field(&p, end);
    json_error_t jerr;
    json_t *labels = json_loads(labels_json, 0, &jerr);
    struct route *routes;
    char err[256];
    int n = route_parse_labels("webhook-router", labels, &routes, err, sizeof err);
    if (n > 0) {
        struct repo_ref ev;
        if (repo_ref_from_event(registry, repo, &ev) == 0)
            for (int i = 0; i < n; i++) {
                repo_ref_match(&routes[i].ref, &ev);
                if (routes[i].tag_glob) tag_glob_match(routes[i].tag_glob, tag);
            }
        route_list_free(routes, (size_t)n);
    }
    struct repo_ref r;
    repo_ref_parse(repo, &r);
    if (tag_glob_valid(registry)) tag_glob_match(registry, tag);
    json_decref(labels);
    free(labels_json);
    free(repo);
    free(registry);
    free(tag);
    return 0;
}
