/* libFuzzer target: notification templates and target URLs. The input's
 * first line is a target URL, the rest a template; both are parsed, and
 * whatever parses is built into requests for every outcome. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "notify_request.h"
#include "notify_target.h"
#include "template.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    memcpy(s, data, size);
    s[size] = '\0';
    char *nl = strchr(s, '\n');
    const char *tpl = nl ? nl + 1 : "";
    if (nl) *nl = '\0';

    char err[256];
    struct template *t = template_compile(tpl, err, sizeof err);
    struct notify_message m = {.outcome = NO_FAILED};
    for (int v = 0; v < TV_COUNT; v++) m.vars.v[v] = tpl;   /* hostile values too */
    if (t) {
        struct buf b;
        buf_init(&b);
        for (int e = TPL_PLAIN; e <= TPL_URL; e++) template_render(t, &m.vars, (enum tpl_escape)e, &b);
        tpl_truncate(&b, b.len / 3, 7);
        buf_free(&b);
    }
    for (int kind = -1; kind < NK_COUNT; kind++) {
        struct notify_target target;
        if (notify_target_from_url(s, kind, &target, err, sizeof err) < 0) continue;
        if (t && kind == NK_GENERIC) target.body = t, t = NULL;
        struct notify_request r[NOTIFY_MAX_REQUESTS];
        for (int o = 0; o < NO_COUNT; o++) {
            m.outcome = (enum notify_outcome_kind)o;
            size_t n = notify_build(&target, &m, r, NOTIFY_MAX_REQUESTS);
            for (size_t i = 0; i < n; i++) notify_request_free(&r[i]);
        }
        notify_target_free(&target);
    }
    template_free(t);
    notify_body_retry_after_ms((const char *)data, size);
    free(s);
    return 0;
}
