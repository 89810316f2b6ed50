/* log.h - the one logging path: JSON lines (or text) on stdout.
 *
 * Usage:
 *   LOG(lg, LOG_INFO, "forwarded", F_URL("target", url), F_INT("status", 200));
 *
 * F_URL fields are redacted (url_redact) before they are written, so a
 * webhook URL handed to the logger can never leak its token. */
#ifndef WR_LOG_H
#define WR_LOG_H

#include <stddef.h>

enum log_level { LOG_TRACE, LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR };
enum log_format { LOG_FORMAT_JSON, LOG_FORMAT_TEXT };

enum log_field_type { LF_STR, LF_INT, LF_URL, LF_BOOL };

struct log_field {
    const char *key;
    enum log_field_type type;
    const char *s;     /* LF_STR, LF_URL; NULL fields are skipped */
    long long i;       /* LF_INT, LF_BOOL */
};

struct buf;

struct logger {
    enum log_level level;
    enum log_format format;
    int fd;            /* 1 for stdout; tests point it at a pipe or file */
    struct buf *batch;  /* NULL: one write(2) per line; else lines not yet written */
};

#define F_STR(k, v)  {.key = (k), .type = LF_STR, .s = (v)}
#define F_URL(k, v)  {.key = (k), .type = LF_URL, .s = (v)}
#define F_INT(k, v)  {.key = (k), .type = LF_INT, .i = (long long)(v)}
#define F_BOOL(k, v) {.key = (k), .type = LF_BOOL, .i = (v) ? 1 : 0}

void logger_init(struct logger *lg, enum log_level level, enum log_format format, int fd);
int log_enabled(const struct logger *lg, enum log_level level);
const char *log_level_name(enum log_level level);

/* Batching: the daemon logs a line or two per forward, and a write(2)
 * each cost as much as the forward itself. With a batch, lines collect in
 * memory and go out with log_flush, which the loop calls once per
 * iteration (so a line is late by at most one turn of the loop). Errors,
 * and a batch past 64 KiB, are written at once. log_batch_free flushes. */
void log_batch_start(struct logger *lg);
void log_flush(const struct logger *lg);
void log_batch_free(struct logger *lg);

/* Writes whole lines with one write(2) so lines from a pipe are never torn. */
void log_write(const struct logger *lg, enum log_level level, const char *msg,
               const struct log_field *fields, size_t nfields);

/* The leading empty field lets LOG() be called with no fields at all. */
#define LOG(lg, level, msg, ...)                                                  \
    do {                                                                          \
        if (log_enabled((lg), (level))) {                                         \
            const struct log_field log_f_[] = {{.key = NULL}, __VA_ARGS__};       \
            log_write((lg), (level), (msg), log_f_ + 1,                           \
                      sizeof log_f_ / sizeof log_f_[0] - 1);                      \
        }                                                                         \
    } while (0)

/* Formats one line into out (no trailing newline handling by callers);
 * exposed for tests. ts_ms is milliseconds since the epoch. */
struct buf;
void log_format_line(struct buf *out, enum log_format format, long long ts_ms,
                     enum log_level level, const char *msg,
                     const struct log_field *fields, size_t nfields);

#endif
