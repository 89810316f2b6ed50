/* duration.h - "30s", "5m", "1h", "1h30m", "500ms": intervals as operators
 * write them (POLL_INTERVAL, the <prefix>.poll label). Pure. */
#ifndef WR_DURATION_H
#define WR_DURATION_H

#include <stdint.h>

/* Parses s into milliseconds: one or more <digits><unit> with units ms, s,
 * m, h, or a bare number of seconds ("300", as Watchtower's interval);
 * blanks around it allowed; at most 7 days. Returns 0, or -EINVAL
 * (empty, a number then no unit, unknown unit, zero, too long). */
int duration_parse_ms(const char *s, uint64_t *out);

#endif
