/* log.c - JSON-lines / text logging with URL redaction. */
#include "log.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "buf.h"
#include "json.h"
#include "url.h"

static const char *const level_names[] = {"trace", "debug", "info", "warn", "error"};

#define BATCH_FLUSH_BYTES (64 * 1024)
#define FINAL_FLUSH_MS 1000   /* at exit, how long a slow consumer is waited for */
#define DROPPED_MSG "log lines dropped: the log consumer was not reading"

/* Lines not yet written: out.data + off is the next byte for the fd. */
struct log_sink {
    struct buf out;
    struct log_time_memo time;
    size_t off;
    unsigned long long dropped;         /* since the last "dropped" warn line */
    unsigned long long dropped_total;   /* for the metric */
    bool blocked;                       /* the fd said EAGAIN: wait for log_flush */
    bool broken;                        /* the fd failed otherwise (EPIPE...): no warn lines into it */
    int saved_flags;                    /* the fd's flags before log_nonblocking; -1: untouched */
    /* On a loop (log_loop_attach): a flush per turn, a watch for room. */
    const struct logger *lg;
    uv_prepare_t flush;
    uv_poll_t poll;
    bool attached;
    bool poll_ready;                    /* poll initialised (the fd is a pipe or socket) */
    bool polling;
};

void logger_init(struct logger *lg, enum log_level level, enum log_format format, int fd)
{
    lg->level = level;
    lg->format = format;
    lg->fd = fd;
    lg->sink = NULL;
}

void log_batch_start(struct logger *lg)
{
    if (lg->sink) return;
    lg->sink = xcalloc(1, sizeof *lg->sink);   /* an empty buf */
    lg->sink->saved_flags = -1;
}

bool log_nonblocking(struct logger *lg)
{
    struct log_sink *k = lg->sink;
    struct stat st;
    if (!k || fstat(lg->fd, &st) != 0 || !(S_ISFIFO(st.st_mode) || S_ISSOCK(st.st_mode))) return false;
    int flags = fcntl(lg->fd, F_GETFL);
    if (flags < 0) return false;
    if (k->saved_flags < 0) k->saved_flags = flags;
    return (flags & O_NONBLOCK) || fcntl(lg->fd, F_SETFL, flags | O_NONBLOCK) == 0;
}

static void format_line(struct buf *out, enum log_format format, long long ts_ms, struct log_time_memo *memo,
                        enum log_level level, const char *msg, const struct log_field *fields, size_t nfields);

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static unsigned long long count_lines(const char *p, size_t n)
{
    unsigned long long lines = 0;
    for (const char *end = p + n; (p = memchr(p, '\n', (size_t)(end - p))); p++) lines++;
    return lines;
}

/* Writes pending bytes until none are left or the fd would block. A line
 * cut by a short write is finished by the next write: the fd only ever
 * sees whole lines, in order. */
static void sink_write(int fd, struct log_sink *k)
{
    while (k->off < k->out.len) {
        ssize_t n = write(fd, k->out.data + k->off, k->out.len - k->off);
        if (n > 0) {
            k->off += (size_t)n;
            k->broken = false;
            continue;
        }
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            k->blocked = true;
            return;
        }
        /* Nobody will ever read these (EPIPE, EIO...), and there is nowhere
         * to report it: drop them, counted. */
        unsigned long long lost = count_lines(k->out.data + k->off, k->out.len - k->off);
        k->dropped += lost;
        k->dropped_total += lost;
        k->broken = true;
        k->off = k->out.len;
    }
    k->blocked = false;
    k->off = 0;
    /* A burst must not pin its buffer. */
    if (k->out.cap > BATCH_FLUSH_BYTES * 2) buf_free(&k->out);
    else buf_reset(&k->out);
}

/* Appends one line (msg NULL: none) to what is pending, preceded by the warn
 * line that marks a gap if lines were dropped before it. Past the bound the
 * line is dropped whole (and the warn waits for the next one). */
static void sink_append(const struct logger *lg, enum log_level level, const char *msg,
                        const struct log_field *fields, size_t nfields)
{
    struct log_sink *k = lg->sink;
    long long ms = now_ms();
    size_t before = k->out.len;
    bool warn = k->dropped && !k->broken && log_enabled(lg, LOG_WARN);
    if (warn) {
        const struct log_field f[] = {F_INT("dropped", k->dropped)};
        format_line(&k->out, lg->format, ms, &k->time, LOG_WARN, DROPPED_MSG, f, 1);
    }
    if (msg) format_line(&k->out, lg->format, ms, &k->time, level, msg, fields, nfields);
    if (k->out.len - k->off <= LOG_MAX_PENDING) {
        if (msg || warn) k->dropped = 0;
        return;
    }
    k->out.len = before;
    if (k->out.data) k->out.data[before] = '\0';
    if (msg) {
        k->dropped++;
        k->dropped_total++;
    }
}

void log_flush(const struct logger *lg)
{
    if (!lg || !lg->sink) return;
    struct log_sink *k = lg->sink;
    if (k->out.len > k->off) sink_write(lg->fd, k);
    /* Writing recovered: say at once how many lines are missing, even if
     * nothing else is logged for a while. */
    if (k->dropped && !k->broken && k->out.len == k->off) {
        sink_append(lg, LOG_WARN, NULL, NULL, 0);
        if (k->out.len > k->off) sink_write(lg->fd, k);
    }
    /* Keep the unwritten rest at the front once the written part dominates. */
    if (k->off && k->off >= k->out.len / 2) {
        buf_consume(&k->out, k->off);
        k->off = 0;
    }
}

size_t log_pending(const struct logger *lg)
{
    return lg && lg->sink ? lg->sink->out.len - lg->sink->off : 0;
}

unsigned long long log_dropped(const struct logger *lg)
{
    return lg && lg->sink ? lg->sink->dropped_total : 0;
}

static void on_log_writable(uv_poll_t *h, int status, int events);

/* Lines wait only while the fd is full: watch it for room exactly then, so
 * they go out as soon as the consumer reads again, even on an idle loop
 * (retrying from the prepare handle would wait for some other event to
 * wake the loop). No watch otherwise: no wake-ups for nothing. */
static void watch_for_room(struct log_sink *k)
{
    if (!k->poll_ready) return;
    bool want = log_pending(k->lg) > 0;
    if (want && !k->polling) k->polling = uv_poll_start(&k->poll, UV_WRITABLE, on_log_writable) == 0;
    else if (!want && k->polling) {
        uv_poll_stop(&k->poll);
        k->polling = false;
    }
}

static void on_log_writable(uv_poll_t *h, int status, int events)
{
    (void)status;   /* an error shows as a failed write: log_flush counts the loss */
    (void)events;
    struct log_sink *k = h->data;
    log_flush(k->lg);
    watch_for_room(k);
}

/* Runs before the loop waits for I/O: the lines of this turn go out in one write. */
static void on_turn(uv_prepare_t *h)
{
    struct log_sink *k = h->data;
    log_flush(k->lg);
    watch_for_room(k);
}

void log_loop_attach(struct logger *lg, uv_loop_t *loop)
{
    struct log_sink *k = lg->sink;
    assert(k && !k->attached && "log_loop_attach needs a batch, once");
    k->lg = lg;
    k->attached = true;
    if (log_nonblocking(lg) && uv_poll_init(loop, &k->poll, lg->fd) == 0) {
        k->poll.data = k;
        k->poll_ready = true;
    }
    uv_prepare_init(loop, &k->flush);
    k->flush.data = k;
    uv_prepare_start(&k->flush, on_turn);
}

void log_loop_detach(struct logger *lg)
{
    struct log_sink *k = lg->sink;
    if (!k || !k->attached) return;
    k->attached = false;
    uv_close((uv_handle_t *)&k->flush, NULL);
    if (k->poll_ready) uv_close((uv_handle_t *)&k->poll, NULL);
    k->poll_ready = k->polling = false;
}

void log_batch_free(struct logger *lg)
{
    struct log_sink *k = lg->sink;
    if (!k) return;
    /* The last lines (the loop has ended): a slow consumer gets a bounded
     * moment to take them, a stuck one does not hold up the exit. */
    long long until = now_ms() + FINAL_FLUSH_MS;
    log_flush(lg);
    while (log_pending(lg) && !k->broken && now_ms() < until) {
        struct pollfd pfd = {.fd = lg->fd, .events = POLLOUT};
        poll(&pfd, 1, (int)(until - now_ms()));
        log_flush(lg);
    }
    if (k->saved_flags >= 0) fcntl(lg->fd, F_SETFL, k->saved_flags);
    buf_free(&k->out);
    free(k);
    lg->sink = NULL;
}

int log_enabled(const struct logger *lg, enum log_level level)
{
    return lg && level >= lg->level;
}

const char *log_level_name(enum log_level level)
{
    return level_names[level];
}

/* The UTC calendar date of a count of days since 1970-01-01, by the
 * proleptic Gregorian rules: 400-year eras of 146097 days, years counted
 * from March so that the leap day falls last. gmtime_r would take glibc's
 * time-zone lock and read TZ state for every log line (a sixth of one). */
static void civil_from_days(long long days, int *year, int *month, int *day)
{
    long long z = days + 719468;                 /* days since 0000-03-01 */
    long long era = (z >= 0 ? z : z - 146096) / 146097;
    long long doe = z - era * 146097;            /* [0, 146096] */
    long long yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;   /* [0, 399] */
    long long doy = doe - (365 * yoe + yoe / 4 - yoe / 100);                 /* [0, 365] */
    long long mp = (5 * doy + 2) / 153;          /* March = 0 */
    *day = (int)(doy - (153 * mp + 2) / 5 + 1);
    *month = (int)(mp < 10 ? mp + 3 : mp - 9);
    *year = (int)(yoe + era * 400 + (*month <= 2));
}

/* "YYYY-MM-DDTHH:MM:SS.mmmZ" into s (24 bytes, no terminator). */
static void time_text(char s[24], long long ts_ms)
{
    long long secs = ts_ms / 1000, ms = ts_ms % 1000, days = secs / 86400, sod = secs % 86400;
    if (ms < 0) {   /* before 1970: floor, not truncation */
        ms += 1000;
        sod--;
    }
    if (sod < 0) {
        sod += 86400;
        days--;
    }
    int year, month, day;
    civil_from_days(days, &year, &month, &day);
    /* By hand: printf was a tenth of the cost of a log line. */
    static const char shape[24] = "0000-00-00T00:00:00.000Z";   /* 24 bytes, no NUL: s has none either */
    memcpy(s, shape, sizeof shape);
    s[0] = (char)('0' + year / 1000 % 10);
    s[1] = (char)('0' + year / 100 % 10);
    s[2] = (char)('0' + year / 10 % 10);
    s[3] = (char)('0' + year % 10);
    const int two[] = {month, day, (int)(sod / 3600), (int)(sod / 60 % 60), (int)(sod % 60)};
    for (int i = 0; i < 5; i++) {
        s[5 + 3 * i] = (char)('0' + two[i] / 10);
        s[6 + 3 * i] = (char)('0' + two[i] % 10);
    }
    s[20] = (char)('0' + ms / 100);
    s[21] = (char)('0' + ms / 10 % 10);
    s[22] = (char)('0' + ms % 10);
}

void log_put_time(struct buf *out, long long ts_ms)
{
    char s[24];
    time_text(s, ts_ms);
    buf_append(out, s, sizeof s);
}

void log_put_time_memo(struct buf *out, long long ts_ms, struct log_time_memo *m)
{
    long long sec = ts_ms / 1000;
    if (!m || ts_ms < 0) {
        log_put_time(out, ts_ms);
        return;
    }
    if (sec != m->sec || !m->text[0]) {
        time_text(m->text, sec * 1000);
        m->sec = sec;
    }
    long long ms = ts_ms % 1000;
    m->text[20] = (char)('0' + ms / 100);
    m->text[21] = (char)('0' + ms / 10 % 10);
    m->text[22] = (char)('0' + ms % 10);
    buf_append(out, m->text, sizeof m->text);
}

void log_put_time_member(struct buf *out, const char *key, long long ts_ms, int *first)
{
    json_put_key(out, key, first);
    if (!ts_ms) {
        buf_puts(out, "null");
        return;
    }
    buf_putc(out, '"');
    log_put_time(out, ts_ms);
    buf_putc(out, '"');
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

static void format_line(struct buf *out, enum log_format format, long long ts_ms, struct log_time_memo *memo,
                        enum log_level level, const char *msg, const struct log_field *fields, size_t nfields)
{
    struct buf tmp;
    buf_init(&tmp);
    if (format == LOG_FORMAT_JSON) {
        buf_puts(out, "{\"ts\":\"");
        log_put_time_memo(out, ts_ms, memo);
        buf_puts(out, "\",\"level\":\"");
        buf_puts(out, level_names[level]);
        buf_puts(out, "\",\"msg\":");
        json_put_str(out, msg);
    } else {
        log_put_time_memo(out, ts_ms, memo);
        buf_printf(out, " %-5s %s", level_names[level], msg);
    }
    for (size_t i = 0; i < nfields; i++) {
        const struct log_field *f = &fields[i];
        if ((f->type == LF_STR || f->type == LF_URL) && !f->s) continue;
        if (format == LOG_FORMAT_JSON) {
            /* Keys are identifiers written in the code: nothing to escape. */
            buf_append(out, ",\"", 2);
            buf_append(out, f->key, f->klen);
            buf_append(out, "\":", 2);
        } else {
            buf_putc(out, ' ');
            buf_append(out, f->key, f->klen);
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

void log_format_line(struct buf *out, enum log_format format, long long ts_ms,
                     enum log_level level, const char *msg,
                     const struct log_field *fields, size_t nfields)
{
    format_line(out, format, ts_ms, NULL, level, msg, fields, nfields);
}

/* Unbatched: one line, one write(2); a short write is continued. */
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

void log_write(const struct logger *lg, enum log_level level, const char *msg,
               const struct log_field *fields, size_t nfields)
{
    struct log_sink *k = lg->sink;
    if (k) {
        sink_append(lg, level, msg, fields, nfields);
        /* While the fd is blocked only log_flush tries again: a syscall per
         * line that cannot be written would be pure waste. */
        if (!k->blocked && (level >= LOG_ERROR || k->out.len - k->off >= BATCH_FLUSH_BYTES)) log_flush(lg);
        return;
    }
    struct buf line;
    buf_init(&line);
    log_format_line(&line, lg->format, now_ms(), level, msg, fields, nfields);
    write_all(lg->fd, line.data, line.len);
    buf_free(&line);
}
