/* log.c - JSON-lines / text logging with URL redaction. */
#include "log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "json.h"
#include "url.h"

static const char *const level_names[] = {"trace", "debug", "info", "warn", "error"};

#define BATCH_FLUSH_BYTES (64 * 1024)

void logger_init(struct logger *lg, enum log_level level, enum log_format format, int fd)
{
    lg->level = level;
    lg->format = format;
    lg->fd = fd;
    lg->batch = NULL;
}

void log_batch_start(struct logger *lg)
{
    if (!lg->batch) lg->batch = xcalloc(1, sizeof *lg->batch);   /* an empty buf */
}

static void write_all(int fd, const char *p, size_t len)
{
    size_t off = 0;
    while (off < len) {
        ssize_t n = write(fd, p + off, len - off);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;   /* nowhere to report a failing log sink */
        off += (size_t)n;
    }
}

void log_flush(const struct logger *lg)
{
    if (!lg || !lg->batch || !lg->batch->len) return;
    struct buf *b = lg->batch;
    write_all(lg->fd, b->data, b->len);
    /* A burst must not pin its buffer. */
    if (b->cap > BATCH_FLUSH_BYTES * 2) buf_free(b);
    else buf_reset(b);
}

void log_batch_free(struct logger *lg)
{
    if (!lg->batch) return;
    log_flush(lg);
    buf_free(lg->batch);
    free(lg->batch);
    lg->batch = NULL;
}

int log_enabled(const struct logger *lg, enum log_level level)
{
    return lg && level >= lg->level;
}

const char *log_level_name(enum log_level level)
{
    return level_names[level];
}

static void put_ts(struct buf *out, long long ts_ms)
{
    time_t secs = (time_t)(ts_ms / 1000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    /* By hand: printf was a tenth of the cost of a log line. */
    int year = tm.tm_year + 1900, ms = (int)(ts_ms % 1000);
    char s[] = "0000-00-00T00:00:00.000Z";
    s[0] = (char)('0' + year / 1000 % 10);
    s[1] = (char)('0' + year / 100 % 10);
    s[2] = (char)('0' + year / 10 % 10);
    s[3] = (char)('0' + year % 10);
    const int two[] = {tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec};
    for (int i = 0; i < 5; i++) {
        s[5 + 3 * i] = (char)('0' + two[i] / 10);
        s[6 + 3 * i] = (char)('0' + two[i] % 10);
    }
    s[20] = (char)('0' + ms / 100);
    s[21] = (char)('0' + ms / 10 % 10);
    s[22] = (char)('0' + ms % 10);
    buf_append(out, s, sizeof s - 1);
}

/* A string value: always quoted in JSON; in text only when it would be
 * ambiguous to a reader. */
static void put_value(struct buf *out, enum log_format format, const char *s)
{
    int plain = format == LOG_FORMAT_TEXT && *s != '\0';
    for (const char *p = s; plain && *p; p++)
        if (*p == ' ' || *p == '"' || *p == '=' || (unsigned char)*p < 0x20) plain = 0;
    if (plain) buf_puts(out, s);
    else json_put_str(out, s);
}

void log_format_line(struct buf *out, enum log_format format, long long ts_ms,
                     enum log_level level, const char *msg,
                     const struct log_field *fields, size_t nfields)
{
    struct buf tmp;
    buf_init(&tmp);
    if (format == LOG_FORMAT_JSON) {
        buf_puts(out, "{\"ts\":\"");
        put_ts(out, ts_ms);
        buf_puts(out, "\",\"level\":\"");
        buf_puts(out, level_names[level]);
        buf_puts(out, "\",\"msg\":");
        json_put_str(out, msg);
    } else {
        put_ts(out, ts_ms);
        buf_printf(out, " %-5s %s", level_names[level], msg);
    }
    for (size_t i = 0; i < nfields; i++) {
        const struct log_field *f = &fields[i];
        if ((f->type == LF_STR || f->type == LF_URL) && !f->s) continue;
        if (format == LOG_FORMAT_JSON) {
            buf_putc(out, ',');
            json_put_str(out, f->key);
            buf_putc(out, ':');
        } else {
            buf_putc(out, ' ');
            buf_puts(out, f->key);
            buf_putc(out, '=');
        }
        switch (f->type) {
        case LF_STR: put_value(out, format, f->s); break;
        case LF_URL:
            buf_reset(&tmp);
            url_redact(&tmp, f->s);
            put_value(out, format, buf_cstr(&tmp));
            break;
        case LF_INT: buf_put_int(out, f->i); break;
        case LF_BOOL: buf_puts(out, f->i ? "true" : "false"); break;
        }
    }
    if (format == LOG_FORMAT_JSON) buf_putc(out, '}');
    buf_putc(out, '\n');
    buf_free(&tmp);
}

void log_write(const struct logger *lg, enum log_level level, const char *msg,
               const struct log_field *fields, size_t nfields)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    long long ms = (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    if (lg->batch) {
        struct buf *b = lg->batch;
        log_format_line(b, lg->format, ms, level, msg, fields, nfields);
        if (level >= LOG_ERROR || b->len >= BATCH_FLUSH_BYTES) log_flush(lg);
        return;
    }
    struct buf line;
    buf_init(&line);
    log_format_line(&line, lg->format, ms, level, msg, fields, nfields);
    write_all(lg->fd, line.data, line.len);
    buf_free(&line);
}
