/* metrics.h - writing the Prometheus text exposition format (0.0.4). Pure:
 * the /metrics handler gathers the numbers, this only formats them. */
#ifndef WR_METRICS_H
#define WR_METRICS_H

#include "buf.h"

/* "# HELP name help\n# TYPE name type\n" */
void prom_family(struct buf *b, const char *name, const char *type, const char *help);
/* One sample: name{k1="v1",k2="v2"} value. labels: NULL-terminated key,
 * value pairs (values escaped as the format requires); may be NULL. */
void prom_sample(struct buf *b, const char *name, const char *const *labels, double value);
/* A family of one unlabelled sample: its HELP and TYPE lines, then it. */
void prom_single(struct buf *b, const char *name, const char *type, const char *help, double value);

#endif
