/* duration.c - interval strings (see duration.h). */
#include "duration.h"

#include <errno.h>
#include <stdbool.h>
#include <string.h>

#define MAX_MS (7ULL * 24 * 3600 * 1000)

int duration_parse_ms(const char *s, uint64_t *out)
{
    if (!s) return -EINVAL;
    while (*s == ' ' || *s == '\t') s++;
    size_t n = strlen(s);
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t')) n--;
    if (!n) return -EINVAL;
    /* A bare number is seconds: Watchtower's POLL_INTERVAL=300 means 5m. */
    bool bare = strspn(s, "0123456789") == n;
    uint64_t total = 0;
    size_t i = 0;
    while (i < n) {
        uint64_t v = 0;
        size_t digits = 0;
        while (i < n && s[i] >= '0' && s[i] <= '9') {
            if (v > MAX_MS) return -EINVAL;   /* no overflow, whatever the digits */
            v = v * 10 + (uint64_t)(s[i++] - '0');
            digits++;
        }
        if (!digits) return -EINVAL;
        uint64_t unit;
        if (bare) {
            unit = 1000;
        } else if (n - i >= 2 && s[i] == 'm' && s[i + 1] == 's') {
            unit = 1;
            i += 2;
        } else if (i < n && s[i] == 's') {
            unit = 1000;
            i++;
        } else if (i < n && s[i] == 'm') {
            unit = 60 * 1000;
            i++;
        } else if (i < n && s[i] == 'h') {
            unit = 3600 * 1000;
            i++;
        } else {
            return -EINVAL;
        }
        if (v > MAX_MS / unit) return -EINVAL;
        total += v * unit;
        if (total > MAX_MS) return -EINVAL;
    }
    if (!total) return -EINVAL;
    *out = total;
    return 0;
}
