/* log.h - the one logging path: JSON lines (or text) on stdout.
 *
 * Usage:
 *   LOG(lg, LOG_INFO, "forwarded", F_URL("target", url), F_INT("status", 200));
 *
 * F_URL fields are redacted (url_redact) before they are written, so a
 * webhook URL handed to the logger can never leak its token. */
#ifndef WR_LOG_H
#define WR_LOG_H

#include <stdbool.h>
#include <stddef.h>

enum log_level { LOG_TRACE, LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR };
enum log_format { LOG_FORMAT_JSON, LOG_FORMAT_TEXT };

enum log_field_type { LF_STR, LF_INT, LF_URL, LF_BOOL };

struct log_field {
    const char *key;   /* an identifier (letters, digits, "_"): written unescaped */
    size_t klen;       /* strlen(key): folded when compiling, for a literal */
    enum log_field_type type;
    const char *s;     /* LF_STR, LF_URL; NULL fields are skipped */
    long long i;       /* LF_INT, LF_BOOL */
};

struct buf;
struct log_sink;

struct logger {
    enum log_level level;
    enum log_format format;
    int fd;            /* 1 for stdout; tests point it at a pipe or file */
    struct log_sink *sink;   /* NULL: one write(2) per line; else see log_batch_start */
};

#define F_STR(k, v)  {.key = (k), .klen = __builtin_strlen(k), .type = LF_STR, .s = (v)}
#define F_URL(k, v)  {.key = (k), .klen = __builtin_strlen(k), .type = LF_URL, .s = (v)}
#define F_INT(k, v)  {.key = (k), .klen = __builtin_strlen(k), .type = LF_INT, .i = (long long)(v)}
#define F_BOOL(k, v) {.key = (k), .klen = __builtin_strlen(k), .type = LF_BOOL, .i = (v) ? 1 : 0}

void logger_init(struct logger *lg, enum log_level level, enum log_format format, int fd);
int log_enabled(const struct logger *lg, enum log_level level);
const char *log_level_name(enum log_level level);

/* Batching: the daemon logs a line or two per forward, and a write(2)
 * each cost as much as the forward itself. With a batch, lines collect in
 * memory and go out with log_flush, which the loop calls once per
 * iteration (so a line is late by at most one turn of the loop). Errors,
 * and a batch past 64 KiB, are written at once.
 *
 * A log consumer that stops reading must not stop the daemon: with the fd
 * non-blocking (log_nonblocking), what cannot be written now stays in
 * memory, in order, up to LOG_MAX_PENDING bytes, and goes out on a later
 * log_flush (the caller flushes again once the fd is writable). Past that
 * bound new lines are dropped whole and counted (log_dropped); the first
 * line that fits again is preceded by a warn line saying how many are
 * missing there. Bytes are never cut out of the middle of a line. */
#define LOG_MAX_PENDING (1024 * 1024)
void log_batch_start(struct logger *lg);
/* Puts the fd in non-blocking mode when it is a pipe or a socket (a file
 * or terminal is left alone); log_batch_free restores its flags, since the
 * mode belongs to the open file that other processes share. Needs a batch.
 * Returns whether the fd is now non-blocking. */
bool log_nonblocking(struct logger *lg);
/* Writes what is pending, as far as the fd takes it without blocking. */
void log_flush(const struct logger *lg);
size_t log_pending(const struct logger *lg);            /* bytes not yet written */
unsigned long long log_dropped(const struct logger *lg);   /* lines dropped, ever */
/* The batch on a loop: the fd made non-blocking (log_nonblocking), the
 * lines of each loop turn written in one go before the loop waits, and,
 * while lines wait for a full pipe, a watch that writes them as soon as it
 * has room. Needs a batch; once. */
struct uv_loop_s;
void log_loop_attach(struct logger *lg, struct uv_loop_s *loop);
/* Closes the loop's handles (before the loop ends); lines still go out
 * with log_flush and log_batch_free. */
void log_loop_detach(struct logger *lg);
/* One last flush (without blocking), the fd's flags restored, memory freed;
 * after log_loop_detach and the loop's end. */
void log_batch_free(struct logger *lg);
/* Without a batch, writes each line with one write(2) (tests, tools). */
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
/* RFC 3339, UTC, milliseconds ("2026-11-29T18:34:41.123Z"), unquoted. */
void log_put_time(struct buf *out, long long ts_ms);
/* The same, remembering the text of the last second: a flood logs
 * thousands of lines a second, and they share the date and time up to the
 * second, computed once (it was a third of a line's cost); only the
 * milliseconds are written each time. m NULL: log_put_time. */
struct log_time_memo {
    long long sec;
    char text[24];   /* all zero (as initialized): nothing remembered yet */
};
void log_put_time_memo(struct buf *out, long long ts_ms, struct log_time_memo *m);
/* A JSON member of such a time: `"key":"2026-…Z"`, or `"key":null` when
 * ts_ms is 0 (never). *first as for json_put_key. */
void log_put_time_member(struct buf *out, const char *key, long long ts_ms, int *first);
void log_format_line(struct buf *out, enum log_format format, long long ts_ms,
                     enum log_level level, const char *msg,
                     const struct log_field *fields, size_t nfields);

#endif
