/* metrics.c - Prometheus text format writer. */
#include "metrics.h"

#include <math.h>
#include <stdio.h>

void prom_family(struct buf *b, const char *name, const char *type, const char *help)
{
    buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* Label values escape backslash, double quote and newline. */
static void put_label_value(struct buf *b, const char *v)
{
    for (; *v; v++) {
        if (*v == '\\') buf_puts(b, "\\\\");
        else if (*v == '"') buf_puts(b, "\\\"");
        else if (*v == '\n') buf_puts(b, "\\n");
        else buf_putc(b, *v);
    }
}

void prom_sample(struct buf *b, const char *name, const char *const *labels, double value)
{
    buf_puts(b, name);
    if (labels && labels[0]) {
        buf_putc(b, '{');
        for (size_t i = 0; labels[i] && labels[i + 1]; i += 2) {
            buf_printf(b, "%s%s=\"", i ? "," : "", labels[i]);
            put_label_value(b, labels[i + 1]);
            buf_putc(b, '"');
        }
        buf_putc(b, '}');
    }
    if (isinf(value)) buf_puts(b, value > 0 ? " +Inf\n" : " -Inf\n");
    else if (value == floor(value) && fabs(value) < 1e15) buf_printf(b, " %.0f\n", value);
    else buf_printf(b, " %.6g\n", value);
}

void prom_single(struct buf *b, const char *name, const char *type, const char *help, double value)
{
    prom_family(b, name, type, help);
    prom_sample(b, name, NULL, value);
}
